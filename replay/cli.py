"""`vigie replay …`: what a city analyst runs on the event store and on recorded footage.

Every subcommand is a thin shell over one module: source.py (list, show), render.py (clips with overlays),
rerun.py + compare.py (rerun), report.py (and report_map.py for --map); the exports live in opendata/cli.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from replay.errors import ReplayError
from replay.fleet_cli import compact, rerun_fleet, sql
from replay.health_cli import fleet_status
from replay.opendata.cli import export_opendata, export_shared
from replay.options import day_start, filtered, make_query, source_options
from replay.progress import Progress
from replay.query import EventQuery, SourceSpec, parse_when

if TYPE_CHECKING:
    import pyarrow as pa

    from edge.config import Config
    from replay.labels import Label
    from replay.rerun import RerunResult

# Modules that pull in pyarrow, opencv or onnxruntime are imported inside each command: every `vigie` command,
# `vigie run` included, loads this group.


@click.group()
def replay() -> None:
    """Look back at recorded events and rerun footage through the daemon's pipeline."""


_CLIPS_HELP = "The recorder's clips (a folder, or s3://bucket/prefix/clips): how much of each event its clip shows."


@replay.command("list")
@source_options(with_filters=True)
@click.option("--clips", default="var/clips", show_default=True, help=_CLIPS_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of a table.")
@filtered
def list_events(source: str, endpoint_url: str | None, query: EventQuery, clips: str, as_json: bool) -> None:
    """List events, oldest first. The clip column: the share of the event its clip shows, `missing`, `writing`,
    `-` (no clip) or `?` (no clips folder here)."""
    from replay.clipcover import open_shelf
    from replay.source import read_store
    from replay.tiers import stale_note
    from replay.views import TABLE_COLUMNS, json_lines, table_lines

    # The table shows ten columns (and its clip column needs two more): reading only those halves the work on a
    # fleet-year of files.
    columns = None if as_json else [*(c for _, c, _ in TABLE_COLUMNS), "end_ts", "clip"]
    read = read_store(SourceSpec(source, endpoint_url), query, columns)
    if note := stale_note(read.plan):
        click.echo(note, err=True)
    shelf = open_shelf(SourceSpec(clips, endpoint_url))
    covers = None
    if shelf.src is not None:  # a call per row, only when there are clips to look at
        rows = read.table.select(["event_id", "bus_id", "start_ts", "end_ts", "clip"]).to_pylist()
        covers = [shelf.cover(row) for row in rows]
    text = "\n".join((json_lines if as_json else table_lines)(read.table, covers))
    if text:  # one write: a line at a time costs seconds on a fleet-year
        click.echo(text)


@replay.command()
@click.argument("event_id")
@source_options(with_filters=False)
@click.option("--from", "from_", metavar="WHEN", help="Search only from this day on (faster on a large store).")
@click.option("--to", metavar="WHEN", help="Search only up to this day.")
@click.option("--bus", help="Search only this bus.")
@click.option("--clips", default="var/clips", show_default=True, help=_CLIPS_HELP)
def show(
    event_id: str,
    source: str,
    endpoint_url: str | None,
    from_: str | None,
    to: str | None,
    bus: str | None,
    clips: str,
) -> None:
    """Everything known about one event, and how much of it its clip shows."""
    from core.types import ClipState
    from replay.clipcover import cover_line, open_shelf
    from replay.source import find_event
    from replay.views import event_lines

    base = make_query(from_, to, bus, None, None)
    # The date bounds only choose folders to search; an event is found by id whatever time it started.
    query = EventQuery(start=day_start(base.start), end=base.end, bus=bus, event_id=event_id.strip().lower())
    found = find_event(SourceSpec(source, endpoint_url), query)
    cover = open_shelf(SourceSpec(clips, endpoint_url)).cover(found.row)
    text = cover_line(cover, found.row.get("clip"), clips)
    renderable = cover.state in (ClipState.COMPLETE, ClipState.INCOMPLETE, ClipState.UNCHECKED)
    for line in event_lines(found.row, found.path, text, renderable and bool(found.row.get("clip"))):
        click.echo(line)


@replay.command()
@click.argument("event_id")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="OUT.mp4 / OUT.avi (the clip with overlays) or OUT.png (a contact sheet).",
)
@click.option("--reason", required=True, help="Why the clip is opened; written to the access log with your name.")
@source_options(with_filters=False)
@click.option(
    "--clips",
    "clips_root",
    default="var/clips",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The recorder's clips folder.",
)
@click.option(
    "--audit-log",
    default="var/audit.log",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The access log every clip read is appended to.",
)
def render(
    event_id: str, output: Path, reason: str, source: str, endpoint_url: str | None, clips_root: Path, audit_log: Path
) -> None:
    """An event's anonymised clip with zones, boxes, track ids, level, distance, speed and indicator drawn on it."""
    from replay.render import RenderRequest
    from replay.render import render as render_clip
    from replay.source import find_event

    found = find_event(SourceSpec(source, endpoint_url), EventQuery(event_id=event_id.strip().lower()))
    clip_id = found.row.get("clip")
    if not clip_id:
        raise ReplayError(f"event {event_id}: has no clip (recorded without the recorder)")
    frames = render_clip(RenderRequest(clip_id, clips_root, output, audit_log, reason))
    click.echo(f"{output}: {frames} frames of clip {clip_id} (access logged in {audit_log})")


