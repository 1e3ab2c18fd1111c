"""`vigie replay export-opendata`: event counts the city can publish as they are.

Counts per local day, hour band, camera side and coarse location (about 1 km). A cell with fewer than k events is
dropped rather than marked "<k": a published "1 event near this stop between 20:00 and 24:00" says someone was
there even without its exact number. Only primary suppression is done: nothing published here adds up to a total
from which a dropped cell could be recovered, and the export must stay that way — which is why neither the README nor
the package states how many events or cells were removed (the command prints it to the analyst, who is not the
public).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.types import Side
from replay.errors import ReplayError
from replay.opendata.folder import PUBLIC, StagedFolder
from replay.opendata.licences import Licence
from replay.opendata.package import Column, Coverage, PackageSpec, Producer, TableSpec, bbox, write_package
from replay.opendata.readme import OpenFacts, open_readme
from replay.opendata.scope import coverage_days
from replay.query import EventQuery
from replay.report import check_tz, local_hours

# Hour bands follow a bus timetable's day: night, morning peak, daytime, evening peak, late evening.
HOUR_BANDS = (("00-06", 0), ("06-10", 6), ("10-16", 10), ("16-20", 16), ("20-24", 20))
LOCATION_DECIMALS = 2
METHOD_SCHEMA = "vigie.opendata/2"
STEM = "blind-spot-counts"
KEY = ("date", "hour_band", "side", "lat", "lon")
MIN_K = 2  # k = 1 would suppress nothing


@dataclass(frozen=True, slots=True)
class OpenDataSettings:
    output: Path  # the package folder: new, or empty
    licence: Licence
    producer: Producer
    k: int = 5
    tz: str = "UTC"


@dataclass(frozen=True, slots=True)
class OpenDataResult:
    cells: int
    suppressed_cells: int
    suppressed_events: int
    folder: Path
    table: pa.Table


def check_k(k: int) -> int:
    if k < MIN_K:
        raise ReplayError(f"-k {k}: must be at least {MIN_K} (cells with fewer than k events are removed)")
    return k


def columns(settings: OpenDataSettings) -> tuple[Column, ...]:
    tz = settings.tz
    return (
        Column(
            "date", pa.date32(), "date", f"Day on which the events started, in local time ({tz}).", "day", required=True
        ),
        Column(
            "hour_band",
            pa.string(),
            "string",
            f"Hours of the local day ({tz}) in which the events started: from the first hour included to the second "
            "excluded (00-06 night, 06-10 morning peak, 10-16 daytime, 16-20 evening peak, 20-24 evening).",
            "hours of the day",
            required=True,
            enum=tuple(name for name, _ in HOUR_BANDS),
        ),
        Column(
            "side",
            pa.string(),
            "string",
            "Side of the bus whose camera saw the people: front, right, rear or left.",
            "none (category)",
            required=True,
            enum=tuple(s.value for s in Side),
        ),
        Column(
            "lat",
            pa.float64(),
            "number",
            "Latitude of the bus when the events started, rounded to 0.01 degree (about 1.1 km). Empty: the bus "
            "recorded no position.",
            "degree north (WGS 84)",
        ),
        Column(
            "lon",
            pa.float64(),
            "number",
            "Longitude of the bus when the events started, rounded to 0.01 degree (about 0.8 km at 45 degrees "
            "north). Empty: the bus recorded no position.",
            "degree east (WGS 84)",
        ),
        Column(
            "events",
            pa.int64(),
            "integer",
            "Number of events in this cell: stays of one person in one blind-spot zone of one bus camera, alerted "
            f"or not. Cells of fewer than {settings.k} events are not published.",
            "events",
            required=True,
            minimum=settings.k,
        ),
    )


def _bands(table: pa.Table, tz: str) -> pa.Array:
    starts = np.array([start for _, start in HOUR_BANDS])
    names = np.array([name for name, _ in HOUR_BANDS])
    index = np.searchsorted(starts, local_hours(table, tz), side="right") - 1
    return pa.array(names[index] if len(index) else [], pa.string())


def aggregate(table: pa.Table, k: int, tz: str) -> tuple[pa.Table, int, int]:
    """(kept cells sorted by their key, suppressed cell count, events in suppressed cells)."""
    local = table["start_ts"].cast(pa.timestamp("ms", tz=tz))
    keys = pa.table(
        {
            "date": local.cast(pa.date32()),  # a zoned timestamp casts to its local date
            "hour_band": _bands(table, tz),
            "side": table["side"],
            "lat": pc.round(table["lat"], LOCATION_DECIMALS),
            "lon": pc.round(table["lon"], LOCATION_DECIMALS),
        }
    )
    counts = keys.group_by(list(KEY)).aggregate([([], "count_all")])
    counts = counts.rename_columns([*counts.column_names[:-1], "events"])
    small = pc.less(counts["events"], k)
    suppressed_events = int(pc.sum(counts.filter(small)["events"]).as_py() or 0)
    kept = counts.filter(pc.invert(small)).select([*KEY, "events"])
    order = pc.sort_indices(kept, sort_keys=[(n, "ascending") for n in KEY])
    return kept.take(order), int(pc.sum(small).as_py() or 0), suppressed_events


def package_spec(kept: pa.Table, settings: OpenDataSettings, query: EventQuery, events: pa.Table) -> PackageSpec:
    start, end = coverage_days(query, events, settings.tz)
    cover = Coverage(start, end, settings.tz, bbox(kept), "0.01 degree (about 1 km)")
    method = {
        "method": METHOD_SCHEMA,
        "k": settings.k,
        "timezone": settings.tz,
        "location_decimals": LOCATION_DECIMALS,
        "hour_bands": [name for name, _ in HOUR_BANDS],
    }
    table = TableSpec(
        STEM,
        "Blind-spot events per day, hour band, bus side and area",
        f"Counts of events seen by bus blind-spot cameras; cells of fewer than {settings.k} events removed.",
        columns(settings),
        primary_key=KEY,
    )
    facts = OpenFacts(settings.producer, settings.licence, cover, settings.k, STEM, [n for n, _ in HOUR_BANDS])
    return PackageSpec(
        name=f"vigie-blind-spot-counts-{start}-{end}",
        title=f"Bus blind-spot events, counts per day, hour band, side and area ({start} to {end})",
        description=(
            "How often people stood in the blind spots of the city's buses, where and when: counts of events seen by "
            f"the buses' blind-spot cameras, per local day, hour band, side of the bus and area of about 1 km. "
            f"Cells of fewer than {settings.k} events are not published. See README.md (français, English)."
        ),
        licence=settings.licence,
        producer=settings.producer,
        coverage=cover,
        table=table,
        readme=open_readme(facts),
        keywords=("road safety", "bus", "blind spot", "pedestrians", "sécurité routière", "angle mort"),
        method=method,
    )


def export_open_data(events: pa.Table, query: EventQuery, settings: OpenDataSettings) -> OpenDataResult:
    """Write the package into `settings.output`, whole or not at all. `events` must not be empty."""
    check_k(settings.k)
    check_tz(settings.tz)
    kept, n_small, events_small = aggregate(events, settings.k, settings.tz)
    spec = package_spec(kept, settings, query, events)
    with StagedFolder(settings.output, PUBLIC) as folder:
        write_package(spec, kept, folder)
        folder.publish()
    return OpenDataResult(kept.num_rows, n_small, events_small, settings.output, kept)
