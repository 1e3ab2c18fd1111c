"""`vigie replay export-shared`: event-level rows for a partner under a data-sharing agreement.

The tier between the raw store and open data: a transport operator or road-safety researchers need single events
(where and when people stand in blind spots, how close, how fast the bus went) that counts cannot give, but nothing
that links one row to another or to a bus. So each row keeps the minute (UTC), the bus's position to 0.001 degree
(about 100 m; coarser when the bus stored it coarser), the side, the level, and distance and speed as bands; ids,
names, clips, scores, seconds and durations are dropped, and rows are sorted by these values so their order carries
nothing either. Every export is written to the access log (who, why, for whom) before it is published, like every
clip `render` opens: a tool that cannot log it does not hand the data over.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.atomic import open_append, private_dir
from core.types import Level, Side
from replay.errors import ReplayError
from replay.opendata.folder import PRIVATE, StagedFolder
from replay.opendata.licences import Licence
from replay.opendata.package import Column, Coverage, PackageSpec, Producer, TableSpec, bbox, write_package
from replay.opendata.readme import SharedFacts, shared_readme
from replay.opendata.scope import coverage_days
from replay.query import EventQuery

LOCATION_DECIMALS = 3  # ~110 m of latitude
METHOD_SCHEMA = "vigie.shared/1"
STEM = "blind-spot-events"
# Bands: (label, lower bound). The distance edges sit where UN R151/R159 draw theirs (0.8-0.9 m nearest, 3.7-4.25 m
# farthest); the speed edges at standing, the front zone's 10 km/h (R159) and the sides' 30 km/h (R151).
DISTANCE_BANDS = (("0-0.5", 0.0), ("0.5-1", 0.5), ("1-2", 1.0), ("2-4", 2.0), ("4+", 4.0))
SPEED_BANDS = (("0-1", 0.0), ("1-10", 1.0), ("10-20", 10.0), ("20-30", 20.0), ("30+", 30.0))
SORT_KEY = ("start_minute", "side", "level", "distance_band", "speed_band", "lat", "lon")


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who receives the rows and why: what the access log and the README say."""

    partner: str
    reason: str
    agreement: str | None = None


@dataclass(frozen=True, slots=True)
class SharedSettings:
    output: Path
    producer: Producer
    recipient: Recipient
    audit_log: Path
    source: str  # what the access log names as the data read


@dataclass(frozen=True, slots=True)
class SharedResult:
    rows: int
    folder: Path


COLUMNS = (
    Column(
        "start_minute",
        pa.timestamp("s", tz="UTC"),
        "datetime",
        "Start of the event, UTC, truncated to the minute.",
        "minute (UTC)",
        required=True,
    ),
    Column(
        "lat",
        pa.float64(),
        "number",
        "Latitude of the bus at the start, rounded to 0.001 degree (about 110 m), or coarser if the bus stored it "
        "coarser. Empty: no position recorded.",
        "degree north (WGS 84)",
    ),
    Column(
        "lon",
        pa.float64(),
        "number",
        "Longitude of the bus at the start, rounded to 0.001 degree (about 80 m at 45 degrees north), or coarser if "
        "the bus stored it coarser. Empty: no position recorded.",
        "degree east (WGS 84)",
    ),
    Column(
        "side",
        pa.string(),
        "string",
        "Side of the bus whose camera saw the person.",
        "none (category)",
        required=True,
        enum=tuple(s.value for s in Side),
    ),
    Column(
        "level",
        pa.string(),
        "string",
        "Highest alert level of the zone while the person was in it: none (kept quiet, e.g. doors open or too fast), "
        "info, or warning (the bus was about to move towards the person).",
        "none (category)",
        required=True,
        enum=tuple(lv.label for lv in Level),
    ),
    Column(
        "distance_band",
        pa.string(),
        "string",
        "Shortest distance from the person's feet to the bus body during the event, as a band: lower bound "
        "included, upper excluded. Empty: the camera has no ground calibration.",
        "metre",
        enum=tuple(name for name, _ in DISTANCE_BANDS),
    ),
    Column(
        "speed_band",
        pa.string(),
        "string",
        "Speed of the bus when the event started, as a band: lower bound included, upper excluded.",
        "km/h",
        required=True,
        enum=tuple(name for name, _ in SPEED_BANDS),
    ),
)


