"""Child process for the events-WAL crash test: recover, then open, close and flush events until killed.

    python -m tests.crash_wal_child STATE_DIR EVENTS_DIR RUN

Uses the recorder's own `EventWal` and `EventWriter` as the daemon does. Prints `recovering`, then `ready N`
(N events recovered), then `closed <event_id> <frames>` once `add()` has returned for that event — the moment
the daemon would consider the event accepted. Up to three events are open at a time, as with several people in
zones; ids are `r<RUN>-<i>`, so the parent knows every id that could ever appear.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from core.types import Event, Level, Side, VehicleState
from recorder.events import EventSink, EventWriter
from recorder.wal import EventWal

DAY_START = dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC).timestamp()


def event(run: int, i: int, frames: int) -> Event:
    start = DAY_START + 3600 * run + 7 * i
    return Event(
        event_id=f"r{run}-{i}",
        camera="right",
        side=Side.RIGHT,
        zone="blind-spot",
        start_ts=start,
        end_ts=start + 0.1 * frames,
        max_level=Level.WARNING,
        min_distance_m=1.2,
        frames=frames,
        max_score=0.8,
        vehicle_at_start=VehicleState(speed_kmh=12.0, ts=start),
    )


def main() -> None:
    state_dir, events_dir, run = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    print("recovering", flush=True)
    wal = EventWal(state_dir)
    # A short flush interval: many Parquet writes and `done` records per second, so kills land among them.
    writer = EventWriter(EventSink(root=events_dir, bus_id="bus-crash", model_id="crash@test"), 0.02, wal)
    print(f"ready {writer.counts.recovered}", flush=True)
    i = 0
    open_now: list[int] = []
    while True:
        writer.opened(event(run, i, 1))
        open_now.append(i)
        i += 1
        if len(open_now) == 3:
            first = open_now.pop(0)
            closed = event(run, first, 10 + first % 7)
            writer.add(closed)
            print(f"closed {closed.event_id} {closed.frames}", flush=True)
        time.sleep(0.002)  # the workload's pace (~300 events/s, far above a real bus), not a wait


if __name__ == "__main__":
    main()
