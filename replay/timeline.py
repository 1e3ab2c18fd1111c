"""Time in a rerun: frame numbers and the capture times made from them. No I/O, so reading results (compare,
views) does not load the video and model stacks."""

from __future__ import annotations

from dataclasses import dataclass

from core.types import Level


@dataclass(frozen=True, slots=True)
class Clock:
    """Frame index → capture time: `base` plus index / fps of that camera's file. Fixed, never the wall clock."""

    base: float  # epoch seconds of frame 0
    fps: dict[str, float]

    def t(self, camera: str, index: int) -> float:
        return self.base + index / self.fps[camera]

    def frame_of(self, camera: str, ts: float) -> int:
        return round((ts - self.base) * self.fps[camera])


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """A stretch of frames during which one zone showed the driver something (level above none)."""

    camera: str
    zone: str
    start_frame: int
    end_frame: int  # last frame still raised, inclusive
    max_level: Level
