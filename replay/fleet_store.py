"""Reading the fleet's health summaries and who the fleet is, from a folder or the city's bucket.

`--source` names the event store, as for every replay command (`…/events`); the health summaries are beside it
(`…/health`, as the uploader sends them). Only folder names are listed to know which buses were seen on which days
(`date=…/bus=…` under both), and only the date's summaries are read: one small file per bus and summary.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from recorder.health import HEALTH_SCHEMA, HealthSummary, summary_from_row
from replay.errors import ReplayError, first_line
from replay.query import SourceSpec
from replay.source import OpenedSource, open_source
from replay.tiers import partition_dirs


@dataclass(frozen=True, slots=True)
class FleetRead:
    summaries: list[HealthSummary]  # every summary of the date (latest and superseded)
    seen: dict[str, dt.date]  # every bus seen in the window, and the last day it was


def _partitions(src: OpenedSource, path: str, key: str) -> list[tuple[str, str]]:
    try:
        return partition_dirs(src, path, key)
    except OSError as exc:
        raise ReplayError(f"{src.label}: cannot be listed: {first_line(exc)}") from None


def _seen(src: OpenedSource, root: str, first: dt.date, last: dt.date, into: dict[str, dt.date]) -> None:
    for day_text, day_path in _partitions(src, root, "date"):
        try:
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            continue  # not a folder vigie wrote
        if first <= day <= last:
            for bus, _ in _partitions(src, day_path, "bus"):
                into[bus] = max(into.get(bus, day), day)


def _read(src: OpenedSource, files: list[str]) -> list[HealthSummary]:
    try:
        table = ds.dataset(files, schema=HEALTH_SCHEMA, filesystem=src.fs, format="parquet").to_table()
    except (OSError, pa.ArrowException) as exc:
        for path in files:  # pyarrow does not always say which file: find it, so it can be moved aside
            try:
                with src.fs.open_input_file(path) as fh:
                    pq.read_schema(fh).field("cameras")
            except (OSError, pa.ArrowException, KeyError) as bad:
                raise ReplayError(f"{path}: not a health summary: {first_line(bad)}") from None
        raise ReplayError(f"{src.label}: unreadable health summaries: {first_line(exc)}") from None
    return [summary_from_row(row) for row in table.to_pylist()]


def read_fleet(spec: SourceSpec, day: dt.date, fleet_days: int) -> FleetRead:
    events = open_source(spec)
    parent = posixpath.dirname(events.root.rstrip("/"))
    if not parent or parent == events.root:
        raise ReplayError(f"{spec.location}: name the events folder (…/events): the health summaries are beside it")
    root = posixpath.join(parent, "health")
    health = OpenedSource(events.fs, root, f"s3://{root}" if spec.location.startswith("s3://") else root)
    first = day - dt.timedelta(days=fleet_days - 1)
    seen: dict[str, dt.date] = {}
    _seen(events, events.root, first, day, seen)
    _seen(health, health.root, first, day, seen)
    files = []
    for _, bus_path in _partitions(health, posixpath.join(health.root, f"date={day.isoformat()}"), "bus"):
        try:
            infos = health.fs.get_file_info(pafs.FileSelector(bus_path, allow_not_found=True))
        except OSError as exc:
            raise ReplayError(f"{health.label}: cannot be listed: {first_line(exc)}") from None
        # Hidden names are files still being written.
        files += [i.path for i in infos if i.type == pafs.FileType.File and i.base_name.startswith("summary-")]
    summaries = _read(health, sorted(files)) if files else []
    return FleetRead([s for s in summaries if s.day == day], seen)
