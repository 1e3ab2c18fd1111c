"""`vigie replay list/show` tell the analyst how much of each event its clip shows: on clips written by the
recorder's own ClipFile (real mp4 and Parquet sidecar, footage frames) and rows written by its own event writer."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from core.types import ClipState, Event, Level, Side, VehicleState
from edge.cli import main
from recorder.clipfile import ClipFile, FrameMeta, clip_folder
from recorder.clips import EventSpan, judge
from recorder.events import EventSink, write_events

from .conftest import FOOTAGE

BUS = "bus-7"
T0 = dt.datetime(2026, 3, 4, 10, 5, tzinfo=dt.UTC).timestamp()
SIZE = (96, 72)  # small frames: nobody can be recognised at this size


def vigie(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def footage_frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(FOOTAGE / "cam_front.mp4"))
    frames = []
    while len(frames) < n:
        ok, image = cap.read()
        assert ok, "the footage is shorter than the test needs"
        frames.append(cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def write_clip(clips: Path, clip_id: str, times: list[float]) -> None:
    clip = ClipFile(clip_folder(clips, BUS, times[0]), clip_id, "mp4", 5.0, SIZE)
    for i, (ts, image) in enumerate(zip(times, footage_frames(len(times)), strict=True)):
        meta = FrameMeta("right", 0, i, ts, np.zeros((0, 4), np.float32), (), (), 0.0, "off")
        clip.add(image, meta)
    clip.finish({"camera": "right", "bus_id": BUS})


def an_event(n: int, clip: str | None, start: float, seconds: float = 4.0) -> Event:
    return Event(
        f"ev{n}".ljust(32, "0"), "right", Side.RIGHT, "z", start, start + seconds, Level.INFO, None, 40, 0.9,
        VehicleState(), clip=clip,
    )  # fmt: skip


def steps(start: float, end: float, every: float = 0.2) -> list[float]:
    return [start + k * every for k in range(round((end - start) / every) + 1)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six events, one per thing a clip can be: whole, short of frames, never finished, being written, sidecar
    without its video, and no clip at all."""
    root = tmp_path_factory.mktemp("cover")
    clips = root / "clips"
    write_clip(clips, "whole", steps(T0 - 2, T0 + 5))
    write_clip(clips, "short", steps(T0 + 10 - 2, T0 + 11.5, 0.25))  # a starved recorder kept 1.5 s of 4 s
    write_clip(clips, "novideo", steps(T0 + 40, T0 + 45))
    next(clips.rglob("novideo.mp4")).unlink()
    partial_dir = clip_folder(clips, BUS, T0 + 30)
    (partial_dir / ".writing.partial.mp4").write_bytes(b"\0" * 64)
    events = [
        an_event(1, "whole", T0),
        an_event(2, "short", T0 + 10),
        an_event(3, "gone", T0 + 20),
        an_event(4, "writing", T0 + 30),
        an_event(5, "novideo", T0 + 41),
        an_event(6, None, T0 + 50),
    ]
    write_events(events, EventSink(root / "events", BUS, "model@0"))
    return root


def show(store: Path, n: int, *extra: str) -> dict[str, str]:
    result = vigie("replay", "show", f"ev{n}".ljust(32, "0"), "--source", store / "events", *extra)
    assert result.exit_code == 0, result.output
    pairs = (line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


@pytest.mark.parametrize(
    ("n", "says"),
    [
        (1, "complete: covers 4.0 of 4.0 s"),
        (2, "incomplete: covers 2.0 of 4.0 s (50 %"),  # frames up to 1.5 s in, each showing 0.5 s either side
        (3, "missing: no finished clip gone under"),
        (4, "being written: clip writing is not finished yet"),
        (5, "missing: no finished clip novideo under"),
        (6, "none: recorded without the recorder"),
    ],
)
def test_show_says_how_much_of_the_event_its_clip_shows(store: Path, n: int, says: str) -> None:
    assert show(store, n, "--clips", store / "clips")["clip coverage"].startswith(says)


def test_show_offers_a_render_only_for_a_clip_that_is_there(store: Path) -> None:
    with_clip = vigie("replay", "show", "ev1".ljust(32, "0"), "--source", store / "events", "--clips", store / "clips")
    without = vigie("replay", "show", "ev3".ljust(32, "0"), "--source", store / "events", "--clips", store / "clips")
    assert "vigie replay render" in with_clip.stdout and "vigie replay render" not in without.stdout


def test_list_has_a_clip_column_and_json_fields(store: Path) -> None:
    table = vigie("replay", "list", "--source", store / "events", "--clips", store / "clips").stdout.splitlines()
    assert table[0].split()[-3:] == ["clip", "event", "id"]
    assert [line.split()[-2] for line in table[1:-1]] == ["100%", "50%", "missing", "writing", "missing", "-"]
    result = vigie("replay", "list", "--source", store / "events", "--clips", store / "clips", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["clip_state"], r["clip_shown_s"]) for r in rows] == [
        ("complete", 4.0),
        ("incomplete", 2.0),
        ("missing", None),
        ("writing", None),
        ("missing", None),
        ("none", None),
    ]


def test_without_the_clips_folder_coverage_is_not_checked_rather_than_missing(store: Path) -> None:
    assert show(store, 1, "--clips", store / "nowhere")["clip coverage"].startswith("not checked: no clips folder")
    table = vigie("replay", "list", "--source", store / "events", "--clips", store / "nowhere").stdout.splitlines()
    assert [line.split()[-2] for line in table[1:-1]] == ["?"] * 5 + ["-"]


@pytest.mark.parametrize(
    ("frames", "state", "fraction"),
    [
        ([10.0, 11.0, 12.0, 13.0, 14.0], ClipState.COMPLETE, 1.0),  # 1 fps is enough: every moment within 0.5 s
        ([10.0, 12.0, 14.0], ClipState.INCOMPLETE, 0.5),  # 0.5 fps: a frame every 2 s shows 1 s of them
        ([4.0, 20.0], ClipState.INCOMPLETE, 0.0),  # only the pre-roll and the post-roll
        ([], ClipState.INCOMPLETE, 0.0),
    ],
)
def test_judge_calls_a_clip_complete_only_if_it_shows_95_percent(
    frames: list[float], state: ClipState, fraction: float
) -> None:
    cover = judge(EventSpan("e", 10.0, 14.0), frames)
    assert (cover.state, cover.fraction, cover.event_s) == (state, pytest.approx(fraction), 4.0)
