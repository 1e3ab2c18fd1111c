"""`vigie replay compact`: the curated tier, one sorted zstd Parquet file per bus-day, built from the raw uploads.

The raw files and their manifests are never touched: raw is the evidence, curated is for analysis. Each curated file
is named after the raw files it was built from (replay/tiers.py), which makes the command idempotent and safe to
rerun at any time: a bus-day whose file already carries the digest of its raw files now is left alone; one that got
a late upload is rebuilt under its new name, and the older file removed once the new one is in place.

No reader sees half a file: each is written whole, locally or in the bucket, by replay/writer.py.

What a file holds: the rows of every raw file of the bus-day in the current event schema (older rows get nulls for
columns added since), sorted by start time then event id, and in its Parquet metadata the list of those raw files
(`vigie.curated`), so anyone can check what it stands for. Written with fixed settings, so the same raw files give
the same bytes.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from recorder.events import EVENT_SCHEMA
from replay.errors import ReplayError
from replay.parquet_io import conform, read_one, threads_for
from replay.query import EventQuery, SourceSpec
from replay.source import OpenedSource, open_source
from replay.tiers import (
    CURATED_DIR,
    BusDay,
    StoredFile,
    curated_by_day,
    curated_name,
    curated_root,
    list_files,
    no_events_error,
    raw_by_day,
    sources_digest,
)
from replay.writer import LocalWriter, S3Writer, writer_for

CURATED_SCHEMA = "vigie.curated/1"
# No dictionary pages and statistics on the two time columns only: a reader of a fleet-year opens thousands of
# these files, and every extra page or statistic is paid per file; the time statistics let engines skip a file
# for a time range inside a day.
WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": False,
    "write_statistics": ["start_ts", "end_ts"],
    "write_page_index": False,
}


@dataclass(frozen=True, slots=True)
class CompactResult:
    bus_days: int  # with raw files in the range
    built: int  # curated files written (new bus-days, and those changed since)
    up_to_date: int  # left alone: their curated file already stands for their raw files
    rows: int  # rows written
    raw_files: int  # raw files read
    removed: int  # older curated files replaced
    root: str  # where the curated tier is


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, n: int) -> None: ...


def curated_table(tables: list[pa.Table], day: BusDay, sources: list[StoredFile]) -> pa.Table:
    """The rows of a bus-day's raw files as one table in the event schema, sorted, naming its sources."""
    schema = pa.schema(list(EVENT_SCHEMA))
    table = pa.concat_tables([conform(t, schema) for t in tables])
    if table.num_rows:
        table = table.take(pc.sort_indices(table, sort_keys=[("start_ts", "ascending"), ("event_id", "ascending")]))
    note = {
        "schema": CURATED_SCHEMA,
        "date": day.date,
        "bus": day.bus,
        "rows": table.num_rows,
        "sources": [{"name": f.name, "size": f.size} for f in sorted(sources, key=lambda f: f.name)],
    }
    metadata = {**(EVENT_SCHEMA.metadata or {}), b"vigie.curated": json.dumps(note, sort_keys=True).encode()}
    return table.replace_schema_metadata(metadata)


def encode(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **WRITE_OPTIONS)
    return bytes(sink.getvalue().to_pybytes())


def _curated_root_of(src: OpenedSource) -> str:
    if src.root.rstrip("/").endswith(f"/{CURATED_DIR}"):
        raise ReplayError(f"{src.label}: is the curated tier; --source names the raw events (…/events)")
    root = curated_root(src.root)
    if root is None:
        raise ReplayError(f"{src.label}: events at the bucket's root; compact needs them under a prefix (…/events)")
    return root


@dataclass(frozen=True, slots=True)
class _Job:
    """One bus-day: its raw files, the curated file that stands for them, and the curated files already there."""

    day: BusDay
    raw: tuple[StoredFile, ...]
    dest: str
    existing: tuple[str, ...]

    @property
    def current(self) -> bool:
        return self.dest in self.existing


@dataclass(frozen=True, slots=True)
class _Done:
    built: bool
    rows: int
    raw_files: int
    removed: int


def _run(job: _Job, src: OpenedSource, tier: LocalWriter | S3Writer) -> _Done:
    rows = 0
    if not job.current:
        table = curated_table([read_one(src, f.path) for f in job.raw], job.day, list(job.raw))
        tier.put(job.dest, encode(table))
        rows = table.num_rows
    # Only once the new file is in place: a reader always finds one that matches, or reads raw.
    older = [path for path in job.existing if path != job.dest]
    for path in older:
        tier.remove(path)
    return _Done(not job.current, rows, 0 if job.current else len(job.raw), len(older))


def compact(spec: SourceSpec, query: EventQuery, progress: Progress | None = None) -> CompactResult:
    """Build or rebuild the curated file of every bus-day of the query's days (whole days: rows are not filtered)."""
    src = open_source(spec)
    root = _curated_root_of(src)
    days_query = EventQuery(start=query.start, end=query.end)
    raw_days, _ = raw_by_day(list_files(src, src.root, days_query), src.root)
    if not raw_days:
        raise no_events_error(src.label, days_query)
    existing = curated_by_day(src, days_query)
    tier = writer_for(src, spec, root)
    jobs = [
        _Job(
            day,
            tuple(files),
            f"{day.folder(root)}/{curated_name(sources_digest(files))}",
            tuple(f.path for f in existing.get(day, [])),
        )
        for day, files in sorted(raw_days.items())
    ]
    if progress is not None:
        progress.start(len(jobs))
    done: list[_Done] = []
    with ThreadPoolExecutor(max_workers=threads_for(src.fs)) as pool:
        for outcome in pool.map(lambda job: _run(job, src, tier), jobs):
            done.append(outcome)
            if progress is not None:
                progress.advance(1)
    return CompactResult(
        bus_days=len(jobs),
        built=sum(d.built for d in done),
        up_to_date=sum(not d.built for d in done),
        rows=sum(d.rows for d in done),
        raw_files=sum(d.raw_files for d in done),
        removed=sum(d.removed for d in done),
        root=root,
    )


def curated_sources(path: str, fs: pafs.FileSystem) -> dict:
    """The `vigie.curated` note of a curated file: its bus-day, rows and the raw files it was built from."""
    with fs.open_input_file(path) as fh:
        metadata = pq.read_schema(fh).metadata or {}
    return dict(json.loads(metadata.get(b"vigie.curated", b"{}")))
