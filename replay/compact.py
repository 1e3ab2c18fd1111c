"""`vigie replay compact`: the curated tier, one sorted zstd Parquet file per bus-day, built from the raw uploads.

The raw files and their manifests are never touched: raw is the evidence, curated is for analysis. Each curated file
is named after the raw files it was built from (replay/tiers.py), which makes the command idempotent and safe to
rerun at any time: a bus-day whose file already carries the digest of its raw files now is left alone; one that got
a late upload is rebuilt under its new name, and the older file removed once the new one is in place.

No reader sees half a file: locally the file is written under a hidden name, fsynced and renamed (core/atomic.py);
on S3 it is one PUT of the complete object (with its SHA-256 for the server to check), which S3 makes visible
whole or not at all. The S3 client is the uploader's: same credential sources, timeouts and checksums.

What a file holds: the rows of every raw file of the bus-day in the current event schema (older rows get nulls for
columns added since), sorted by start time then event id, and in its Parquet metadata the list of those raw files
(`vigie.curated`), so anyone can check what it stands for. Written with fixed settings, so the same raw files give
the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.atomic import write_atomic
from recorder.events import EVENT_SCHEMA
from replay.errors import ReplayError, ReplayFailure
from replay.parquet_io import S3_THREADS, conform, read_one, threads_for
from replay.query import EventQuery, SourceSpec
from replay.source import ENDPOINT_ENV, OpenedSource, open_source
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


class _LocalTier:
    def put(self, path: str, data: bytes) -> None:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(dest, lambda tmp: tmp.write_bytes(data))

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)


class _S3Tier:
    """Writes with the uploader's client. `root` is `bucket/key prefix`, as pyarrow's S3 paths are."""

    def __init__(self, root: str, endpoint_url: str | None) -> None:
        from pydantic import ValidationError

        from uploader.config import UploadConfig
        from uploader.s3 import NoCredentials, make_client

        self.bucket = root.split("/", 1)[0]
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        try:
            cfg = UploadConfig(endpoint_url=endpoint_url, region=region)
            self.client = make_client(cfg, max_pool=S3_THREADS)
        except NoCredentials as exc:
            raise ReplayError(str(exc)) from None
        except ValidationError:
            raise ReplayError(f"endpoint {endpoint_url!r}: expected http://host:port or https://host:port") from None

    def _key(self, path: str) -> str:
        return path.split("/", 1)[1]

    def put(self, path: str, data: bytes) -> None:
        from uploader.transfer import b64

        digest = b64(hashlib.sha256(data).digest())
        self._call(
            lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data, ChecksumSHA256=digest),
            path,
        )

    def remove(self, path: str) -> None:
        self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(path)), path)

    def _call(self, request: Callable[[], object], path: str) -> None:
        from uploader.s3 import Kind, classify

        try:
            request()
        except Exception as exc:
            failure = classify(exc)
            text = f"s3://{path}: {failure.message}"
            # Refused credentials are the user's to fix (exit 2); a link that fails mid-way is a runtime failure.
            raise (ReplayError(text) if failure.kind is Kind.REFUSED else ReplayFailure(text)) from None


def _tier(src: OpenedSource, spec: SourceSpec, root: str) -> _LocalTier | _S3Tier:
    if isinstance(src.fs, pafs.S3FileSystem):
        return _S3Tier(root, spec.endpoint_url or os.environ.get(ENDPOINT_ENV))
    return _LocalTier()


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


def _run(job: _Job, src: OpenedSource, tier: _LocalTier | _S3Tier) -> _Done:
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
    tier = _tier(src, spec, root)
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
