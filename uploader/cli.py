"""`vigie upload`: run the uploader (`--once` or a loop), `verify` a day in the bucket, show `status`.

Heavy imports (boto3) happen inside the commands so that `vigie run` never pays for them.
Exit codes as everywhere in vigie: 0 success, 2 bad usage or config, 1 runtime failure (anything not safely
stored).
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from pathlib import Path

import click

from core.config_base import ConfigError

_OVERRIDES = ("endpoint_url", "bucket", "prefix")


def _fail(message: str, code: int) -> None:
    click.echo(f"upload: {message}", err=True)
    raise SystemExit(code)


def _config(ctx: click.Context, need_bucket: bool = True):
    from uploader.config import load_upload_config

    opts = ctx.find_root().meta.get("vigie.upload", {})
    overrides = {k: opts.get(k) for k in _OVERRIDES}
    try:
        return load_upload_config(opts.get("config_path"), overrides, need_bucket=need_bucket)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        raise SystemExit(2) from None


def _client(cfg):
    from uploader.s3 import NoCredentials, make_client

    try:
        return make_client(cfg)
    except NoCredentials as exc:
        _fail(str(exc), 2)


def _quiet_http_logs() -> None:
    # botocore's debug log prints request headers (the access key id, signatures): never on a bus's logs.
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _remember(ctx: click.Context, **opts: object) -> None:
    """Options given on the group or on a subcommand; the later (subcommand) wins."""
    store = ctx.find_root().meta.setdefault("vigie.upload", {})
    store.update({k: v for k, v in opts.items() if v is not None})


def _common(fn):
    fn = click.option("--prefix", help="Key prefix in the bucket (overrides upload.prefix).")(fn)
    fn = click.option("--bucket", help="Bucket name (overrides upload.bucket).")(fn)
    fn = click.option("--endpoint-url", help="S3 endpoint, https://… (http:// only if you mean it).")(fn)
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path), help="Bus config with an [upload] table."
    )(fn)


@click.group("upload", invoke_without_command=True)
@_common
@click.option("--once", is_flag=True, help="Upload what is ready, then exit: 0 if all of it is safely stored.")
@click.pass_context
def upload(
    ctx: click.Context,
    config_path: Path | None,
    endpoint_url: str | None,
    bucket: str | None,
    prefix: str | None,
    once: bool,
) -> None:
    """Send closed event files (and clips) to the city's S3 bucket; delete each only once it is safely stored.

    Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a credentials file, never the config.
    """
    _remember(ctx, config_path=config_path, endpoint_url=endpoint_url, bucket=bucket, prefix=prefix)
    if ctx.invoked_subcommand is not None:
        return
    _quiet_http_logs()
    cfg = _config(ctx)
    raise SystemExit(_run(cfg, _client(cfg), once))


def _run(cfg, client, once: bool) -> int:
    from uploader.engine import Uploader
    from uploader.state import StateLockedError, exclusive

    quiet = logging.getLogger("uploader")
    level = quiet.level
    if once:
        # --once prints its own summary and each distinct failure once at the end.
        quiet.setLevel(logging.ERROR)
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # SIGTERM/Ctrl-C: finish the requests in flight, send nothing new, exit. Restored afterwards so an
        # in-process caller (tests, CliRunner) keeps its own handlers.
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        with exclusive(cfg.state_dir):
            result = Uploader(cfg, client=client).run(stop, once=once)
    except StateLockedError as exc:
        _fail(str(exc), 1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        quiet.setLevel(level)
    c = result.counters
    click.echo(
        f"upload: {result.stored} of {result.waiting} file(s) stored, {c.bytes_sent / 1e6:.1f} MB sent, "
        f"{c.parts_sent} part(s) sent, {c.parts_resumed} resumed, {c.already_there} already there, "
        f"{c.rehashed} re-hashed"
    )
    for message in dict.fromkeys(f.message for f in result.failures):
        click.echo(f"upload: {message}", err=True)
    return 0 if result.ok else 1


def _valid_date(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("expected YYYY-MM-DD") from None
    return value


@upload.command()
@_common
@click.option("--date", required=True, callback=_valid_date, help="Day to check (YYYY-MM-DD, UTC).")
@click.option("--bus", help="Only this bus (default: every bus found for that day).")
@click.pass_context
def verify(
    ctx: click.Context,
    config_path: Path | None,
    endpoint_url: str | None,
    bucket: str | None,
    prefix: str | None,
    date: str,
    bus: str | None,
) -> None:
    """Compare the bucket with the manifests and this bus's journal: missing, extra, altered (exit 1)."""
    from uploader.manifest import buses_for_day, verify_day
    from uploader.s3 import classify
    from uploader.state import Journal

    _remember(ctx, config_path=config_path, endpoint_url=endpoint_url, bucket=bucket, prefix=prefix)
    _quiet_http_logs()
    cfg = _config(ctx)
    client = _client(cfg)
    journal = Journal(cfg.state_dir)
    try:
        buses = [bus] if bus else buses_for_day(client, cfg, date)
        if not buses:
            _fail(f"nothing in s3://{cfg.bucket}/{cfg.key_prefix()} for date={date}", 1)
        reports = [verify_day(client, cfg, journal, date, b) for b in buses]
    except Exception as exc:
        _fail(classify(exc).message, 1)
    for rep in reports:
        for label, lines in (("missing", rep.missing), ("extra", rep.extra), ("altered", rep.altered)):
            for line in lines:
                click.echo(f"{label:8} {line}")
        for note in rep.notes:
            click.echo(f"note     date={rep.date} bus={rep.bus}: {note}")
        verdict = "ok" if rep.good else "PROBLEMS"
        click.echo(
            f"date={rep.date} bus={rep.bus}: {verdict}: {rep.ok} object(s) verified, {len(rep.missing)} "
            f"missing, {len(rep.extra)} extra, {len(rep.altered)} altered"
        )
    raise SystemExit(0 if all(r.good for r in reports) else 1)


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min {int(seconds % 60)} s"


