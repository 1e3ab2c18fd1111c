"""The recorder process: pre-roll buffer, anonymisation, clip files, retention.

It runs niced, with core dumps off and umask 077, and only ever talks to the daemon through a queue of small
messages (frames themselves arrive through the shared-memory ring). Frames it keeps for the pre-roll are JPEG in RAM;
pixels reach the disk only after the anonymiser has blurred them, inside a clip file.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import queue
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from core.types import Status
from recorder.clipfile import ClipFile, FrameMeta, clean_partials, clip_folder
from recorder.clips import COMPLETE, ClipEnd, ClipStart, coverage
from recorder.lifeline import Lifeline
from recorder.retention import RetentionPolicy, enforce
from recorder.ring import FrameRing, RingSpec

log = logging.getLogger(__name__)

_IDLE = object()
JPEG_QUALITY = 90
MAX_LAG_S = 1.0  # pre-roll only: a frame older than this is not worth keeping unless a clip is open
BACKLOG_S = 10.0  # frames of open clips waiting to be blurred and written, per camera, in clip-rate seconds
STOP_GRACE_S = 3.0  # at shutdown, frames still in the ring are worth this long to write
RETENTION_EVERY_S = 60.0
ANONYMISE_BATCH = 8
WORK_BATCH = 2  # frames written between two looks at the inbox: a long batch lets the ring overwrite frames
CLOSE_BUDGET_S = 5.0  # at shutdown, time to write what open clips still have waiting (the daemon waits 10 s)
CLIP_RESERVE_BYTES = 20 * 1024 * 1024  # room kept for the clip about to start (a 20 s clip is ~3-8 MB)


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    root: Path
    bus_id: str
    fmt: str
    mode: Literal["faces", "persons"]
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
class RecorderStatus:
    """Recorder → daemon: something the driver or the operator should know (published on `health`)."""

    status: Status  # ok, disk_full, clip_written, clip_failed
    detail: str


@dataclass(slots=True)
class _Camera:
    ring: FrameRing | None = None
    # Pre-roll: (meta, jpeg bytes) of recent frames, in RAM only.
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=600))
    clip: ClipFile | None = None
    clip_id: str | None = None
    clip_wanted: bool = False
    event_from: float = 0.0  # frames before this are the clip's pre-roll: the first to go when behind
    # Frames of the open clip, rescued from the ring as JPEG, waiting for the CPU to blur and write them.
    backlog: list = field(default_factory=list)
    lost: int = 0
    thinned: int = 0  # frames of the open clip dropped to keep the backlog bounded (the clip's rate drops)
    ending: ClipEnd | None = None  # its end arrived while stopping: finished, with its spans, by `close`


class Recorder:
    def __init__(self, settings: RecorderSettings, outbox) -> None:
        from recorder.anonymise import AnonymiseConfig, Anonymiser

        self._s = settings
        self._out = outbox
        self._cams: dict[str, _Camera] = collections.defaultdict(_Camera)
        self._anonymiser = Anonymiser(AnonymiseConfig(mode=settings.mode, threads=1))
        self._next_retention = 0.0
        self._disk_full = False
        self.stopping = False
        self._write_s = 0.05  # wall time to blur and write one frame, measured (a starved recorder's is long)
        clean_partials(settings.root)

    # -- messages -------------------------------------------------------------------------------------------------
    def handle(self, msg: object) -> None:
        if isinstance(msg, FrameMeta):
            self._frame(msg)
        elif isinstance(msg, ClipStart):
            self._start(msg)
        elif isinstance(msg, ClipEnd) and self.stopping:
            self._cams[msg.camera].ending = msg  # written within close's budget, with every other open clip
        elif isinstance(msg, ClipEnd):
            self._end(msg.camera, msg)
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

    @property
    def behind(self) -> bool:
        """Rescued frames wait to be written (the loop writes them whenever no message is waiting)."""
        return any(cam.backlog for cam in self._cams.values())

    def work(self) -> None:
        """Blur and write one batch of the camera furthest behind: the expensive step, done only when idle."""
        cam = max(self._cams.values(), key=lambda c: len(c.backlog))
        batch, cam.backlog = cam.backlog[:WORK_BATCH], cam.backlog[WORK_BATCH:]
        self._write(cam, [(m, _decode(j)) for m, j in batch])

    def close(self) -> None:
        """At shutdown, open clips keep what the time left can write, spread evenly over their backlog."""
        waiting = sum(len(c.backlog) for c in self._cams.values())
        fits = CLOSE_BUDGET_S / self._write_s
        for cam in self._cams.values():
            if waiting > fits:
                self._bound(cam, int(fits * len(cam.backlog) / waiting))
        for name, cam in list(self._cams.items()):
            self._end(name, cam.ending)
        for cam in self._cams.values():
            if cam.ring is not None:
                cam.ring.close()

    # -- frames -----------------------------------------------------------------------------------------------------
    def _frame(self, meta: FrameMeta) -> None:
        """Rescue the frame from the ring (a copy and a JPEG, ~5 ms) before the daemon overwrites it; blurring and
        writing (~30 ms) wait for `work`. A starved recorder used to do both per message and skip every frame more
        than 1 s old, so under sustained load it skipped the very moments of the event its clip was for."""
        cam = self._cams[meta.camera]
        if not cam.clip_wanted and time.time() - meta.ts > MAX_LAG_S:
            cam.lost += 1  # pre-roll only, and stale: skipping it is how a late recorder catches up
            return
        got = cam.ring.read(meta.slot, meta.seq) if cam.ring is not None else None
        if got is None:
            cam.lost += 1  # overwritten before we got to it: the recorder fell behind, the daemon did not wait
            return
        image, _ = got
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if cam.clip_wanted:
            cam.backlog.append((meta, jpeg.tobytes()))
            self._bound(cam)
        else:
            cam.recent.append((meta, jpeg.tobytes(), image.shape))
            self._trim(cam, meta.ts)

    def _bound(self, cam: _Camera, most: int | None = None) -> None:
        """Keep the backlog within BACKLOG_S at the clip rate: drop pre-roll first, then the frame whose neighbours
        are closest (the clip's rate drops evenly rather than losing a stretch of the event)."""
        most = max(int(BACKLOG_S * self._s.clip_fps), 2 * ANONYMISE_BATCH) if most is None else max(most, 2)
        while len(cam.backlog) > most:
            ts = [m.ts for m, _ in cam.backlog]
            drop = 0 if ts[0] < cam.event_from else 1 + int(np.argmin(np.subtract(ts[2:], ts[:-2])))
            del cam.backlog[drop]
            cam.thinned += 1

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
        cam.event_from = msg.from_ts + self._s.pre_roll_s
        cam.lost = cam.thinned = 0  # counted per clip from now on
        cam.backlog = [(m, j) for m, j, _ in cam.recent if m.ts >= msg.from_ts]
        cam.recent.clear()
        self._bound(cam)

    def _write(self, cam: _Camera, frames: list[tuple[FrameMeta, np.ndarray]]) -> None:
        if not frames:
            return
        began = time.monotonic()
        try:
            if cam.clip is None:
                cam.clip = self._open_clip(cam, frames[0][0], frames[0][1])
            blurred = self._anonymiser.anonymise([im for _, im in frames], [m.boxes for m, _ in frames])
            for (meta, _), image in zip(frames, blurred, strict=True):
                cam.clip.add(image, meta)
            self._write_s = 0.8 * self._write_s + 0.2 * (time.monotonic() - began) / len(frames)
        except OSError as exc:
            self._fail(cam, f"clip {cam.clip_id}: {exc}")

    def _open_clip(self, cam: _Camera, first: FrameMeta, image: np.ndarray) -> ClipFile:
        folder = clip_folder(self._s.root, self._s.bus_id, first.ts)
        fps = self._fps(cam)
        assert cam.clip_id is not None
        return ClipFile(folder, cam.clip_id, self._s.fmt, fps, (image.shape[1], image.shape[0]))

    def _fps(self, cam: _Camera) -> float:
        ts = [m.ts for m, _ in cam.backlog] or [m.ts for m, _, _ in cam.recent]
        camera_fps = float(np.clip(1.0 / np.median(np.diff(ts)), 1.0, 60.0)) if len(ts) >= 3 else 10.0
        return min(camera_fps, self._s.clip_fps)

    def _end(self, camera: str, end: ClipEnd | None) -> None:
        """Write what the clip still has waiting, then say how much of each of its events the clip shows: a starved
        recorder may not have kept it all, and the sidecar must not hide that."""
        cam = self._cams[camera]
        while cam.backlog:
            batch, cam.backlog = cam.backlog[:ANONYMISE_BATCH], cam.backlog[ANONYMISE_BATCH:]
            self._write(cam, [(m, _decode(j)) for m, j in batch])
        clip, cam.clip, cam.clip_wanted, cam.ending = cam.clip, None, False, None
        if clip is None:
            return
        try:
            shown = [row["ts"] for row in clip.rows]
            events = [
                {**dataclasses.asdict(span), "coverage": round(coverage(span, shown), 3)}
                for span in (end.events if end is not None else ())
            ]
            meta = {
                "camera": camera,
                "bus_id": self._s.bus_id,
                "frames_lost": cam.lost,
                "frames_thinned": cam.thinned,
                "events": events,  # each event's span and the fraction of it the clip shows (vigie.clip-frames/2)
                "complete": all(e["coverage"] >= COMPLETE for e in events) if end is not None else None,
                **self._s.cameras.get(camera, {}),
            }
            path = clip.finish(meta)
            self._send(RecorderStatus(Status.CLIP_WRITTEN, f"{path.name} ({clip.frames} frames)"))
        except OSError as exc:
            clip.abandon()
            self._send(RecorderStatus(Status.CLIP_FAILED, f"{clip.clip_id}: {exc}"))

    def _fail(self, cam: _Camera, detail: str) -> None:
        if cam.clip is not None:
            cam.clip.abandon()
        cam.clip, cam.clip_wanted, cam.backlog = None, False, []
        self._send(RecorderStatus(Status.CLIP_FAILED, detail))

    # -- disk ---------------------------------------------------------------------------------------------------------
    def _room_for_a_clip(self) -> bool:
        self._s.root.mkdir(parents=True, exist_ok=True)
        enforce(self._s.root, self._s.retention, reserve_bytes=CLIP_RESERVE_BYTES)
        free = shutil.disk_usage(self._s.root).free
        full = free < self._s.min_free_bytes + CLIP_RESERVE_BYTES
        if full != self._disk_full:
            self._disk_full = full
            detail = f"{free // 2**20} MB free in {self._s.root}"
            self._send(
                RecorderStatus(Status.DISK_FULL if full else Status.OK, detail + (": no new clips" if full else ""))
            )
        return not full

    def _send(self, status: RecorderStatus) -> None:
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
    outbox.put(RecorderStatus(Status.OK, "recorder started"))
    stop_by: float | None = None
    try:
        while True:
            try:
                # Messages first (each one rescues a frame the ring will soon overwrite); the expensive writing is
                # done only when none is waiting.
                msg = inbox.get_nowait() if recorder.behind else inbox.get(timeout=1.0)
            except queue.Empty:
                if recorder.behind and not stop_by:
                    recorder.work()
                    continue
                msg = _IDLE
            if msg is None or (msg is _IDLE and lifeline.orphaned):  # orphaned: no None will come, stop when idle
                break
            # The lifeline first: a daemon killed inside `stopping.set()` leaves that event's lock held for ever.
            if lifeline.orphaned or stopping.is_set():
                stop_by = stop_by or time.monotonic() + STOP_GRACE_S
                recorder.stopping = True
                if time.monotonic() > stop_by:
                    break
            recorder.handle(msg)
            recorder.tick()
    finally:
        recorder.close()
        if lifeline.orphaned:
            outbox.cancel_join_thread()  # nobody reads it any more: never wait at exit to flush it


def _decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:  # the recorder encoded it itself a moment ago: a broken one is a bug, not an input
        raise ValueError("a backlog frame does not decode")
    return image


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
