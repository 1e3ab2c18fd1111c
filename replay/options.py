"""Options shared by the `vigie replay` commands that read the event store: where it is, and which events.

Its own module so that command modules other than replay/cli.py (replay/opendata/cli.py) declare the same options
without importing the group that registers them. Plain click and replay.query only: no pyarrow at import time.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import click

from replay.errors import ReplayError
from replay.query import DEFAULT_SOURCE, LEVELS, EventQuery, parse_when


def source_options(with_filters: bool, dates_only: bool = False) -> Callable:
    """--source/--endpoint-url, and the event filters, shared by every command that reads the store. `dates_only`:
    just --from/--to, for the exports, whose packages describe a period of the whole fleet and nothing narrower."""

    def decorate(fn: Callable) -> Callable:
        opts = [
            click.option(
                "--source",
                default=DEFAULT_SOURCE,
                show_default=True,
                help="Event store: a folder, or s3://bucket/prefix.",
            ),
            click.option(
                "--endpoint-url", help="S3 endpoint, e.g. http://127.0.0.1:8333 (default: $VIGIE_S3_ENDPOINT)."
            ),
        ]
        if with_filters:
            opts += [
                click.option(
                    "--from", "from_", metavar="WHEN", help="Events starting at or after (YYYY-MM-DD or ISO, UTC)."
                ),
                click.option(
                    "--to", metavar="WHEN", help="Events starting before; a bare date includes that whole day."
                ),
            ]
        if with_filters and not dates_only:
            opts += [
                click.option("--bus", help="Only this bus id."),
                click.option("--camera", help="Only this camera name."),
                click.option("--level", type=click.Choice(LEVELS), help="Only events that reached this level."),
            ]
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


def make_query(from_: str | None, to: str | None, bus: str | None, camera: str | None, level: str | None) -> EventQuery:
    start = parse_when(from_) if from_ else None
    end = parse_when(to, end_of_day=True) if to else None
    if start and end and end <= start:
        raise ReplayError(f"--to {to}: is not after --from {from_}")
    return EventQuery(start=start, end=end, bus=bus, camera=camera, level=level)


def filtered(fn: Callable) -> Callable:
    """Turns the filter options into one EventQuery argument named `query`."""

    @functools.wraps(fn)
    def wrapper(from_, to, bus, camera, level, **kwargs):
        return fn(query=make_query(from_, to, bus, camera, level), **kwargs)

    return wrapper


def dated(fn: Callable) -> Callable:
    """Turns --from/--to into one EventQuery argument named `query` (commands declared with `dates_only`)."""

    @functools.wraps(fn)
    def wrapper(from_, to, **kwargs):
        return fn(query=make_query(from_, to, None, None, None), **kwargs)

    return wrapper


def day_start(when: dt.datetime | None) -> dt.datetime | None:
    return None if when is None else when.replace(hour=0, minute=0, second=0, microsecond=0)
