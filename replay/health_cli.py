"""`vigie replay fleet-status` (registered on the replay group by replay/cli.py). pyarrow and scipy are imported
inside the command, like every replay command's heavy modules."""

from __future__ import annotations

import datetime as dt

import click

from replay.errors import ReplayError
from replay.options import source_options
from replay.query import SourceSpec


def _day(text: str | None) -> dt.date:
    """A UTC date; by default yesterday, the last day whose summaries are final."""
    if text is None:
        return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ReplayError(f"--date {text!r}: not a date (YYYY-MM-DD)") from None


@click.command("fleet-status", short_help="One line per bus for a day, from the buses' health summaries, with flags.")
@source_options(with_filters=False)
@click.option("--date", "date_text", metavar="YYYY-MM-DD", help="UTC day to report (default: yesterday).")
@click.option(
    "--fleet-days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="The fleet: every bus with health summaries or events in this many days up to --date.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per bus instead of lines.")
def fleet_status(source: str, endpoint_url: str | None, date_text: str | None, fleet_days: int, as_json: bool) -> None:
    """Each bus's day: camera uptime, stalls, reconnects, dropped frames, alerts per operating hour by level,
    recorder and event-store failures, free disk, and what ran (vigie version, model and config digests).

    Flags a bus of the fleet without a summary for the day, a camera ok less than 95 % of its time, and alert
    rates over 3x or under a third of the fleet's median (when chance alone is unlikely to explain them). Exit 0
    with or without flags: it is a report.
    """
    from replay.fleet_status import StatusSettings, assess, json_lines, latest, text_lines
    from replay.fleet_store import read_fleet

    settings = StatusSettings(day=_day(date_text), fleet_days=fleet_days)
    read = read_fleet(SourceSpec(source, endpoint_url), settings.day, fleet_days)
    status = assess(latest(read.summaries), read.seen, settings)
    for line in (json_lines if as_json else text_lines)(status):
        click.echo(line)
