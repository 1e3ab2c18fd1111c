"""Four live RTSP cameras from a real RTSP server (GStreamer's gst-rtsp-server), one process per camera so each can
be killed or frozen on its own: the daemon reports the failure on the `health` topic, the other cameras keep
streaming, and the camera is picked up again when it returns."""

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

from .conftest import FOOTAGE, wait_until
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


HEALTHY = ["front", "right"]
DOWN = {"offline", "stalled"}
TIMEOUT_S = 60.0  # generous: reconnects back off, and the machine may be busy; nothing here is a speed target


def health_after(listener: Listener, camera: str, statuses: set[str], after: float) -> dict | None:
    """The first health message for `camera` with one of `statuses` sent at or after `after` (wall clock)."""
    return next(
        (
            m
            for m in listener.of("health")
            if m["camera"] == camera and m["status"] in statuses and m["sent_ts"] >= after
        ),
        None,
    )


def wait_for_health(listener: Listener, camera: str, statuses: set[str], after: float) -> dict:
    wait_until(
        lambda: health_after(listener, camera, statuses, after) is not None,
        f"{statuses} on health for {camera}",
        timeout=TIMEOUT_S,
    )
    message = health_after(listener, camera, statuses, after)
    assert message is not None
    return message


class DaemonLog:
    """The daemon's output file, read from an offset: the lines it logged since a given moment."""

    def __init__(self, path: Path):
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, offset: int) -> str:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")


def test_dead_and_hung_cameras_are_reported_and_recovered(bus_config, rtsp_cameras, tmp_path: Path) -> None:
    """Every step waits for what the daemon says (health, its log), never for a time; how fast it says it is
    measured by benchmarks/bench_camera_faults.py."""

    def use_rtsp(data: dict) -> None:
        data["vehicle"] = {"source": "none"}
        for cam in data["cameras"]:
            cam["source"] = rtsp_cameras[cam["name"]].url
            cam["read_timeout_s"] = 1.0

    config = bus_config(use_rtsp)
    stats_path = tmp_path / "stats.json"
    listener = Listener(endpoint_of(config))
    out = DaemonLog(tmp_path / "daemon.out")
    started = time.time()
    with open(out.path, "w") as out_fh:  # a file, not a pipe: nobody drains a pipe while the test runs
        daemon = subprocess.Popen(
            # The duration is only a safety net: the test stops the daemon itself.
            [sys.executable, "-m", "edge", "run", "--config", str(config), "--duration", "900", "--stats", stats_path],
            stdout=out_fh,
            stderr=subprocess.STDOUT,
        )
    try:
        first_ok = [wait_for_health(listener, name, {"ok"}, started) for name in CAMERAS]
        streaming = max(m["sent_ts"] for m in first_ok)
        for name in CAMERAS:  # one more heartbeat each: every camera streams, not just its first frame
            wait_for_health(listener, name, {"ok"}, streaming + 0.001)

        before_faults, killed_at = out.mark(), time.time()
        rtsp_cameras["rear"].kill()
        rear_down = wait_for_health(listener, "rear", DOWN, killed_at)
        frozen_at = time.time()
        rtsp_cameras["left"].freeze()
        left_down = wait_for_health(listener, "left", DOWN, frozen_at)
        # Both readers have given up on their stream and are trying again (with backoff), while down.
        wait_until(
            lambda: all(
                f"camera {name}: no frames, reconnecting" in out.since(before_faults) for name in ("rear", "left")
            ),
            "both failed cameras retried",
            timeout=TIMEOUT_S,
        )
        failures_seen = max(rear_down["sent_ts"], left_down["sent_ts"])
        for name in HEALTHY:  # the untouched cameras still stream while the other two are down
            wait_for_health(listener, name, {"ok"}, failures_seen + 0.001)

        back_at = time.time()
        rtsp_cameras["rear"] = rtsp_cameras["rear"].restart()
        rtsp_cameras["left"].thaw()
        wait_for_health(listener, "rear", {"ok"}, back_at)
        wait_for_health(listener, "left", {"ok"}, back_at)
        wait_until(lambda: bool(listener.of("alert")), "an alert", timeout=TIMEOUT_S)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=60)
        listener.close()
    assert daemon.returncode == 0, out.path.read_text()
    stats = json.loads(stats_path.read_text())
    for name in HEALTHY:  # the others' failures never cost the untouched cameras their connection
        assert stats["cameras"][name]["reconnects"] == 0, stats
    assert stats["cameras"]["rear"]["reconnects"] >= 1
    assert stats["alerts"] > 0
