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

from core.atomic import private_dir
from core.types import Status
from recorder.backlog import Backlog, Pending, bound, share
from recorder.clipfile import ClipFile, FrameMeta, clean_partials, clip_folder
from recorder.clips import COMPLETE, ClipEnd, ClipStart, coverage
from recorder.lifeline import Lifeline
from recorder.retention import RetentionPolicy, enforce
from recorder.ring import FrameRing, RingSpec

log = logging.getLogger(__name__)

_IDLE = object()
JPEG_QUALITY = 90
MAX_LAG_S = 1.0  # pre-roll only: a frame older than this is not worth keeping unless a clip is open
# Frames of every clip waiting to be blurred and written, as JPEG: ~100 KB each at 768x576, so ~300 frames (a minute
# of four cameras at 1 fps). Over it, the clips' rates drop (recorder.backlog).
BACKLOG_BYTES = 32 * 2**20
# ... and no more of them than this long to write at the measured rate: a recorder that writes 2 frames a second
# keeps 20 waiting, so its clips lag 10 s, and a stop (which can write only CLOSE_WRITE_S of them) loses little.
# Waiting longer would not show more: frames come in faster than they go out, so the rate drops all the same.
BACKLOG_WORK_S = 10.0
STOP_GRACE_S = 3.0  # at shutdown, frames still in the ring are worth this long to rescue
RETENTION_EVERY_S = 60.0
# Frames written between two looks at the inbox: a long batch lets the ring overwrite frames. One: the face model's
# working memory grows with its batch (~60 MB a 768x576 frame for the int8 model, ~95 MB for fp32, kept by its
# arena), and two frames a call cost more CPU per frame, not less (benchmarks/bench_session_memory.py).
WORK_BATCH = 1
# At shutdown, time to write what clips still have waiting and to finish them: the daemon waits 10 s in all, and a
# recorder stopped mid-clip leaves nothing of it.
CLOSE_WRITE_S = 4.0
CLIP_RESERVE_BYTES = 20 * 1024 * 1024  # room kept for the clip about to start (a 20 s clip is ~3-8 MB)


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    root: Path
    bus_id: str
    fmt: str
    mode: Literal["faces", "persons"]
    face_model: str  # recorder.faces.FACE_MODELS
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
class _Clip:
    camera: str
    clip_id: str
    backlog: Backlog  # rescued frames waiting for the CPU to blur and write them
    file: ClipFile | None = None  # opened with its first written frame
    lost: int = 0  # frames overwritten in the ring before the recorder got to them
    end: ClipEnd | None = None  # no more frames: finished once its backlog is written


@dataclass(slots=True)
class _Camera:
    ring: FrameRing | None = None
    # Pre-roll: recent frames, in RAM only.
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=600))
    clip: _Clip | None = None  # the clip that takes this camera's frames now


