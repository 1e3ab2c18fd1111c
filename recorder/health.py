"""The bus's daily health summary (`vigie.health/1`): what it holds, its Parquet schema, and its files.

One summary describes one bus's UTC day: for each camera how long it was ok, degraded, stalled, offline or still
starting, how often it stalled, went offline, lost its view or reconnected, the frames it decoded and dropped; the
driver's alerts by level over the day's operating time; recorder and event-store failures; free disk; and what ran
(vigie version, model sha256, config digest). No image bytes, no track or person ids, no location.

A day gets several summaries: one each time the daemon stops (a partial day), and a `final` one once the day is over
(at midnight UTC, or at the next start if the daemon was not running then). Each holds the day's figures from its
start up to `through_ts`, every run of that day included, so a later one supersedes an earlier one: readers keep, per
bus and date, the summary with the highest `revision` (the latest `written_ts` among equal revisions, which only a
lost state folder can produce). Files are `<root>/date=YYYY-MM-DD/bus=ID/summary-r0003-<random>.parquet`, one row
each, written atomically (core/atomic.py) and never rewritten: the bucket refuses overwrites.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import private_dir, write_atomic

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCHEMA_NAME = f"vigie.health/{SCHEMA_VERSION}"
STATE_NAME = "health-day.json"  # in recorder.state_dir: the day's figures so far, carried across restarts

_CAMERA = pa.struct(
    [
        pa.field("camera", pa.string(), nullable=False),
        # ok_s / watched_s * 100, where watched_s is every second the daemon ran with this camera configured.
        pa.field("uptime_pct", pa.float32()),
        pa.field("watched_s", pa.float32(), nullable=False),
        pa.field("ok_s", pa.float32(), nullable=False),
        pa.field("degraded_s", pa.float32(), nullable=False),
        pa.field("stalled_s", pa.float32(), nullable=False),
        pa.field("offline_s", pa.float32(), nullable=False),
        pa.field("starting_s", pa.float32(), nullable=False),
        pa.field("stalls", pa.int32(), nullable=False),
        pa.field("outages", pa.int32(), nullable=False),
        pa.field("degradations", pa.int32(), nullable=False),
        pa.field("reconnects", pa.int32(), nullable=False),
        pa.field("frames", pa.int64(), nullable=False),
        pa.field("dropped", pa.int64(), nullable=False),
    ]
)

HEALTH_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("bus_id", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("revision", pa.int32(), nullable=False),
        pa.field("final", pa.bool_(), nullable=False),
        pa.field("through_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("written_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("vigie_version", pa.string(), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("model_sha256", pa.string(), nullable=False),
        pa.field("config_sha256", pa.string(), nullable=False),
        pa.field("alerts_mode", pa.string(), nullable=False),
        pa.field("operating_s", pa.float64(), nullable=False),
        pa.field("runs", pa.int32(), nullable=False),
        pa.field("info_alerts", pa.int32(), nullable=False),
        pa.field("warning_alerts", pa.int32(), nullable=False),
        pa.field("info_per_hour", pa.float32()),  # null without operating time
        pa.field("warning_per_hour", pa.float32()),
        pa.field("recorder_failures", pa.int32(), nullable=False),
        pa.field("clip_failures", pa.int32(), nullable=False),
        pa.field("recorder_disk_full", pa.int32(), nullable=False),
        pa.field("event_store_faults", pa.int32(), nullable=False),
        pa.field("events_dropped", pa.int32(), nullable=False),
        pa.field("vehicle_stale_s", pa.float32(), nullable=False),
        pa.field("vehicle_rejected", pa.int32(), nullable=False),
        pa.field("events_disk_total_mb", pa.float64()),
        pa.field("events_disk_free_mb", pa.float64()),
        pa.field("clips_disk_total_mb", pa.float64()),  # null with the recorder off
        pa.field("clips_disk_free_mb", pa.float64()),
        # "element": the item name the Parquet spec gives list members, so the schema reads back exactly.
        pa.field("cameras", pa.list_(pa.field("element", _CAMERA, nullable=False)), nullable=False),
    ],
    metadata={"vigie.schema": SCHEMA_NAME},
)


@dataclass(frozen=True, slots=True)
class CameraDay:
    """One camera's day. Seconds by the status `health` gave it; counts of the times it entered a bad status."""

    camera: str
    ok_s: float = 0.0
    degraded_s: float = 0.0  # frames arrive but the view is dark, blocked, glaring or frozen: not up
    stalled_s: float = 0.0
    offline_s: float = 0.0
    starting_s: float = 0.0  # after the daemon's start, before the camera's first frame or failure: not up
    stalls: int = 0
    outages: int = 0  # went offline
    degradations: int = 0  # went degraded
    reconnects: int = 0
    frames: int = 0  # decoded
    dropped: int = 0  # replaced by a newer frame before the pipeline took it

    @property
    def watched_s(self) -> float:
        return self.ok_s + self.degraded_s + self.stalled_s + self.offline_s + self.starting_s

    @property
    def uptime_pct(self) -> float | None:
        return 100.0 * self.ok_s / self.watched_s if self.watched_s > 0 else None

    def plus(self, other: CameraDay) -> CameraDay:
        return CameraDay(
            self.camera,
            *(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self) if f.name != "camera"),
        )


