"""How long each bus was operating: the denominator of "alerts per operating hour".

Events say what happened; they cannot say how long nothing happened. So the daemon also writes, every
`OPERATING_FLUSH_S` and when it stops, one row per interval it ran: `<operating root>/date=…/bus=…/part-….parquet`
(same layout and atomic writing as the events, uploaded beside them as the `operating` dataset). A crash loses at
most the interval in progress; a write that fails (a full disk) is simply retried with a longer interval.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from recorder.events import clean_leftovers, write_partitioned

log = logging.getLogger(__name__)

OPERATING_FLUSH_S = 600.0  # one small file per bus per 10 minutes at most: the fleet's store stays readable
SCHEMA_NAME = "vigie.operating/1"
OPERATING_SCHEMA = pa.schema(
    [
        pa.field("bus_id", pa.string(), nullable=False),
        pa.field("start_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("end_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("duration_s", pa.float32(), nullable=False),
        pa.field("cameras", pa.int16(), nullable=False),
        pa.field("alerts_mode", pa.string(), nullable=False),  # "publish", or "log" (stealth)
    ],
    metadata={"vigie.schema": SCHEMA_NAME},
)


@dataclass(slots=True)
class OperatingLog:
    """The interval since the last row written; `flush` writes it (if due, or if `final`) and starts the next."""

    root: Path
    bus_id: str
    cameras: int
    alerts_mode: str
    since: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        clean_leftovers(self.root)

    def due(self, now: float) -> bool:
        return now - self.since >= OPERATING_FLUSH_S

    def flush(self, now: float) -> None:
        """Write [since, now] as one row per UTC day it covers, so each date partition adds up on its own."""
        while self.since < now:
            start = dt.datetime.fromtimestamp(self.since, dt.UTC)
            midnight = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
            end = min(now, midnight)
            if not self._write(self.since, end):
                return
            self.since = end

    def _write(self, start: float, end: float) -> bool:
        row = {
            "bus_id": self.bus_id,
            "start_ts": dt.datetime.fromtimestamp(start, dt.UTC),
            "end_ts": dt.datetime.fromtimestamp(end, dt.UTC),
            "duration_s": end - start,
            "cameras": self.cameras,
            "alerts_mode": self.alerts_mode,
        }
        try:
            write_partitioned([row], OPERATING_SCHEMA, self.root, self.bus_id)
        except OSError as exc:
            log.error("operating time not written yet (will retry with a longer interval): %s", exc)
            return False
        return True
