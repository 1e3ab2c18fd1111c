"""What a config change did: match the events of two runs, and score a run against hand-made labels.

Two events match when they are on the same camera and zone and their time spans overlap; each event matches at most
one other, closest starts first. A matched pair whose start moved by more than the tolerance is "shifted". Events are
compared rather than alert messages because events are what both a rerun and the bus's own store keep.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from replay.errors import ReplayError
from replay.timeline import AlertSpan, Clock


@dataclass(frozen=True, slots=True)
class Span:
    """One event reduced to what matching needs; times in epoch seconds."""

    event_id: str
    camera: str
    zone: str
    start: float
    end: float
    level: str


@dataclass(frozen=True, slots=True)
class Shift:
    old: Span
    new: Span

    @property
    def delta_s(self) -> float:
        return self.new.start - self.old.start


@dataclass(frozen=True, slots=True)
class Comparison:
    added: tuple[Span, ...]
    removed: tuple[Span, ...]
    shifted: tuple[Shift, ...]
    relevelled: tuple[Shift, ...]  # matched, start within tolerance, but a different max level
    unchanged: int


def spans_from_table(table: pa.Table) -> list[Span]:
    cols = table.select(["event_id", "camera", "zone", "start_ts", "end_ts", "max_level"]).to_pydict()
    return [
        Span(eid, cam, zone, start.timestamp(), end.timestamp(), level)
        for eid, cam, zone, start, end, level in zip(
            cols["event_id"],
            cols["camera"],
            cols["zone"],
            cols["start_ts"],
            cols["end_ts"],
            cols["max_level"],
            strict=True,
        )
    ]


def _overlap(a: Span, b: Span) -> bool:
    return a.start <= b.end and b.start <= a.end


def compare_spans(old: list[Span], new: list[Span], tolerance_s: float) -> Comparison:
    pairs = [
        (abs(n.start - o.start), o.event_id, n.event_id, i, j)
        for i, o in enumerate(old)
        for j, n in enumerate(new)
        if o.camera == n.camera and o.zone == n.zone and _overlap(o, n)
    ]
    pairs.sort()  # ties broken by event ids, so the result does not depend on input order
    used_old: set[int] = set()
    used_new: set[int] = set()
    shifted, relevelled, unchanged = [], [], 0
    for _, _, _, i, j in pairs:
        if i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        pair = Shift(old[i], new[j])
        if abs(pair.delta_s) > tolerance_s:
            shifted.append(pair)
        elif old[i].level != new[j].level:
            relevelled.append(pair)
        else:
            unchanged += 1

    def by_start(s: Span) -> tuple:
        return (s.start, s.camera, s.zone, s.event_id)

    return Comparison(
        added=tuple(sorted((n for j, n in enumerate(new) if j not in used_new), key=by_start)),
        removed=tuple(sorted((o for i, o in enumerate(old) if i not in used_old), key=by_start)),
        shifted=tuple(sorted(shifted, key=lambda p: by_start(p.new))),
        relevelled=tuple(sorted(relevelled, key=lambda p: by_start(p.new))),
        unchanged=unchanged,
    )


# ---- labels -------------------------------------------------------------------------------------------------------

LABEL_COLUMNS = ("camera", "zone", "start_frame", "end_frame")


@dataclass(frozen=True, slots=True)
class Label:
    """Frames start..end (inclusive, 0 = the file's first frame) during which a person really is in the zone."""

    camera: str
    zone: str
    start_frame: int
    end_frame: int


def load_labels(path: Path) -> list[Label]:
    """CSV with a header `camera,zone,start_frame,end_frame`; lines starting with # are comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReplayError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{path}: cannot read labels: {exc}") from None
    numbered = enumerate(text.splitlines(), start=1)
    lines = [(n, line) for n, line in numbered if line.strip() and not line.startswith("#")]
    if not lines:
        raise ReplayError(f"{path}: no header (expected {','.join(LABEL_COLUMNS)})")
    reader = csv.DictReader([line for _, line in lines])
    if tuple(c.strip() for c in reader.fieldnames or ()) != LABEL_COLUMNS:
        raise ReplayError(f"{path}:{lines[0][0]}: header must be {','.join(LABEL_COLUMNS)}")
    labels = []
    for (line_no, _), row in zip(lines[1:], reader, strict=True):
        try:
            start, end = int(row["start_frame"]), int(row["end_frame"])
        except (TypeError, ValueError):
            raise ReplayError(f"{path}:{line_no}: start_frame and end_frame must be whole frame numbers") from None
        if start < 0 or end < start:
            raise ReplayError(f"{path}:{line_no}: needs 0 <= start_frame <= end_frame, got {start}..{end}")
        labels.append(Label(row["camera"].strip(), row["zone"].strip(), start, end))
    return labels


@dataclass(frozen=True, slots=True)
class Scores:
    events: int
    true_events: int  # events that overlap a label
    labels: int
    found_labels: int  # labels overlapped by at least one event
    delays_frames: tuple[int, ...]  # per label that raised an alert: frames from label start to the alert
    delays_s: tuple[float, ...]  # the same at each camera's own frame rate

    @property
    def precision(self) -> float | None:
        return self.true_events / self.events if self.events else None

    @property
    def recall(self) -> float | None:
        return self.found_labels / self.labels if self.labels else None

    def delay(self, how: str, unit: str = "frames") -> float | None:
        values = self.delays_frames if unit == "frames" else self.delays_s
        if not values:
            return None
        return statistics.fmean(values) if how == "mean" else float(statistics.median(values))


@dataclass(frozen=True, slots=True)
class LabelRun:
    """What a run produced, in frames: its events, its alert spans, and how many frames each camera played."""

    spans: list[Span]
    alerts: tuple[AlertSpan, ...]
    clock: Clock
    frames: dict[str, int]


def score(labels: list[Label], run: LabelRun) -> Scores:
    """Precision over events, recall over labels, delay from a label's first frame to the first alert inside it.

    Only cameras the run played count, and labels are cut to the frames it played (a --max-frames run is scored on
    what it saw). An alert already raised when the label starts counts as no delay.
    """
    played = {cam: n for cam, n in run.frames.items() if n > 0}
    cut = [
        Label(lb.camera, lb.zone, lb.start_frame, min(lb.end_frame, played[lb.camera] - 1))
        for lb in labels
        if lb.camera in played and lb.start_frame < played[lb.camera]
    ]
    ranges = [
        (s.camera, s.zone, run.clock.frame_of(s.camera, s.start), run.clock.frame_of(s.camera, s.end))
        for s in run.spans
        if s.camera in played
    ]

    def overlaps(cam: str, zone: str, a: int, b: int, lb: Label) -> bool:
        return cam == lb.camera and zone == lb.zone and a <= lb.end_frame and lb.start_frame <= b

    true_events = sum(1 for r in ranges if any(overlaps(*r, lb) for lb in cut))
    found = [lb for lb in cut if any(overlaps(*r, lb) for r in ranges)]
    delays: list[int] = []
    delays_s: list[float] = []
    for lb in cut:
        starts = [a.start_frame for a in run.alerts if overlaps(a.camera, a.zone, a.start_frame, a.end_frame, lb)]
        if starts:
            delays.append(max(min(starts) - lb.start_frame, 0))
            delays_s.append(delays[-1] / run.clock.fps[lb.camera])
    return Scores(len(ranges), true_events, len(cut), len(found), tuple(delays), tuple(delays_s))
