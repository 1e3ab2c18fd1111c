"""`vigie replay rerun`: the daemon's own pipeline on recorded footage, frame by frame, as fast as the machine goes.

Nothing here detects, tracks, zones or decides: frames go through `edge.pipeline.Pipeline.process` in batches of one
frame index across cameras (as the daemon batches its cameras' newest frames), the bus state comes from
`edge.vehicle.VehicleLog`, and closed events are written by `recorder.events.write_events`. What differs from the
daemon is only the clock (frame index / fps from a fixed base) and the absence of dropping, which make a rerun
deterministic: the same footage and config give the same event rows.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.models import ModelError
from core.types import Event, Level
from edge.budget import AlertTally, Budget
from edge.config import Config, ConfigError, load_config
from edge.detector import PersonDetector
from edge.pipeline import BatchResult, Pipeline
from edge.vehicle import StaticVehicle, VehicleLog, VehicleSource
from recorder.events import EventSink, write_events
from replay.errors import ReplayError
from replay.footage import FootageReader, assign_footage
from replay.timeline import AlertSpan, Clock

# A fixed Monday morning: reruns are reproducible by default, and --start moves them to when the footage was shot.
DEFAULT_START = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.UTC)
MANIFEST = "_rerun.json"  # leading underscore: pyarrow's dataset discovery skips it


@dataclass(frozen=True, slots=True)
class RerunSettings:
    config: Path
    out: Path
    footage: tuple[str, ...] = ()
    vehicle_log: Path | None = None
    start: dt.datetime = DEFAULT_START
    max_frames: int | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class RerunResult:
    out: Path
    config: Config
    clock: Clock
    frames: dict[str, int]  # frames processed per camera
    detected: int  # of all cameras' frames, those the detector saw (edge/demand.py skips the others)
    events: tuple[Event, ...]
    alerts: tuple[AlertSpan, ...]
    files: tuple[Path, ...]
    seconds: float
    budget: Budget  # alerts as the driver would have received them, over the footage's duration
    notes: tuple[str, ...] = ()

    @property
    def total_frames(self) -> int:
        return sum(self.frames.values())


@dataclass(slots=True)
class _AlertTimeline:
    """Turns the pipeline's level changes into spans; `changed` alerts are exactly the driver display's updates."""

    open: dict[tuple[str, str], tuple[int, Level]] = field(default_factory=dict)
    last: dict[tuple[str, str], int] = field(default_factory=dict)
    spans: list[AlertSpan] = field(default_factory=list)

    def add(self, batch: BatchResult, index: int) -> None:
        for result in batch.results:
            for alert in result.alerts:
                key = (alert.camera, alert.zone)
                if alert.level != Level.NONE:
                    start, level = self.open.get(key, (index, alert.level))
                    self.open[key] = (start, max(level, alert.level))
                    self.last[key] = index
                elif key in self.open:
                    self._close(key)

    def _close(self, key: tuple[str, str]) -> None:
        start, level = self.open.pop(key)
        self.spans.append(AlertSpan(key[0], key[1], start, self.last[key], level))

    def finish(self) -> tuple[AlertSpan, ...]:
        for key in sorted(self.open):
            self._close(key)
        return tuple(sorted(self.spans, key=lambda s: (s.camera, s.zone, s.start_frame)))


def _load_config(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise ReplayError(f"{exc.source}: {exc.problems[0]}") from None


def _vehicle(settings: RerunSettings, config: Config, base: float) -> tuple[VehicleSource, str | None]:
    log, note = settings.vehicle_log, None
    if log is None and config.vehicle.source == "log":
        log = config.vehicle.log
    elif log is None and config.vehicle.source == "zmq":
        note = "vehicle: the config reads a live feed; replaying as a bus standing still (give --vehicle LOG)"
    if log is None:
        return StaticVehicle(), note
    if not Path(log).is_file():
        raise ReplayError(f"{log}: vehicle log not found")
    try:
        return VehicleLog(Path(log), t0=base, loop=config.vehicle.loop), note
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ReplayError(str(exc).splitlines()[0]) from None


def prepare_out(out: Path, force: bool) -> None:
    """An output folder holds one rerun: files of an earlier one would be listed as duplicates of this one."""
    old = [p for p in out.glob("date=*") if p.is_dir()] + [p for p in [out / MANIFEST] if p.exists()]
    if old and not (out / MANIFEST).exists():
        # --force must never wipe a real event store (say --out var/events): only what a rerun wrote.
        raise ReplayError(f"{out}: holds events that no rerun wrote (no {MANIFEST}); choose another --out")
    if old and not force:
        raise ReplayError(f"{out}: already holds a rerun's events; choose another --out or add --force to replace them")
    try:
        for p in old:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReplayError(f"{out}: cannot prepare the output folder: {exc.strerror or exc}") from None


def load_bus_id(path: Path) -> str:
    return _load_config(path).bus.id


def _ignore(_: int) -> None:
    pass


def _no_check(config: Config, frame_counts: dict[str, int]) -> None:
    pass


def rerun(
    settings: RerunSettings,
    progress: Callable[[int], None] = _ignore,
    on_start: Callable[[int], None] = _ignore,
    check: Callable[[Config, dict[str, int]], None] = _no_check,
) -> RerunResult:
    """Replay footage through the daemon's pipeline. `on_start` gets the expected frame count once the files are
    open, `progress` the number of frames in each batch done, `check` the config and each camera's frame count
    before anything costly (it raises ReplayError on inputs that do not fit them, such as labels)."""
    config = _load_config(settings.config)
    footage = assign_footage(config, settings.footage)
    # Every input is checked before the model loads and before anything is deleted from --out.
    reader = FootageReader(footage, config, settings.start)
    try:
        check(config, reader.frame_counts)
        vehicle, note = _vehicle(settings, config, reader.clock.base)
        detector = PersonDetector(config.detector)
        prepare_out(settings.out, settings.force)
    except ModelError as exc:
        reader.close()
        raise ReplayError(str(exc)) from None
    except ReplayError:
        reader.close()
        raise
    pipeline = Pipeline(config, detector, vehicle)
    on_start(reader.expected_frames(settings.max_frames))
    frames = dict.fromkeys(reader.frame_counts, 0)
    events: list[Event] = []
    timeline = _AlertTimeline()
    tally = AlertTally()
    last_ts = reader.clock.base
    detected = 0
    started = time.perf_counter()
    try:
        for batch in reader.batches(settings.max_frames):
            done = pipeline.process(list(batch.frames))
            timeline.add(done, batch.index)
            for frame in batch.frames:
                frames[frame.camera] += 1
                last_ts = max(last_ts, frame.t_capture)
            detected += len(done.results)
            for r in done.results:
                for alert in r.changed:
                    tally.add(alert)
                events.extend(r.closed)
            progress(len(batch.frames))
        # Whoever still stands in a zone when the footage ends is closed there, as the daemon does at shutdown.
        events.extend(pipeline.flush(last_ts))
    finally:
        reader.close()
        vehicle.close()
    sink = EventSink(settings.out, config.bus.id, detector.info.model_id, config.events.location_decimals)
    try:
        files = write_events(events, sink) if events else []
        seconds = time.perf_counter() - started
        result = RerunResult(
            settings.out,
            config,
            reader.clock,
            frames,
            detected,
            tuple(events),
            timeline.finish(),
            tuple(files),
            seconds,
            # The bus operated as long as its longest camera file played (the cameras run side by side).
            tally.budget(max((n / reader.clock.fps[c] for c, n in frames.items()), default=0.0) / 3600.0),
            tuple(n for n in [note] if n),
        )
        _write_manifest(settings, result, footage)
    except OSError as exc:
        raise ReplayError(f"{settings.out}: cannot write the events: {exc.strerror or exc}") from None
    return result


def _write_manifest(settings: RerunSettings, result: RerunResult, footage: tuple) -> None:
    """How the rerun was made, so its events can be turned back into frame numbers (labels) or redone later."""
    manifest = {
        "schema": "vigie.rerun/1",
        "config": str(settings.config),
        "bus_id": result.config.bus.id,
        "start": dt.datetime.fromtimestamp(result.clock.base, dt.UTC).isoformat(),
        "fps": result.clock.fps,
        "frames": result.frames,
        "frames_detected": result.detected,
        "footage": {f.camera: str(f.path) for f in footage},
        "vehicle_log": str(settings.vehicle_log) if settings.vehicle_log else None,
        "max_frames": settings.max_frames,
        "events": len(result.events),
    }
    (settings.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