@dataclass(frozen=True, slots=True)
class DayFigures:
    """What a bus accumulated over (part of) one UTC day; `plus` joins the runs of one day."""

    operating_s: float = 0.0
    runs: int = 0
    cameras: tuple[CameraDay, ...] = ()
    info_alerts: int = 0  # the driver's alerts (rises of a zone's level), as edge/budget.py counts them
    warning_alerts: int = 0
    recorder_failures: int = 0  # the recorder process died, or the daemon's end of it failed
    clip_failures: int = 0
    recorder_disk_full: int = 0  # times the recorder stopped starting clips for lack of disk
    event_store_faults: int = 0  # times the event store could not write (disk full, I/O error)
    events_dropped: int = 0  # events dropped from memory while the event store could not write
    vehicle_stale_s: float = 0.0  # a live vehicle feed silent, or not yet heard: zones fall back to standing still
    vehicle_rejected: int = 0

    def plus(self, other: DayFigures) -> DayFigures:
        mine = {c.camera: c for c in self.cameras}
        for cam in other.cameras:
            mine[cam.camera] = mine[cam.camera].plus(cam) if cam.camera in mine else cam
        sums = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in dataclasses.fields(self)
            if f.name != "cameras"
        }
        return DayFigures(**sums, cameras=tuple(mine.values()))

    def per_hour(self, count: int) -> float | None:
        return count * 3600.0 / self.operating_s if self.operating_s > 0 else None


@dataclass(frozen=True, slots=True)
class Identity:
    """What ran on the bus (as of the day's latest run)."""

    bus_id: str
    vigie_version: str
    model_id: str
    model_sha256: str
    config_sha256: str  # of the normalised config without credentials (edge/fleet_health.py)
    alerts_mode: str


@dataclass(frozen=True, slots=True)
class DiskUse:
    total_mb: float
    free_mb: float


@dataclass(frozen=True, slots=True)
class HealthSummary:
    identity: Identity
    day: dt.date
    revision: int
    final: bool  # the day is over: no later figures will come for it
    through_ts: float  # the figures cover the day up to this moment (epoch s)
    figures: DayFigures
    written_ts: float = 0.0  # set with the disk figures when the file is written
    events_disk: DiskUse | None = None
    clips_disk: DiskUse | None = None


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _camera_row(cam: CameraDay) -> dict:
    return {**dataclasses.asdict(cam), "uptime_pct": cam.uptime_pct, "watched_s": cam.watched_s}


