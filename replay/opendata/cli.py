"""`vigie replay export-opendata` and `vigie replay export-shared` (registered on the replay group by replay/cli.py).

Every check that needs no data comes first (k, licence, time zone, output folder, reason), so bad input is one line
before the store is read; then the events are read, an empty range refused, and the package written whole or not
at all. pyarrow is imported inside the commands, like every replay command.
"""

from __future__ import annotations

from pathlib import Path

import click

from replay.errors import ReplayError
from replay.opendata.folder import check_destination
from replay.opendata.licences import DEFAULT_LICENCE, find_licence
from replay.options import dated, source_options
from replay.query import EventQuery, SourceSpec

PRODUCER_ENV = "VIGIE_PRODUCER"
NO_PRODUCER = "[producteur à nommer / producer to be named: --producer]"


def _producer_options(fn):
    fn = click.option("--producer-url", help="The producer's web page, named in datapackage.json.")(fn)
    return click.option(
        "--producer",
        envvar=PRODUCER_ENV,
        help=f"Who publishes the data, e.g. 'Ville de Lyon' (default: ${PRODUCER_ENV}).",
    )(fn)


def _output_option(fn):
    return click.option(
        "-o",
        "--output",
        required=True,
        type=click.Path(path_type=Path),
        help="Package folder to create (it must not exist, or be empty).",
    )(fn)


def _producer(name: str | None, url: str | None):
    from replay.opendata.package import Producer

    return Producer((name or "").strip() or NO_PRODUCER, url)


def _check_output(output: Path, source: str) -> None:
    """A new or empty folder, and not inside the local store: its Parquet file would be read back as events."""
    check_destination(output)
    if "://" not in source and output.resolve().is_relative_to(Path(source).expanduser().resolve()):
        raise ReplayError(f"{output}: inside the event store {source}; write the package elsewhere")


def _note_producer(name: str) -> None:
    if name == NO_PRODUCER:
        click.echo(f"note: no --producer (or ${PRODUCER_ENV}): the package names none; set it before publishing")


def _read(source: str, endpoint_url: str | None, query: EventQuery):
    from replay.opendata.scope import require_events
    from replay.source import read_events

    events = read_events(SourceSpec(source, endpoint_url), query)
    require_events(events, query, source)
    return events


@click.command("export-opendata", short_help="A publishable package of counts, cells under k events removed.")
@source_options(with_filters=True, dates_only=True)
@_output_option
@click.option("-k", "k_min", type=int, default=5, show_default=True, help="Cells of fewer events are removed (>= 2).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone for days and hour bands, e.g. Europe/Paris.")
@click.option(
    "--licence",
    "licence_id",
    default=DEFAULT_LICENCE,
    show_default=True,
    help="SPDX or Etalab id: etalab-2.0 (lov2), ODbL-1.0, CC-BY-4.0, CC0-1.0 …",
)
@_producer_options
@dated
def export_opendata(
    source: str,
    endpoint_url: str | None,
    query: EventQuery,
    output: Path,
    k_min: int,
    tz: str,
    licence_id: str,
    producer: str | None,
    producer_url: str | None,
) -> None:
    """Counts per day, hour band, side and ~1 km area as a Frictionless Data Package (CSV, Parquet,
    datapackage.json, README in French and English), ready for the open-data portal."""
    from replay.opendata.counts import OpenDataSettings, check_k, export_open_data
    from replay.report import check_tz

    settings = OpenDataSettings(
        output, find_licence(licence_id), _producer(producer, producer_url), check_k(k_min), check_tz(tz)
    )
    _check_output(output, source)
    result = export_open_data(_read(source, endpoint_url, query), query, settings)
    click.echo(
        f"export-opendata: {result.cells} cell(s) kept, {result.suppressed_cells} suppressed "
        f"(fewer than {k_min} events, {result.suppressed_events} events) -> {result.folder}"
    )
    _note_producer(settings.producer.name)


@click.command("export-shared", short_help="Event-level rows for a partner under an agreement; access logged.")
@source_options(with_filters=True, dates_only=True)
@_output_option
@click.option("--partner", required=True, help="Who receives the data (written to the access log and the README).")
@click.option("--reason", required=True, help="Why it is shared; written to the access log with your name.")
@click.option("--agreement", help="Reference of the data-sharing agreement (the README leaves a placeholder).")
@click.option(
    "--audit-log",
    default="var/audit.log",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The access log the export is appended to.",
)
@_producer_options
@dated
def export_shared(
    source: str,
    endpoint_url: str | None,
    query: EventQuery,
    output: Path,
    partner: str,
    reason: str,
    agreement: str | None,
    audit_log: Path,
    producer: str | None,
    producer_url: str | None,
) -> None:
    """One generalised row per event (minute, ~100 m, side, level, distance and speed bands, no ids), as a
    Frictionless Data Package with the agreement's terms and the privacy method; the export is access logged."""
    from replay.opendata.shared import Recipient, SharedSettings
    from replay.opendata.shared import export_shared as write_shared

    if not partner.strip():
        raise ReplayError("--partner: name who receives the data")
    if not reason.strip():
        raise ReplayError("--reason: say why the data is shared; it is written to the access log")
    recipient = Recipient(partner.strip(), reason.strip(), (agreement or "").strip() or None)
    settings = SharedSettings(output, _producer(producer, producer_url), recipient, audit_log, source)
    _check_output(output, source)
    result = write_shared(_read(source, endpoint_url, query), query, settings)
    click.echo(
        f"export-shared: {result.rows} event(s) for {recipient.partner} -> {result.folder} "
        f"(access logged in {audit_log})"
    )
    _note_producer(settings.producer.name)
