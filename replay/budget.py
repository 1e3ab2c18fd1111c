"""The false-alert budget of a store: driver alerts from the event rows, operating hours from `operating/`.

The operating dataset sits beside the events one (`…/events` and `…/operating`, locally and in the bucket); a store
without it (older buses, or a folder of events copied alone) gives counts without a rate, and says so.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from core.types import Level, Side
from edge.budget import Budget
from replay.query import EventQuery, SourceSpec
from replay.source import PARTITIONING, open_source


def _counts(table: pa.Table) -> dict[tuple[Side, Level], int]:
    counts: dict[tuple[Side, Level], int] = {}
    if "info_alerts" not in table.column_names or table.num_rows == 0:
        return counts
    for side in Side:
        rows = table.filter(pc.equal(table["side"], side.value))
        for level, column in ((Level.INFO, "info_alerts"), (Level.WARNING, "warning_alerts")):
            n = pc.sum(rows[column]).as_py() or 0
            if n:
                counts[(side, level)] = int(n)
    return counts


def operating_hours(spec: SourceSpec, query: EventQuery) -> float | None:
    """Hours the buses of the query operated in its range, or None when the store has no operating data."""
    src = open_source(spec)
    root = posixpath.join(posixpath.dirname(src.root.rstrip("/")), "operating")
    if src.fs.get_file_info(root).type != pafs.FileType.Directory:
        return None
    dataset = ds.dataset(root, filesystem=src.fs, format="parquet", partitioning=PARTITIONING)
    parts = []
    if query.bus:
        parts.append(ds.field("bus") == query.bus)
    if query.start:
        parts.append(ds.field("end_ts") > pa.scalar(query.start, pa.timestamp("ms", tz="UTC")))
    if query.end:
        parts.append(ds.field("start_ts") < pa.scalar(query.end, pa.timestamp("ms", tz="UTC")))
    expr = None
    for p in parts:
        expr = p if expr is None else expr & p
    table = dataset.to_table(columns=["start_ts", "end_ts", "duration_s"], filter=expr)
    if table.num_rows == 0:
        return 0.0
    # Clip intervals to the query's range: a --from inside an interval counts only the part after it.
    start = table["start_ts"].cast(pa.int64()).to_numpy() / 1000.0
    end = table["end_ts"].cast(pa.int64()).to_numpy() / 1000.0
    if query.start:
        start = start.clip(min=query.start.timestamp())
    if query.end:
        end = end.clip(max=query.end.timestamp())
    return float((end - start).clip(min=0).sum() / 3600.0)


def store_budget(table: pa.Table, spec: SourceSpec, query: EventQuery) -> Budget | None:
    """Driver alerts in the events `table` over the store's operating hours; None for rows without alert counts
    (schema < 3). A camera filter does not change the hours: the bus ran with all its cameras."""
    if "info_alerts" not in table.column_names or (
        table.num_rows and table["info_alerts"].null_count == table.num_rows
    ):
        return None
    hours = operating_hours(spec, replace(query, camera=None, level=None))
    return Budget(_counts(table), hours if hours is not None else 0.0)