@replay.command(short_help="Rerun footage through the daemon's pipeline; compare, score against labels.")
@click.argument("footage", nargs=-1)
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Bus config to replay.")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the events (same layout as events.dir; list it with --source).",
)
@click.option(
    "--vehicle",
    "vehicle_log",
    type=click.Path(path_type=Path),
    help="Vehicle log CSV (t, speed_kmh, indicator, …); default: the config's log, if any.",
)
@click.option("--start", default=None, metavar="WHEN", help="Time of frame 0, UTC (default 2026-01-05T08:00:00).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames per camera.")
@click.option("--force", is_flag=True, help="Replace the events of an earlier rerun in --out.")
@click.option("--compare", metavar="DIR_OR_SOURCE", help="Events to compare with (an earlier rerun, or the store).")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds a matched event's start may move before it counts as shifted.",
)
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    help="CSV camera,zone,start_frame,end_frame of people really in a zone: prints precision, recall and alert delay.",
)
@click.option("--endpoint-url", help="S3 endpoint when --compare is an s3:// URL.")
@click.option(
    "--clip",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Replay one clip the recorder wrote (its .frames.parquet beside it): its camera, frame times and the "
    "bus's speed and indicator as recorded. Instead of FOOTAGE, --vehicle and --start.",
)
def rerun(
    footage: tuple[str, ...],
    config_path: Path,
    out: Path,
    vehicle_log: Path | None,
    start: str | None,
    max_frames: int | None,
    force: bool,
    compare: str | None,
    tolerance: float,
    labels: Path | None,
    endpoint_url: str | None,
    clip: Path | None,
) -> None:
    """Run the daemon's pipeline on recorded FOOTAGE, every frame, as fast as the machine goes.

    FOOTAGE: one file per camera in the config's order, or NAME=PATH for the cameras to replay
    (e.g. right=clips/right.mp4). With none, each camera plays the file its config names. With --clip, one clip
    the recorder wrote, as `replay rerun-fleet` replays every clip of a range.
    """
    import datetime as dt

    from replay import rerun as rr
    from replay.labels import load_labels
    from replay.source import read_events

    when = parse_when(start) if start else rr.DEFAULT_START
    bus_id = None
    if clip is not None:
        from replay.clip_replay import read_sidecar

        if start:
            raise ReplayError("--start: a clip's frames keep the times they were recorded at; drop --start")
        recorded = read_sidecar(clip)
        when, bus_id = dt.datetime.fromtimestamp(recorded.start, dt.UTC), recorded.bus
    settings = rr.RerunSettings(config_path, out, footage, vehicle_log, when, max_frames, force, clip)
    label_rows = load_labels(labels) if labels else None
    baseline = None
    if compare:
        # Read before the rerun: --compare may name the very folder this rerun is about to replace.
        bus_id = bus_id or rr.load_bus_id(config_path)
        baseline = read_events(SourceSpec(compare, endpoint_url), EventQuery(start=settings.start, bus=bus_id))
    bar = Progress()
    try:
        result = rr.rerun(settings, progress=bar.advance, on_start=bar.start, check=_label_check(label_rows, labels))
    finally:
        bar.close()
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    live = sum(result.clock.fps.values())
    pace = "recorded" if clip else "live"  # a clip was kept at the recorder's rate, not the camera's
    rate = result.total_frames / max(result.seconds, 1e-9)
    click.echo(
        f"rerun: {result.total_frames} frames from {len(result.frames)} camera(s) in {result.seconds:.1f} s "
        f"({rate:.0f} fps, {rate / live:.1f}x the {pace} {live:.3g} fps); {len(result.events)} event(s) -> {out}"
    )
    if result.detected < result.total_frames:
        click.echo(f"detected: {result.detected} of {result.total_frames} frames (the others' cameras could not alert)")
    for line in result.budget.lines():
        click.echo(line)
    if baseline is not None or label_rows is not None:
        _judge(result, baseline, label_rows, tolerance)


