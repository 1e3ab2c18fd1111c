"""Anonymised event metadata, written to a hive-partitioned Parquet dataset.

Layout: `<dir>/date=YYYY-MM-DD/bus=<id>/part-<first start>-<random>.parquet` (date of the event start, UTC), zstd.
Each file is written under a hidden temporary name, fsynced and renamed, so a reader never sees half a file.

What is deliberately absent: image bytes, face data, track ids (they would let someone join a person across events),
and precise location (rounded to `location_decimals`, about 1 km at 2).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from edge.types import Event, Level
from recorder.wal import EventWal, pending_events

if TYPE_CHECKING:
    from recorder.operating import OperatingLog

log = logging.getLogger(__name__)

_TICK = object()
SCHEMA_VERSION = 3  # 2: + clip; 3: + info_alerts, warning_alerts
SCHEMA_NAME = f"vigie.events/{SCHEMA_VERSION}"

EVENT_SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.int16(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("bus_id", pa.string(), nullable=False),
        pa.field("camera", pa.string(), nullable=False),
        pa.field("side", pa.string(), nullable=False),
        pa.field("zone", pa.string(), nullable=False),
        pa.field("start_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("end_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("duration_s", pa.float32(), nullable=False),
        pa.field("max_level", pa.string(), nullable=False),
        pa.field("min_distance_m", pa.float32()),
        pa.field("frames", pa.int32(), nullable=False),
        pa.field("max_score", pa.float32(), nullable=False),
        pa.field("speed_kmh_at_start", pa.float32(), nullable=False),
        pa.field("indicator_at_start", pa.string(), nullable=False),
        pa.field("doors_open_at_start", pa.bool_(), nullable=False),
        pa.field("reverse_at_start", pa.bool_(), nullable=False),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("clip", pa.string()),  # clip id (file stem under the clips folder), null without the recorder
        # Alerts the driver received that this person raised (see edge.types.Event); their sum is the alert count.
        # Null in rows written before schema 3.
        pa.field("info_alerts", pa.int16()),
        pa.field("warning_alerts", pa.int16()),
    ],
    metadata={"vigie.schema": SCHEMA_NAME},
)


@dataclass(frozen=True, slots=True)
class EventSink:
    """Where and how event rows are written."""

    root: Path
    bus_id: str
    model_id: str
    location_decimals: int = 2


def _coarse(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(value, decimals)


def event_row(event: Event, sink: EventSink) -> dict:
    v = event.vehicle_at_start
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event.event_id,
        "bus_id": sink.bus_id,
        "camera": event.camera,
        "side": event.side.value,
        "zone": event.zone,
        "start_ts": dt.datetime.fromtimestamp(event.start_ts, dt.UTC),
        "end_ts": dt.datetime.fromtimestamp(event.end_ts, dt.UTC),
        "duration_s": max(event.end_ts - event.start_ts, 0.0),
        "max_level": Level(event.max_level).label,
        "min_distance_m": event.min_distance_m,
        "frames": event.frames,
        "max_score": event.max_score,
        "speed_kmh_at_start": v.speed_kmh,
        "indicator_at_start": v.indicator.value,
        "doors_open_at_start": v.doors_open,
        "reverse_at_start": v.reverse,
        "lat": _coarse(v.lat, sink.location_decimals),
        "lon": _coarse(v.lon, sink.location_decimals),
        "model_id": sink.model_id,
        "clip": event.clip,
        "info_alerts": event.info_alerts,
        "warning_alerts": event.warning_alerts,
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_events(events: list[Event], sink: EventSink) -> list[Path]:
    """Write events as one Parquet file per date partition; returns the files written."""
    ordered = sorted(events, key=lambda e: (e.start_ts, e.event_id))
    return write_partitioned([event_row(ev, sink) for ev in ordered], EVENT_SCHEMA, sink.root, sink.bus_id)


def write_partitioned(rows: list[dict], schema: pa.Schema, root: Path, bus_id: str, stem: str = "part") -> list[Path]:
    """Rows (each with a `start_ts` datetime) as one zstd Parquet file per UTC date under `root/date=…/bus=…/`.

    Each file is written under a hidden name, fsynced, made 0600 and renamed, so a reader never sees half of it.
    """
    by_date: dict[str, list[dict]] = {}
    for row in rows:
        by_date.setdefault(row["start_ts"].strftime("%Y-%m-%d"), []).append(row)
    written = []
    for day, day_rows in by_date.items():
        folder = root / f"date={day}" / f"bus={bus_id}"
        folder.mkdir(parents=True, exist_ok=True)
        first = day_rows[0]["start_ts"].strftime("%H%M%S")
        name = f"{stem}-{first}-{uuid.uuid4().hex[:12]}.parquet"
        tmp = folder / f".{name}.tmp"
        table = pa.Table.from_pylist(day_rows, schema=schema)
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, folder / name)
        _fsync_dir(folder)
        written.append(folder / name)
    return written


def clean_leftovers(root: Path) -> int:
    """Remove temporary files a crash left behind; they were never visible as data."""
    removed = 0
    if root.is_dir():
        for tmp in root.rglob(".part-*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


class EventWriter:
    """Collects closed events off the hot loop and writes them every `flush_s` seconds and at close.

    With a write-ahead log, every confirmed and closed event is logged before it is queued, and what a previous run
    logged but never wrote is written first.
    """

    def __init__(
        self, sink: EventSink, flush_s: float, wal: EventWal | None = None, operating: OperatingLog | None = None
    ):
        self._sink = sink
        self._operating = operating
        self._flush_s = flush_s
        self._wal = wal
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self.written = 0
        self.recovered = 0
        self.files: list[Path] = []
        clean_leftovers(sink.root)
        if wal is not None:
            self._recover(wal)
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._thread.start()

    def _recover(self, wal: EventWal) -> None:
        pending = pending_events(wal.path)
        if pending:
            self.files += write_events(pending, self._sink)
            self.recovered = len(pending)
            log.warning("recovered %d events from the write-ahead log of an interrupted run", len(pending))
        wal.reset()

    def opened(self, event: Event) -> None:
        if self._wal is not None:
            self._wal.opened(event)

    def add(self, event: Event) -> None:
        if self._wal is not None:
            self._wal.closed(event)
        self._queue.put(event)

    def _run(self) -> None:
        pending: list[Event] = []
        deadline = time.monotonic() + self._flush_s
        closing = False
        while not closing:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                item = _TICK
            if item is None:
                closing = True
            elif isinstance(item, Event):
                pending.append(item)
            if self._operating is not None and (closing or self._operating.due(time.time())):
                self._operating.flush(time.time())
            if not closing and time.monotonic() < deadline:
                continue
            deadline = time.monotonic() + self._flush_s
            if pending:
                pending = self._flush(pending)

    def _flush(self, pending: list[Event]) -> list[Event]:
        """Write what is pending; returns what is still pending."""
        try:
            self.files += write_events(pending, self._sink)
        except OSError as exc:
            # Keep them and try again next round: a full or read-only disk must not lose accepted events.
            log.error("event metadata not written yet (%d pending): %s", len(pending), exc)
            return pending
        self.written += len(pending)
        if self._wal is not None:
            self._wal.done([ev.event_id for ev in pending])
        return []

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._wal is not None:
            self._wal.close()
