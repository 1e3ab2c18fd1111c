"""What an analyst asks the event store for: where to look and which events. Plain values, no I/O, so the CLI can
build them without importing pyarrow (every `vigie` command loads the replay group)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from replay.errors import ReplayError

DEFAULT_SOURCE = "var/events"  # the daemon's default events.dir
LEVELS = ("none", "info", "warning")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where the events are: a local folder, or s3://bucket/prefix with an optional endpoint (http:// or https://)."""

    location: str
    endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events to read. `start` is inclusive and `end` exclusive, both UTC; None leaves that side open."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    bus: str | None = None
    camera: str | None = None
    level: str | None = None
    event_id: str | None = None


def parse_when(text: str, end_of_day: bool = False) -> dt.datetime:
    """`YYYY-MM-DD` or an ISO date-time (UTC unless it says otherwise). A bare date used as an upper bound means the
    whole of that day, which is what an analyst typing `--to 2026-03-31` expects."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ReplayError(f"{text!r}: not a date (YYYY-MM-DD) or ISO date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if end_of_day and len(text) == 10:
        when += dt.timedelta(days=1)
    return when.astimezone(dt.UTC)