def _label_check(rows: list[Label] | None, path: Path | None) -> Callable[[Config, dict[str, int]], None]:
    """Labels are checked against the config and the footage once both are open, before the model loads."""
    from replay.labels import check_labels

    def check(config: Config, frame_counts: dict[str, int]) -> None:
        if rows is not None and path is not None:
            check_labels(rows, {c.name: {z.name for z in c.zones} for c in config.cameras}, frame_counts, path)

    return check


def _judge(result: RerunResult, baseline: pa.Table | None, label_rows: list[Label] | None, tolerance: float) -> None:
    """Compare with the baseline and score against labels, using the rows as written (millisecond times), so a
    rerun folder compared later gives the same answer as this one compared now."""
    from replay.compare import compare_spans, spans_from_table
    from replay.labels import LabelRun, score
    from replay.source import read_events
    from replay.views import comparison_lines, scores_lines

    new = spans_from_table(read_events(SourceSpec(str(result.out)), EventQuery()))
    if baseline is not None:
        end = result.clock.base + max(result.clock.seconds(c, n) for c, n in result.frames.items())
        old = [s for s in spans_from_table(baseline) if s.camera in result.frames and s.start < end]
        for line in comparison_lines(compare_spans(old, new, tolerance), tolerance):
            click.echo(line)
    if label_rows is not None:
        for line in scores_lines(score(label_rows, LabelRun(new, result.alerts, result.clock, result.frames))):
            click.echo(line)


@replay.command(short_help="One PNG: alerts per hour and camera, distances, top locations; or --map.")
@source_options(with_filters=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False), help="PNG to write.")
@click.option("--tz", default="UTC", show_default=True, help="Time zone for the hour-of-day chart, e.g. Europe/Paris.")
@click.option(
    "--map",
    "as_map",
    is_flag=True,
    help="Draw where encounters happen instead: ~1 km squares, per side and level (no map tiles, no network).",
)
@filtered
def report(source: str, endpoint_url: str | None, query: EventQuery, output: Path, tz: str, as_map: bool) -> None:
    """One picture of the events: alerts per hour and per camera, distances, top locations; with --map, where."""
    from replay.budget import store_budget
    from replay.report import ReportSettings, draw_report
    from replay.report_map import MapSettings, draw_map
    from replay.source import read_events

    spec = SourceSpec(source, endpoint_url)
    table = read_events(spec, query)
    budget = store_budget(table, spec, query)
    if as_map:
        bins = draw_map(table, MapSettings(output, title_source=source, budget=budget))
        click.echo(f"report: {table.num_rows} event(s), {len(bins.lat)} square(s) of about 1 km -> {output}")
    else:
        draw_report(table, ReportSettings(output, tz, title_source=source, budget=budget))
        click.echo(f"report: {table.num_rows} event(s) -> {output}")
    if budget is None:
        click.echo("driver alerts: not recorded by these buses (event rows older than schema 3)")
    else:
        if budget.hours <= 0:
            click.echo("note: no operating time in this store (…/operating beside the events): counts without a rate")
        for line in budget.lines():
            click.echo(line)


@replay.command(short_help="Footage with known truth: real people walked along scripted paths.")
@click.argument("scripts", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path, file_okay=False), help="Output folder.")
def scenario(scripts: tuple[Path, ...], out: Path) -> None:
    """Write, for each SCRIPT (TOML, see tests/scenarios/), NAME.mp4, the truth per person-stay (NAME.labels.csv)
    and per frame (NAME.boxes.csv), and NAME.bus.toml, ready for `vigie replay rerun --labels`."""
    from replay.scenario import generate, load_script

    loaded = [(path, load_script(path)) for path in scripts]  # every script checked before any is rendered
    for path, script in loaded:
        files = generate(script, path.stem, out)
        click.echo(
            f"scenario {path.stem}: {files.frames} frames, {files.stays} person-stay(s) -> {files.video}; "
            f"rerun with: vigie replay rerun --config {files.config} --out {out / path.stem} --labels {files.labels}"
        )


replay.add_command(export_opendata)
replay.add_command(export_shared)
replay.add_command(compact)
replay.add_command(sql)
replay.add_command(fleet_status)
replay.add_command(rerun_fleet)
