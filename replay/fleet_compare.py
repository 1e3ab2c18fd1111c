"""What a fleet rerun changed: the bus's events of each clip's time against the rerun's events of that clip, summed
per bus and over the fleet, with the driver's alerts per operating hour before and after.

Old events of a clip: those of its bus and camera whose span overlaps the clip's first to last frame (each counted
once, with the first clip it overlaps). New events name their clip (the `clip` column). Each clip's two sets are
matched as `replay rerun --compare` matches them (replay/compare.py), so a month of a fleet is compared clip by
clip, never every event against every other.

Alerts per operating hour: the alerts the driver received (the events' `info_alerts` + `warning_alerts`) over the
hours the bus operated in the range (`…/operating` beside the events). Every alert the bus raised opened an event,
and every event opened a clip, so the clips hold every alert of the range the recorder kept: the rates compare with
`replay report`'s, except for clips the recorder could not write.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from replay.clip_replay import ClipRun
from replay.compare import Span, compare_spans, spans_from_table
from replay.query import EventQuery, SourceSpec

if TYPE_CHECKING:
    from replay.fleet import FleetRun, FleetSettings

_OLD_COLUMNS = ["event_id", "bus", "camera", "zone", "start_ts", "end_ts", "max_level", "info_alerts", "warning_alerts"]
MARGIN_S = 60.0  # old events are read from a minute before the first clip: a clip starts before its first event


@dataclass(frozen=True, slots=True)
class Alerts:
    info: int = 0
    warning: int = 0

    @property
    def total(self) -> int:
        return self.info + self.warning

    def __add__(self, other: Alerts) -> Alerts:
        return Alerts(self.info + other.info, self.warning + other.warning)


@dataclass(frozen=True, slots=True)
class Change:
    """One bus's (or the fleet's) comparison, as counts."""

    clips: int = 0
    old: int = 0
    new: int = 0
    added: int = 0
    removed: int = 0
    shifted: int = 0
    relevelled: int = 0
    unchanged: int = 0
    before: Alerts | None = Alerts()  # None: old rows without alert counts (written before schema 3)
    after: Alerts = Alerts()
    hours: float | None = 0.0  # operating hours in the range; None: the store has no operating data

    def __add__(self, other: Change) -> Change:
        before = None if self.before is None or other.before is None else self.before + other.before
        hours = None if self.hours is None or other.hours is None else self.hours + other.hours
        counts = {
            name: getattr(self, name) + getattr(other, name)
            for name in ("clips", "old", "new", "added", "removed", "shifted", "relevelled", "unchanged")
        }
        return Change(**counts, before=before, after=self.after + other.after, hours=hours)


@dataclass(frozen=True, slots=True)
class FleetChange:
    buses: dict[str, Change] = field(default_factory=dict)
    tolerance_s: float = 0.5

    @property
    def fleet(self) -> Change:
        total = Change()
        for change in self.buses.values():
            total = total + change
        return total


def _alerts(table: pa.Table) -> Alerts | None:
    if table.num_rows and table["info_alerts"].null_count:
        return None
    return Alerts(int(pc.sum(table["info_alerts"]).as_py() or 0), int(pc.sum(table["warning_alerts"]).as_py() or 0))


def old_by_clip(table: pa.Table, runs: tuple[ClipRun, ...]) -> dict[str, list[int]]:
    """Row numbers of the old events of each clip: same bus and camera, spans overlapping (the first clip only)."""
    groups: dict[tuple[str, str], list[ClipRun]] = {}
    for run in runs:
        groups.setdefault((run.bus, run.camera), []).append(run)
    # One camera's clips never overlap, so sorted by start they are sorted by end too.
    bounds = {key: sorted(group, key=lambda r: r.start) for key, group in groups.items()}
    starts = {key: [r.start for r in group] for key, group in bounds.items()}
    ends = {key: [r.end for r in group] for key, group in bounds.items()}
    cols = table.select(["bus", "camera", "start_ts", "end_ts"]).to_pydict()
    found: dict[str, list[int]] = {r.clip_id: [] for r in runs}
    for i, (bus, camera, start, end) in enumerate(zip(*cols.values(), strict=True)):
        key = (bus, camera)
        if key not in bounds:
            continue
        began_before_end = bisect.bisect_right(starts[key], end.timestamp())  # clips [0, this) start before it ends
        first_ending_after = bisect.bisect_left(ends[key], start.timestamp())  # the first clip still on at its start
        if first_ending_after < began_before_end:
            found[bounds[key][first_ending_after].clip_id].append(i)
    return found


def _clip_change(old: list[Span], new: list[Span], tolerance_s: float) -> Change:
    c = compare_spans(old, new, tolerance_s)
    return Change(1, len(old), len(new), len(c.added), len(c.removed), len(c.shifted), len(c.relevelled), c.unchanged)


def compare_fleet(
    old: pa.Table, new: pa.Table, runs: tuple[ClipRun, ...], hours: dict[str, float | None], tolerance_s: float
) -> FleetChange:
    """Per bus: the clip-by-clip comparison summed, alerts before and after, operating hours."""
    new_spans: dict[str, list[Span]] = {}
    for span, clip in zip(spans_from_table(new), new["clip"].to_pylist(), strict=True):
        new_spans.setdefault(clip, []).append(span)
    rows = old_by_clip(old, runs)
    buses: dict[str, Change] = {}
    for run in runs:
        old_rows = old.take(pa.array(rows[run.clip_id], pa.int64()))  # typed: a clip may have no old events
        change = _clip_change(spans_from_table(old_rows), new_spans.get(run.clip_id, []), tolerance_s)
        after = _alerts(new.filter(pc.equal(new["clip"], run.clip_id))) or Alerts()  # new rows always count them
        change = replace(change, before=_alerts(old_rows), after=after)
        buses[run.bus] = buses[run.bus] + change if run.bus in buses else replace(change, hours=hours.get(run.bus))
    return FleetChange(dict(sorted(buses.items())), tolerance_s)


def read_old(spec: SourceSpec, runs: tuple[ClipRun, ...], bus: str | None) -> pa.Table:
    """The bus's events around the clips' times (both tiers, each bus-day once)."""
    import datetime as dt

    from replay.source import read_store

    first, last = min(r.start for r in runs), max(r.end for r in runs)
    query = EventQuery(
        start=dt.datetime.fromtimestamp(first - MARGIN_S, dt.UTC),
        end=dt.datetime.fromtimestamp(last + 1.0, dt.UTC),
        bus=bus,
    )
    return read_store(spec, query, _OLD_COLUMNS).table


def compare_run(done: FleetRun, old_events: SourceSpec, settings: FleetSettings, tolerance_s: float) -> FleetChange:
    """A finished rerun against `old_events` (the buses' events, or an earlier rerun's), with the operating hours of
    the store's buses in the rerun's range."""
    from replay.budget import operating_hours
    from replay.source import read_events

    new = read_events(SourceSpec(f"{done.label}/events", settings.store.endpoint_url), EventQuery())
    old = read_old(old_events, done.runs, settings.query.bus)
    buses = sorted({r.bus for r in done.runs})
    hours = {bus: operating_hours(settings.store, replace(settings.query, bus=bus)) for bus in buses}
    return compare_fleet(old, new, done.runs, hours, tolerance_s)


def _rate(alerts: Alerts | None, hours: float | None) -> str:
    if alerts is None:
        return "n/a"
    return f"{alerts.total}" if not hours else f"{alerts.total / hours:.1f}/h"


def _alerts_text(alerts: Alerts | None) -> str:
    if alerts is None:
        return "n/a (rows older than schema 3)"
    return f"{alerts.total} ({alerts.info} info, {alerts.warning} warning)"


HEADER = ("bus", "clips", "before", "after", "added", "removed", "shifted", "level")


def summary_lines(change: FleetChange, against: str) -> Iterator[str]:
    """The fleet's line, its alerts, then one line per bus (alerts per operating hour, or counts without hours)."""
    f = change.fleet
    yield (
        f"compare with {against}: {f.old} event(s) before, {f.new} after: {f.added} added, {f.removed} removed, "
        f"{f.shifted} shifted (start moved > {change.tolerance_s:g} s), {f.relevelled} level changed, "
        f"{f.unchanged} unchanged"
    )
    if f.hours:
        rates = f"; per operating hour {_rate(f.before, f.hours)} -> {_rate(f.after, f.hours)} over {f.hours:.2f} h"
    else:
        rates = "; operating time unknown: counts, not rates"
    yield f"driver alerts: before {_alerts_text(f.before)}, after {_alerts_text(f.after)}{rates}"
    yield "  {:16s} {:>5s} {:>6s} {:>6s} {:>6s} {:>7s} {:>7s} {:>6s}  alerts before -> after".format(*HEADER)
    for bus, c in change.buses.items():
        yield (
            f"  {bus:16s} {c.clips:5d} {c.old:6d} {c.new:6d} {c.added:6d} {c.removed:7d} {c.shifted:7d} "
            f"{c.relevelled:6d}  {_rate(c.before, c.hours)} -> {_rate(c.after, c.hours)}"
        )
