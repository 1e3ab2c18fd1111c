"""`vigie replay rerun-fleet`: every clip of a range replayed with a new config on Dask distributed, the new events
written beside the old ones, and what changed, fleet-wide and per bus.

The analyst's machine (the driver) lists the clips, checks the inputs, hands the config and the model to the
workers in one task every clip's task depends on (replay/fleet_task.py), submits one task per clip and gathers
typed results. Workers only read; the driver writes, once every clip is done: a clip whose worker died is run again
by Dask on another worker, and its result arrives once (one future per clip, collected by clip id), so no clip is
counted twice. Nothing is written if any clip fails: a rerun's folder holds every clip of its range, or is not
written at all.

Engine: a LocalCluster of this machine's cores by default (one process per worker, one thread each: onnxruntime and
OpenCV release the GIL, but one process per core keeps one worker's stall from holding another), or the scheduler
at `--scheduler tcp://host:8786` with workers on many machines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.models import ModelError, ModelInfo, verify_model
from replay.clip_replay import ClipRun
from replay.errors import ReplayError, ReplayFailure, first_line
from replay.fleet_plan import (
    ClipRef,
    Layout,
    check_baseline,
    check_free,
    layout,
    list_clips,
    no_clips_error,
    shown,
)
from replay.query import EventQuery, SourceSpec

if TYPE_CHECKING:
    from distributed import Client

    from edge.config import Config
    from replay.fleet_task import ClipOutcome, Shipment

RETRIES = 2  # a store that stopped answering for a moment; a dead worker is retried by the scheduler itself
WORKERS_WAIT_S = 30.0  # a scheduler with no worker would take the tasks and never run them
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class Engine:
    scheduler: str | None = None  # tcp://host:port; None: a LocalCluster on this machine
    workers: int | None = None  # LocalCluster only; None: one per core


@dataclass(frozen=True, slots=True)
class FleetSettings:
    config: Path
    store: SourceSpec  # the old events (…/events), with the clips beside them
    query: EventQuery  # range and bus
    name: str
    engine: Engine = Engine()
    clips: str | None = None  # where the clips are, when not beside the events
    baseline: str | None = None  # an earlier rerun's name: compare with its events instead of the buses'


@dataclass(frozen=True, slots=True)
class FleetRun:
    """Every clip's run, where they were written, and what it took."""

    where: Layout
    label: str  # the rerun's folder as the user names it
    runs: tuple[ClipRun, ...]
    files: tuple[str, ...]
    workers: int
    seconds: float  # the whole command: the cluster's start, the clips, writing
    replay_s: float  # from the first clip submitted to the last result in: what the cluster's size changes
    skipped: tuple[str, ...]  # clip files without their pair, left alone
    model_id: str
    old_events: str  # what the comparison reads as "before": the buses' events, or the baseline rerun's


def check_scheduler(address: str) -> str:
    match = _ADDRESS.match(address.strip())
    if not match or not 0 < int(match.group(3)) < 65536:
        raise ReplayError(
            f"--scheduler {address!r}: expected tcp://host:port (or tls://host:port), e.g. tcp://10.0.0.5:8786"
        )
    return address.strip()