def _band(values: pa.ChunkedArray, bands: tuple[tuple[str, float], ...]) -> pa.Array:
    x = np.asarray(values.to_numpy(zero_copy_only=False), dtype=float)
    names = np.array([name for name, _ in bands], dtype=object)
    index = np.searchsorted([lower for _, lower in bands], np.maximum(np.nan_to_num(x, nan=0.0), 0.0), side="right")
    labels = names[index - 1] if len(x) else np.array([], dtype=object)
    return pa.array(labels, pa.string(), mask=np.isnan(x))


def shared_rows(events: pa.Table) -> pa.Table:
    """One row per event, generalised and sorted; nothing else of the event survives."""
    rows = pa.table(
        {
            "start_minute": pc.floor_temporal(events["start_ts"], unit="minute").cast(pa.timestamp("s", tz="UTC")),
            "lat": pc.round(events["lat"], LOCATION_DECIMALS),
            "lon": pc.round(events["lon"], LOCATION_DECIMALS),
            "side": events["side"],
            "level": events["max_level"],
            "distance_band": _band(events["min_distance_m"], DISTANCE_BANDS),
            "speed_band": _band(events["speed_kmh_at_start"], SPEED_BANDS),
        }
    )
    order = pc.sort_indices(rows, sort_keys=[(n, "ascending") for n in SORT_KEY])
    return rows.take(order)


def log_export(settings: SharedSettings, query: EventQuery, rows: int) -> None:
    """One JSON line in the access log, the same file and format as clip reads (recorder/audit.py), appended and
    fsynced before the package is published: an export the log does not hold never happened."""
    r = settings.recipient
    if not r.reason.strip():
        raise ReplayError("--reason: say why the data is shared; it is written to the access log")
    line = {
        "ts": round(time.time(), 3),
        "user": getpass.getuser(),
        "action": "export-shared",
        "export": str(settings.output),
        "source": settings.source,
        "from": query.start.isoformat() if query.start else None,
        "to": query.end.isoformat() if query.end else None,
        "rows": rows,
        "partner": r.partner,
        "agreement": r.agreement,
        "reason": r.reason.strip(),
    }
    try:
        private_dir(settings.audit_log.parent)  # the recorder's access log, created the same way (core.atomic)
        fd = open_append(settings.audit_log)
        try:
            os.write(fd, (json.dumps(line, ensure_ascii=False) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ReplayError(f"cannot write the access log {settings.audit_log}: {exc.strerror or exc}") from None


def package_spec(rows: pa.Table, settings: SharedSettings, query: EventQuery, events: pa.Table) -> PackageSpec:
    start, end = coverage_days(query, events, "UTC")
    cover = Coverage(start, end, "UTC", bbox(rows), "0.001 degree (about 100 m), or coarser as stored")
    r = settings.recipient
    ref = r.agreement or "[reference to be completed]"
    terms = Licence(
        "LicenseRef-vigie-shared-agreement", f"Shared with {r.partner} under agreement {ref}; not an open licence", None
    )
    bands = [n for n, _ in DISTANCE_BANDS], [n for n, _ in SPEED_BANDS]
    facts = SharedFacts(settings.producer, r.partner, r.agreement, cover, STEM, *bands)
    return PackageSpec(
        name=f"vigie-blind-spot-events-shared-{start}-{end}",
        title=f"Bus blind-spot events, one row per event, shared with {r.partner} ({start} to {end})",
        description=(
            f"Event-level rows shared with {r.partner} under a data-sharing agreement: not open data, not to be "
            "published or passed on. Time to the minute, position to about 100 m, distance and speed as bands, no "
            "identifiers. See README.md (français, English)."
        ),
        licence=terms,
        producer=settings.producer,
        coverage=cover,
        table=TableSpec(STEM, "Blind-spot events (one row per event)", "Generalised event rows.", COLUMNS),
        readme=shared_readme(facts),
        keywords=("road safety", "bus", "blind spot", "shared data"),
        method={
            "method": METHOD_SCHEMA,
            "location_decimals": LOCATION_DECIMALS,
            "time_resolution": "minute",
            "distance_bands_m": [n for n, _ in DISTANCE_BANDS],
            "speed_bands_kmh": [n for n, _ in SPEED_BANDS],
        },
    )


def export_shared(events: pa.Table, query: EventQuery, settings: SharedSettings) -> SharedResult:
    """Stage the package, log the export, then publish it. `events` must not be empty."""
    rows = shared_rows(events)
    spec = package_spec(rows, settings, query, events)
    with StagedFolder(settings.output, PRIVATE) as folder:
        write_package(spec, rows, folder)
        log_export(settings, query, rows.num_rows)
        folder.publish()
    return SharedResult(rows.num_rows, settings.output)
