"""Scoring a run against hand-made or generated labels: one event per real person-stay, matched one-to-one.

A label is one person's stay in one zone (frames start..end). An event and a label can match only if they are on
the same camera and zone and overlap in time enough (time IoU >= MATCH_TIOU); among those pairs, each event and each
label is used at most once, choosing the assignment with the highest total IoU. What is left over is counted
against the run: a label with no event is *missed*, an event with no label is *extra* — and an extra event is wrong
even when it overlaps a labelled stay, because one person split into three events is two events too many.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from replay.compare import Span
from replay.errors import ReplayError
from replay.timeline import AlertSpan, Clock

REQUIRED = ("camera", "zone", "start_frame", "end_frame")
OPTIONAL = ("person",)
MATCH_TIOU = 0.3  # an event that covers under a third of the stay's time (or of its own) is not that stay's event


@dataclass(frozen=True, slots=True)
class Label:
    """Frames start..end (inclusive, 0 = the file's first frame) during which one person really is in the zone."""

    camera: str
    zone: str
    start_frame: int
    end_frame: int
    person: str = ""  # who, when the labeller named them: makes "one event per person-stay" checkable


def load_labels(path: Path) -> list[Label]:
    """CSV with a header naming camera, zone, start_frame, end_frame and optionally person; # starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReplayError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{path}: cannot read labels: {exc}") from None
    numbered = enumerate(text.splitlines(), start=1)
    lines = [(n, line) for n, line in numbered if line.strip() and not line.startswith("#")]
    if not lines:
        raise ReplayError(f"{path}: no header (expected {','.join(REQUIRED)}[,person])")
    reader = csv.DictReader([line for _, line in lines])
    header = [c.strip() for c in reader.fieldnames or ()]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        what = f"missing column {', '.join(missing)}" if missing else f"unknown column {', '.join(unknown)}"
        raise ReplayError(f"{path}:{lines[0][0]}: {what} (header must be {','.join(REQUIRED)}[,person])")
    labels = []
    for (line_no, _), raw in zip(lines[1:], reader, strict=True):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            start, end = int(row["start_frame"]), int(row["end_frame"])
        except (TypeError, ValueError):
            raise ReplayError(f"{path}:{line_no}: start_frame and end_frame must be whole frame numbers") from None
        if start < 0 or end < start:
            raise ReplayError(f"{path}:{line_no}: needs 0 <= start_frame <= end_frame, got {start}..{end}")
        if not row["camera"] or not row["zone"]:
            raise ReplayError(f"{path}:{line_no}: camera and zone must not be empty")
        labels.append(Label(row["camera"], row["zone"], start, end, row.get("person", "")))
    return labels


def check_labels(labels: list[Label], zones: dict[str, set[str]], frame_counts: dict[str, int], path: Path) -> None:
    """Every label names a camera and zone of the config and frames the footage has; else one line, exit 2."""
    for i, lb in enumerate(labels, start=1):
        if lb.camera not in zones:
            raise ReplayError(f"{path}: label {i}: unknown camera {lb.camera!r} (config has {', '.join(zones)})")
        if lb.zone not in zones[lb.camera]:
            raise ReplayError(f"{path}: label {i}: camera {lb.camera} has no zone {lb.zone!r}")
        total = frame_counts.get(lb.camera, 0)
        if total and lb.end_frame >= total:
            raise ReplayError(
                f"{path}: label {i}: frames {lb.start_frame}..{lb.end_frame} out of range "
                f"(camera {lb.camera} footage has {total} frames)"
            )


@dataclass(frozen=True, slots=True)
class LabelRun:
    """What a run produced, in frames: its events, its alert spans, and how many frames each camera played."""

    spans: list[Span]
    alerts: tuple[AlertSpan, ...]
    clock: Clock
    frames: dict[str, int]


@dataclass(frozen=True, slots=True)
class Scores:
    events: int
    labels: int  # real person-stays
    matched: int  # one-to-one pairs
    missed: tuple[Label, ...]
    extra: int  # events matched to no stay
    delays_frames: tuple[int, ...]  # per stay that raised an alert: frames from its start to the alert
    delays_s: tuple[float, ...]  # the same at each camera's own frame rate

    @property
    def precision(self) -> float | None:
        return self.matched / self.events if self.events else None

    @property
    def recall(self) -> float | None:
        return self.matched / self.labels if self.labels else None

    @property
    def events_per_stay(self) -> float | None:
        return self.events / self.labels if self.labels else None

    def delay(self, how: str, unit: str = "frames") -> float | None:
        values = self.delays_frames if unit == "frames" else self.delays_s
        if not values:
            return None
        return statistics.fmean(values) if how == "mean" else float(statistics.median(values))


def time_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    union = max(a[1], b[1]) - min(a[0], b[0]) + 1
    return max(inter, 0) / union


def match(labels: list[Label], events: list[tuple[str, str, int, int]]) -> list[tuple[int, int]]:
    """(label index, event index) pairs: one-to-one, same camera and zone, time IoU >= MATCH_TIOU, best total."""
    if not labels or not events:
        return []
    sim = np.zeros((len(labels), len(events)))
    for i, lb in enumerate(labels):
        for j, (cam, zone, a, b) in enumerate(events):
            if cam == lb.camera and zone == lb.zone:
                sim[i, j] = time_iou((lb.start_frame, lb.end_frame), (a, b))
    rows, cols = linear_sum_assignment(-sim)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if sim[r, c] >= MATCH_TIOU]


def score(labels: list[Label], run: LabelRun) -> Scores:
    """Match events to stays one-to-one; delay from a stay's first frame to the first alert of its zone within it.

    Only cameras the run played and the labels cover count (labelling one camera of four scores that camera), and
    labels are cut to the frames it played (a --max-frames run is scored on what it saw). An alert already raised
    when the stay starts counts as no delay.
    """
    labelled = {lb.camera for lb in labels}
    played = {cam: n for cam, n in run.frames.items() if n > 0 and cam in labelled}
    cut = [
        Label(lb.camera, lb.zone, lb.start_frame, min(lb.end_frame, played[lb.camera] - 1), lb.person)
        for lb in labels
        if lb.camera in played and lb.start_frame < played[lb.camera]
    ]
    events = [
        (s.camera, s.zone, run.clock.frame_of(s.camera, s.start), run.clock.frame_of(s.camera, s.end))
        for s in run.spans
        if s.camera in played
    ]
    pairs = match(cut, events)
    found = {i for i, _ in pairs}
    delays: list[int] = []
    delays_s: list[float] = []
    for i in sorted(found):
        lb = cut[i]
        starts = [
            a.start_frame
            for a in run.alerts
            if a.camera == lb.camera
            and a.zone == lb.zone
            and a.start_frame <= lb.end_frame
            and lb.start_frame <= a.end_frame
        ]
        if starts:
            delays.append(max(min(starts) - lb.start_frame, 0))
            delays_s.append(delays[-1] / run.clock.fps[lb.camera])
    return Scores(
        events=len(events),
        labels=len(cut),
        matched=len(pairs),
        missed=tuple(lb for i, lb in enumerate(cut) if i not in found),
        extra=len(events) - len(pairs),
        delays_frames=tuple(delays),
        delays_s=tuple(delays_s),
    )
