"""One hung camera never delays another.

A real hung HTTP camera (a listening socket that accepts and never answers) beside real file cameras and a live
MJPEG-over-HTTP camera. Before OpenCV's process-wide open lock was switched off, every healthy camera's open (and
every looping file's reopen) waited for the hung camera's open timeout: first frames late, the healthy cameras
reported offline, half their frames lost. The tests assume no speed: the healthy cameras must do what they do while
the hung camera is known to be inside one open, however long that takes on a busy machine.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.capture import CameraReader, FrameHub
from edge.config import CameraConfig, ZoneConfig

from .conftest import FOOTAGE, demo_data, wait_until
from .services.hung_http import HungCamera
from .services.mjpeg_http import MjpegCamera
from .test_daemon import Listener, endpoint_of

ZONE = [ZoneConfig(name="z", polygon=[(0, 0), (1, 0), (1, 1)])]
# Longer than any wait below: a healthy camera held behind the hung camera's open would still be waiting when the
# wait gives up, and the hung camera is known to be inside that one open throughout.
HUNG_OPEN_TIMEOUT_S = 60.0
WAIT_S = 45.0  # generous: the machine may be busy; nothing here is a speed target


@pytest.fixture
def hung_camera() -> Iterator[HungCamera]:
    camera = HungCamera()
    yield camera
    camera.stop()


@pytest.fixture
def mjpeg_camera() -> Iterator[MjpegCamera]:
    camera = MjpegCamera(FOOTAGE / "cam_front.mp4", fps=10)
    yield camera
    camera.stop()


def hung_config(hung: HungCamera, open_timeout_s: float) -> CameraConfig:
    return CameraConfig(name="hung", side="left", source=hung.url, zones=ZONE, open_timeout_s=open_timeout_s)


def test_healthy_cameras_open_stream_and_loop_while_a_hung_camera_is_inside_its_open(
    hung_camera: HungCamera, mjpeg_camera: MjpegCamera
) -> None:
    """Everything the healthy cameras do here happens while the hung camera's first open is still under way: with
    OpenCV's process-wide open lock each of them would wait for that open to time out, far beyond this wait."""
    healthy = [
        CameraConfig(name="file", side="right", source=str(FOOTAGE / "cam_right.mp4"), zones=ZONE),
        # 200 frames at 60 fps: back to its start (a reopen) while the hung camera is still opening.
        CameraConfig(name="looping", side="rear", source=str(FOOTAGE / "cam_rear.mp4"), zones=ZONE, fps=60.0),
        CameraConfig(name="mjpeg", side="front", source=mjpeg_camera.url, zones=ZONE),
    ]
    hub = FrameHub(["hung", *(c.name for c in healthy)])
    readers = [CameraReader(hung_config(hung_camera, HUNG_OPEN_TIMEOUT_S), hub)]
    try:
        readers[0].start()
        # Its open is under way (its server accepted the connection) before the healthy cameras start: the order in
        # which the open lock held them all.
        wait_until(lambda: hung_camera.accepted >= 1, "the hung camera's connection", timeout=WAIT_S)
        readers += [CameraReader(cam, hub) for cam in healthy]
        for reader in readers[1:]:
            reader.start()
        counters = hub.counters
        wait_until(
            # 200 frames and more: the looping file went back to its start, a reopen.
            lambda: all(counters[c.name].frames >= 5 for c in healthy) and counters["looping"].frames > 200,
            "frames from every healthy camera, and the looping file reopened",
            timeout=WAIT_S,
        )
        # Still the first open of the hung camera: nothing above waited for it to time out.
        assert hung_camera.accepted == 1
        assert counters["hung"].frames == 0 and not counters["hung"].connected
    finally:
        hung_camera.stop()  # its held connections close: the hung open returns now, not in a minute
        for r in readers:
            r.stop()
        for r in readers:
            r.join(timeout=WAIT_S)


def test_a_hung_cameras_open_gives_up_on_its_timeout_and_is_tried_again(hung_camera: HungCamera) -> None:
    hub = FrameHub(["hung"])
    reader = CameraReader(hung_config(hung_camera, open_timeout_s=1.0), hub)
    reader.start()
    try:
        wait_until(lambda: hung_camera.accepted >= 2, "a second open after the first timed out", timeout=WAIT_S)
        assert hub.counters["hung"].frames == 0 and not hub.counters["hung"].connected
    finally:
        hung_camera.stop()
        reader.stop()
        reader.join(timeout=WAIT_S)


def test_the_daemon_reports_the_hung_camera_and_never_the_healthy_ones(
    bus_config, tmp_path: Path, hung_camera: HungCamera
) -> None:
    """On the real `health` topic: the hung camera offline, the others ok throughout and still streaming after it
    was reported; and the daemon exits 0 when stopped while the hung camera's reader is inside an open."""
    open_timeout_s = 10.0  # long enough that the stop below lands inside an open; the stop waits this long at most

    def edit(data: dict) -> None:
        data["vehicle"] = {"source": "none"}
        data["recorder"]["enabled"] = False  # cameras and health only
        data["cameras"][0].update(source=hung_camera.url, open_timeout_s=open_timeout_s)

    config = bus_config(edit)
    hung_name, *healthy = [cam["name"] for cam in demo_data()["cameras"]]  # the hung camera replaced the first
    stats_path = tmp_path / "stats.json"
    listener = Listener(endpoint_of(config))
    out_path = tmp_path / "daemon.out"
    with open(out_path, "w") as out:  # a file, not a pipe: nobody drains a pipe while the test runs
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config), "--stats", str(stats_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def reported(camera: str, statuses: set[str], after: float = 0.0) -> dict | None:
        found = [m for m in listener.of("health") if m["camera"] == camera and m["status"] in statuses]
        return next((m for m in found if m["sent_ts"] > after), None)

    try:
        wait_until(lambda: reported(hung_name, {"offline", "stalled"}), "the hung camera reported", timeout=WAIT_S)
        down = reported(hung_name, {"offline", "stalled"})
        assert down is not None
        for name in healthy:
            wait_until(lambda n=name: reported(n, {"ok"}, down["sent_ts"]), f"{name} ok after that", timeout=WAIT_S)
        opens = hung_camera.accepted
        wait_until(lambda: hung_camera.accepted > opens, "the hung camera's reader entering an open", timeout=WAIT_S)
    finally:
        proc.send_signal(signal.SIGINT)  # just after that open began: the stop has to wait for its timeout
        proc.wait(timeout=open_timeout_s + 60)
        listener.close()
    assert proc.returncode == 0, out_path.read_text()[-3000:]
    for name in healthy:
        statuses = {m["status"] for m in listener.of("health") if m["camera"] == name}
        assert statuses == {"ok"}, (name, [m for m in listener.of("health") if m["camera"] == name])
        assert json.loads(stats_path.read_text())["cameras"][name]["reconnects"] == 0
