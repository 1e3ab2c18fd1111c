"""A small fleet of real events for the replay tests: what two buses recorded over three days of March 2026, written
by the recorder's own writer (tests build the store with `write_fleet`), and the CLI they are read with."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner, Result

from core.types import Event, Level, Side, VehicleState
from edge.cli import main
from recorder.events import EventSink, write_events

MODEL_ID = "person_ssdlite@02430c0ad569"
STOP = (45.7640, 4.8357)  # a stop in Lyon; stored rounded to 45.76, 4.84
DEPOT = (45.7412, 4.8801)


def vigie(*args: str | Path, env: dict | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def event(camera: str, start: dt.datetime, level: Level = Level.INFO, where: tuple = STOP, n: int = 0) -> Event:
    side = Side(camera)
    ts = start.timestamp() + n * 7.0  # spread a burst over a few minutes, still in the same hour
    return Event(
        event_id=f"{camera}-{int(ts)}-{n}".ljust(32, "0")[:32],
        camera=camera,
        side=side,
        zone="blind-spot",
        start_ts=ts,
        end_ts=ts + 4.0,
        max_level=level,
        min_distance_m=round(0.5 + (n % 6) * 0.4, 2),
        frames=40,
        max_score=0.9,
        vehicle_at_start=VehicleState(speed_kmh=8.0, lat=where[0], lon=where[1]),
    )


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 5, tzinfo=dt.UTC)


FLEET = {
    # bus-A, 1 March, 08:05 UTC (band 06-10): 6 right-side events at the stop (a publishable cell) and 2 on the left
    # (too few: suppressed); at 17:05 three warnings at the depot; 2 March, one event; 3 March, two.
    "bus-A": [event("right", at(1, 8), n=i) for i in range(6)]
    + [event("left", at(1, 8), n=i) for i in range(2)]
    + [event("front", at(1, 17), Level.WARNING, DEPOT, n=i) for i in range(3)]
    + [event("rear", at(2, 12))]
    + [event("right", at(3, 9), n=i) for i in range(2)],
    "bus-B": [event("right", at(1, 8), Level.WARNING, n=i) for i in range(5)]
    + [event("left", at(2, 22), Level.NONE, n=i) for i in range(4)],
}
TOTAL = sum(len(v) for v in FLEET.values())


def write_fleet(root: Path, fleet: dict[str, list[Event]] = FLEET) -> Path:
    for bus, events in fleet.items():
        write_events(events, EventSink(root, bus, MODEL_ID))
    return root
