"""`vigie replay rerun`: the daemon's own pipeline on recorded footage, frame by frame, as fast as the machine goes.

Nothing here detects, tracks, zones or decides: frames go through `edge.pipeline.Pipeline.process` in batches of one
frame index across cameras (as the daemon batches its cameras' newest frames), the bus state comes from
`edge.vehicle.VehicleLog`, and closed events are written by `recorder.events.write_events`. What differs from the
daemon is only the clock (frame index / fps from a fixed base) and the absence of dropping, which make a rerun
deterministic: the same footage and config give the same event rows.

With `clip` set, the footage is one clip the recorder wrote: its frames keep their recorded times and the bus state
comes from its sidecar (replay/clip_replay.py), as in `vigie replay rerun-fleet`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.atomic import private_dir, write_text_atomic
from core.models import ModelError
from core.types import Event, Level, Side
from edge.budget import AlertTally, Budget
from edge.config import Config, ConfigError, load_config
from edge.detector import PersonDetector
from edge.pipeline import BatchResult, Pipeline
from edge.vehicle import StaticVehicle, VehicleLog, VehicleSource
from recorder.events import EventSink, write_events
from replay.errors import ReplayError
from replay.footage import CameraFootage, FootageReader, assign_footage
from replay.timeline import AlertSpan, Clock

if TYPE_CHECKING:
    from replay.clip_replay import RecordedClip

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
    clip: Path | None = None  # one recorded clip (its sidecar beside it) instead of footage, log and start


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
    bus_id: str = ""  # whose events these are: the config's bus, or the bus that recorded the clip

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
        private_dir(out)  # it holds events, like events.dir
    except OSError as exc:
        raise ReplayError(f"{out}: cannot prepare the output folder: {exc.strerror or exc}") from None


def load_bus_id(path: Path) -> str:
    return _load_config(path).bus.id


def _ignore(_: int) -> None:
    pass


def _no_check(config: Config, frame_counts: dict[str, int]) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Played:
    """What the pipeline made of the footage: frames per camera, how many it detected, events, alert spans and the
    driver's alerts by side and level."""

    frames: dict[str, int]
    detected: int
    events: tuple[Event, ...]
    alerts: tuple[AlertSpan, ...]
    alert_counts: dict[tuple[Side, Level], int]
    seconds: float


def play(
    pipeline: Pipeline, reader: FootageReader, max_frames: int | None = None, progress: Callable[[int], None] = _ignore
) -> Played:
    """Every batch of the reader through the pipeline, then whoever still stands in a zone when the footage ends is
    closed there, as the daemon does at shutdown."""
    frames = dict.fromkeys(reader.frame_counts, 0)
    events: list[Event] = []
    timeline = _AlertTimeline()
    tally = AlertTally()
    last_ts = reader.clock.base
    detected = 0
    started = time.perf_counter()
    for batch in reader.batches(max_frames):
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
    events.extend(pipeline.flush(last_ts))
    seconds = time.perf_counter() - started
    return Played(frames, detected, tuple(events), timeline.finish(), dict(tally.counts), seconds)


@dataclass(frozen=True, slots=True)
class _Inputs:
    """The footage opened, the bus's state, a note for the user, and the recorded clip when there is one."""

    footage: tuple[CameraFootage, ...]
    reader: FootageReader
    vehicle: VehicleSource
    note: str | None
    clip: RecordedClip | None = None


def _open(settings: RerunSettings, config: Config) -> _Inputs:
    """From the footage, log and start given, or from one recorded clip."""
    if settings.clip is not None:
        from replay.clip_replay import DOORS_NOTE, open_clip, read_sidecar

        if settings.footage or settings.vehicle_log:
            raise ReplayError("--clip: replays one recorded clip on its own; give no FOOTAGE and no --vehicle")
        clip = read_sidecar(settings.clip)
        clip_reader, clip_vehicle = open_clip(config, settings.clip, clip)
        return _Inputs((CameraFootage(clip.camera, settings.clip),), clip_reader, clip_vehicle, DOORS_NOTE, clip)
    footage = assign_footage(config, settings.footage)
    reader = FootageReader(footage, config, settings.start)
    try:
        vehicle, note = _vehicle(settings, config, reader.clock.base)
    except ReplayError:
        reader.close()
        raise
    return _Inputs(footage, reader, vehicle, note)


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
    # Every input is checked before the model loads and before anything is deleted from --out.
    inputs = _open(settings, config)
    reader = inputs.reader
    try:
        check(config, reader.frame_counts)
        detector = PersonDetector(config.detector)
        prepare_out(settings.out, settings.force)
    except ModelError as exc:
        reader.close()
        raise ReplayError(str(exc)) from None
    except ReplayError:
        reader.close()
        raise
    on_start(reader.expected_frames(settings.max_frames))
    try:
        played = play(Pipeline(config, detector, inputs.vehicle), reader, settings.max_frames, progress)
    finally:
        reader.close()
        inputs.vehicle.close()
    clip = inputs.clip
    events = [dataclasses.replace(ev, clip=clip.clip_id) for ev in played.events] if clip else list(played.events)
    bus_id = clip.bus if clip else config.bus.id  # a clip's events are those of the bus that recorded it
    sink = EventSink(settings.out, bus_id, detector.info.model_id, config.events.location_decimals)
    # The bus operated as long as its longest camera file played (the cameras run side by side).
    hours = max((reader.clock.seconds(c, n) for c, n in played.frames.items()), default=0.0) / 3600.0
    try:
        files = write_events(events, sink) if events else []
        result = RerunResult(
            settings.out,
            config,
            reader.clock,
            played.frames,
            played.detected,
            tuple(events),
            played.alerts,
            tuple(files),
            played.seconds,
            Budget(played.alert_counts, hours),
            tuple(n for n in [inputs.note] if n),
            bus_id,
        )
        _write_manifest(settings, result, inputs.footage)
    except OSError as exc:
        raise ReplayError(f"{settings.out}: cannot write the events: {exc.strerror or exc}") from None
    return result


def _write_manifest(settings: RerunSettings, result: RerunResult, footage: tuple) -> None:
    """How the rerun was made, so its events can be turned back into frame numbers (labels) or redone later."""
    manifest = {
        "schema": "vigie.rerun/1",
        "config": str(settings.config),
        "bus_id": result.bus_id,
        "start": dt.datetime.fromtimestamp(result.clock.base, dt.UTC).isoformat(),
        "fps": result.clock.fps,
        "frames": result.frames,
        "frames_detected": result.detected,
        "footage": {f.camera: str(f.path) for f in footage},
        "vehicle_log": str(settings.vehicle_log) if settings.vehicle_log else None,
        "clip": str(settings.clip) if settings.clip else None,
        "max_frames": settings.max_frames,
        "events": len(result.events),
    }
    write_text_atomic(settings.out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
