"""Reading many small Parquet files fast, the same way from a folder or from S3.

A fleet-year is one file per bus-day even once compacted (18,250 for 50 buses), each a few kilobytes: what costs is
per file, not per byte. Each file is fetched whole in one request (on S3 a ranged read per column chunk would be
two dozen requests) and decoded from memory; files go through a thread pool, since pyarrow decodes and S3 waits
without holding the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from replay.errors import ReplayError, first_line

if TYPE_CHECKING:
    from replay.source import OpenedSource

# Local reads are CPU-bound: one thread per core. S3 reads mostly wait on the network.
S3_THREADS = 16


def threads_for(fs: pafs.FileSystem) -> int:
    return S3_THREADS if isinstance(fs, pafs.S3FileSystem) else max(os.cpu_count() or 1, 1)


def read_one(src: OpenedSource, path: str, columns: Sequence[str] | None = None) -> pa.Table:
    try:
        with src.fs.open_input_stream(path) as fh:
            data = fh.read()
        return pq.ParquetFile(pa.BufferReader(data)).read(columns=columns, use_threads=False)
    except (OSError, pa.ArrowException) as exc:
        raise ReplayError(f"{path}: unreadable Parquet: {first_line(exc)}") from None


def read_whole(src: OpenedSource, paths: Sequence[str], columns: Sequence[str] | None = None) -> list[pa.Table]:
    """Each file's rows (only `columns`, when given), in the order of `paths`."""
    if len(paths) <= 1:
        return [read_one(src, p, columns) for p in paths]
    with ThreadPoolExecutor(max_workers=min(threads_for(src.fs), len(paths))) as pool:
        return list(pool.map(lambda p: read_one(src, p, columns), paths))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns and types: a column an older file lacks (`clip` before schema 2,
    the alert counts before 3) becomes nulls, as the dataset reader does."""
    if table.schema.equals(schema, check_metadata=False):
        return table.replace_schema_metadata(schema.metadata)
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
