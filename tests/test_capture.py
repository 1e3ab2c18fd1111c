"""Capture readers against real sources: files paced like cameras, and a live MJPEG-over-HTTP camera."""

from __future__ import annotations

import time

import pytest

from edge.capture import CameraReader, FrameHub
from edge.config import CameraConfig, ZoneConfig

from .conftest import FOOTAGE
from .services.mjpeg_http import MjpegCamera

ZONE = [ZoneConfig(name="z", polygon=[(0, 0), (1, 0), (1, 1)])]


def camera(source: str, **kw: object) -> CameraConfig:
    return CameraConfig(name="cam", side="right", source=source, zones=ZONE, **kw)


def drain(hub: FrameHub, seconds: float, every: float = 0.0) -> list:
    frames, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        frames += hub.take(timeout=0.05)
        time.sleep(every)
    return frames


@pytest.fixture
def reader_for():
    readers = []

    def start(cam: CameraConfig) -> FrameHub:
        hub = FrameHub([cam.name])
        reader = CameraReader(cam, hub)
        reader.start()
        readers.append(reader)
        return hub

    yield start
    for r in readers:
        r.stop()
        r.join(timeout=5)


def test_a_file_plays_at_its_native_frame_rate(reader_for) -> None:
    hub = reader_for(camera(str(FOOTAGE / "cam_front.mp4")))
    frames = drain(hub, 2.0)
    assert 17 <= len(frames) <= 23  # 10 fps
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)
    assert frames[0].image.shape == (576, 768, 3)


def test_a_file_can_be_paced_at_another_rate(reader_for) -> None:
    hub = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), fps=15.0))
    assert 26 <= len(drain(hub, 2.0)) <= 33


def test_a_slow_consumer_gets_the_newest_frame_and_drops_are_counted(reader_for) -> None:
    hub = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), fps=30.0))
    frames = drain(hub, 2.0, every=0.2)
    counters = hub.counters["cam"]
    assert len(frames) <= 12
    assert counters.dropped >= 30
    assert counters.frames == counters.dropped + len(frames) + (1 if hub.take(0.0) else 0)


def test_a_file_loops_like_a_live_camera(reader_for) -> None:
    hub = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), fps=120.0))  # 200 frames: loops in under 2 s
    frames = drain(hub, 3.0)
    assert hub.counters["cam"].frames > 250
    assert hub.counters["cam"].reconnects == 0
    assert len(frames) > 50


def test_http_mjpeg_camera_delivers_frames_and_comes_back_after_a_power_cut(reader_for) -> None:
    server = MjpegCamera(FOOTAGE / "cam_front.mp4", fps=10)
    hub = reader_for(camera(server.url))
    assert len(drain(hub, 1.5)) >= 8
    assert hub.counters["cam"].connected

    server.stop()
    stopped_at = time.time()
    time.sleep(1.0)
    assert not hub.counters["cam"].connected
    assert all(f.t_capture <= stopped_at for f in drain(hub, 0.5))  # at most the frame left waiting in the slot

    server = MjpegCamera(FOOTAGE / "cam_front.mp4", fps=10, port=server.port)
    try:
        deadline = time.monotonic() + 10
        while hub.counters["cam"].reconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert hub.counters["cam"].reconnects == 1
        assert len(drain(hub, 1.0)) >= 5
    finally:
        server.stop()


def test_a_file_read_flat_out_waits_for_the_pipeline_and_drops_nothing(reader_for) -> None:
    """realtime = false is replay: every frame reaches the pipeline, however slow it is."""
    hub = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), realtime=False, loop=False))
    frames = drain(hub, 1.0, every=0.05)
    assert hub.counters["cam"].dropped == 0
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
