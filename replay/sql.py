"""`vigie replay sql`: DuckDB, embedded, over the event store as one table named `events`.

`events` is the store's pyarrow dataset — curated files for compacted bus-days, raw files for the others, never both
(replay/tiers.py) — with `date` and `bus` columns from the folders. DuckDB scans it through Arrow and pushes its
filters and column choices down, so `WHERE date = …` or `WHERE bus = …` opens only those partitions' files. The
files are read by pyarrow, locally or from S3, so DuckDB needs no extension and no network of its own.

Read-only: before the query runs, the connection is cut off from the outside (`enable_external_access = false`: no
file, URL, extension or other database can be read, written or attached) and its configuration locked
(`lock_configuration = true`: the query cannot switch that back). The query sees `events` and nothing else; what it
creates lives in memory and goes with the process. One statement, a SELECT (or DESCRIBE, SUMMARIZE, EXPLAIN).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from replay.errors import ReplayError, ReplayFailure, first_line
from replay.query import EventQuery, SourceSpec
from replay.source import open_source, store_dataset
from replay.tiers import ReadPlan, plan_read

TABLE_NAME = "events"
MAX_CELL = 60  # a table cell wider than this is cut (with …); --csv and --json never cut


@dataclass(frozen=True, slots=True)
class SqlResult:
    table: pa.Table
    plan: ReadPlan


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise ReplayError("sql needs duckdb: pip install 'vigie[sql]'") from None
    return duckdb


def _one_select(duckdb: Any, con: Any, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReplayError(f"SQL: {first_line(exc)}") from None
    allowed = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)
    if len(statements) != 1 or statements[0].type not in allowed:
        raise ReplayError("SQL: one SELECT statement, please (read-only: DESCRIBE, SUMMARIZE and EXPLAIN also do)")


def locked_connection(duckdb: Any, dataset: object) -> Any:
    """An in-memory DuckDB whose only data is `dataset`, registered as `events`, cut off from files, URLs and
    extensions, its settings locked so that no statement can undo it (the CLI runs SELECTs only, but the
    connection does not rely on that)."""
    con = duckdb.connect(":memory:")
    con.register(TABLE_NAME, dataset)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_sql(spec: SourceSpec, sql: str) -> SqlResult:
    """The query's result as an Arrow table; bad SQL (syntax, unknown column or table, a forbidden statement or
    path) is a ReplayError, a failure while reading the store a ReplayFailure."""
    duckdb = _duckdb()
    with duckdb.connect(":memory:") as parser:
        _one_select(duckdb, parser, sql)
    src = open_source(spec)
    plan = plan_read(src, EventQuery())
    con = locked_connection(duckdb, store_dataset(src, plan))
    try:
        relation = con.sql(sql)
        # DuckDB 2 names it to_arrow_table; 1.x, arrow().
        table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    except (duckdb.IOException, duckdb.OutOfMemoryException, duckdb.InternalException) as exc:
        raise ReplayFailure(f"SQL: {first_line(exc)}") from None
    except duckdb.Error as exc:
        raise ReplayError(f"SQL: {first_line(exc)}") from None
    finally:
        con.close()
    return SqlResult(table, plan)


def _value(v: object) -> object:
    """A plain JSON value: times in UTC ISO 8601 (like `list --json`), decimals as numbers, NaN as null."""
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            return v.isoformat(timespec="milliseconds")
        return v.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return v.hex()
    return v


def _rows(table: pa.Table) -> Iterator[list[object]]:
    """Rows by position, so two result columns of the same name both survive."""
    columns = [col.to_pylist() for col in table.columns]
    for i in range(table.num_rows):
        yield [_value(col[i]) for col in columns]


def json_lines(table: pa.Table) -> Iterator[str]:
    names = table.column_names
    for row in _rows(table):
        yield json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False, default=str)


def csv_text(table: pa.Table) -> str:
    """The whole result as CSV with a header row (a value may hold a newline, so not line by line)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in _rows(table):
        writer.writerow(["" if v is None else json.dumps(v) if isinstance(v, list | dict) else v for v in row])
    return buf.getvalue()


def _text(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.6g}"
    text = json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else str(v)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table_lines(table: pa.Table) -> Iterator[str]:
    names = table.column_names
    cells = [[_text(v) for v in row] for row in _rows(table)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in table.schema.types]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    yield line(names)
    yield line(["-" * w for w in widths])
    for row in cells:
        yield line(row)
    yield f"{table.num_rows} row(s)"
