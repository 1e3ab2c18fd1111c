"""Anonymised event metadata, written to a hive-partitioned Parquet dataset.

Layout: `<dir>/date=YYYY-MM-DD/bus=<id>/part-<first start>-<random>.parquet` (date of the event start, UTC), zstd.
Each file is written under a hidden temporary name, fsynced and renamed (core.atomic), so a reader never sees half a
file; the folders are 0700.

What is deliberately absent: image bytes, face data, track ids (they would let someone join a person across events),
and precise location (rounded to `location_decimals`, about 1 km at 2).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import FolderNotSyncedError, private_dir, remove_temps, write_atomic
from core.types import Event, Health, Level, StoreCounts
from recorder.store import Backoff, StoreFault, StoreState, StoreWatch
from recorder.wal import EventWal, pending_events

if TYPE_CHECKING:
    from recorder.operating import OperatingLog

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 2: + clip; 3: + info_alerts, warning_alerts
SCHEMA_NAME = f"vigie.events/{SCHEMA_VERSION}"
# Events waiting in memory while the disk refuses them: ~1 KB each with their log record, so ~10 MB at most;
# hours of a busy stop's events.
MAX_WAITING = 10_000
DROP_LOG_S = 60.0

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
        # Alerts the driver received that this person raised (see core.types.Event); their sum is the alert count.
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


def write_events(events: list[Event], sink: EventSink) -> list[Path]:
    """Write events as one Parquet file per date partition; returns the files written."""
    ordered = sorted(events, key=lambda e: (e.start_ts, e.event_id))
    return write_partitioned([event_row(ev, sink) for ev in ordered], EVENT_SCHEMA, sink.root, sink.bus_id)


def write_partitioned(rows: list[dict], schema: pa.Schema, root: Path, bus_id: str, stem: str = "part") -> list[Path]:
    """Rows (each with a `start_ts` datetime) as one zstd Parquet file per UTC date under `root/date=…/bus=…/`, each
    written the one atomic way (core.atomic: 0600 from the first byte, fsync, rename, fsync of the folder, the
    temporary file removed on failure) in folders created 0700."""
    by_date: dict[str, list[dict]] = {}
    for row in rows:
        by_date.setdefault(row["start_ts"].strftime("%Y-%m-%d"), []).append(row)
    written = []
    for day, day_rows in by_date.items():
        folder = private_dir(root, f"date={day}", f"bus={bus_id}")
        first = day_rows[0]["start_ts"].strftime("%H%M%S")
        dest = folder / f"{stem}-{first}-{uuid.uuid4().hex[:12]}.parquet"
        table = pa.Table.from_pylist(day_rows, schema=schema)
        try:
            write_atomic(dest, functools.partial(_write_parquet, table))
        except FolderNotSyncedError as exc:
            # The file is in place and complete: calling it unwritten would write its rows twice on the retry.
            log.error("%s (a power cut may lose it)", exc)
        written.append(dest)
    return written


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def _day_of(event: Event) -> str:
    return dt.datetime.fromtimestamp(event.start_ts, dt.UTC).strftime("%Y-%m-%d")


def stored_event_ids(sink: EventSink, days: set[str]) -> set[str]:
    """Event ids already in this bus's Parquet files of these UTC days (read at start only: one column per file)."""
    ids: set[str] = set()
    for day in days:
        for path in (sink.root / f"date={day}" / f"bus={sink.bus_id}").glob("part-*.parquet"):
            try:
                ids.update(pq.read_table(path, columns=["event_id"])["event_id"].to_pylist())
            except (OSError, pa.ArrowException) as exc:
                log.warning("%s unreadable while checking recovered events: %s", path, exc)
    return ids


def clean_leftovers(root: Path) -> int:
    """Remove temporary files a crash left behind; they were never visible as data. A disk that fails here is
    reported by the first write, not here: this must not stop the daemon from starting."""
    try:
        return remove_temps(root, recursive=True) if root.is_dir() else 0
    except OSError as exc:
        log.error("could not clean temporary files under %s: %s", root, exc)
        return 0


def _by_day(events: list[Event]) -> list[list[Event]]:
    """One batch per UTC date of the start, so each batch is one file and succeeds or fails whole."""
    days: dict[dt.date, list[Event]] = {}
    for ev in events:
        days.setdefault(dt.datetime.fromtimestamp(ev.start_ts, dt.UTC).date(), []).append(ev)
    return list(days.values())


