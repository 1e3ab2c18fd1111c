"""Reading the event store: a local folder or the city's S3 bucket, both as one hive-partitioned pyarrow dataset.

The store is laid out `<root>/date=YYYY-MM-DD/bus=<id>/part-*.parquet` (recorder/events.py). A fleet-year is tens of
thousands of small files, and finding them costs more than reading them, above all on S3 where every listing is a
request. So a query prunes twice: while discovering files it lists only the `date=` folders in range (and only the
`bus=` folder asked for), then the scan filter prunes again on the partition columns and filters the rows.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from recorder.events import EVENT_SCHEMA
from replay.errors import ReplayError
from replay.query import EventQuery, SourceSpec

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
        raise ReplayError(f"{src.label}: cannot be read: {_first_line(exc)}") from None
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _subdirs(src: OpenedSource, path: str, key: str) -> list[tuple[str, str]]:
    """(value, path) of the `key=value` folders directly under path."""
    infos = src.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
    out = []
    for info in infos:
        name = info.base_name
        if info.type == pafs.FileType.Directory and name.startswith(f"{key}="):
            out.append((name[len(key) + 1 :], info.path))
    return sorted(out)


def _day_range(query: EventQuery) -> tuple[str | None, str | None]:
    first = query.start.strftime("%Y-%m-%d") if query.start else None
    # `end` is exclusive: an end at midnight does not need that day's folder.
    last = (query.end - dt.timedelta(microseconds=1)).strftime("%Y-%m-%d") if query.end else None
    return first, last


def find_files(src: OpenedSource, query: EventQuery) -> list[str]:
    """Parquet files that can hold events matching the query's date and bus, listing only folders in range."""
    first, last = _day_range(query)
    bus_part = None if query.bus is None else f"/bus={query.bus}/"
    try:
        if first is None and last is None:
            # No date bound: one recursive listing (on S3, a request per 1000 files) beats one per day.
            folders = [src.root]
        else:
            days = _subdirs(src, src.root, "date")
            folders = [path for day, path in days if not ((first and day < first) or (last and day > last))]
            if query.bus is not None:
                folders = [f"{path}/bus={query.bus}" for path in folders]
        files = []
        for folder in folders:
            selector = pafs.FileSelector(folder, allow_not_found=True, recursive=True)
            for info in src.fs.get_file_info(selector):
                # Hidden and underscore names are temporary files being written, or rerun notes, never events.
                name = info.base_name
                if info.type != pafs.FileType.File or not name.endswith(".parquet") or name.startswith((".", "_")):
                    continue
                if bus_part is None or bus_part in info.path:
                    files.append(info.path)
    except OSError as exc:
        raise ReplayError(f"{src.label}: cannot be listed: {_first_line(exc)}") from None
    return sorted(files)


def _filter(query: EventQuery) -> ds.Expression | None:
    parts = []
    first, last = _day_range(query)
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


def empty_table() -> pa.Table:
    return DATASET_SCHEMA.empty_table()


def _name_bad_file(src: OpenedSource, files: list[str], exc: BaseException) -> ReplayError:
    """pyarrow's message does not always say which file failed; find it so the analyst can move it aside."""
    for path in files:
        try:
            with src.fs.open_input_file(path) as fh:
                pq.read_metadata(fh)
        except (OSError, pa.ArrowException) as bad:
            return ReplayError(f"{path}: unreadable Parquet: {_first_line(bad)}")
    return ReplayError(f"{src.label}: unreadable event data: {_first_line(exc)}")


def event_dataset(src: OpenedSource, files: list[str]) -> ds.Dataset:
    try:
        return ds.dataset(
            files,
            schema=DATASET_SCHEMA,
            filesystem=src.fs,
            format="parquet",
            partitioning=PARTITIONING,
            partition_base_dir=src.root,
        )
    except (OSError, pa.ArrowException) as exc:
        raise _name_bad_file(src, files, exc) from None


def read_events(spec: SourceSpec, query: EventQuery) -> pa.Table:
    """Every matching event row, sorted by start time, with `date` and `bus` from the partition folders."""
    src = open_source(spec)
    files = find_files(src, query)
    if not files:
        return empty_table()
    dataset = event_dataset(src, files)
    try:
        table = dataset.to_table(filter=_filter(query))
    except (OSError, pa.ArrowException) as exc:
        raise _name_bad_file(src, files, exc) from None
    if table.num_rows == 0:
        return table
    order = pc.sort_indices(table, sort_keys=[("start_ts", "ascending"), ("event_id", "ascending")])
    return table.take(order)


@dataclass(frozen=True, slots=True)
class FoundEvent:
    row: dict
    path: str  # the Parquet file that holds it


def find_event(spec: SourceSpec, query: EventQuery) -> FoundEvent:
    """One event by id, with every column its own file has (newer files may carry columns, like `clip`, that the
    dataset's unified schema taken from an older file would drop)."""
    assert query.event_id is not None
    src = open_source(spec)
    files = find_files(src, query)
    dataset = event_dataset(src, files) if files else None
    row_filter = ds.field("event_id") == query.event_id
    try:
        fragments = list(dataset.get_fragments(filter=_filter(query))) if dataset else []
        for frag in fragments:
            table = frag.to_table(schema=frag.physical_schema, filter=row_filter)
            if table.num_rows:
                row = table.slice(0, 1).to_pylist()[0]
                return FoundEvent({**row, **_partition_values(frag.path, src.root)}, frag.path)
    except (OSError, pa.ArrowException) as exc:
        raise _name_bad_file(src, files, exc) from None
    raise ReplayError(f"event {query.event_id}: not found in {src.label}")


def _partition_values(path: str, root: str) -> dict[str, str]:
    rel = path[len(root) :].strip("/").split("/")[:-1]
    return dict(part.split("=", 1) for part in rel if "=" in part)