def summary_row(s: HealthSummary) -> dict:
    fig = s.figures
    scalars = {f.name: getattr(fig, f.name) for f in dataclasses.fields(fig) if f.name != "cameras"}
    disks = {
        f"{name}_disk_{part}_mb": None if use is None else getattr(use, f"{part}_mb")
        for name, use in (("events", s.events_disk), ("clips", s.clips_disk))
        for part in ("total", "free")
    }
    return {
        "schema_version": SCHEMA_VERSION,
        **dataclasses.asdict(s.identity),
        "day": s.day,
        "revision": s.revision,
        "final": s.final,
        "through_ts": _utc(s.through_ts),
        "written_ts": _utc(s.written_ts),
        **scalars,
        "info_per_hour": fig.per_hour(fig.info_alerts),
        "warning_per_hour": fig.per_hour(fig.warning_alerts),
        **disks,
        "cameras": [_camera_row(c) for c in fig.cameras],
    }


def summary_from_row(row: dict) -> HealthSummary:
    """A summary read back from its row (replay's fleet-status); derived columns are recomputed, not trusted."""
    identity = Identity(**{f.name: row[f.name] for f in dataclasses.fields(Identity)})
    cam_fields = [f.name for f in dataclasses.fields(CameraDay)]
    cameras = tuple(CameraDay(**{k: c[k] for k in cam_fields}) for c in row["cameras"])
    scalar_fields = [f.name for f in dataclasses.fields(DayFigures) if f.name != "cameras"]
    figures = DayFigures(**{k: row[k] for k in scalar_fields}, cameras=cameras)

    def disk(name: str) -> DiskUse | None:
        total, free = row[f"{name}_disk_total_mb"], row[f"{name}_disk_free_mb"]
        return None if total is None or free is None else DiskUse(total, free)

    return HealthSummary(
        identity=identity,
        day=row["day"],
        revision=row["revision"],
        final=row["final"],
        through_ts=row["through_ts"].timestamp(),
        figures=figures,
        written_ts=row["written_ts"].timestamp(),
        events_disk=disk("events"),
        clips_disk=disk("clips"),
    )


def write_summary(summary: HealthSummary, root: Path) -> Path:
    """One summary as one zstd Parquet file under `root/date=…/bus=…/`, atomically; returns its path."""
    folder = private_dir(root, f"date={summary.day.isoformat()}", f"bus={summary.identity.bus_id}")
    table = pa.Table.from_pylist([summary_row(summary)], schema=HEALTH_SCHEMA)
    dest = folder / f"summary-r{summary.revision:04d}-{uuid.uuid4().hex[:12]}.parquet"
    return write_atomic(dest, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def clean_leftovers(root: Path) -> None:
    """Temporary files a crash left (hidden, so never uploaded): removed at start."""
    if root.is_dir():
        for tmp in root.rglob(".summary-*.tmp.parquet"):
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class SavedDay:
    """The day so far, kept in the state folder so that a restart (or a crash, up to the last save) carries on
    the day's figures instead of starting them again, and knows which revision comes next."""

    identity: Identity  # of the run that saved it: a day closed at a later start is described as it ran
    day: dt.date
    revision: int  # of the last summary written for this day (0: none yet)
    final_written: bool
    through_ts: float
    figures: DayFigures = field(default_factory=DayFigures)


def save_state(state: SavedDay, path: Path) -> None:
    data = dataclasses.asdict(state) | {"schema": SCHEMA_NAME, "day": state.day.isoformat()}
    text = json.dumps(data, sort_keys=True)
    private_dir(path.parent)  # the recorder's state folder
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def load_state(path: Path) -> SavedDay | None:
    """The saved day, or None when there is none or it cannot be read (then the day starts afresh)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("schema") != SCHEMA_NAME:
            return None
        fig = data.pop("figures")
        cameras = tuple(CameraDay(**c) for c in fig.pop("cameras"))
        figures = DayFigures(**fig, cameras=cameras)
        identity = Identity(**data.pop("identity"))
        day = dt.date.fromisoformat(data.pop("day"))
        return SavedDay(identity, day, **data, figures=figures)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s unreadable, the day's health figures start afresh: %s", path, exc)
        return None
