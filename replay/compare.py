"""What a config change did: match the events of two runs (scoring against labels is in labels.py).

Two events match when they are on the same camera and zone and their time spans overlap; each event matches at most
one other, closest starts first. A matched pair whose start moved by more than the tolerance is "shifted". Events are
compared rather than alert messages because events are what both a rerun and the bus's own store keep.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from core.types import Event


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


def spans_from_events(events: Iterable[Event]) -> list[Span]:
    return [Span(e.event_id, e.camera, e.zone, e.start_ts, e.end_ts, e.max_level.label) for e in events]


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
