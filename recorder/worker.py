"""The recorder process: pre-roll buffer, anonymisation, clip files, retention.

It runs niced, with core dumps off and umask 077, and only ever talks to the daemon through a queue of small
messages (frames themselves arrive through the shared-memory ring). Frames it keeps for the pre-roll are JPEG in RAM;
pixels reach the disk only after the anonymiser has blurred them, inside a clip file.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from recorder.clipfile import ClipFile, FrameMeta, clean_partials, clip_folder
from recorder.clips import ClipEnd, ClipStart
from recorder.lifeline import Lifeline
from recorder.retention import RetentionPolicy, enforce
from recorder.ring import FrameRing, RingSpec

log = logging.getLogger(__name__)

_IDLE = object()
JPEG_QUALITY = 90
MAX_LAG_S = 1.0
STOP_GRACE_S = 3.0  # at shutdown, frames still in the ring are worth this long to write
RETENTION_EVERY_S = 60.0
ANONYMISE_BATCH = 8
CLIP_RESERVE_BYTES = 20 * 1024 * 1024  # room kept for the clip about to start (a 20 s clip is ~3-8 MB)


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    root: Path
    bus_id: str
    fmt: str
    mode: str
    pre_roll_s: float
    clip_fps: float
    retention: RetentionPolicy
    min_free_bytes: int
    nice: int
    cameras: dict  # camera name -> JSON-able description (side, zones, calibration) stored with each clip


@dataclass(frozen=True, slots=True)
class RingAttach:
    camera: str
    spec: RingSpec


@dataclass(frozen=True, slots=True)
class Status:
    """Recorder → daemon: something the driver or the operator should know (published on `health`)."""

    status: str  # "ok", "disk_full", "clip_written", "clip_failed"
    detail: str


@dataclass(slots=True)
class _Camera:
    ring: FrameRing | None = None
    # Pre-roll: (meta, jpeg bytes) of recent frames, in RAM only.
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=600))
    clip: ClipFile | None = None
    clip_id: str | None = None
    clip_wanted: bool = False
    lost: int = 0


class Recorder:
    def __init__(self, settings: RecorderSettings, outbox) -> None:
        from recorder.anonymise import AnonymiseConfig, Anonymiser

        self._s = settings
        self._out = outbox
        self._cams: dict[str, _Camera] = collections.defaultdict(_Camera)
        self._anonymiser = Anonymiser(AnonymiseConfig(mode=settings.mode, threads=1))
        self._next_retention = 0.0
        self._disk_full = False
        clean_partials(settings.root)

    # -- messages -------------------------------------------------------------------------------------------------
    def handle(self, msg: object) -> None:
        if isinstance(msg, FrameMeta):
            self._frame(msg)
        elif isinstance(msg, ClipStart):
            self._start(msg)
        elif isinstance(msg, ClipEnd):
            self._end(msg.camera)
        elif isinstance(msg, RingAttach):
            cam = self._cams[msg.camera]
            if cam.ring is not None:
                cam.ring.close()
            try:
                cam.ring = FrameRing.attach(msg.spec)
            except FileNotFoundError:  # unlinked before we got to it (the daemon died): its frames count as lost
                cam.ring = None

    def tick(self) -> None:
        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + RETENTION_EVERY_S
            enforce(self._s.root, self._s.retention)

    def close(self) -> None:
        for name in list(self._cams):
            self._end(name)
        for cam in self._cams.values():
            if cam.ring is not None:
                cam.ring.close()

    # -- frames -----------------------------------------------------------------------------------------------------
    def _frame(self, meta: FrameMeta) -> None:
        cam = self._cams[meta.camera]
        # Behind by more than MAX_LAG_S: skip to the present. A clip then has fewer frames per second (the sidecar
        # keeps each frame's true time) instead of drifting ever further behind the events it must show.
        if time.time() - meta.ts > MAX_LAG_S:
            cam.lost += 1
            return
        got = cam.ring.read(meta.slot, meta.seq) if cam.ring is not None else None
        if got is None:
            cam.lost += 1  # overwritten before we got to it: the recorder fell behind, the daemon did not wait
            return
        image, _ = got
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        cam.recent.append((meta, jpeg.tobytes(), image.shape))
        self._trim(cam, meta.ts)
        if cam.clip_wanted:
            self._write(cam, [(meta, image)])

    def _trim(self, cam: _Camera, now: float) -> None:
        while cam.recent and now - cam.recent[0][0].ts > self._s.pre_roll_s + 1.0:
            cam.recent.popleft()

    def _start(self, msg: ClipStart) -> None:
        cam = self._cams[msg.camera]
        if cam.clip_wanted:
            return
        if not self._room_for_a_clip():
            return
        cam.clip_wanted, cam.clip_id = True, msg.clip_id
        backlog = [
            (m, cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR))
            for m, j, _ in cam.recent
            if m.ts >= msg.from_ts
        ]
        for i in range(0, len(backlog), ANONYMISE_BATCH):
            self._write(cam, backlog[i : i + ANONYMISE_BATCH])

    def _write(self, cam: _Camera, frames: list[tuple[FrameMeta, np.ndarray]]) -> None:
        if not frames:
            return
        try:
            if cam.clip is None:
                cam.clip = self._open_clip(cam, frames[0][0], frames[0][1])
            blurred = self._anonymiser.anonymise([im for _, im in frames], [m.boxes for m, _ in frames])
            for (meta, _), image in zip(frames, blurred, strict=True):
                cam.clip.add(image, meta)
        except OSError as exc:
            self._fail(cam, f"clip {cam.clip_id}: {exc}")

    def _open_clip(self, cam: _Camera, first: FrameMeta, image: np.ndarray) -> ClipFile:
        folder = clip_folder(self._s.root, self._s.bus_id, first.ts)
        fps = self._fps(cam)
        assert cam.clip_id is not None
        return ClipFile(folder, cam.clip_id, self._s.fmt, fps, (image.shape[1], image.shape[0]))

    def _fps(self, cam: _Camera) -> float:
        ts = [m.ts for m, _, _ in cam.recent]
        camera_fps = float(np.clip(1.0 / np.median(np.diff(ts)), 1.0, 60.0)) if len(ts) >= 3 else 10.0
        return min(camera_fps, self._s.clip_fps)

    def _end(self, camera: str) -> None:
        cam = self._cams[camera]
        clip, cam.clip, cam.clip_wanted = cam.clip, None, False
        if clip is None:
            return
        try:
            meta = {
                "camera": camera,
                "bus_id": self._s.bus_id,
                "frames_lost": cam.lost,
                **self._s.cameras.get(camera, {}),
            }
            path = clip.finish(meta)
            self._send(Status("clip_written", f"{path.name} ({clip.frames} frames)"))
        except OSError as exc:
            clip.abandon()
            self._send(Status("clip_failed", f"{clip.clip_id}: {exc}"))

    def _fail(self, cam: _Camera, detail: str) -> None:
        if cam.clip is not None:
            cam.clip.abandon()
        cam.clip, cam.clip_wanted = None, False
        self._send(Status("clip_failed", detail))

    # -- disk ---------------------------------------------------------------------------------------------------------
    def _room_for_a_clip(self) -> bool:
        self._s.root.mkdir(parents=True, exist_ok=True)
        enforce(self._s.root, self._s.retention, reserve_bytes=CLIP_RESERVE_BYTES)
        free = shutil.disk_usage(self._s.root).free
        full = free < self._s.min_free_bytes + CLIP_RESERVE_BYTES
        if full != self._disk_full:
            self._disk_full = full
            detail = f"{free // 2**20} MB free in {self._s.root}"
            self._send(Status("disk_full" if full else "ok", detail + (": no new clips" if full else "")))
        return not full

    def _send(self, status: Status) -> None:
        with contextlib.suppress(queue.Full):  # the daemon is not reading: it has more pressing work
            self._out.put_nowait(status)


def run(settings: RecorderSettings, inbox, outbox, stopping) -> None:
    """Process entry point."""
    lifeline = Lifeline().start()  # first: the daemon may die while the face model loads
    os.nice(settings.nice)
    cv2.setNumThreads(1)  # one core at most for resize/encode: the other is the daemon's
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash dump would hold raw frames
    os.umask(0o077)  # every file created 0600 from its first byte
    recorder = Recorder(settings, outbox)
    outbox.put(Status("ok", "recorder started"))
    stop_by: float | None = None
    try:
        while True:
            try:
                msg = inbox.get(timeout=1.0)
            except queue.Empty:
                msg = _IDLE
            if msg is None or (msg is _IDLE and lifeline.orphaned):  # orphaned: no None will come, stop when idle
                break
            # The lifeline first: a daemon killed inside `stopping.set()` leaves that event's lock held for ever.
            if lifeline.orphaned or stopping.is_set():
                stop_by = stop_by or time.monotonic() + STOP_GRACE_S
                if time.monotonic() > stop_by:
                    break
            recorder.handle(msg)
            recorder.tick()
    finally:
        recorder.close()
        if lifeline.orphaned:
            outbox.cancel_join_thread()  # nobody reads it any more: never wait at exit to flush it


def describe_camera(cam) -> dict:
    """What a clip keeps about its camera so replay can draw zones without the bus config (JSON-able)."""
    return json.loads(
        json.dumps(
            {
                "side": cam.side.value,
                "zones": [z.model_dump(mode="json") for z in cam.zones],
                "calibration": cam.calibration.model_dump(mode="json") if cam.calibration else None,
            }
        )
    )
