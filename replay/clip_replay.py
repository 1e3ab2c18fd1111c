"""One recorded clip through the daemon's pipeline, as the bus saw it: its frames at the times they were captured and
the bus's state on each of them, both from the clip's sidecar (recorder/clipfile.py).

What a clip carries and what it does not: per frame the capture time, the speed and the indicator; in its metadata
the bus and the camera. The doors and the reverse gear are not recorded, so a rerun takes them as closed and
forward, and says so (`DOORS_NOTE`). The location is not in the sidecar either: rerun events have no lat/lon.

Shared by `vigie replay rerun --clip` (one clip on the analyst's machine) and `vigie replay rerun-fleet` (every clip
of a range on Dask workers), so both give the same events for the same clip and config.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.types import Event, Indicator, VehicleState
from edge.config import Config
from edge.detector import PersonDetector
from edge.pipeline import Pipeline
from edge.policy import MOVING_KMH
from replay.errors import ReplayError, first_line
from replay.footage import CameraFootage, FootageReader
from replay.timeline import AlertSpan

SIDECAR_SUFFIX = ".frames.parquet"
VIDEO_SUFFIXES = (".mp4", ".avi")
DOORS_NOTE = "doors and reverse gear are not in a clip's sidecar: replayed as closed and driving forward"


@dataclass(frozen=True, slots=True)
class RecordedClip:
    """What a clip's sidecar says about it: the bus, the camera, and per frame its time and the bus's state."""

    clip_id: str
    bus: str
    camera: str
    times: tuple[float, ...]  # capture time of each frame, epoch s
    speed_kmh: tuple[float, ...]
    indicator: tuple[Indicator, ...]

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]


def sidecar_of(video: Path) -> Path:
    return video.with_name(f"{video.stem}{SIDECAR_SUFFIX}")


def recorded_clip(table: pa.Table, clip_id: str, where: str) -> RecordedClip:
    """The sidecar's rows as a RecordedClip; `where` names the file in errors."""
    try:
        meta = json.loads((table.schema.metadata or {})[b"vigie.clip"])
        bus, camera = str(meta["bus_id"]), str(meta["camera"])
        cols = table.select(["ts", "speed_kmh", "indicator"]).to_pydict()
        indicator = tuple(Indicator(v) for v in cols["indicator"])
    except (KeyError, ValueError, TypeError, pa.ArrowException) as exc:
        raise ReplayError(f"{where}: not a clip sidecar ({first_line(exc)})") from None
    times = tuple(float(t) for t in cols["ts"])
    if not times:
        raise ReplayError(f"{where}: a clip without frames")
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ReplayError(f"{where}: frame times do not increase")
    return RecordedClip(clip_id, bus, camera, times, tuple(float(v) for v in cols["speed_kmh"]), indicator)


def read_sidecar(video: Path) -> RecordedClip:
    path = sidecar_of(video)
    if not path.is_file():
        raise ReplayError(f"{video}: no sidecar {path.name} beside it (is it a clip the recorder wrote?)")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ReplayError(f"{path}: unreadable Parquet: {first_line(exc)}") from None
    return recorded_clip(table, video.stem, str(path))


class SidecarVehicle:
    """The bus's state on each frame of a clip, as recorded; between frames, the state of the frame before. Like a
    vehicle log, it only knows of stops within the clip (`stopped_s_ago` is None before the first one)."""

    def __init__(self, clip: RecordedClip):
        self._clip = clip
        self._last_stop: list[float | None] = []
        last: float | None = None
        for t, speed in zip(clip.times, clip.speed_kmh, strict=True):
            last = t if speed < MOVING_KMH else last
            self._last_stop.append(last)

    def state_at(self, ts: float) -> VehicleState:
        i = max(bisect_right(self._clip.times, ts) - 1, 0)
        speed, stop = self._clip.speed_kmh[i], self._last_stop[i]
        stopped_ago = 0.0 if speed < MOVING_KMH else (None if stop is None else max(ts - stop, 0.0))
        return VehicleState(speed_kmh=speed, indicator=self._clip.indicator[i], ts=ts, stopped_s_ago=stopped_ago)

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ClipRun:
    """What replaying one clip gave: its events (each naming the clip), its alert spans in frame numbers of the
    clip, how many frames were played and detected, and the seconds it took."""

    clip_id: str
    bus: str
    camera: str
    start: float
    end: float
    frames: int
    detected: int
    events: tuple[Event, ...]
    alerts: tuple[AlertSpan, ...]
    seconds: float


def open_clip(config: Config, video: Path, clip: RecordedClip) -> tuple[FootageReader, SidecarVehicle]:
    """The clip's frames on its own camera at their recorded times, and the bus's recorded state."""
    names = [c.name for c in config.cameras]
    if clip.camera not in names:
        raise ReplayError(f"clip {clip.clip_id}: camera {clip.camera!r} is not in the config ({', '.join(names)})")
    start = dt.datetime.fromtimestamp(clip.start, dt.UTC)
    reader = FootageReader((CameraFootage(clip.camera, video),), config, start, {clip.camera: clip.times})
    return reader, SidecarVehicle(clip)


def replay_clip(config: Config, detector: PersonDetector, video: Path, clip: RecordedClip) -> ClipRun:
    """Replay one clip with a fresh pipeline (trackers and zones start empty, as they would on a new clip)."""
    from replay.rerun import play

    reader, vehicle = open_clip(config, video, clip)
    try:
        played = play(Pipeline(config, detector, vehicle), reader)
    finally:
        reader.close()
    events = tuple(dataclasses.replace(ev, clip=clip.clip_id) for ev in played.events)
    return ClipRun(
        clip.clip_id,
        clip.bus,
        clip.camera,
        clip.start,
        clip.end,
        sum(played.frames.values()),
        played.detected,
        events,
        played.alerts,
        played.seconds,
    )
