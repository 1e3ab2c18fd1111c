"""Reading the event store: a local folder or the city's S3 bucket, both as one hive-partitioned pyarrow dataset.

The store is laid out `<root>/date=YYYY-MM-DD/bus=<id>/part-*.parquet` (recorder/events.py), with its curated tier
beside it (`…/curated/events`, one file per bus-day, see replay/tiers.py: which tier each bus-day is read from). A
fleet-year is tens of thousands of small files, and finding them costs more than reading them, above all on S3 where
every listing is a request. So a query prunes twice: while discovering files it lists only the `date=` folders in
range (and only the `bus=` folder asked for), then the scan filter prunes again on the partition columns and filters
the rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from recorder.events import EVENT_SCHEMA
from replay.errors import ReplayError, first_line
from replay.parquet_io import conform, read_whole
from replay.query import EventQuery, SourceSpec
from replay.tiers import ReadPlan, bus_day_of, day_range, plan_read

ENDPOINT_ENV = "VIGIE_S3_ENDPOINT"
# Partition values are read as text: a bus id such as "0042" must not become the integer 42.
PARTITIONING = ds.partitioning(pa.schema([("date", pa.string()), ("bus", pa.string())]), flavor="hive")


@dataclass(frozen=True, slots=True)
class OpenedSource:
    fs: pafs.FileSystem
    root: str  # path inside fs, no trailing slash
    label: str  # what error messages call it


def _s3(spec: SourceSpec) -> OpenedSource:
    rest = spec.location[len("s3://") :].strip("/")
    if not rest:
        raise ReplayError(f"{spec.location}: no bucket in the URL (s3://bucket/prefix)")
    endpoint = spec.endpoint_url or os.environ.get(ENDPOINT_ENV)
    options: dict = {"region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    if endpoint:
        scheme, sep, host = endpoint.partition("://")
        if not sep or scheme not in ("http", "https") or not host:
            raise ReplayError(f"endpoint {endpoint!r}: expected http://host:port or https://host:port")
        # Plain http only when the URL says so: credentials are signed, not encrypted.
        options |= {"scheme": scheme, "endpoint_override": host.rstrip("/")}
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        options |= {"access_key": key, "secret_key": secret, "session_token": os.environ.get("AWS_SESSION_TOKEN")}
    fs = pafs.S3FileSystem(**options)
    return OpenedSource(fs, rest, spec.location)


def open_source(spec: SourceSpec) -> OpenedSource:
    if spec.location.startswith("s3://"):
        opened = _s3(spec)
    elif "://" in spec.location:
        raise ReplayError(f"{spec.location}: unsupported source (a folder or s3://bucket/prefix)")
    else:
        path = Path(spec.location).expanduser().resolve()
        opened = OpenedSource(pafs.LocalFileSystem(), path.as_posix(), spec.location)
    _check_root(opened)
    return opened


def _check_root(src: OpenedSource) -> None:
    try:
        info = src.fs.get_file_info(src.root)
    except OSError as exc:
        raise ReplayError(f"{src.label}: cannot be read: {first_line(exc)}") from None
    if info.type == pafs.FileType.NotFound:
        # On S3 an empty prefix is not an error, but a missing bucket is: ask for the bucket itself.
        bucket = src.root.split("/", 1)[0]
        if (
            src.label.startswith("s3://")
            and src.root != bucket
            and src.fs.get_file_info(bucket).type != pafs.FileType.NotFound
        ):
            return
        raise ReplayError(f"{src.label}: not found" + (" (no such bucket)" if src.label.startswith("s3://") else ""))
    if info.type != pafs.FileType.Directory:
        raise ReplayError(f"{src.label}: not a folder of events")


def _filter(query: EventQuery) -> ds.Expression | None:
    parts = []
    first, last = day_range(query)
    # The partition terms let the scanner drop whole files without opening them; the row terms make them exact.
    if first:
        parts.append(ds.field("date") >= first)
    if last:
        parts.append(ds.field("date") <= last)
    if query.start:
        parts.append(ds.field("start_ts") >= pa.scalar(query.start, pa.timestamp("ms", tz="UTC")))
    if query.end:
        parts.append(ds.field("start_ts") < pa.scalar(query.end, pa.timestamp("ms", tz="UTC")))
    if query.bus:
        parts.append(ds.field("bus") == query.bus)
    if query.camera:
        parts.append(ds.field("camera") == query.camera)
    if query.level:
        parts.append(ds.field("max_level") == query.level)
    if query.event_id:
        parts.append(ds.field("event_id") == query.event_id)
    if not parts:
        return None
    expr = parts[0]
    for p in parts[1:]:
        expr = expr & p
    return expr


# Read with the current schema: files of an older version get nulls for columns added since (e.g. `clip`) instead
# of the dataset taking whichever file it opens first as the schema of all.
DATASET_SCHEMA = pa.schema(
    [*EVENT_SCHEMA, pa.field("date", pa.string()), pa.field("bus", pa.string())], metadata=EVENT_SCHEMA.metadata
)
# Columns a query may filter on: read from curated files even when the caller does not ask for them.
_FILTER_COLUMNS = ("date", "bus", "start_ts", "camera", "max_level", "event_id")


def empty_table() -> pa.Table:
    return DATASET_SCHEMA.empty_table()


def _name_bad_file(src: OpenedSource, files: list[str], exc: BaseException) -> ReplayError:
    """pyarrow's message does not always say which file failed; find it so the analyst can move it aside."""
    for path in files:
        try:
            with src.fs.open_input_file(path) as fh:
                pq.read_metadata(fh)
        except (OSError, pa.ArrowException) as bad:
            return ReplayError(f"{path}: unreadable Parquet: {first_line(bad)}")
    return ReplayError(f"{src.label}: unreadable event data: {first_line(exc)}")