class EventWriter:
    """Collects closed events off the hot loop and writes them every `flush_s` seconds and at close.

    With a write-ahead log, every confirmed and closed event is logged before it is queued, and what a previous run
    logged but never wrote is written first. A write that fails (full disk, read-only or failing card) is retried
    with back-off; meanwhile at most `max_waiting` events wait in memory, beyond that the oldest are dropped and
    counted. Nothing here raises into the alert loop or the daemon's start: faults go to `health()`.
    """

    def __init__(
        self,
        sink: EventSink,
        flush_s: float,
        wal: EventWal | None = None,
        operating: OperatingLog | None = None,
        max_waiting: int = MAX_WAITING,
    ):
        self._sink = sink
        self._operating = operating
        self._flush_s = flush_s
        self._wal = wal
        self._max = max_waiting
        self._lock = threading.Lock()  # guards what waits and the counts; never held while writing
        self._waiting: deque[Event] = deque()
        self._in_flight: list[Event] = []  # taken by the writer thread for the write in progress; counted too
        self._fault: StoreFault | None = None
        self._backoff = Backoff()
        self._watch = StoreWatch()
        self._closing = threading.Event()
        self._next_drop_log = 0.0
        self.counts = StoreCounts()
        self.files: list[Path] = []
        clean_leftovers(sink.root)
        if wal is not None:
            self._recover(wal)
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._thread.start()

    def _recover(self, wal: EventWal) -> None:
        """What an interrupted run logged but never wrote waits first in line; the thread writes it at once. Until
        then the log keeps it, so a full disk at start delays these events but never loses them."""
        try:
            pending = pending_events(wal.path)
        except OSError as exc:
            log.error("write-ahead log %s unreadable, kept as it is for a later start: %s", wal.path, exc)
            wal.adopt(None)
            return
        wal.adopt({ev.event_id for ev in pending})
        # A kill between a batch's rename and its `done` record leaves events both in Parquet and pending here:
        # written again they would be counted twice. The store itself says which ones already made it.
        stored = stored_event_ids(self._sink, {_day_of(ev) for ev in pending}) if pending else set()
        if stored & {ev.event_id for ev in pending}:
            wal.done(sorted(stored & {ev.event_id for ev in pending}))
            pending = [ev for ev in pending if ev.event_id not in stored]
        if pending:
            log.warning("recovered %d events from the write-ahead log of an interrupted run", len(pending))
            self._waiting.extend(pending)
            self.counts = replace(self.counts, recovered=len(pending), accepted=len(pending))

    def opened(self, event: Event) -> None:
        if self._wal is not None:
            self._wal.opened(event)

    def add(self, event: Event) -> None:
        if self._wal is not None:
            self._wal.closed(event)
        with self._lock:
            self.counts = replace(self.counts, accepted=self.counts.accepted + 1)
            self._waiting.append(event)
            self._bound()

    def _bound(self) -> None:
        """Drop the oldest waiting events beyond the bound (lock held); counted, logged, told on `health`."""
        over = len(self._waiting) + len(self._in_flight) - self._max
        if over <= 0:
            return
        gone = [self._waiting.popleft() for _ in range(min(over, len(self._waiting)))]
        if not gone:
            return
        kept = self._wal.dropped([ev.event_id for ev in gone]) if self._wal is not None else 0
        self.counts = replace(
            self.counts, dropped=self.counts.dropped + len(gone), dropped_in_wal=self.counts.dropped_in_wal + kept
        )
        if time.monotonic() >= self._next_drop_log:  # at the bound every new event drops one: a line a minute
            self._next_drop_log = time.monotonic() + DROP_LOG_S
            log.error(
                "events dropped from memory: more than %d wait for the disk; %d dropped since start (%d of them kept "
                "in the write-ahead log for the next start)",
                self._max,
                self.counts.dropped,
                self.counts.dropped_in_wal,
            )

    def state(self) -> StoreState:
        with self._lock:
            waiting = len(self._waiting) + len(self._in_flight)
            dropped = self.counts.dropped
        wal_fault = self._wal.fault() if self._wal is not None else None
        return StoreState(wal_fault, self._fault, waiting, dropped, self._max)

    def health(self) -> list[Health]:
        """The store's status changes for the `health` topic (called from the daemon's loop)."""
        return self._watch.check(self.state())

    def current_health(self) -> list[Health]:
        """The store's fault, if any, for the daemon's periodic heartbeat."""
        return self._watch.current(self.state())

    def _run(self) -> None:
        next_write = time.monotonic() if self._waiting else time.monotonic() + self._flush_s
        # Wake at least every few seconds: the operating-time row is due on its own clock.
        while not self._closing.wait(min(max(next_write - time.monotonic(), 0.0), 5.0)):
            if self._operating is not None and self._operating.due(time.time()):
                self._operating.flush(time.time())
            if time.monotonic() >= next_write:
                ok = self._write_waiting()
                next_write = time.monotonic() + (self._flush_s if ok else self._backoff.failed())
        if self._operating is not None:
            self._operating.flush(time.time())
        self._write_waiting()

    def _write_waiting(self) -> bool:
        """Write what waits, one file per UTC date; what fails goes back to the head of the line. True if all went."""
        with self._lock:
            batch = self._in_flight = list(self._waiting)
            self._waiting.clear()
        failed: list[Event] = []
        for day in _by_day(batch):
            if failed:  # the disk refused the day before: do not hammer it in the same round
                failed += day
                continue
            try:
                files = write_events(day, self._sink)
            except OSError as exc:
                self._failed(exc, len(batch))
                failed += day
                continue
            self.files += files
            ids = {ev.event_id for ev in day}
            with self._lock:
                self.counts = replace(self.counts, written=self.counts.written + len(day))
                self._in_flight = [ev for ev in self._in_flight if ev.event_id not in ids]
            if self._wal is not None:
                self._wal.done(list(ids))
        with self._lock:
            self._waiting.extendleft(reversed(failed))
            self._in_flight = []
            self._bound()
        if not failed and self._fault is not None and batch:
            log.warning("event metadata written again to %s", self._sink.root)
            self._fault = None
            self._backoff.succeeded()
        return not failed

    def _failed(self, exc: OSError, waiting: int) -> None:
        fault = StoreFault.of("event folder", self._sink.root, exc)
        if fault != self._fault:
            log.error("event metadata not written yet (%d waiting in memory, retrying): %s", waiting, fault)
        self._fault = fault

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=30)
        if self._wal is not None:
            self._wal.close()
        with self._lock:
            # In flight too: a write still hung on a dying card when the join gave up is not counted as written.
            unwritten = [ev.event_id for ev in (*self._in_flight, *self._waiting)]
        in_wal = self._wal.holds(unwritten) if self._wal is not None else 0
        self.counts = replace(self.counts, unwritten=len(unwritten), unwritten_in_wal=in_wal)
        if unwritten:
            log.error(
                "%d event(s) not written to %s at exit: %d in the write-ahead log for the next start, %d lost",
                len(unwritten),
                self._sink.root,
                in_wal,
                len(unwritten) - in_wal,
            )
