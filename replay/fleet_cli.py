"""`vigie replay compact`, `vigie replay sql` and `vigie replay rerun-fleet` (registered on the replay group by
replay/cli.py): the store as a dataset for the city's analysts, and a new config tried over the fleet's clips.
pyarrow, DuckDB and Dask are imported inside the commands, like every replay command's heavy libraries."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from replay.errors import ReplayError
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


@click.command("rerun-fleet", short_help="Every clip of a range through a new config on Dask; what changed, per bus.")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="The config to try.")
@source_options(with_filters=True, dates_only=True)
@click.option("--bus", help="Only this bus's clips.")
@click.option(
    "--name", help="The rerun's name: its events go to <store>/reruns/NAME/events (default: the config's name)."
)
@click.option("--clips", "clips_at", metavar="LOCATION", help="The clips, when not beside the events (…/clips).")
@click.option(
    "--baseline",
    metavar="NAME",
    help="Compare with an earlier rerun of the same clips (reruns/NAME) instead of the events the buses recorded.",
)
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="A Dask scheduler to run on (default: a local cluster).")
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    help="Local cluster only: worker processes (default: one per core).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds a matched event's start may move before it counts as shifted.",
)
@dated
def rerun_fleet(
    config_path: Path,
    source: str,
    endpoint_url: str | None,
    query: EventQuery,
    bus: str | None,
    name: str | None,
    clips_at: str | None,
    baseline: str | None,
    scheduler: str | None,
    workers: int | None,
    tolerance: float,
) -> None:
    """Replay every recorded clip of the range through the pipeline with the config CONFIG, on Dask distributed,
    write the new events beside the old ones (<store>/reruns/NAME/events/, read with --source) and print what
    changed, fleet-wide and per bus: events added, removed, shifted, and the driver's alerts per operating hour.

    Each clip plays at the times its frames were recorded, with the bus's recorded speed and indicator. Workers read
    the clips from the store themselves: with --scheduler, use a bucket (or a folder every worker mounts), and give
    the workers S3 credentials in their own environment.
    """
    from replay import fleet
    from replay.clip_replay import DOORS_NOTE
    from replay.fleet_compare import compare_run, summary_lines
    from replay.fleet_plan import check_name

    run_name = check_name(name if name is not None else config_path.stem)
    if scheduler is not None and workers is not None:
        raise ReplayError("--workers: sizes the local cluster; a --scheduler has the workers that joined it")
    engine = fleet.Engine(fleet.check_scheduler(scheduler) if scheduler else None, workers)
    spec = SourceSpec(source, endpoint_url)
    base = check_name(baseline) if baseline is not None else None
    settings = fleet.FleetSettings(config_path, spec, replace(query, bus=bus), run_name, engine, clips_at, base)
    _quiet_dask()
    bar = Progress("rerun-fleet") if sys.stderr.isatty() else None
    try:
        done = fleet.run_fleet(settings, bar.start if bar else _nothing, bar.advance if bar else _nothing)
    finally:
        if bar is not None:
            bar.close()
    runs = done.runs
    frames = sum(r.frames for r in runs)
    events = sum(len(r.events) for r in runs)
    buses = len({r.bus for r in runs})
    click.echo(
        f"rerun-fleet: {len(runs)} clip(s) of {buses} bus(es), {frames} frames, on {done.workers} worker(s) in "
        f"{done.seconds:.1f} s ({len(runs) / max(done.replay_s, 1e-9):.2f} clips/s once the cluster was up); "
        f"{events} event(s) -> {done.label}/events"
    )
    click.echo(f"note: {DOORS_NOTE}", err=True)
    if done.skipped:
        click.echo(
            f"note: {len(done.skipped)} clip file(s) without their video or sidecar left out (not uploaded yet?): "
            f"{done.skipped[0]}",
            err=True,
        )
    against = f"rerun {baseline}" if baseline else "the events the buses recorded"
    change = compare_run(done, SourceSpec(done.old_events, endpoint_url), settings, tolerance)
    for line in summary_lines(change, against):
        click.echo(line)


def _nothing(_: int) -> None:
    pass


def _quiet_dask() -> None:
    """Dask logs every worker's start and stop, and its own warnings (a worker that died, a slow scheduler);
    `vigie -v` shows them, otherwise the command's lines are what the user reads."""
    import logging

    import dask

    if logging.getLogger().level <= logging.DEBUG:
        return
    # Read when distributed is first imported; its loggers are set one by one once it is.
    dask.config.set({"logging": {"distributed": "error"}})
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)
