"""Writing a fleet rerun beside the bus's events: `<store>/reruns/<name>/events/date=…/bus=…/part-….parquet`, one
file per bus-day in the event schema (readable by `replay list --source …/reruns/<name>/events`, DuckDB, Spark), a
copy of the config it ran (`config.toml`) and, last, `_rerun.json`: its presence says the rerun is complete.

Each file is written whole or not at all (replay/writer.py); the manifest goes last, so a folder without it is a
rerun that stopped half-way, and `rerun-fleet` refuses to reuse its name.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.types import Event
from recorder.events import EVENT_SCHEMA, EventSink, event_row
from replay.clip_replay import ClipRun
from replay.errors import ReplayFailure, first_line
from replay.fleet_plan import MANIFEST, Layout
from replay.query import SourceSpec
from replay.source import OpenedSource
from replay.writer import writer_for


@dataclass(frozen=True, slots=True)
class RerunRecord:
    """What the driver writes: every clip's run, how its rows are made, and the notes of how it was made."""

    runs: tuple[ClipRun, ...]
    model_id: str
    location_decimals: int
    config_text: str
    manifest: dict


def bus_day_tables(runs: Iterable[ClipRun], model_id: str, location_decimals: int) -> dict[tuple[str, str], pa.Table]:
    """The rows of every run's events, per (UTC date of the start, bus), sorted by start time then event id."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        sink = EventSink(Path("."), run.bus, model_id, location_decimals)  # only the row's fields are used
        for event in run.events:
            rows.setdefault((_day(event), run.bus), []).append(event_row(event, sink))
    tables = {}
    for key, day_rows in sorted(rows.items()):
        table = pa.Table.from_pylist(day_rows, schema=EVENT_SCHEMA)
        tables[key] = table.take(pc.sort_indices(table, [("start_ts", "ascending"), ("event_id", "ascending")]))
    return tables


def _day(event: Event) -> str:
    return dt.datetime.fromtimestamp(event.start_ts, dt.UTC).strftime("%Y-%m-%d")


def _encode(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def write_rerun(src: OpenedSource, spec: SourceSpec, where: Layout, record: RerunRecord) -> tuple[str, ...]:
    """The events, the config and the manifest (last); returns the event files written."""
    writer = writer_for(src, spec, where.rerun)
    files: list[str] = []
    path = where.rerun
    try:
        for (day, bus), table in bus_day_tables(record.runs, record.model_id, record.location_decimals).items():
            first = table["start_ts"][0].as_py().strftime("%H%M%S")
            path = f"{where.rerun_events}/date={day}/bus={bus}/part-{first}-{uuid.uuid4().hex[:12]}.parquet"
            writer.put(path, _encode(table))
            files.append(path)
        path = f"{where.rerun}/config.toml"
        writer.put(path, record.config_text.encode())
        manifest = {**record.manifest, "files": [f.rsplit("/", 1)[-1] for f in files]}
        path = f"{where.rerun}/{MANIFEST}"
        writer.put(path, (json.dumps(manifest, indent=2) + "\n").encode())
    except OSError as exc:  # a local disk; the bucket's writer says its own failures in one line
        raise ReplayFailure(f"{path}: cannot be written: {exc.strerror or first_line(exc)}") from None
    return tuple(files)
