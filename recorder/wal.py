"""Write-ahead log of events, so a SIGKILL never loses an event the driver was already alerted about.

An event is logged when it is confirmed (the frame that can raise its alert), again when it closes, and marked done
once its Parquet file is in place. Appends are single `write()` calls on an O_APPEND descriptor: once `write`
returns the bytes are in the kernel and survive the process being killed; a background fsync each second covers a
power cut. At start, whatever is logged but not marked done is written to Parquet (an event still open at the crash
closes at the last time it was logged) and the log starts afresh.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from pathlib import Path

from edge.types import Event, Indicator, Level, Side, VehicleState

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


class EventWal:
    def __init__(self, state_dir: Path, location_decimals: int = 2):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / WAL_NAME
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # Two daemons sharing one log would recover (and reset) each other's events.
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise OSError(f"recorder.state_dir: {state_dir} is in use by another vigie daemon") from None
        self._lock = threading.Lock()
        self._dirty = False
        self._decimals = location_decimals
        self._pending: set[str] = set()  # logged (open or closed) and not yet in Parquet
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="wal-fsync", daemon=True)
        self._syncer.start()

    @staticmethod
    def _line(record: dict) -> bytes:
        return (json.dumps(record, separators=(",", ":")) + "\n").encode()

    def _log_event(self, op: str, event: Event) -> None:
        data = self._line({"op": op, "event": event_to_json(event, self._decimals)})
        with self._lock:
            self._pending.add(event.event_id)
            os.write(self._fd, data)
            self._dirty = True

    def opened(self, event: Event) -> None:
        self._log_event("open", event)

    def closed(self, event: Event) -> None:
        self._log_event("close", event)

    def done(self, event_ids: list[str]) -> None:
        """Mark events written to Parquet; a log with nothing pending starts afresh, so it never grows for weeks.
        Check and truncate under one lock: an event logged in between must not be cut away."""
        data = self._line({"op": "done", "ids": event_ids})
        with self._lock:
            self._pending.difference_update(event_ids)
            if self._pending:
                os.write(self._fd, data)
            else:
                os.ftruncate(self._fd, 0)
            self._dirty = True

    def _sync_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.sync()

    def sync(self) -> None:
        # fsync outside the lock: on an SD card it can take 100 ms, and the alert path appends under this lock.
        with self._lock:
            dirty, self._dirty = self._dirty, False
        if dirty:
            os.fsync(self._fd)

    def reset(self) -> None:
        """Start an empty log (after everything in it was written to Parquet)."""
        with self._lock:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)

    def close(self) -> None:
        self._stop.set()
        self._syncer.join(timeout=2)
        self.sync()
        os.close(self._fd)
