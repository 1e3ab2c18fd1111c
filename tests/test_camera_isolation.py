"""One hung camera never delays another.

A real hung HTTP camera (a listening socket that accepts and never answers) beside real file cameras and a live
MJPEG-over-HTTP camera. Each test runs the same healthy cameras twice, without and then with the hung one, and
compares the two runs as ratios, so a busy machine slows both alike. Before OpenCV's process-wide open lock was
switched off, every healthy camera's open (and every looping file's reopen) waited for the hung camera's open
timeout: first frames ~3 s late, the healthy cameras reported offline, half their frames lost.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.capture import CameraReader, FrameHub
from edge.config import CameraConfig, ZoneConfig

from .conftest import FOOTAGE, demo_data
from .services.hung_http import HungCamera
from .services.mjpeg_http import MjpegCamera
from .test_daemon import Listener, endpoint_of

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


@dataclass(frozen=True, slots=True)
class DaemonRun:
    health: list[dict]
    stats: dict


def daemon_run(bus_config, tmp_path: Path, hung: HungCamera | None, duration_s: float) -> DaemonRun:
    name = "hung" if hung else "alone"

    def edit(data: dict) -> None:
        data["vehicle"] = {"source": "none"}
        data["recorder"]["enabled"] = False  # cameras and health only; clips would only add CPU load
        if hung is not None:
            data["cameras"][0].update(source=hung.url, open_timeout_s=HUNG_OPEN_TIMEOUT_S)

    config = bus_config(edit, name=f"{name}.toml")
    stats_path = tmp_path / f"{name}.stats.json"
    command = [sys.executable, "-m", "edge", "run", "--config", str(config), "--duration", str(duration_s)]
    listener = Listener(endpoint_of(config))
    try:
        proc = subprocess.run([*command, "--stats", str(stats_path)], capture_output=True, text=True, timeout=120)
    finally:
        listener.close()
    assert proc.returncode == 0, proc.stderr
    return DaemonRun(listener.of("health"), json.loads(stats_path.read_text()))


def test_the_daemon_reports_the_hung_camera_and_never_the_healthy_ones(
    bus_config, tmp_path: Path, hung_camera: HungCamera
) -> None:
    """On the real `health` topic: the hung camera offline, the others ok throughout and at their usual rate; and
    the daemon exits 0, though its run ends while the hung camera's reader is inside an open."""
    duration_s = 1.5 * HUNG_OPEN_TIMEOUT_S
    alone = daemon_run(bus_config, tmp_path, None, duration_s)
    beside_hung = daemon_run(bus_config, tmp_path, hung_camera, duration_s)

    hung_name, *healthy = [cam["name"] for cam in demo_data()["cameras"]]  # the hung camera replaced the first
    assert any(m["camera"] == hung_name and m["status"] in {"offline", "stalled"} for m in beside_hung.health)
    for name in healthy:
        statuses = {m["status"] for m in beside_hung.health if m["camera"] == name}
        assert statuses == {"ok"}, (name, beside_hung.health)
        fps_alone, fps_beside_hung = alone.stats["cameras"][name]["fps"], beside_hung.stats["cameras"][name]["fps"]
        assert fps_beside_hung >= 0.8 * fps_alone, (name, alone.stats["cameras"], beside_hung.stats["cameras"])