@upload.command()
@_common
@click.pass_context
def status(
    ctx: click.Context,
    config_path: Path | None,
    endpoint_url: str | None,
    bucket: str | None,
    prefix: str | None,
) -> None:
    """What waits in the spool, the oldest unsent file, uploads in progress, the last failure (offline)."""
    from uploader.spool import summarize
    from uploader.state import MultipartStore, StatusFile

    _remember(ctx, config_path=config_path, endpoint_url=endpoint_url, bucket=bucket, prefix=prefix)
    cfg = _config(ctx, need_bucket=False)
    spool = summarize(cfg)
    state = StatusFile(cfg.state_dir).read()
    click.echo(f"spool: {spool.files} file(s), {spool.size / 1e6:.1f} MB waiting (quota {cfg.spool_quota_mb:.0f} MB)")
    if spool.oldest is not None and spool.oldest_age_s is not None:
        click.echo(f"oldest unsent: {spool.oldest.key} ({_age(spool.oldest_age_s)} old)")
    for rec in MultipartStore(cfg.state_dir).pending():
        total = -(-rec["size"] // rec["part_size"])
        click.echo(f"in progress: {rec['key']}: {len(rec['parts'])} of {total} part(s) stored, since {rec['started']}")
    fail = state.get("last_failure")
    click.echo(f"last failure: {fail['at']} {fail['item']}: {fail['error']}" if fail else "last failure: none")
    ok = state.get("last_success")
    if ok:
        click.echo(f"last success: {ok['at']} ({ok['stored']} file(s))")
    ev = state.get("evicted")
    if ev:
        click.echo(
            f"clips deleted unsent (spool over quota): {ev['count']} ({ev['bytes'] / 1e6:.1f} MB), "
            f"last at {ev['last_at']}"
        )
    if state.get("manifests_pending"):
        click.echo("manifests to update: " + ", ".join(f"date={d} bus={b}" for d, b in state["manifests_pending"]))
