"""How two runs' events are matched, and how a labels file is read and scored (pure functions, no footage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.types import Level
from replay.compare import Span, compare_spans
from replay.errors import ReplayError
from replay.labels import Label, LabelRun, check_labels, load_labels, score
from replay.timeline import AlertSpan, Clock

BASE = 1_767_600_000.0  # frame 0


def span(eid: str, start: float, end: float, level: str = "info", camera: str = "right", zone: str = "z") -> Span:
    return Span(eid, camera, zone, BASE + start, BASE + end, level)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # (added, removed, shifted, relevelled, unchanged)
        ([span("a", 0, 5)], [span("b", 0.2, 5)], (0, 0, 0, 0, 1)),
        ([span("a", 0, 5)], [span("b", 1.0, 5)], (0, 0, 1, 0, 0)),
        ([span("a", 0, 5)], [span("b", 0, 5, "warning")], (0, 0, 0, 1, 0)),
        ([span("a", 0, 5)], [], (0, 1, 0, 0, 0)),
        ([], [span("b", 0, 5)], (1, 0, 0, 0, 0)),
        ([span("a", 0, 5)], [span("b", 6, 9)], (1, 1, 0, 0, 0)),  # no overlap: not the same event
        ([span("a", 0, 5)], [span("b", 0, 5, zone="other")], (1, 1, 0, 0, 0)),
        ([span("a", 0, 5)], [span("b", 0, 5, camera="left")], (1, 1, 0, 0, 0)),
        # One old event, two new ones overlapping it: the closer start matches, the other is added.
        ([span("a", 0, 10)], [span("b", 3, 10), span("c", 0.1, 2)], (1, 0, 0, 0, 1)),
    ],
)
def test_matching_two_runs(old: list[Span], new: list[Span], expected: tuple[int, ...]) -> None:
    c = compare_spans(old, new, tolerance_s=0.5)
    assert (len(c.added), len(c.removed), len(c.shifted), len(c.relevelled), c.unchanged) == expected


def test_a_shift_reports_how_far_the_start_moved() -> None:
    c = compare_spans([span("a", 0, 5)], [span("b", 1.5, 5)], tolerance_s=0.5)
    assert c.shifted[0].delta_s == pytest.approx(1.5)


def test_scores_match_one_to_one_and_count_alert_delay() -> None:
    """Two stays, one found by an event whose alert came 3 frames into it; one event on nobody."""
    clock = Clock(BASE, {"right": 10.0})
    run = LabelRun(
        spans=[span("hit", 1.0, 3.0, zone="z"), span("ghost", 8.0, 8.5, zone="z")],
        alerts=(AlertSpan("right", "z", 13, 30, Level.INFO),),
        clock=clock,
        frames={"right": 100},
    )
    labels = [Label("right", "z", 10, 30), Label("right", "z", 50, 60), Label("left", "z", 0, 10)]
    s = score(labels, run)
    assert (s.events, s.labels, s.matched, s.extra) == (2, 2, 1, 1)  # left was not played: ignored
    assert s.missed == (Label("right", "z", 50, 60),)
    assert s.precision == 0.5 and s.recall == 0.5 and s.events_per_stay == 1.0
    assert s.delays_frames == (3,) and s.delays_s == (pytest.approx(0.3),)


def test_one_stay_split_into_three_events_is_one_match_and_two_extra() -> None:
    """The old "any overlap" score called this precision 1.00; one-to-one calls it 0.33."""
    run = LabelRun(
        spans=[span("a", 1.0, 1.9, zone="z"), span("b", 2.0, 2.9, zone="z"), span("c", 3.0, 4.0, zone="z")],
        alerts=(),
        clock=Clock(BASE, {"right": 10.0}),
        frames={"right": 100},
    )
    s = score([Label("right", "z", 10, 40, "p1")], run)
    assert (s.matched, s.extra, s.missed) == (1, 2, ())
    assert s.precision == pytest.approx(1 / 3) and s.events_per_stay == 3.0


def test_one_event_spanning_two_people_finds_only_one_of_them() -> None:
    run = LabelRun([span("long", 1.0, 6.0, zone="z")], (), Clock(BASE, {"right": 10.0}), {"right": 100})
    s = score([Label("right", "z", 10, 35, "p1"), Label("right", "z", 30, 60, "p2")], run)
    assert s.matched == 1 and len(s.missed) == 1 and s.recall == 0.5


def test_an_event_barely_touching_a_stay_does_not_match_it() -> None:
    run = LabelRun([span("late", 5.8, 9.0, zone="z")], (), Clock(BASE, {"right": 10.0}), {"right": 100})
    s = score([Label("right", "z", 10, 60)], run)
    assert s.matched == 0 and s.extra == 1


def test_labels_beyond_the_frames_played_are_cut() -> None:
    run = LabelRun([], (), Clock(BASE, {"right": 10.0}), {"right": 40})
    s = score([Label("right", "z", 30, 90), Label("right", "z", 40, 50)], run)
    assert s.labels == 1 and s.recall == 0.0 and s.precision is None


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (Label("front", "z", 0, 5), "label 1: unknown camera 'front'"),
        (Label("right", "nowhere", 0, 5), "label 1: camera right has no zone 'nowhere'"),
        (Label("right", "z", 90, 120), "label 1: frames 90..120 out of range (camera right footage has 100 frames)"),
    ],
)
def test_labels_that_do_not_fit_the_config_or_footage_are_named(label: Label, message: str) -> None:
    with pytest.raises(ReplayError) as err:
        check_labels([label], {"right": {"z"}}, {"right": 100}, Path("l.csv"))
    assert message in err.value.format_message()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header"),
        ("camera,zone,start,end\n", ":1: missing column start_frame, end_frame"),
        ("camera,zone,start_frame,end_frame,who\n", ":1: unknown column who"),
        ("# note\ncamera,zone,start_frame,end_frame\nright,z,10,x\n", ":3: start_frame and end_frame must be whole"),
        ("camera,zone,start_frame,end_frame\nright,z,10,5\n", ":2: needs 0 <= start_frame <= end_frame, got 10..5"),
    ],
)
def test_a_bad_labels_file_is_named_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ReplayError, match=r"labels\.csv") as err:
        load_labels(path)
    assert message in err.value.format_message()


def test_the_bundled_labels_file_reads() -> None:
    labels = load_labels(Path(__file__).parent / "data" / "replay" / "rear_labels.csv")
    assert [(lb.start_frame, lb.end_frame) for lb in labels] == [(0, 4), (8, 59), (24, 59)]
