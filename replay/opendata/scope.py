"""What an export covers: the days asked for (or, without bounds, those of the events), and a refusal when the range
holds no event at all — an empty package would read as "nothing happened" when nothing was recorded."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from replay.errors import ReplayError
from replay.query import EventQuery


def _local_day(when: dt.datetime, tz: str) -> str:
    return pa.scalar(when, pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("ms", tz=tz)).cast(pa.date32()).as_py()


def coverage_days(query: EventQuery, events: pa.Table, tz: str) -> tuple[str, str]:
    """First and last day covered, YYYY-MM-DD in `tz`: the query's bounds where it has them (days without any event
    are covered too), the events' first and last start otherwise."""
    first = query.start or pc.min(events["start_ts"]).as_py()
    # `end` is exclusive: the last day covered is the one of its last millisecond.
    last = (query.end - dt.timedelta(milliseconds=1)) if query.end else pc.max(events["start_ts"]).as_py()
    return str(_local_day(first, tz)), str(_local_day(last, tz))


def _when(value: dt.datetime | None, open_end: str) -> str:
    return open_end if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def require_events(events: pa.Table, query: EventQuery, source: str) -> None:
    if events.num_rows == 0:
        span = f"from {_when(query.start, 'the first')} to {_when(query.end, 'the last')}"
        raise ReplayError(f"{source}: no events {span} (end excluded): nothing to export")
