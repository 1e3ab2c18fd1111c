"""Text the analyst reads: event tables, JSON lines, one event in full, and a rerun's comparison and scores."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.types import ClipState
from recorder.clips import ClipCover
from replay.clipcover import cover_cell
from replay.compare import Comparison, Shift, Span
from replay.labels import Scores

TABLE_COLUMNS = (  # (header, column, width)
    ("start (UTC)", "start_ts", 19),
    ("bus", "bus_id", 10),
    ("camera", "camera", 7),
    ("zone", "zone", 12),
    ("level", "max_level", 7),
    ("dur s", "duration_s", 6),
    ("dist m", "min_distance_m", 6),
    ("km/h", "speed_kmh_at_start", 5),
    ("ind", "indicator_at_start", 6),
    ("event id", "event_id", 32),
)


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float):
        return round(value, 3)
    return value


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _cells(column: pa.ChunkedArray, width: int) -> pa.ChunkedArray:
    """One column as `_cell` text padded to its width, for every row at once (a fleet-year is tens of thousands
    of rows, ten cells each: a Python call per cell cost more than reading the files)."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        # Whole seconds first: Arrow's %S would print the milliseconds too.
        text = pc.strftime(column.cast(pa.timestamp("s", tz="UTC"), safe=False), format="%Y-%m-%d %H:%M:%S")
    elif pa.types.is_floating(kind):
        values = column.to_numpy().astype(np.float64)
        text = pa.chunked_array([pa.array(np.char.mod("%.1f", values), pa.string())])
    else:
        text = column.cast(pa.string())
    text = pc.if_else(pc.is_valid(column), text, "-")
    return pc.utf8_rpad(text, width=width, padding=" ")


CLIP_WIDTH = 7  # the clip column: how much of the event its clip shows ("100%", "43%", "missing", "-", "?")


def _clip_cells(table: pa.Table, covers: list[ClipCover] | None) -> pa.ChunkedArray:
    """The clip column. Without clips to look at (None), only whether the row names one: no call per row."""
    if covers is None:
        text = pc.if_else(pc.is_valid(table["clip"]), "?", "-")
    else:
        text = pa.chunked_array([pa.array([cover_cell(c) for c in covers], pa.string())])
    return pc.utf8_rpad(text, width=CLIP_WIDTH, padding=" ")


def table_lines(table: pa.Table, covers: list[ClipCover] | None) -> Iterator[str]:
    """One line per event; the clip column comes before the event id, the widest and last."""
    head, (last, last_column, last_width) = TABLE_COLUMNS[:-1], TABLE_COLUMNS[-1]
    yield "  ".join([*(h.ljust(w) for h, _, w in head), "clip".ljust(CLIP_WIDTH), last])
    if table.num_rows:
        cells = [_cells(table[c], w) for _, c, w in head]
        cells += [_clip_cells(table, covers), _cells(table[last_column], last_width)]
        lines = pc.utf8_rtrim_whitespace(pc.binary_join_element_wise(*cells, "  "))
        yield from lines.to_pylist()
    yield f"{table.num_rows} event(s)"


def json_lines(table: pa.Table, covers: list[ClipCover] | None) -> Iterator[str]:
    rows = table.to_pylist()
    for row, cover in zip(rows, covers if covers is not None else [None] * len(rows), strict=True):
        clip: dict[str, object]
        if cover is None:  # no clips to look at
            state = ClipState.UNCHECKED if row.get("clip") else ClipState.NO_CLIP
            clip = {"clip_state": state.value, "clip_shown_s": None}
        else:
            shown = cover.shown_s
            clip = {"clip_state": cover.state.value, "clip_shown_s": None if shown is None else round(shown, 2)}
        yield json.dumps({**{k: _plain(v) for k, v in row.items()}, **clip}, ensure_ascii=False)


def event_lines(row: dict, path: str, clip_text: str, renderable: bool) -> Iterator[str]:
    """Every field of the row, in file order, then what its clip shows of it (`clip_text`) and how to see it."""
    width = max(len(k) for k in (*row, "clip coverage")) + 1
    for key, value in row.items():
        shown = _plain(value)
        yield f"{key + ':':{width}} {'-' if shown is None else shown}"
    yield f"{'file:':{width}} {path}"
    yield f"{'clip coverage:':{width}} {clip_text}"
    if renderable:
        yield f"clip recorded: vigie replay render {row['event_id']} -o {row['event_id']}.mp4"


def _span(s: Span) -> str:
    when = dt.datetime.fromtimestamp(s.start, dt.UTC).strftime("%H:%M:%S.%f")[:-5]
    return f"{s.camera}/{s.zone} {when} {s.end - s.start:5.1f}s {s.level:7s} {s.event_id[:12]}"


def _shift(p: Shift) -> str:
    return f"{_span(p.new)}  (was {p.old.level} at {p.delta_s:+.1f}s, {p.old.event_id[:12]})"


def comparison_lines(c: Comparison, tolerance_s: float) -> Iterator[str]:
    yield (
        f"compare: {len(c.added)} added, {len(c.removed)} removed, {len(c.shifted)} shifted "
        f"(start moved > {tolerance_s:g} s), {len(c.relevelled)} level changed, {c.unchanged} unchanged"
    )
    for s in c.added:
        yield f"  + added    {_span(s)}"
    for s in c.removed:
        yield f"  - removed  {_span(s)}"
    for p in c.shifted:
        yield f"  ~ shifted  {_shift(p)}"
    for p in c.relevelled:
        yield f"  ! level    {_shift(p)}"


def _ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def scores_lines(s: Scores) -> Iterator[str]:
    yield (
        f"labels: {s.labels} person-stay(s), {s.events} event(s): {s.matched} matched one-to-one, "
        f"{len(s.missed)} missed, {s.extra} extra; {_ratio(s.events_per_stay)} events per stay"
    )
    yield f"labels: precision {_ratio(s.precision)} (matched / events), recall {_ratio(s.recall)} (matched / stays)"
    for lb in s.missed:
        who = f"{lb.person} " if lb.person else ""
        yield f"  missed: {who}{lb.camera}/{lb.zone} frames {lb.start_frame}..{lb.end_frame}"
    if s.delays_frames:
        yield (
            f"alert delay: mean {s.delay('mean'):.1f} frames ({s.delay('mean', 's'):.2f} s), "
            f"median {s.delay('median'):.1f} frames ({s.delay('median', 's'):.2f} s) "
            f"over {len(s.delays_frames)} alerted stay(s)"
        )
    else:
        yield "alert delay: n/a (no alert was raised inside a matched stay)"
