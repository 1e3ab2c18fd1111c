"""Recorded vehicle logs (CSV or Parquet): every row through the live feed's schema, or one line saying where not.

A log stands in for the bus's feed in the demo and in replay. A bad row is found when the log is read at start
(`vigie run`, `check-config`, `replay rerun`), named by file, row and field, never half-way through a drive.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from core.types import VehicleState
from edge.vehicle_schema import VehicleInputError, clip, row_state, typed_cells


class VehicleLogError(ValueError):
    """A recorded log that cannot be played: one line naming the file, the row and the field."""


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    """(where, typed fields) per row; `where` is `path:line` as an editor would find it."""
    try:
        # utf-8-sig: spreadsheets save CSV with a byte-order mark, which would otherwise become part of "t".
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:  # DictReader files surplus cells under the key None
                    raise VehicleLogError(f"{where}: row has more cells than the header")
                yield where, typed_cells(row)
    except csv.Error as exc:
        raise VehicleLogError(f"{path}: not a readable CSV file: {clip(str(exc), 120)}") from None
    except UnicodeDecodeError as exc:
        raise VehicleLogError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise VehicleLogError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    """(where, fields) per row; Parquet columns are typed already, so they meet the schema as they are."""
    # Imported here: every command imports edge.config, which imports this module, and most logs are CSV.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise VehicleLogError(f"{path}: not a readable Parquet file: {clip(str(exc), 120)}") from None
    for i, row in enumerate(rows, start=1):
        yield f"{path}: row {i}", {k: v for k, v in row.items() if v is not None}


def read_log(path: Path) -> tuple[tuple[float, ...], tuple[VehicleState, ...]]:
    """The times and states of a CSV or Parquet log, every row through the message schema plus `t`."""
    rows = _parquet_rows(path) if path.suffix.lower() == ".parquet" else _csv_rows(path)
    times: list[float] = []
    states: list[VehicleState] = []
    for where, fields in rows:
        try:
            t, state = row_state(fields)
        except VehicleInputError as exc:
            raise VehicleLogError(f"{where}: {exc}") from None
        if times and t <= times[-1]:
            raise VehicleLogError(f"{where}: t: must increase, got {t} after {times[-1]}")
        times.append(t)
        states.append(state)
    if not times:
        raise VehicleLogError(f"{path}: no rows")
    return tuple(times), tuple(states)
