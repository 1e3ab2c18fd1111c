"""`vigie replay compact` and `vigie replay sql` (registered on the replay group by replay/cli.py): the store as a
dataset for the city's analysts. pyarrow and DuckDB are imported inside the commands, like every replay command."""

from __future__ import annotations

import sys

import click

from replay.options import dated, day_start, source_options
from replay.progress import Progress
from replay.query import EventQuery, SourceSpec


@click.command("compact", short_help="The curated tier: one sorted Parquet file per bus-day; raw left untouched.")
@source_options(with_filters=True, dates_only=True)
@dated
def compact(source: str, endpoint_url: str | None, query: EventQuery) -> None:
    """Write one sorted, zstd Parquet file per bus-day under curated/events/ beside the raw events, for the days
    in range (whole days). Idempotent: a bus-day already compacted is left alone, one that got a late upload is
    rebuilt. Raw files and manifests are never touched."""
    from replay.compact import compact as run

    days = EventQuery(start=day_start(query.start), end=query.end)
    # A bar only on a terminal: in a log or a pipe, a bad raw file stays the one line on stderr.
    bar = Progress("compact") if sys.stderr.isatty() else None
    try:
        result = run(SourceSpec(source, endpoint_url), days, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    where = f"s3://{result.root}" if source.startswith("s3://") else result.root
    click.echo(
        f"compact: {result.bus_days} bus-day(s): {result.built} built ({result.rows} rows from {result.raw_files} "
        f"raw files), {result.up_to_date} up to date, {result.removed} older curated file(s) removed -> {where}"
    )


@click.command("sql", short_help="Run one SELECT on the store with DuckDB (table `events`).")
@click.argument("sql", metavar="SQL")
@source_options(with_filters=False)
@click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row instead of a table.")
@click.option("--json", "fmt", flag_value="json", help="One JSON object per row instead of a table.")
def sql(sql: str, source: str, endpoint_url: str | None, fmt: str | None) -> None:
    """Run SQL (one SELECT) with DuckDB over the event store as the table `events`: every event column plus
    `date` and `bus`, compacted bus-days from the curated tier and the others from raw, each once. Filters on
    `date` and `bus` open only those folders. Read-only: the query can reach no file, URL or setting.

    Example: vigie replay sql "SELECT bus, count(*) AS n FROM events WHERE max_level = 'warning' GROUP BY bus"
    """
    from replay import sql as q
    from replay.tiers import stale_note

    result = q.run_sql(SourceSpec(source, endpoint_url), sql)
    if note := stale_note(result.plan):
        click.echo(note, err=True)
    if fmt == "csv":
        click.echo(q.csv_text(result.table), nl=False)
        return
    lines = q.json_lines(result.table) if fmt == "json" else q.table_lines(result.table)
    text = "\n".join(lines)
    if text:
        click.echo(text)