@contextlib.contextmanager
def connect(engine: Engine) -> Iterator[Client]:
    """A client of the engine; a LocalCluster lives as long as the client."""
    from distributed import Client, LocalCluster

    if engine.scheduler is None:
        cluster = LocalCluster(
            n_workers=engine.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",  # nothing of this machine's cluster is reachable from the network
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        # How long to try is Dask's own setting (distributed.comm.timeouts.connect, 30 s by default).
        client = Client(engine.scheduler)
    except (OSError, TimeoutError) as exc:
        raise ReplayError(f"--scheduler {engine.scheduler}: cannot be reached: {first_line(exc)}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKERS_WAIT_S)
        except TimeoutError:
            raise ReplayError(
                f"--scheduler {engine.scheduler}: no worker joined it within {WORKERS_WAIT_S:.0f} s"
            ) from None
        yield client
    finally:
        client.close()


def _load(path: Path) -> tuple[Config, str]:
    from edge.config import ConfigError, load_config

    try:
        text = path.read_text(encoding="utf-8-sig")
        return load_config(path), text
    except ConfigError as exc:
        raise ReplayError(f"{exc.source}: {exc.problems[0]}") from None
    except (OSError, UnicodeDecodeError) as exc:  # load_config read it a moment ago: only a race gets here
        raise ReplayError(f"{path}: cannot read: {first_line(exc)}") from None


def shipment(config: Config, text: str, path: Path, store: SourceSpec) -> Shipment:
    """The config and the model, checked here, as the workers will get them."""
    from replay.fleet_task import Shipment

    model = config.detector.model_path
    try:
        from edge.detector import bundled_digest

        info = verify_model(model, bundled_digest(model))
        data = model.read_bytes()
    except ModelError as exc:
        raise ReplayError(str(exc)) from None
    except OSError as exc:
        raise ReplayError(f"detector.model: {model}: cannot read: {first_line(exc)}") from None
    return Shipment(text, path.name, model.name, info.sha256, data, config.detector.threshold, store)


def _check_cameras(clips: tuple[ClipRef, ...], config: Config) -> None:
    names = {c.name for c in config.cameras}
    missing = [c for c in clips if c.camera not in names]
    if missing:
        cams = sorted({c.camera for c in missing})
        raise ReplayError(
            f"camera {cams[0]!r} of clip {missing[0].clip_id} is not in the config ({', '.join(sorted(names))}); "
            f"{len(missing)} clip(s) from camera(s) {', '.join(cams)}"
        )


def _gather(
    client: Client, ship: Shipment, clips: tuple[ClipRef, ...], advance: Callable[[int], None]
) -> list[ClipOutcome]:
    """Every clip's outcome, once each, whatever order they finish in and however often a worker dies."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    from replay.fleet_task import run_clip, shipped

    token = uuid.uuid4().hex[:12]  # two reruns on one scheduler must never share a task
    # A task that returns the shipment, not `scatter`: scattered data lives only on workers, and a worker that dies
    # holding the last copy (Dask drops extra copies on its own) loses it for good, failing every clip still to run.
    # A task's inputs stay with the scheduler, so it makes the shipment again on another worker.
    shared = client.submit(shipped, ship, key=f"vigie-shipment-{token}", pure=False)
    futures = {
        client.submit(run_clip, shared, clip, key=f"vigie-rerun-{token}-{clip.clip_id}", retries=RETRIES): clip
        for clip in clips
    }
    outcomes: dict[str, ClipOutcome] = {}
    try:
        for future in as_completed(futures):
            clip = futures[future]
            try:
                outcome = future.result()
            except KilledWorker as exc:
                raise ReplayFailure(f"clip {clip.clip_id}: every worker that ran it died ({first_line(exc)})") from None
            except Exception as exc:  # the worker's own error, sent back by Dask: a runtime failure, one line
                raise ReplayFailure(f"clip {clip.clip_id}: {type(exc).__name__}: {first_line(exc)}") from None
            outcomes.setdefault(clip.clip_id, outcome)
            advance(1)
    finally:
        client.cancel(list(futures))
    return [outcomes[c.clip_id] for c in clips]


def run_fleet(settings: FleetSettings, on_start: Callable[[int], None], advance: Callable[[int], None]) -> FleetRun:
    """Check everything, replay every clip, write the events and the rerun's manifest."""
    from replay.fleet_write import RerunRecord, write_rerun
    from replay.source import open_source

    config, text = _load(settings.config)
    src = open_source(settings.store)
    where = layout(src, settings.name, settings.clips)
    label = shown(src, where.rerun)
    check_free(src, where, label)
    old_events = settings.store.location
    if settings.baseline is not None:
        base = layout(src, settings.baseline, settings.clips)
        check_baseline(src, base)
        old_events = shown(src, base.rerun_events)
    listing = list_clips(src, where.clips, settings.query)
    if not listing.clips:
        raise no_clips_error(shown(src, where.clips), settings.query)
    _check_cameras(listing.clips, config)
    store = SourceSpec(shown(src, where.clips), settings.store.endpoint_url)
    ship = shipment(config, text, settings.config, store)
    started = time.perf_counter()
    with connect(settings.engine) as client:
        workers = len(client.scheduler_info().get("workers", {}))
        on_start(len(listing.clips))
        submitted = time.perf_counter()
        outcomes = _gather(client, ship, listing.clips, advance)
        replay_s = time.perf_counter() - submitted
    runs = tuple(o.run for o in outcomes if o.run is not None)
    problems = [o for o in outcomes if o.run is None]
    if problems:
        raise ReplayError(
            f"{len(problems)} of {len(outcomes)} clip(s) cannot be replayed, nothing written; "
            f"first: {problems[0].clip.clip_id}: {problems[0].problem}"
        )
    model_id = ModelInfo(Path(ship.model_name), ship.model_sha256).model_id
    manifest = _manifest(settings, ship, model_id, runs, workers)
    record = RerunRecord(runs, model_id, config.events.location_decimals, text, manifest)
    files = write_rerun(src, settings.store, where, record)
    seconds = time.perf_counter() - started
    return FleetRun(where, label, runs, files, workers, seconds, replay_s, listing.unpaired, model_id, old_events)


def _manifest(settings: FleetSettings, ship: Shipment, model_id: str, runs: tuple[ClipRun, ...], workers: int) -> dict:
    """How the rerun was made: enough to tell its events apart from the bus's and to make it again."""
    q = settings.query
    return {
        "schema": "vigie.rerun-fleet/1",
        "name": settings.name,
        "made": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": ship.config_name,
        "config_sha256": hashlib.sha256(ship.config_text.encode()).hexdigest(),
        "model_id": model_id,
        "source": settings.store.location,
        "clips_source": ship.store.location,
        "from": q.start.isoformat() if q.start else None,
        "to": q.end.isoformat() if q.end else None,
        "bus": q.bus,
        "baseline": settings.baseline,
        "engine": settings.engine.scheduler or f"LocalCluster ({workers} workers)",
        "clips": [
            {"clip": r.clip_id, "bus": r.bus, "camera": r.camera, "frames": r.frames, "events": len(r.events)}
            for r in runs
        ],
        "events": sum(len(r.events) for r in runs),
    }
