"""The typed objects that travel between the stages of the edge pipeline.

Each stage hands the next one of these and nothing else: no positional tuples, no free dicts. Per-detection data is
kept as parallel numpy arrays (one row per person) so the per-frame path never builds one Python object per box.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class Side(enum.StrEnum):
    FRONT = "front"
    RIGHT = "right"
    REAR = "rear"
    LEFT = "left"


class Level(enum.IntEnum):
    """Ordered so that max() of two levels is the more urgent one."""

    NONE = 0
    INFO = 1
    WARNING = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Status(enum.StrEnum):
    """Every status `health` can carry. A StrEnum: on the wire it is the same string as before."""

    STARTING = "starting"  # cameras, before their first frame or failure (never published)
    OK = "ok"
    STALLED = "stalled"  # cameras: connected, no frame
    DEGRADED = "degraded"  # cameras: frames arrive but show nothing usable (a ViewReason says why)
    OFFLINE = "offline"  # cameras: no connection; recorder: its process died
    WAITING = "waiting"  # vehicle feed: nothing received yet
    STALE = "stale"  # vehicle feed: silent, or only refused messages
    FAILED = "failed"  # recorder or event store: an error a technician must look at
    DISK_FULL = "disk_full"  # recorder or event store: the crew can free space
    CLIP_FAILED = "clip_failed"  # recorder: one clip could not be written
    CLIP_WRITTEN = "clip_written"  # recorder to daemon only, never published


class ViewReason(enum.StrEnum):
    """Why a camera that still sends frames cannot be trusted to see a person (UN R151: failure, low light, dirt)."""

    DARK = "dark"  # too little light
    BLOCKED = "blocked"  # lens covered or smeared: much of the view has no detail
    GLARE = "glare"  # much of the view saturated (sun, headlights)
    FROZEN = "frozen"  # the picture stopped changing: a hung sensor or encoder still sending its last frame


class ClipState(enum.StrEnum):
    """What an event's clip shows of it, as an analyst is told (recorder.clips.judge, replay)."""

    COMPLETE = "complete"  # the clip's frames show (nearly) every moment of the event
    INCOMPLETE = "incomplete"  # the clip is there but shows less: frames a starved recorder could not keep
    MISSING = "missing"  # no finished clip: never written (recorder starved, stopped or down, disk full) or expired
    WRITING = "writing"  # the recorder is still writing it
    NO_CLIP = "none"  # the event names no clip (recorded without the recorder)
    UNCHECKED = "unchecked"  # the clips are not where the reader looked


class Indicator(enum.StrEnum):
    OFF = "off"
    LEFT = "left"
    RIGHT = "right"
    HAZARD = "hazard"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded camera image. `t_capture` is wall-clock (epoch s) so it can be compared across processes."""

    camera: str
    seq: int
    t_capture: float
    image: np.ndarray = field(repr=False)


def _empty(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


@dataclass(frozen=True, slots=True)
class Detections:
    """People found in one frame, as arrays of equal length N.

    xyxy: (N, 4) float32 pixel box corners; score: (N,) float32; label: (N,) int32 (0 = person).
    Always shaped, even when empty, so callers never branch on None.
    """

    xyxy: np.ndarray
    score: np.ndarray
    label: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(_empty((0, 4), np.float32), _empty((0,), np.float32), _empty((0,), np.int32))

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def filter(self, keep: np.ndarray) -> Detections:
        return Detections(self.xyxy[keep], self.score[keep], self.label[keep])

    def anchors(self) -> np.ndarray:
        """Bottom-centre of each box: where the person stands on the ground. (N, 2) pixels."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5
        return np.stack([x, self.xyxy[:, 3]], axis=1)


@dataclass(frozen=True, slots=True)
class Tracks:
    """One frame's tracked detections, each with its per-camera track id.

    `confirmed` is false for a track born in the last moments (it may still turn out to be noise). `alive` lists
    every track the tracker still keeps, including people unseen on this frame (hidden, or missed by the detector):
    a stay in a zone is not over while its person's track is alive.

    Track ids are small integers that live only as long as the track; they never leave the bus in a form that could
    link one person across events.
    """

    detections: Detections
    track_id: np.ndarray  # (N,) int64
    confirmed: np.ndarray  # (N,) bool
    alive: np.ndarray  # (K,) int64

    @classmethod
    def empty(cls) -> Tracks:
        return cls(Detections.empty(), _empty((0,), np.int64), _empty((0,), bool), _empty((0,), np.int64))

    def __len__(self) -> int:
        return int(self.track_id.shape[0])


@dataclass(frozen=True, slots=True)
class VehicleState:
    speed_kmh: float = 0.0
    indicator: Indicator = Indicator.OFF
    doors_open: bool = False
    reverse: bool = False
    lat: float | None = None
    lon: float | None = None
    ts: float = 0.0
    # Seconds since the bus was last at a standstill; None if it has not stopped since we started listening.
    stopped_s_ago: float | None = None


@dataclass(frozen=True, slots=True)
class ZoneHits:
    """Which tracks stand in one zone of one camera on one frame."""

    zone: str
    track_ids: tuple[int, ...]
    confirmed: tuple[bool, ...]  # the tracker is sure each of them is a person (see Tracks)
    scores: tuple[float, ...]
    distances_m: tuple[float, ...]  # NaN where the camera has no ground calibration
    # Tracks the tracker still keeps but did not see on this frame (hidden, or missed): their stays are not over.
    hidden: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Alert:
    """What the driver display is told: one message per change of level in one zone."""

    camera: str
    side: Side
    zone: str
    level: Level
    track_ids: tuple[int, ...]
    nearest_m: float | None
    frame_ts: float
    # The camera cannot see (its view is degraded) and nobody is seen in the zone: the display is told `unknown`,
    # never `clear`. `level` is then NONE; a person still seen keeps their real level and this stays False.
    unknown: bool = False


@dataclass(frozen=True, slots=True)
class Health:
    camera: str | None
    status: Status
    detail: str
    ts: float


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What became of the events handed to the event store in one run: accepted = written + dropped + unwritten."""

    recovered: int = 0  # from the write-ahead log of an interrupted run (included in accepted)
    accepted: int = 0
    written: int = 0  # to Parquet
    dropped: int = 0  # from memory, beyond the bound, while the disk refused them
    dropped_in_wal: int = 0  # of those, still in the write-ahead log: the next start writes them
    unwritten: int = 0  # still waiting at exit (the disk never took them)
    unwritten_in_wal: int = 0  # of those, in the write-ahead log for the next start; the rest are lost


@dataclass(frozen=True, slots=True)
class Event:
    """One person's stay in one zone, closed. No image data and no identifier that survives the event."""

    event_id: str
    camera: str
    side: Side
    zone: str
    start_ts: float
    end_ts: float
    max_level: Level
    min_distance_m: float | None
    frames: int
    max_score: float
    vehicle_at_start: VehicleState
    clip: str | None = None  # the anonymised clip that shows it, when the recorder is on
    # Rises of the zone's level the driver saw (none → info, none/info → warning) while this person was the first
    # one there: summed over events, exactly the alerts the driver received (the false-alert budget).
    info_alerts: int = 0
    warning_alerts: int = 0