class Recorder:
    def __init__(self, settings: RecorderSettings, outbox, lag=None) -> None:
        from recorder.anonymise import AnonymiseConfig, Anonymiser

        self._s = settings
        self._out = outbox
        self._lag = lag  # shared with the daemon: seconds of writing waiting (it sends fewer frames while behind)
        self._cams: dict[str, _Camera] = collections.defaultdict(_Camera)
        self._ending: list[_Clip] = []  # ended, writing what they still have waiting
        self._anonymiser = Anonymiser(AnonymiseConfig(mode=settings.mode, face_model=settings.face_model, threads=1))
        self._next_retention = 0.0
        self._disk_full = False
        self._write_s = 0.05  # wall time to blur and write one frame, measured (a starved recorder's is long)
        clean_partials(settings.root)

    # -- messages -------------------------------------------------------------------------------------------------
    def handle(self, msg: object) -> None:
        if isinstance(msg, FrameMeta):
            self._frame(msg)
        elif isinstance(msg, ClipStart):
            self._start(msg)
        elif isinstance(msg, ClipEnd):
            self._end(msg)
        elif isinstance(msg, RingAttach):
            cam = self._cams[msg.camera]
            if cam.ring is not None:
                cam.ring.close()
            try:
                cam.ring = FrameRing.attach(msg.spec)
            except FileNotFoundError:  # unlinked before we got to it (the daemon died): its frames count as lost
                cam.ring = None
        self._report_lag()

    def tick(self) -> None:
        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + RETENTION_EVERY_S
            enforce(self._s.root, self._s.retention)

    def _clips(self) -> list[_Clip]:
        return self._ending + [c.clip for c in self._cams.values() if c.clip is not None]

    @property
    def behind(self) -> bool:
        """Rescued frames wait to be written (the loop writes them whenever no message is waiting)."""
        return any(clip.backlog.frames for clip in self._clips())

    def work(self) -> None:
        """Blur and write one batch: of an ended clip first (it is complete, and only then visible), else of the
        open clip furthest behind. The expensive step, done only when no message waits."""
        waiting = [clip for clip in self._ending if clip.backlog.frames] or self._clips()
        clip = max(waiting, key=lambda c: len(c.backlog.frames))
        self._write(clip, clip.backlog.take(WORK_BATCH))
        if clip in self._ending and not clip.backlog.frames:  # a clip that failed is no longer there
            self._ending.remove(clip)
            self._finish(clip)
        self._report_lag()

    def close(self) -> None:
        """At shutdown: every clip ends; what they still have waiting is thinned evenly to what the time left can
        write and written in turns, so that each clip keeps its first moments; whatever is written is finished."""
        for camera, cam in self._cams.items():
            if cam.clip is not None:  # its end (with its events' spans) did not arrive in time
                self._end(ClipEnd(camera, cam.clip.clip_id))
        clips, deadline = list(self._ending), time.monotonic() + CLOSE_WRITE_S
        share([c.backlog for c in clips], int(CLOSE_WRITE_S / self._write_s))
        while any(c.backlog.frames for c in clips) and time.monotonic() < deadline:
            for clip in clips:
                if time.monotonic() < deadline:
                    self._write(clip, clip.backlog.take(1))
        for clip in clips:
            if clip in self._ending:  # not failed
                clip.backlog.thin_to(0)  # out of time: said in the sidecar (coverage, frames_thinned)
                self._finish(clip)
        self._ending.clear()
        for cam in self._cams.values():
            if cam.ring is not None:
                cam.ring.close()

    def _report_lag(self) -> None:
        if self._lag is not None:
            self._lag.value = sum(len(c.backlog.frames) for c in self._clips()) * self._write_s

    # -- frames -----------------------------------------------------------------------------------------------------
    def _frame(self, meta: FrameMeta) -> None:
        """Rescue the frame from the ring (a copy and a JPEG, ~2 ms) before the daemon overwrites it; blurring and
        writing (~50 ms) wait for `work`. A starved recorder used to do both per message and skip every frame more
        than 1 s old, so under sustained load it skipped the very moments of the event its clip was for."""
        cam = self._cams[meta.camera]
        if cam.clip is None and time.time() - meta.ts > MAX_LAG_S:
            return  # pre-roll only, and stale: skipping it is how a late recorder catches up
        got = cam.ring.read(meta.slot, meta.seq) if cam.ring is not None else None
        if got is None:
            if cam.clip is not None:
                cam.clip.lost += 1  # overwritten before we got to it: the recorder fell behind, the daemon did not wait
            return
        image, _ = got
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if cam.clip is not None:
            cam.clip.backlog.add(Pending(meta, jpeg.tobytes()))
            self._bound()
        else:
            cam.recent.append(Pending(meta, jpeg.tobytes()))
            while meta.ts - cam.recent[0].meta.ts > self._s.pre_roll_s + 1.0:
                cam.recent.popleft()

    def _start(self, msg: ClipStart) -> None:
        cam = self._cams[msg.camera]
        if cam.clip is not None:
            return
        if not self._room_for_a_clip():
            return
        backlog = Backlog(event_from=msg.from_ts + self._s.pre_roll_s)
        for frame in cam.recent:
            if frame.meta.ts >= msg.from_ts:
                backlog.add(frame)
        cam.recent.clear()
        cam.clip = _Clip(msg.camera, msg.clip_id, backlog)
        self._bound()

    def _bound(self) -> None:
        clips = self._clips()
        frames = max(int(BACKLOG_WORK_S / self._write_s), 2 * len(clips))
        bound([c.backlog for c in clips], BACKLOG_BYTES, frames)

    def _end(self, end: ClipEnd) -> None:
        """The clip takes no more frames; it is finished once what it has waiting is written (by `work`, when no
        message waits: a clip's end must not stop the recorder rescuing other cameras' frames)."""
        cam = self._cams[end.camera]
        if cam.clip is None or cam.clip.clip_id != end.clip_id:
            return  # never started (no room on the disk), or failed
        clip, cam.clip = cam.clip, None
        clip.end = end
        if clip.backlog.frames:
            self._ending.append(clip)
        else:
            self._finish(clip)

    def _write(self, clip: _Clip, frames: list[Pending]) -> None:
        if not frames:
            return
        began = time.monotonic()
        try:
            images = [_decode(f.jpeg) for f in frames]
            if clip.file is None:
                folder = clip_folder(self._s.root, self._s.bus_id, frames[0].meta.ts)
                size = (images[0].shape[1], images[0].shape[0])
                clip.file = ClipFile(folder, clip.clip_id, self._s.fmt, self._fps(clip, frames), size)
            blurred = self._anonymiser.anonymise(images, [f.meta.boxes for f in frames])
            for frame, image in zip(frames, blurred, strict=True):
                clip.file.add(image, frame.meta)
            self._write_s = 0.8 * self._write_s + 0.2 * (time.monotonic() - began) / len(frames)
        except OSError as exc:
            self._fail(clip, f"clip {clip.clip_id}: {exc}")

    def _fps(self, clip: _Clip, first: list[Pending]) -> float:
        ts = [f.meta.ts for f in first + clip.backlog.frames]
        camera_fps = float(np.clip(1.0 / np.median(np.diff(ts)), 1.0, 60.0)) if len(ts) >= 3 else 10.0
        return min(camera_fps, self._s.clip_fps)

    def _finish(self, clip: _Clip) -> None:
        """Make the clip visible, with how much of each of its events it shows: a starved recorder may not have
        kept it all, and the sidecar must not hide that. A clip with no frame written leaves no file (replay says
        its events' clip is missing) and is reported."""
        file, clip.file = clip.file, None
        if file is None:
            self._send(RecorderStatus(Status.CLIP_FAILED, f"{clip.clip_id}: no frame written (recorder behind)"))
            return
        try:
            shown = [row["ts"] for row in file.rows]
            events = [
                {**dataclasses.asdict(span), "coverage": round(coverage(span, shown), 3)}
                for span in (clip.end.events if clip.end is not None else ())
            ]
            meta = {
                "camera": clip.camera,
                "bus_id": self._s.bus_id,
                "frames_lost": clip.lost,
                "frames_thinned": clip.backlog.thinned,
                "events": events,  # each event's span and the fraction of it the clip shows (clip-frames/2 on)
                "complete": all(e["coverage"] >= COMPLETE for e in events) if events else None,
                **self._s.cameras.get(clip.camera, {}),
            }
            path = file.finish(meta)
            self._send(RecorderStatus(Status.CLIP_WRITTEN, f"{path.name} ({file.frames} frames)"))
        except OSError as exc:
            file.abandon()
            self._send(RecorderStatus(Status.CLIP_FAILED, f"{clip.clip_id}: {exc}"))

    def _fail(self, clip: _Clip, detail: str) -> None:
        if clip.file is not None:
            clip.file.abandon()
            clip.file = None
        clip.backlog.thin_to(0)
        cam = self._cams[clip.camera]
        if cam.clip is clip:
            cam.clip = None
        if clip in self._ending:
            self._ending.remove(clip)
        self._send(RecorderStatus(Status.CLIP_FAILED, detail))

    # -- disk ---------------------------------------------------------------------------------------------------------
    def _room_for_a_clip(self) -> bool:
        private_dir(self._s.root)
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


def run(settings: RecorderSettings, inbox, outbox, stopping, lag=None) -> None:
    """Process entry point."""
    lifeline = Lifeline().start()  # first: the daemon may die while the face model loads
    os.nice(settings.nice)
    cv2.setNumThreads(1)  # one core at most for resize/encode: the other is the daemon's
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash dump would hold raw frames
    os.umask(0o077)  # every file created 0600 from its first byte
    recorder = Recorder(settings, outbox, lag)
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
