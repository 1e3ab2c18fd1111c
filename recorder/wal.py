"""Write-ahead log of events, so a SIGKILL never loses an event the driver was already alerted about.

An event is logged when it is confirmed (the frame that can raise its alert), again when it closes, and marked done
once its Parquet file is in place. Appends are single `write()` calls on an O_APPEND descriptor: once `write`
returns the bytes are in the kernel and survive the process being killed; a background fsync each second covers a
power cut. At start, whatever is logged but not marked done is written to Parquet (an event still open at the crash
closes at the last time it was logged); the log starts afresh once nothing in it is pending.

A disk that refuses the log (full, read-only, failing) must not stop alerts: see `EventWal`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
from pathlib import Path

from core.atomic import open_append, private_dir
from core.types import Event, Indicator, Level, Side, VehicleState
from recorder.store import Backoff, StoreFault

log = logging.getLogger(__name__)

WAL_NAME = "events.wal"


def event_to_json(event: Event, location_decimals: int = 2) -> dict:
    """The log is on disk too: it gets the same coarse location as the Parquet rows, never the exact one."""
    v = event.vehicle_at_start
    return {
        "event_id": event.event_id,
        "camera": event.camera,
        "side": event.side.value,
        "zone": event.zone,
        "start_ts": event.start_ts,
        "end_ts": event.end_ts,
        "max_level": int(event.max_level),
        "min_distance_m": event.min_distance_m,
        "frames": event.frames,
        "max_score": event.max_score,
        "clip": event.clip,
        "info_alerts": event.info_alerts,
        "warning_alerts": event.warning_alerts,
        "vehicle": {
            "speed_kmh": v.speed_kmh,
            "indicator": v.indicator.value,
            "doors_open": v.doors_open,
            "reverse": v.reverse,
            "lat": None if v.lat is None else round(v.lat, location_decimals),
            "lon": None if v.lon is None else round(v.lon, location_decimals),
            "ts": v.ts,
        },
    }


def event_from_json(d: dict) -> Event:
    v = d["vehicle"]
    return Event(
        event_id=d["event_id"],
        camera=d["camera"],
        side=Side(d["side"]),
        zone=d["zone"],
        start_ts=d["start_ts"],
        end_ts=d["end_ts"],
        max_level=Level(d["max_level"]),
        min_distance_m=d["min_distance_m"],
        frames=d["frames"],
        max_score=d["max_score"],
        clip=d.get("clip"),
        info_alerts=int(d.get("info_alerts", 0)),
        warning_alerts=int(d.get("warning_alerts", 0)),
        vehicle_at_start=VehicleState(
            speed_kmh=v["speed_kmh"],
            indicator=Indicator(v["indicator"]),
            doors_open=v["doors_open"],
            reverse=v["reverse"],
            lat=v["lat"],
            lon=v["lon"],
            ts=v["ts"],
        ),
    )


def pending_events(path: Path) -> list[Event]:
    """Events logged but never marked done; the newest record of each wins. A torn last line is ignored."""
    if not path.exists():
        return []
    latest: dict[str, Event] = {}
    done: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # the kill landed mid-line: that record was never acknowledged
            if rec["op"] == "done":
                done.update(rec["ids"])
            else:
                latest[rec["event"]["event_id"]] = event_from_json(rec["event"])
    return [ev for eid, ev in latest.items() if eid not in done]


class WalInUseError(OSError):
    """Another daemon holds the log: a configuration mistake, not a disk fault, so the daemon refuses to start."""


class EventWal:
    """The log, kept going through disk faults.

    A record the disk refuses (full, read-only, I/O error) waits in memory, only the latest one per event, and the
    syncer thread retries with back-off; meanwhile the alert path only stores it (no system call on a failing disk).
    Nothing here raises into the alert loop: faults are kept in `fault()` for `health`. A short write is cut back so
    the file only ever holds whole lines (the next record must not be glued to half of one).
    """

    def __init__(self, state_dir: Path, location_decimals: int = 2):
        self.state_dir = state_dir
        self.path = state_dir / WAL_NAME
        self._decimals = location_decimals
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0  # bytes of whole records in the file
        self._in_file: set[str] = set()  # events with a record in the file and no `done` there: recovered at start
        self._unlogged: dict[str, bytes] = {}  # latest record of events the disk has not taken yet
        self._done_unlogged: set[str] = set()  # in the file and since written to Parquet; `done` not in the file yet
        # Until `adopt` says which of its events are pending, an old log is kept whole: truncating it could lose them.
        self._keep_file = False
        self._adopted = False
        self._dirty = False
        self._fault: StoreFault | None = None
        self._backoff = Backoff()
        try:
            self._open()
        except WalInUseError:
            raise
        except OSError as exc:
            self._failed(exc)
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="wal-fsync", daemon=True)
        self._syncer.start()

    def _open(self) -> None:
        private_dir(self.state_dir)
        fd = open_append(self.path)
        try:
            # Two daemons sharing one log would recover (and reset) each other's events.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WalInUseError(f"recorder.state_dir: {self.state_dir} is in use by another vigie daemon") from None
        self._size = os.fstat(fd).st_size
        self._keep_file = self._keep_file or (self._size > 0 and not self._adopted)
        self._fd = fd

    @staticmethod
    def _line(record: dict) -> bytes:
        return (json.dumps(record, separators=(",", ":")) + "\n").encode()

    def _log_event(self, op: str, event: Event) -> None:
        data = self._line({"op": op, "event": event_to_json(event, self._decimals)})
        with self._lock:
            self._unlogged[event.event_id] = data  # a newer record of the same event supersedes an unwritten one
            if self._fault is None:
                self._try_drain()

    def opened(self, event: Event) -> None:
        self._log_event("open", event)

    def closed(self, event: Event) -> None:
        self._log_event("close", event)

    def adopt(self, event_ids: set[str] | None) -> None:
        """At start: these events of an earlier run are in the file and not in Parquet yet (None: the file could not
        be read, so keep all of it). With nothing to adopt the log starts afresh."""
        with self._lock:
            self._adopted = True
            self._keep_file = event_ids is None
            self._in_file |= event_ids or set()
            if self._fault is None:
                self._try_drain()

    def done(self, event_ids: list[str]) -> None:
        """Mark events written to Parquet; a log with nothing pending starts afresh, so it never grows for weeks.
        Check and truncate under one lock: an event logged in between must not be cut away."""
        with self._lock:
            for eid in event_ids:
                self._unlogged.pop(eid, None)  # never reached the file: nothing to mark there
                if eid in self._in_file:
                    self._done_unlogged.add(eid)
            if self._fault is None:
                self._try_drain()

    def dropped(self, event_ids: list[str]) -> int:
        """Forget records not in the file yet of events dropped from memory; returns how many of them the file still
        holds (the next start writes those: a record the disk took is never thrown away)."""
        with self._lock:
            for eid in event_ids:
                self._unlogged.pop(eid, None)
            return sum(1 for eid in event_ids if eid in self._in_file)

    def holds(self, event_ids: list[str]) -> int:
        """How many of these events the file holds, for the next start to write."""
        with self._lock:
            return sum(1 for eid in event_ids if eid in self._in_file and eid not in self._done_unlogged)

    def fault(self) -> StoreFault | None:
        return self._fault

    def _drain(self) -> None:
        """Bring the file up to date: truncate it when nothing in it is needed, append what waits (lock held)."""
        if self._fd is None:
            self._open()
        assert self._fd is not None
        needed = self._keep_file or len(self._in_file) > len(self._done_unlogged)  # done ⊆ in file: no set arithmetic
        if self._size and not needed:
            os.ftruncate(self._fd, 0)  # frees space, so it works on a full disk too
            self._size = 0
            self._in_file.clear()
            self._done_unlogged.clear()
            self._dirty = True
        data = b"".join(self._unlogged.values())
        if self._done_unlogged:
            data = self._line({"op": "done", "ids": sorted(self._done_unlogged)}) + data
        if not data:
            return
        written = os.write(self._fd, data)
        if written < len(data):
            os.ftruncate(self._fd, self._size)
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (wrote {written} of {len(data)} bytes)")
        self._size += written
        self._in_file |= self._unlogged.keys()
        self._in_file -= self._done_unlogged
        self._unlogged.clear()
        self._done_unlogged.clear()
        self._dirty = True

    def _try_drain(self) -> bool:
        try:
            self._drain()
        except WalInUseError as exc:  # only when the first open failed: a daemon started meanwhile
            self._failed(OSError(errno.EBUSY, str(exc)))
            return False
        except OSError as exc:
            self._failed(exc)
            return False
        return True

    def _failed(self, exc: OSError) -> None:
        fault = StoreFault.of("write-ahead log", self.state_dir, exc)
        delay = self._backoff.failed()
        if fault != self._fault:
            log.error("%s; %d event record(s) wait in memory, retrying in %.0f s", fault, len(self._unlogged), delay)
        self._fault = fault

    def _sync_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.sync()

    def sync(self) -> None:
        """Retry a failed log when due, and fsync what was appended. Never raises: faults go to `fault()`."""
        with self._lock:
            retrying = self._fault is not None
            if retrying and not self._backoff.due():
                return
            if not self._try_drain():
                return  # still failing (or failing now): the back-off decides the next try
            dirty, self._dirty = self._dirty, False
            fd = self._fd
        # fsync outside the lock: on an SD card it can take 100 ms, and the alert path appends under this lock.
        if fd is None or not (dirty or retrying):
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            with self._lock:
                self._dirty = True
                self._failed(exc)
            return
        if retrying:
            with self._lock:
                if self._fault is not None:
                    log.warning("write-ahead log %s written again", self.state_dir)
                self._fault = None
                self._backoff.succeeded()

    def close(self) -> None:
        self._stop.set()
        self._syncer.join(timeout=2)
        with self._lock:
            self._backoff.succeeded()  # one last try, whatever the back-off says
        self.sync()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
