"""What a recorder short of CPU gives up first: pure bookkeeping of the frames waiting to be written, and of the
frames the daemon sends it."""

from __future__ import annotations

import numpy as np
import pytest

from edge.recorder_link import BEHIND_PERIOD_S, send_period
from recorder.backlog import Backlog, Pending, bound, share
from recorder.clipfile import FrameMeta
from recorder.clips import EventSpan, coverage


def pending(ts: float, size: int = 100) -> Pending:
    return Pending(FrameMeta("right", 0, 0, ts, np.zeros((0, 4), np.float32), (), (), 0.0, "off"), b"\0" * size)


def backlog(times: list[float], event_from: float = 0.0) -> Backlog:
    b = Backlog(event_from)
    for ts in times:
        b.add(pending(ts))
    return b


def times(b: Backlog) -> list[float]:
    return [f.meta.ts for f in b.frames]


def test_pre_roll_goes_first_but_its_last_frame_before_the_event_stays() -> None:
    b = backlog([0.0, 0.2, 0.4, 0.6, 1.0, 1.2, 1.4], event_from=1.0)
    b.thin_to(4)
    assert times(b) == [0.6, 1.0, 1.2, 1.4] and b.thinned == 3 and b.nbytes == 400


def test_then_the_rate_drops_evenly_and_the_first_and_last_frames_stay() -> None:
    b = backlog([float(t) / 5 for t in range(51)])  # 10 s of an event at 5 fps
    b.thin_to(11)
    kept = times(b)
    assert kept[0] == 0.0 and kept[-1] == 10.0 and len(kept) == 11
    assert max(np.diff(kept)) <= 1.2  # about a frame a second, nowhere a hole
    assert coverage(EventSpan("e", 0.0, 10.0), kept) >= 0.95


@pytest.mark.parametrize(("max_bytes", "max_frames"), [(1000, 100), (10**6, 10)])
def test_the_budget_of_bytes_or_frames_takes_from_the_clip_that_holds_most(max_bytes: int, max_frames: int) -> None:
    busy, quiet = backlog([t / 5 for t in range(20)]), backlog([0.0, 1.0, 2.0])
    bound([busy, quiet], max_bytes, max_frames)
    assert len(quiet.frames) == 3 and len(busy.frames) == 7 and busy.nbytes + quiet.nbytes <= 1000


def test_share_spreads_what_the_time_left_can_write_over_every_clip() -> None:
    a, b = backlog([t / 5 for t in range(30)]), backlog([t / 5 for t in range(10)])
    share([a, b], frames=8)
    assert (len(a.frames), len(b.frames)) == (6, 2)
    share([a, b], frames=100)  # enough time: nothing dropped
    assert (len(a.frames), len(b.frames)) == (6, 2)


def test_take_hands_out_the_oldest_frames_and_counts_their_bytes_off() -> None:
    b = backlog([0.0, 0.2, 0.4])
    assert [f.meta.ts for f in b.take(2)] == [0.0, 0.2] and b.nbytes == 100


@pytest.mark.parametrize(
    ("behind", "clip_open", "expected"),
    [
        (False, False, 0.18),  # keeping up: every camera at the clip rate, pre-roll included
        (False, True, 0.18),
        (True, True, BEHIND_PERIOD_S),  # behind: open clips at a frame a second, still every moment within 0.5 s
        (True, False, float("inf")),  # behind: no pre-roll at all
    ],
)
def test_a_recorder_behind_is_sent_no_pre_roll_and_a_frame_a_second_of_open_clips(
    behind: bool, clip_open: bool, expected: float
) -> None:
    assert send_period(0.18, behind, clip_open) == expected
    assert BEHIND_PERIOD_S < 1.0
