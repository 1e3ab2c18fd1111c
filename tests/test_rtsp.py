"""Four live RTSP cameras from a real RTSP server (GStreamer's gst-rtsp-server), one process per camera so each can
be killed or frozen on its own: the daemon reports the failure on the `health` topic within 3 s, the other cameras
keep their frame rate, and the camera is picked up again when it returns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.config import REPO_ROOT

from .conftest import FOOTAGE
from .test_daemon import Listener, endpoint_of

SERVER = REPO_ROOT / "tests" / "services" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
FPS = 15
CAMERAS = ["front", "right", "rear", "left"]


def _gst_available() -> bool:
    probe = [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"]
    return os.path.exists(SYSTEM_PYTHON) and subprocess.run(probe, capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.rtsp,
    # `make test` installs the server's Debian packages; only a bare `pytest` on another machine can lack them.
    pytest.mark.skipif(not _gst_available() and not os.environ.get("CI"), reason="gst-rtsp-server not installed"),
]


class RtspCamera:
    """One gst-rtsp-server process serving one looping clip as a live camera."""

    def __init__(self, clip: Path, log: Path, port: int = 0):
        self.clip = clip
        self.log = log
        # Port 0: the server picks a free one and says which on its "ready" line (no race with other tests).
        # Its log goes to a file: an undrained pipe would fill and freeze the server mid-test.
        with open(log, "ab") as log_fh:
            self.proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), "--port", str(port), "--mount", f"/cam={clip}", "--fps", str(FPS)],
                stdout=subprocess.PIPE,
                stderr=log_fh,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), f"RTSP server did not start: {line!r} {log.read_text()}"
        self.url = line.split()[1]
        self.port = int(self.url.split(":")[2].split("/")[0])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> RtspCamera:
        return RtspCamera(self.clip, self.log, self.port)

    def close(self) -> None:
        self.thaw()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def rtsp_cameras(tmp_path: Path):
    cams = {name: RtspCamera(FOOTAGE / f"cam_{name}.mp4", tmp_path / f"rtsp-{name}.log") for name in CAMERAS}
    yield cams
    for cam in cams.values():
        cam.close()


def wait_for_health(listener: Listener, camera: str, statuses: set[str], after: float, within: float) -> float:
    """Seconds from `after` until a health message for `camera` with one of `statuses` arrives."""
    deadline = time.time() + within
    while time.time() < deadline:
        for m in listener.of("health"):
            if m["camera"] == camera and m["status"] in statuses and m["sent_ts"] >= after:
                return m["sent_ts"] - after
        time.sleep(0.05)
    raise AssertionError(f"no {statuses} health for {camera} within {within} s: {listener.of('health')}")


def test_dead_and_hung_cameras_are_reported_and_recovered(bus_config, rtsp_cameras, tmp_path: Path) -> None:
    def use_rtsp(data: dict) -> None:
        data["vehicle"] = {"source": "none"}
        for cam in data["cameras"]:
            cam["source"] = rtsp_cameras[cam["name"]].url
            cam["read_timeout_s"] = 1.0

    config = bus_config(use_rtsp)
    stats_path = tmp_path / "stats.json"
    listener = Listener(endpoint_of(config))
    out_path = tmp_path / "daemon.out"
    with open(out_path, "w") as out_fh:  # a file, not a pipe: nobody drains a pipe while the test runs
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge",
                "run",
                "--config",
                str(config),
                "--duration",
                "40",
                "--stats",
                str(stats_path),
            ],
            stdout=out_fh,
            stderr=subprocess.STDOUT,
        )
    try:
        start = time.time()
        for name in CAMERAS:
            wait_for_health(listener, name, {"ok"}, start, within=20)
        time.sleep(3)  # every camera streaming steadily

        killed_at = time.time()
        rtsp_cameras["rear"].kill()
        assert wait_for_health(listener, "rear", {"offline", "stalled"}, killed_at, within=3.5) <= 3.0

        frozen_at = time.time()
        rtsp_cameras["left"].freeze()
        assert wait_for_health(listener, "left", {"stalled", "offline"}, frozen_at, within=3.5) <= 3.0

        time.sleep(3)
        back_at = time.time()
        rtsp_cameras["rear"] = rtsp_cameras["rear"].restart()
        rtsp_cameras["left"].thaw()
        wait_for_health(listener, "rear", {"ok"}, back_at, within=15)
        wait_for_health(listener, "left", {"ok"}, back_at, within=15)
        time.sleep(2)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=30)
        listener.close()
    assert daemon.returncode == 0, out_path.read_text()
    stats = json.loads(stats_path.read_text())
    for name in ("front", "right"):  # untouched cameras kept their rate through the others' failures
        cam = stats["cameras"][name]
        assert cam["fps"] >= 0.8 * FPS, stats  # over the whole run, connection time included
        assert cam["reconnects"] == 0
    assert stats["cameras"]["rear"]["reconnects"] >= 1
    assert stats["alerts"] > 0
