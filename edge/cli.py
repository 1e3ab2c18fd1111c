"""The `vigie` command line. Exit codes: 0 success, 2 bad usage/config/input, 1 runtime failure."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import ClassVar

import click

from core.errors import UserError
from edge.config import ConfigError, DetectorConfig, load_config
from edge.config_check import checked_config, report_lines

log = logging.getLogger("vigie")


def _load(path: Path | None):
    """The one config check `run` and `check-config` share: every problem on its own line, exit 2."""
    try:
        return checked_config(path)
    except ConfigError as exc:
        for line in report_lines(exc):
            click.echo(line, err=True)
        raise SystemExit(2) from None


class _Subsystems(click.Group):
    """The top-level group, which names the other subsystems' commands by module instead of importing them: the
    daemon's own module must not import `replay` (which imports `edge`), and no command pays for another's imports."""

    LAZY: ClassVar[dict[str, str]] = {
        "anonymise": "replay.anonymise_cli:anonymise",
        "replay": "replay.cli:replay",
        "upload": "uploader.cli:upload",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.LAZY:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.LAZY[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_Subsystems)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def main(verbose: bool) -> None:
    """vigie: blind-spot alerts for buses, with data the city owns."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Bus config (default: the demo).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop cleanly after this many seconds.")
@click.option("--stats", "stats_path", type=click.Path(path_type=Path), help="Write final figures as JSON here.")
def run(config_path: Path | None, duration: float | None, stats_path: Path | None) -> None:
    """Run the daemon: cameras → person detection → blind-spot alerts."""
    from core.models import ModelError
    from edge.daemon import Daemon, RunOptions, install_signal_handlers

    cfg = _load(config_path)
    daemon = Daemon(cfg, RunOptions(duration, stats_path, echo=lambda line: click.echo(line)))
    install_signal_handlers(daemon)
    try:
        summary = daemon.run()
    except ModelError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        click.echo(f"vigie: {exc}", err=True)
        raise SystemExit(1) from None
    lat, driver = summary["alert_latency_ms"], summary["driver_alerts"]
    click.echo(
        f"stopped after {summary['duration_s']} s: {driver['info'] + driver['warning']} driver alerts "
        f"({summary['alerts']} level changes), {summary['events']} events, "
        f"inference p50 {summary['inference_ms']['p50']} ms, alert latency p99 {lat['p99']} ms"
    )


@main.command("check-config")
@click.argument("path", type=click.Path(path_type=Path))
def check_config(path: Path) -> None:
    """Validate a bus config: exit 0, or exit 2 with one line per problem naming its key."""
    _load(path)
    click.echo(f"{path}: ok")


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@click.option(
    "--threshold", type=click.FloatRange(0, 1), default=None, help="Score threshold (default: the model's own)."
)
@click.option("--model", default="int8", show_default=True, help='"int8", "fp32", or an ONNX file.')
def detect(images: tuple[Path, ...], as_json: bool, threshold: float | None, model: str) -> None:
    """Run the bundled person detector on images (to check a camera's view)."""
    import cv2

    from core.models import ModelError
    from edge.detector import PersonDetector

    # An installer checking a view wants every person, however small: no minimum box height here.
    settings = DetectorConfig(model=model, score_threshold=threshold, min_height=0.0)
    try:
        detector = PersonDetector(settings)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    failed = []
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            failed.append(path)
            click.echo(f"vigie: {path}: not a readable image", err=True)
            continue
        dets = detector.detect([image])[0]
        rows = [
            {"box": [round(float(v), 1) for v in box], "score": round(float(s), 3), "label": "person"}
            for box, s in zip(dets.xyxy, dets.score, strict=True)
        ]
        if as_json:
            click.echo(
                json.dumps({"image": str(path), "width": image.shape[1], "height": image.shape[0], "detections": rows})
            )
        else:
            click.echo(f"{path}: {len(rows)} person(s)")
            for r in rows:
                click.echo(f"  {r['score']:.2f}  box {r['box']}")
    if failed:
        raise SystemExit(2)


@main.command()
@click.option("--endpoint", help="Alert bus to listen to (default: where the demo publishes).")
@click.option("--json", "as_json", is_flag=True, help="Print each message as received (JSON lines).")
@click.option("--count", type=click.IntRange(min=1), help="Exit after this many alert messages.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Give up after this many seconds.")
def alerts(endpoint: str | None, as_json: bool, count: int | None, timeout: float | None) -> None:
    """Reference driver-side client: show alerts and health messages as they arrive."""
    from edge.client import AlertClient

    endpoint = endpoint or load_config(None).alerts.endpoint
    with AlertClient(endpoint) as client:
        got = client.listen(as_json=as_json, count=count, timeout_s=timeout, echo=click.echo)
    if count is not None and got < count:
        click.echo(f"vigie: timed out after {got} of {count} alerts", err=True)
        raise SystemExit(1)


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Bus config (default: the demo).")
@click.option("--listen", help="HOST:PORT to serve the page on (default: display.listen, 127.0.0.1:8090).")
@click.option("--allow-remote", is_flag=True, help="Allow a --listen address that is not loopback.")
@click.option("--endpoint", help="Alert bus to read (default: the config's alerts.endpoint).")
def display(config_path: Path | None, listen: str | None, allow_remote: bool, endpoint: str | None) -> None:
    """The driver's display: a web page with the bus seen from above, each side's level and every camera's health."""
    from core.config_base import zmq_endpoint
    from edge.display.config import connect_endpoint, parse_listen

    try:  # the config only: the display reads no camera, model or folder, and may run on another computer
        cfg = load_config(config_path)
    except ConfigError as exc:
        for line in report_lines(exc):
            click.echo(line, err=True)
        raise SystemExit(2) from None
    try:
        where = parse_listen(listen or cfg.display.listen)
    except ValueError as exc:
        raise UserError(f"--listen: {exc}") from None
    if not where.loopback and not (allow_remote or cfg.display.allow_remote):
        raise UserError(
            f"--listen {where.host}: not loopback; add --allow-remote to serve the display to other computers"
        )
    try:
        bus = connect_endpoint(zmq_endpoint(endpoint, ("tcp", "ipc"), bind=False) if endpoint else cfg.alerts.endpoint)
    except ValueError as exc:
        raise UserError(f"--endpoint: {exc}") from None
    if not where.loopback:
        click.echo(f"vigie display: serving on {where.host}, beyond this computer (the page is read-only)", err=True)

    from edge.display.bridge import BridgeOptions, run
    from edge.display.state import DisplaySettings

    options = BridgeOptions(bus, where, not where.loopback, DisplaySettings.from_config(cfg), cfg.display)
    try:
        run(options, echo=click.echo)
    except OSError as exc:
        click.echo(f"vigie: display: cannot listen on {where.host}:{where.port}: {exc.strerror or exc}", err=True)
        raise SystemExit(1) from None
