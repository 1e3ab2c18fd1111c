"""Recorded footage for a rerun: which file plays which camera, and reading every frame of them in lockstep.

Unlike edge/capture.py there is no thread and no "newest frame wins": a rerun must see every frame, in order, and
its clock is the frame index, so that the same footage always gives the same decisions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from core.types import Frame
from edge.config import Config
from replay.errors import ReplayError
from replay.timeline import Clock


@dataclass(frozen=True, slots=True)
class CameraFootage:
    camera: str
    path: Path


def assign_footage(config: Config, args: tuple[str, ...]) -> tuple[CameraFootage, ...]:
    """Map FOOTAGE arguments to the config's cameras.

    - none: every camera plays its own `source` from the config (it must be a file);
    - all `name=path`: those cameras play those files; cameras not named get no frames;
    - all plain paths: one per camera, in the config's camera order.
    Mixing the two forms is refused: a half-positional list is too easy to get wrong silently.
    """
    names = [c.name for c in config.cameras]
    if not args:
        missing = [c.name for c in config.cameras if "://" in c.source]
        if missing:
            raise ReplayError(f"camera {missing[0]}: its source is a live stream; give FOOTAGE as {missing[0]}=FILE")
        return tuple(CameraFootage(c.name, Path(c.source)) for c in config.cameras)
    named = [a for a in args if "=" in a]
    if named and len(named) != len(args):
        raise ReplayError("FOOTAGE: use either NAME=PATH for every file or plain paths in camera order, not both")
    if not named:
        if len(args) != len(names):
            raise ReplayError(
                f"FOOTAGE: {len(args)} file(s) for {len(names)} cameras ({', '.join(names)}); "
                "give one per camera in that order, or NAME=PATH for some of them"
            )
        pairs = list(zip(names, args, strict=True))
    else:
        pairs = [tuple(a.split("=", 1)) for a in args]  # type: ignore[misc]
        for name, _ in pairs:
            if name not in names:
                raise ReplayError(f"FOOTAGE {name}=…: no camera {name!r} in the config ({', '.join(names)})")
        seen = [n for n, _ in pairs]
        dupes = {n for n in seen if seen.count(n) > 1}
        if dupes:
            raise ReplayError(f"FOOTAGE: camera {sorted(dupes)[0]} given twice")
        # Batches follow the config's camera order whatever order the arguments came in.
        pairs.sort(key=lambda p: names.index(p[0]))
    return tuple(CameraFootage(name, Path(path)) for name, path in pairs)


@dataclass(frozen=True, slots=True)
class Batch:
    index: int
    frames: tuple[Frame, ...]


ONE_FRAME_FPS = 5.0  # recorder.clip_fps's default: a clip of one frame has no gap to measure


def _rate_of(times: tuple[float, ...]) -> float:
    """Frames a second of a recorded clip, over its whole length (its container's rate is an estimate the recorder
    made from its first frames)."""
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else ONE_FRAME_FPS


class FootageReader:
    """Opens every file up front (so a bad one fails before any work) and yields one batch per frame index.

    `times`: cameras whose frames carry their recorded capture times (a clip's sidecar) instead of index / fps;
    such a camera plays no more frames than it has times for."""

    def __init__(
        self,
        footage: tuple[CameraFootage, ...],
        config: Config,
        start: dt.datetime,
        times: dict[str, tuple[float, ...]] | None = None,
    ):
        self._caps: dict[str, cv2.VideoCapture] = {}
        self.frame_counts: dict[str, int] = {}
        times = times or {}
        fps: dict[str, float] = {}
        overrides = {c.name: c.fps for c in config.cameras}
        try:
            for item in footage:
                cap = self._open(item)
                self._caps[item.camera] = cap
                recorded = times.get(item.camera)
                # The camera's configured rate wins, as in the daemon; otherwise the file's own. A recorded clip
                # was kept at its own rate, whatever the camera's: its times say which.
                rate = _rate_of(recorded) if recorded else overrides.get(item.camera) or cap.get(cv2.CAP_PROP_FPS)
                if not rate or rate <= 0 or rate > 240:
                    raise ReplayError(f"{item.path}: no usable frame rate; set cameras.fps for {item.camera}")
                fps[item.camera] = float(rate)
                count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
                self.frame_counts[item.camera] = min(count, len(recorded)) if recorded else count
        except ReplayError:
            self.close()
            raise
        self.clock = Clock(start.timestamp(), fps, {c: t for c, t in times.items() if c in self._caps})

    @staticmethod
    def _open(item: CameraFootage) -> cv2.VideoCapture:
        if not item.path.is_file():
            raise ReplayError(f"{item.path}: footage file not found (camera {item.camera})")
        cap = cv2.VideoCapture(str(item.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise ReplayError(f"{item.path}: not a readable video (camera {item.camera})")
        return cap

    def expected_frames(self, max_frames: int | None) -> int:
        """For the progress bar: container frame counts can be estimates, so this is a guide, not a promise."""
        return sum(min(n, max_frames) if max_frames else n for n in self.frame_counts.values())

    def batches(self, max_frames: int | None = None) -> Iterator[Batch]:
        live = dict(self._caps)
        index = 0
        while live and (max_frames is None or index < max_frames):
            frames = []
            for camera, cap in list(live.items()):
                recorded = self.clock.times.get(camera)
                ok, image = cap.read() if recorded is None or index < len(recorded) else (False, None)
                if not ok or image is None:
                    del live[camera]  # this file ended; the others play on
                    continue
                frames.append(Frame(camera, index, self.clock.t(camera, index), image))
            if not frames:
                return
            yield Batch(index, tuple(frames))
            index += 1

    def close(self) -> None:
        for cap in self._caps.values():
            cap.release()
        self._caps.clear()
