"""Detection a batch ahead of tracking (edge/ahead.py), with the real pipeline and model on real frames."""

from __future__ import annotations

import cv2
import pytest

from core.types import Frame
from edge.ahead import DetectAhead
from edge.capture import FrameHub
from edge.config import DEMO_CONFIG, load_config
from edge.detector import PersonDetector
from edge.pipeline import Detected, Pipeline, Seen
from edge.vehicle import StaticVehicle

from .conftest import FOOTAGE, wait_until


def frames(camera: str, count: int) -> list[Frame]:
    cap = cv2.VideoCapture(str(FOOTAGE / f"cam_{camera}.mp4"))
    out = []
    for seq in range(count):
        ok, image = cap.read()
        assert ok
        out.append(Frame(camera, seq, 1000.0 + seq / 10, image))
    cap.release()
    return out


def next_batch(ahead: DetectAhead) -> Detected:
    got: list[Detected] = []
    wait_until(lambda: bool(batch := ahead.next(timeout=0.1)) and not got.append(batch), "a detected batch")
    return got[0]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    config = load_config(DEMO_CONFIG)
    return Pipeline(config, PersonDetector(config.detector), StaticVehicle())


def test_batches_come_out_detected_in_capture_order_and_track_like_the_one_thread_path(pipeline: Pipeline):
    hub = FrameHub(["front", "rear"])
    ahead = DetectAhead(hub, pipeline).start()
    try:
        seen = []
        for front, rear in zip(frames("front", 5), frames("rear", 5), strict=True):
            hub.put(front)
            hub.put(rear)
            batch = next_batch(ahead)
            while len(batch.seen) < 2:  # the detect thread took the hub between the two puts
                batch = Detected(batch.seen + next_batch(ahead).seen, 0.0, 0)
            seen.extend(batch.seen)
            assert len(pipeline.track(batch).results) == len(batch.seen)
    finally:
        ahead.stop()
    assert [s.frame.seq for s in seen if s.frame.camera == "front"] == list(range(5))
    assert [s.frame.seq for s in seen if s.frame.camera == "rear"] == list(range(5))
    assert any(len(s.detections.xyxy) for s in seen)  # the real model found people


class Broken:
    def detect(self, frames: list[Frame]) -> Detected:
        raise RuntimeError("detector exploded")


def test_a_failure_of_the_detect_thread_is_raised_in_the_main_thread():
    hub = FrameHub(["front"])
    ahead = DetectAhead(hub, Broken()).start()  # type: ignore[arg-type]  # only .detect is used
    hub.put(frames("front", 1)[0])
    try:
        with pytest.raises(RuntimeError, match="detector exploded"):
            wait_until(lambda: ahead.next(timeout=0.1) is not None, "the failure")
    finally:
        ahead.stop()


class Instant:
    """Detects nothing, at once: what is tested is when frames are taken, not what is found in them."""

    def detect(self, frames: list[Frame]) -> Detected:
        return Detected(tuple(Seen(f, None, None) for f in frames), 0.0, 0)  # type: ignore[arg-type]


def test_no_frame_is_taken_while_a_detected_batch_waits_for_the_main_thread():
    """A slow main thread must not find, behind the batch it has not collected, another one of older frames: the
    detect thread takes new frames only once the last batch is collected."""
    hub = FrameHub(["front"])
    ahead = DetectAhead(hub, Instant()).start()  # type: ignore[arg-type]
    first, second = frames("front", 2)
    try:
        hub.put(first)
        wait_until(lambda: ahead.ready, "the first batch")
        hub.put(second)  # the main thread is still busy: this frame stays in the hub, newest wins
        assert hub.counters["front"].processed == 1
        assert [s.frame.seq for s in next_batch(ahead).seen] == [0]
        assert [s.frame.seq for s in next_batch(ahead).seen] == [1]
    finally:
        ahead.stop()


def test_a_failure_as_the_run_ends_is_raised_by_check():
    hub = FrameHub(["front"])
    ahead = DetectAhead(hub, Broken()).start()  # type: ignore[arg-type]
    hub.put(frames("front", 1)[0])
    wait_until(lambda: hub.counters["front"].processed == 1 and not ahead._thread.is_alive(), "the failure")
    with pytest.raises(RuntimeError, match="detector exploded"):
        ahead.check()
