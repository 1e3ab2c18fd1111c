"""Capture readers against real sources: files paced like cameras, and a live MJPEG-over-HTTP camera.

Nothing here assumes how fast the machine is: a reader may fall behind on a busy machine, so the tests check what
holds however slow it runs (a file never plays faster than its rate, the newest frame wins, every drop is counted)
and wait for what must eventually happen. The pacing schedule itself is checked as logic, on a given clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from core.types import Frame
from edge.capture import CameraReader, FrameHub, Pacer, paced
from edge.config import CameraConfig, ZoneConfig

from .conftest import FOOTAGE, wait_until
from .services.mjpeg_http import MjpegCamera

ZONE = [ZoneConfig(name="z", polygon=[(0, 0), (1, 0), (1, 1)])]
FILE_FPS = 10.0  # footage/cam_front.mp4: 200 frames at 10 fps
EARLY_S = 0.005  # a timed wait may end a hair before its deadline; this only makes the bounds below looser


def camera(source: str, **kw: object) -> CameraConfig:
    return CameraConfig(name="cam", side="right", source=source, zones=ZONE, **kw)


@dataclass(frozen=True)
class Running:
    hub: FrameHub
    reader: CameraReader
    started_at: float  # wall clock just before the reader started (frames carry wall-clock capture times)

    def stop(self) -> None:
        self.reader.stop()
        self.reader.join(timeout=10)


@pytest.fixture
def reader_for() -> Iterator[Callable[[CameraConfig], Running]]:
    running: list[Running] = []

    def start(cam: CameraConfig) -> Running:
        hub = FrameHub([cam.name])
        reader = CameraReader(cam, hub)
        run = Running(hub, reader, time.time())
        reader.start()
        running.append(run)
        return run

    yield start
    for run in running:
        run.stop()


def take_until(hub: FrameHub, count: int) -> list[Frame]:
    frames: list[Frame] = []

    def enough() -> bool:
        frames.extend(hub.take(timeout=0.05))
        return len(frames) >= count

    wait_until(enough, f"{count} frames")
    return frames


def never_faster_than(frames: list[Frame], fps: float, started_at: float) -> bool:
    """Frame `seq` of a file paced at `fps` is shown no earlier than (seq - 1) periods after its reader started."""
    return all(f.t_capture >= started_at + (f.seq - 1) / fps - EARLY_S for f in frames)


# -- the pacing schedule (logic, on a given clock) --------------------------------------------------------------------


def test_a_paced_file_shows_one_frame_per_period() -> None:
    pacer = Pacer(period=0.1, next_due=100.0)
    shown = []
    now = 100.0
    for _ in range(5):
        now += pacer.wait_s(now)  # a reader that decodes instantly and waits exactly as told
        shown.append(round(now, 6))
        pacer.shown(now)
    assert shown == [100.0, 100.1, 100.2, 100.3, 100.4]


def test_a_paced_file_that_fell_behind_goes_on_from_now_without_rushing_through_the_backlog() -> None:
    pacer = Pacer(period=0.1, next_due=100.0)
    pacer.shown(100.0)
    shown = []
    now = 103.0  # the reader was held up for 3 s: 30 frames' worth
    for _ in range(5):
        now += pacer.wait_s(now)
        shown.append(round(now, 6))
        pacer.shown(now)
    # Three frames at once (the hub keeps only the newest), then the file's rate again: not 30 in a burst.
    assert shown == [103.0, 103.0, 103.0, 103.1, 103.2]


def test_a_looping_file_keeps_its_schedule_across_the_loop() -> None:
    """Reopened at the end of the file, a camera's next frame is due a period after the last one shown, not at once
    (a new schedule per loop put two frames within a period and the hub dropped one at every loop)."""
    pacer = Pacer(period=0.1, next_due=100.0)
    pacer.shown(100.0)
    again = paced(pacer, 10.0, now=100.02)  # the loop's reopen took 20 ms
    assert again is pacer and again.wait_s(100.02) == pytest.approx(0.08)
    assert paced(pacer, 15.0, now=100.02).next_due == 100.02  # another rate: a new schedule
    assert paced(None, 10.0, now=5.0).next_due == 5.0


def test_frames_after_the_hub_closes_are_neither_taken_nor_counted_as_dropped() -> None:
    """At shutdown the pipeline stops taking frames; what the readers still deliver is not a drop."""
    hub = FrameHub(["cam"])
    hub.put(Frame("cam", 1, 0.0, None))  # type: ignore[arg-type]  # the hub never looks at pixels
    hub.close()
    hub.put(Frame("cam", 2, 0.1, None))  # type: ignore[arg-type]
    assert (hub.counters["cam"].frames, hub.counters["cam"].dropped) == (1, 0)
    assert [f.seq for f in hub.take(timeout=0)] == [1]


# -- real files -------------------------------------------------------------------------------------------------------


def test_a_file_plays_no_faster_than_its_own_frame_rate(reader_for) -> None:
    run = reader_for(camera(str(FOOTAGE / "cam_front.mp4")))
    frames = take_until(run.hub, 15)
    assert never_faster_than(frames, FILE_FPS, run.started_at), [(f.seq, f.t_capture - run.started_at) for f in frames]
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)
    assert frames[0].image.shape == (576, 768, 3)


def test_a_file_can_be_paced_at_another_rate(reader_for) -> None:
    """Half its own rate: a reader that ignored the setting would show frames twice as often as allowed."""
    run = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), fps=FILE_FPS / 2))
    frames = take_until(run.hub, 8)
    assert never_faster_than(frames, FILE_FPS / 2, run.started_at), [
        (f.seq, f.t_capture - run.started_at) for f in frames
    ]


def test_a_slow_consumer_gets_the_newest_frame_and_drops_are_counted(reader_for) -> None:
    run = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), fps=30.0))
    counters = run.hub.counters["cam"]
    taken = []
    for _ in range(5):
        seen = counters.frames
        wait_until(lambda seen=seen: counters.frames >= seen + 3, "three newer frames")  # the consumer is slow
        (frame,) = run.hub.take(timeout=0.0)  # one frame, however many came: the newest
        assert frame.seq >= seen + 3
        taken.append(frame)
    run.stop()
    left = run.hub.take(timeout=0.0)
    assert counters.dropped >= 2 * len(taken)  # at least two of every three frames were replaced unseen
    assert counters.frames == counters.dropped + len(taken) + len(left)


def test_a_file_loops_like_a_live_camera(reader_for) -> None:
    run = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), fps=120.0))  # 200 frames
    frames: list[Frame] = []

    def past_the_end() -> bool:
        frames.extend(run.hub.take(timeout=0.05))
        return any(f.seq > 210 for f in frames)

    wait_until(past_the_end, "frames after the file's end", timeout=60)
    assert run.hub.counters["cam"].reconnects == 0  # back to the start is not a reconnection
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)


def test_a_file_read_flat_out_waits_for_the_pipeline_and_drops_nothing(reader_for) -> None:
    """realtime = false is replay: every frame reaches the pipeline, however slow it is."""
    run = reader_for(camera(str(FOOTAGE / "cam_front.mp4"), realtime=False, loop=False))
    frames: list[Frame] = []

    def slow_pipeline() -> bool:
        frames.extend(run.hub.take(timeout=0.05))
        # The stimulus, not a wait for a result: a pipeline slower than the reader. A reader that waits drops
        # nothing whatever this pause is; one that dropped would show it as a gap in the sequence numbers.
        time.sleep(0.02)
        return len(frames) >= 30

    wait_until(slow_pipeline, "30 frames through a slow pipeline")
    assert run.hub.counters["cam"].dropped == 0
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))


# -- a live camera ----------------------------------------------------------------------------------------------------


def test_http_mjpeg_camera_delivers_frames_and_comes_back_after_a_power_cut(reader_for) -> None:
    server = MjpegCamera(FOOTAGE / "cam_front.mp4", fps=10)
    run = reader_for(camera(server.url))
    counters = run.hub.counters["cam"]
    take_until(run.hub, 8)
    assert counters.connected

    server.stop()
    wait_until(lambda: not counters.connected, "the reader to notice the camera is gone")
    gone_at = time.time()
    assert len(run.hub.take(timeout=0.0)) <= 1  # at most the frame left waiting in the slot

    server = MjpegCamera(FOOTAGE / "cam_front.mp4", fps=10, port=server.port)
    try:
        after: list[Frame] = []

        def frames_again() -> bool:
            got = run.hub.take(timeout=0.05)
            # The reader counts the reconnection before it reads: a frame with none counted came from nowhere.
            assert not got or counters.reconnects == 1, "a frame while the camera was gone"
            after.extend(got)
            return len(after) >= 5

        wait_until(frames_again, "frames from the camera once it is back")
        assert counters.reconnects == 1 and all(f.t_capture > gone_at for f in after)
    finally:
        server.stop()
