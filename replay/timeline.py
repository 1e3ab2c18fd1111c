"""Time in a rerun: frame numbers and the capture times made from them. No I/O, so reading results (compare,
views) does not load the video and model stacks."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from core.types import Level


@dataclass(frozen=True, slots=True)
class Clock:
    """Frame index → capture time: `base` plus index / fps of that camera's file. Fixed, never the wall clock.

    A recorded clip knows when each of its frames was captured (its sidecar's `ts`): those cameras are in `times`
    and their frames keep the times they had on the bus. A clip's frames are not evenly spaced (the recorder keeps
    a frame every 0.2 or 0.3 s of a 10 fps camera, and thins a backlog), so index / fps would drift by seconds."""

    base: float  # epoch seconds of frame 0
    fps: dict[str, float]
    times: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def t(self, camera: str, index: int) -> float:
        recorded = self.times.get(camera)
        if recorded is not None:
            return recorded[index]
        return self.base + index / self.fps[camera]

    def frame_of(self, camera: str, ts: float) -> int:
        recorded = self.times.get(camera)
        if recorded:
            i = min(bisect_left(recorded, ts), len(recorded) - 1)
            return i - 1 if i > 0 and ts - recorded[i - 1] < recorded[i] - ts else i
        return round((ts - self.base) * self.fps[camera])

    def seconds(self, camera: str, frames: int) -> float:
        """How long `frames` frames of this camera lasted (each frame holds until the next one)."""
        recorded = self.times.get(camera)
        if recorded and frames > 0:
            return recorded[frames - 1] - recorded[0] + 1.0 / self.fps[camera]
        return frames / self.fps[camera]


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """A stretch of frames during which one zone showed the driver something (level above none)."""

    camera: str
    zone: str
    start_frame: int
    end_frame: int  # last frame still raised, inclusive
    max_level: Level
