"""`vigie replay export-opendata`: event counts the city can publish.

Counts per local day, hour band, camera side and coarse location (about 1 km). A cell with fewer than k events is
dropped rather than marked "<k": a published "1 event near this stop between 20:00 and 24:00" says someone was
there even without its exact number. Only primary suppression is done: nothing published here adds up to a total
from which a dropped cell could be recovered, and the export must stay that way (see the report for totals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from core.atomic import write_atomic
from replay.errors import ReplayError
from replay.report import check_tz, local_hours

# Hour bands follow a bus timetable's day: night, morning peak, daytime, evening peak, late evening.
HOUR_BANDS = (("00-06", 0), ("06-10", 6), ("10-16", 10), ("16-20", 16), ("20-24", 20))
LOCATION_DECIMALS = 2
OPENDATA_SCHEMA = pa.schema(
    [
        pa.field("date", pa.string(), nullable=False),
        pa.field("hour_band", pa.string(), nullable=False),
        pa.field("side", pa.string(), nullable=False),
        pa.field("lat", pa.float64()),  # null: no position recorded
        pa.field("lon", pa.float64()),
        pa.field("events", pa.int64(), nullable=False),
    ],
)


@dataclass(frozen=True, slots=True)
class ExportSettings:
    output: Path  # NAME → NAME.csv and NAME.parquet
    k: int = 5
    tz: str = "UTC"


@dataclass(frozen=True, slots=True)
class ExportResult:
    cells: int
    suppressed_cells: int
    suppressed_events: int
    csv_path: Path
    parquet_path: Path
    table: pa.Table


def _bands(table: pa.Table, tz: str) -> pa.Array:
    starts = np.array([start for _, start in HOUR_BANDS])
    names = np.array([name for name, _ in HOUR_BANDS])
    index = np.searchsorted(starts, local_hours(table, tz), side="right") - 1
    return pa.array(names[index] if len(index) else [], pa.string())


def aggregate(table: pa.Table, settings: ExportSettings) -> tuple[pa.Table, int, int]:
    """(kept cells, suppressed cell count, events in suppressed cells)."""
    if table.num_rows == 0:
        return OPENDATA_SCHEMA.empty_table(), 0, 0
    local = table["start_ts"].cast(pa.timestamp("ms", tz=settings.tz))
    keys = pa.table(
        {
            "date": pc.strftime(local, format="%Y-%m-%d"),
            "hour_band": _bands(table, settings.tz),
            "side": table["side"],
            "lat": pc.round(table["lat"], LOCATION_DECIMALS),
            "lon": pc.round(table["lon"], LOCATION_DECIMALS),
        }
    )
    counts = keys.group_by(["date", "hour_band", "side", "lat", "lon"]).aggregate([([], "count_all")])
    counts = counts.rename_columns([*counts.column_names[:-1], "events"])
    small = pc.less(counts["events"], settings.k)
    suppressed_events = int(pc.sum(counts.filter(small)["events"]).as_py() or 0)
    kept = counts.filter(pc.invert(small)).select(OPENDATA_SCHEMA.names).cast(OPENDATA_SCHEMA)
    order = pc.sort_indices(kept, sort_keys=[(n, "ascending") for n in OPENDATA_SCHEMA.names[:-1]])
    return kept.take(order), int(pc.sum(small).as_py() or 0), suppressed_events


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """A portal picking files up never sees half of one (core/atomic.py), and a failed write is one line."""
    try:
        write_atomic(path, write)
    except OSError as exc:
        raise ReplayError(f"{path}: cannot write: {exc.strerror or exc}") from None


def export(table: pa.Table, settings: ExportSettings) -> ExportResult:
    check_tz(settings.tz)
    kept, n_small, events_small = aggregate(table, settings)
    out = settings.output
    base = out.with_suffix("") if out.suffix in (".csv", ".parquet") else out
    csv_path, parquet_path = base.with_name(base.name + ".csv"), base.with_name(base.name + ".parquet")
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReplayError(f"{base.parent}: cannot create: {exc.strerror or exc}") from None
    meta = {"vigie.opendata": "1", "k": str(settings.k), "tz": settings.tz}
    _atomic(csv_path, lambda p: pacsv.write_csv(kept, p))
    _atomic(parquet_path, lambda p: pq.write_table(kept.replace_schema_metadata(meta), p, compression="zstd"))
    return ExportResult(kept.num_rows, n_small, events_small, csv_path, parquet_path, kept)