def event_dataset(src: OpenedSource, files: list[str], base: str | None = None) -> ds.Dataset:
    """Files of one tier as a dataset; `base` is the tier's root, where the `date=`/`bus=` folders start."""
    try:
        return ds.dataset(
            files,
            schema=DATASET_SCHEMA,
            filesystem=src.fs,
            format="parquet",
            partitioning=PARTITIONING,
            partition_base_dir=base or src.root,
        )
    except (OSError, pa.ArrowException) as exc:
        raise _name_bad_file(src, files, exc) from None


def _tier_datasets(src: OpenedSource, plan: ReadPlan) -> list[ds.Dataset]:
    """Curated first: `show` finds an event in the file analysts read."""
    out = []
    if plan.curated:
        out.append(event_dataset(src, list(plan.curated), plan.curated_root))
    if plan.raw:
        out.append(event_dataset(src, list(plan.raw)))
    return out


def store_dataset(src: OpenedSource, plan: ReadPlan) -> ds.Dataset:
    """The plan's files as one dataset with `date` and `bus` columns, both tiers without double counting: what DuckDB
    scans (it pushes its filters down, so partitions are pruned file by file)."""
    parts = _tier_datasets(src, plan)
    if not parts:
        return ds.dataset(empty_table())
    return parts[0] if len(parts) == 1 else ds.dataset(parts)


def _read_curated(src: OpenedSource, plan: ReadPlan, names: list[str], expr: ds.Expression | None) -> pa.Table:
    """The curated files, read whole and in parallel (one small file per bus-day: per-file costs dominate, and
    the dataset scanner's are higher), with `date` and `bus` from their folders, then filtered."""
    needed = [*names, *(c for c in _FILTER_COLUMNS if c not in names)]
    in_file = [c for c in needed if c in EVENT_SCHEMA.names]
    tables = read_whole(src, plan.curated, in_file)
    assert plan.curated_root is not None
    days = [bus_day_of(path, plan.curated_root) for path in plan.curated]
    counts = [t.num_rows for t in tables]
    schema = pa.schema([EVENT_SCHEMA.field(c) for c in in_file])
    table = pa.concat_tables([conform(t, schema) for t in tables]) if tables else schema.empty_table()
    for key in ("date", "bus"):
        if key in needed:
            values = np.repeat(np.array([getattr(d, key) if d else "" for d in days], dtype=object), counts)
            table = table.append_column(key, pa.array(values, pa.string()))
    if expr is not None:
        table = table.filter(expr)
    return table.select(names)


@dataclass(frozen=True, slots=True)
class StoreRead:
    table: pa.Table
    plan: ReadPlan  # which tier each bus-day came from, and which compacted ones had changed since


def read_store(spec: SourceSpec, query: EventQuery, columns: Sequence[str] | None = None) -> StoreRead:
    """Every matching event row, sorted by start time, with `date` and `bus` from the partition folders: each
    compacted bus-day from its curated file, every other one from its raw files. `columns` (which must include
    `start_ts` and `event_id`, the sort keys) reads fewer columns, for a table that shows only some."""
    src = open_source(spec)
    plan = plan_read(src, query)
    names = list(columns) if columns else DATASET_SCHEMA.names
    target = pa.schema([DATASET_SCHEMA.field(c) for c in names])
    expr = _filter(query)
    parts = []
    if plan.curated:
        parts.append(_read_curated(src, plan, names, expr).cast(target))
    if plan.raw:
        files = list(plan.raw)
        try:
            parts.append(event_dataset(src, files).to_table(columns=names, filter=expr).cast(target))
        except (OSError, pa.ArrowException) as exc:
            raise _name_bad_file(src, files, exc) from None
    table = pa.concat_tables(parts) if parts else target.empty_table()
    if table.num_rows:
        order = pc.sort_indices(table, sort_keys=[("start_ts", "ascending"), ("event_id", "ascending")])
        table = table.take(order)
    return StoreRead(table, plan)


def read_events(spec: SourceSpec, query: EventQuery, columns: Sequence[str] | None = None) -> pa.Table:
    """`read_store` without the plan."""
    return read_store(spec, query, columns).table


@dataclass(frozen=True, slots=True)
class FoundEvent:
    row: dict
    path: str  # the Parquet file that holds it


def find_event(spec: SourceSpec, query: EventQuery) -> FoundEvent:
    """One event by id, with every column its own file has (newer files may carry columns, like `clip`, that the
    dataset's unified schema taken from an older file would drop)."""
    assert query.event_id is not None
    src = open_source(spec)
    plan = plan_read(src, query)
    row_filter = ds.field("event_id") == query.event_id
    for dataset in _tier_datasets(src, plan):
        files = list(dataset.files)
        try:
            for frag in dataset.get_fragments(filter=_filter(query)):
                table = frag.to_table(schema=frag.physical_schema, filter=row_filter)
                if table.num_rows:
                    row = table.slice(0, 1).to_pylist()[0]
                    base = plan.curated_root if frag.path in plan.curated else src.root
                    return FoundEvent({**row, **_partition_values(frag.path, base or src.root)}, frag.path)
        except (OSError, pa.ArrowException) as exc:
            raise _name_bad_file(src, files, exc) from None
    raise ReplayError(f"event {query.event_id}: not found in {src.label}")


def _partition_values(path: str, root: str) -> dict[str, str]:
    rel = path[len(root) :].strip("/").split("/")[:-1]
    return dict(part.split("=", 1) for part in rel if "=" in part)
