"""One hung camera never delays another.

A real hung HTTP camera (a listening socket that accepts and never answers) beside real file cameras and a live
MJPEG-over-HTTP camera. Each test runs the same healthy cameras twice, without and then with the hung one, and
compares the two runs as ratios, so a busy machine slows both alike. Before OpenCV's process-wide open lock was
switched off, every healthy camera's open (and every looping file's reopen) waited for the hung camera's open
timeout: first frames ~3 s late, the healthy cameras reported offline, half their frames lost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from edge.capture import CameraReader, FrameHub
from edge.config import CameraConfig, ZoneConfig

from .conftest import FOOTAGE
from .services.hung_http import HungCamera
from .services.mjpeg_http import MjpegCamera

ZONE = [ZoneConfig(name="z", polygon=[(0, 0), (1, 0), (1, 1)])]
# Long enough that a healthy camera held behind the hung open is unmistakable, short enough for the suite.
HUNG_OPEN_TIMEOUT_S = 3.0


def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.02)


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


@dataclass(frozen=True, slots=True)
class CaptureRun:
    first_frame_s: dict[str, float]  # from the healthy readers' start; absent if none came within the window
    frames: dict[str, int]  # decoded within the window


def capture_run(healthy: list[CameraConfig], hung: HungCamera | None, window_s: float) -> CaptureRun:
    names = [c.name for c in healthy] + (["hung"] if hung else [])
    hub = FrameHub(names)
    readers = []
    try:
        if hung is not None:
            # The hung camera's open is under way (its server accepted the connection) before the healthy cameras
            # start: the order in which the open lock held them all.
            cam = CameraConfig(
                name="hung", side="left", source=hung.url, zones=ZONE, open_timeout_s=HUNG_OPEN_TIMEOUT_S
            )
            readers.append(CameraReader(cam, hub))
            readers[-1].start()
            wait_until(lambda: hung.accepted >= 1, within=10, what="the hung camera's connection")
        t0 = time.monotonic()
        for cam in healthy:
            readers.append(CameraReader(cam, hub))
            readers[-1].start()
        first: dict[str, float] = {}
        while time.monotonic() < t0 + window_s:
            for frame in hub.take(timeout=0.02):
                first.setdefault(frame.camera, time.monotonic() - t0)
        frames = {c.name: hub.counters[c.name].frames for c in healthy}
        if hung is not None:
            assert hub.counters["hung"].frames == 0 and not hub.counters["hung"].connected
        return CaptureRun(first, frames)
    finally:
        for r in readers:
            r.stop()
        for r in readers:
            r.join(timeout=HUNG_OPEN_TIMEOUT_S + 5)  # a reader inside an open leaves it on the open timeout


def test_a_hung_http_camera_delays_neither_first_frames_nor_rate_of_the_others(
    hung_camera: HungCamera, mjpeg_camera: MjpegCamera
) -> None:
    """Healthy cameras open and stream as if the hung camera were not there, and its open still times out."""
    healthy = [
        CameraConfig(name="file", side="right", source=str(FOOTAGE / "cam_right.mp4"), zones=ZONE),
        # 200 frames at 60 fps: back to its start (a reopen) every 3.3 s, while the hung camera is opening.
        CameraConfig(name="looping", side="rear", source=str(FOOTAGE / "cam_rear.mp4"), zones=ZONE, fps=60.0),
        CameraConfig(name="mjpeg", side="front", source=mjpeg_camera.url, zones=ZONE),
    ]
    window_s = 1.5 * HUNG_OPEN_TIMEOUT_S  # covers the hung camera's first open and the start of its retry
    alone = capture_run(healthy, None, window_s)
    beside_hung = capture_run(healthy, hung_camera, window_s)

    for cam in healthy:
        delay = beside_hung.first_frame_s.get(cam.name, math.inf) - alone.first_frame_s[cam.name]
        assert delay <= 0.25 * HUNG_OPEN_TIMEOUT_S, (cam.name, alone, beside_hung)
        assert beside_hung.frames[cam.name] >= 0.8 * alone.frames[cam.name], (cam.name, alone, beside_hung)
    # The hung camera's open gave up on its timeout and was tried again (a second connection).
    assert hung_camera.accepted >= 2
