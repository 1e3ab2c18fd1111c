"""The daemon's end of the recorder: hands frames over without ever waiting, and watches the recorder's health.

Per frame the daemon pays one copy into shared memory and one small non-blocking queue put. If the recorder is slow
(a slow disk, a burst of clips) the queue fills and messages are dropped and counted; if it crashes, alerts go on,
`health` says so, and it is restarted with backoff. Clip ids are decided here (recorder.clips), so event rows can
name their clip even when the recorder is behind.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import queue
import time

import numpy as np

from edge.config import Config
from edge.pipeline import FrameResult
from edge.types import Event, Health, Level
from recorder.clipfile import FrameMeta
from recorder.clips import ClipEnd, ClipPlanner, ClipStart
from recorder.retention import RetentionPolicy
from recorder.ring import FrameRing, remove_stale, ring_name
from recorder.worker import RecorderSettings, RingAttach, Status, describe_camera, run

log = logging.getLogger(__name__)

RING_SECONDS = 2.0  # transit only: the recorder copies frames out (to its JPEG pre-roll) well within this
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STARTUP_WAIT_S = 15.0


def zones_json(result: FrameResult) -> str:
    levels = {a.zone: a for a in result.alerts}
    return json.dumps(
        [
            {
                "zone": hits.zone,
                "level": Level(levels[hits.zone].level).label if hits.zone in levels else "none",
                "track_ids": list(hits.track_ids),
                "nearest_m": min((d for d in hits.distances_m if d == d), default=None),
            }
            for hits in result.zone_hits
        ]
    )


class RecorderLink:
    def __init__(self, config: Config):
        rc = config.recorder
        self._config = config
        self._settings = RecorderSettings(
            root=rc.dir,
            bus_id=config.bus.id,
            fmt=rc.format,
            mode=rc.mode,
            pre_roll_s=rc.pre_roll_s,
            clip_fps=rc.clip_fps,
            retention=RetentionPolicy(rc.retention_days * 86400.0, int(rc.quota_mb * 2**20)),
            min_free_bytes=int(rc.min_free_mb * 2**20),
            nice=rc.nice,
            cameras={c.name: describe_camera(c) for c in config.cameras},
        )
        self.planner = ClipPlanner(config.bus.id, rc.pre_roll_s, rc.post_roll_s)
        self._ctx = mp.get_context("spawn")  # no fork: the child must not inherit the daemon's threads and sockets
        self._stopping = self._ctx.Event()
        self._rings: dict[str, FrameRing] = {}
        # Clip starts/ends and ring attachments must never be lost (a lost ClipEnd would keep a clip open for
        # ever): they wait here and go out before any frame; only frames are dropped when the recorder is behind.
        self._control: collections.deque = collections.deque()
        self._last_sent: dict[str, float] = {}
        self._period = 0.9 / rc.clip_fps  # frames closer than this to the last one sent are not needed by clips
        self.dropped = 0
        self._restarts = 0
        self._next_restart = 0.0
        remove_stale()
        self._process = self._spawn()
        self._wait_ready()

    def _wait_ready(self) -> None:
        """At start, give the recorder (imports, face model) a moment so the first seconds are not lost to it;
        a recorder that does not come up in time is reported by `health` and does not hold the daemon."""
        try:
            status = self._outbox.get(timeout=STARTUP_WAIT_S)
        except queue.Empty:
            log.warning("recorder not ready after %.0f s; starting without waiting", STARTUP_WAIT_S)
            return
        if status.status != "ok":
            self._outbox.put(status)

    def _spawn(self) -> mp.Process:
        """A recorder with fresh queues: one killed mid-`get` leaves the old queue's lock held for ever."""
        self._inbox = self._ctx.Queue(maxsize=1000)
        self._outbox = self._ctx.Queue(maxsize=100)
        proc = self._ctx.Process(
            target=run,
            args=(self._settings, self._inbox, self._outbox, self._stopping),
            name="vigie-recorder",
            daemon=True,
        )
        proc.start()
        # The new recorder knows nothing: tell it the rings, and the clips that are open (from now on: its pre-roll
        # died with the old one). Controls meant for the old process are moot.
        now = time.time()
        self._control = collections.deque(RingAttach(name, ring.spec) for name, ring in self._rings.items())
        self._control.extend(ClipStart(camera, clip_id, now) for camera, clip_id in self.planner.open_clips())
        return proc

    def _flush_control(self) -> bool:
        while self._control:
            try:
                self._inbox.put_nowait(self._control[0])
            except queue.Full:
                return False
            self._control.popleft()
        return True

    def _ring_for(self, camera: str, image: np.ndarray) -> FrameRing:
        ring = self._rings.get(camera)
        if ring is None:
            slots = max(8, int(RING_SECONDS * self._config.recorder.clip_fps) + 2)
            name = ring_name(os.getpid(), camera)
            ring = self._rings[camera] = FrameRing.create(name, slots, image.shape[0], image.shape[1])
            self._control.append(RingAttach(camera, ring.spec))
        return ring

    def submit(self, result: FrameResult) -> None:
        frame = result.frame
        commands = self.planner.step(frame.camera, frame.t_capture, result.opened, result.closed)
        # A clip that starts on this frame must be open before the frame arrives; one that ends, closed after it.
        self._control.extend(c for c in commands if isinstance(c, ClipStart))
        if frame.t_capture - self._last_sent.get(frame.camera, float("-inf")) >= self._period:
            self._send_frame(result)
        self._control.extend(c for c in commands if isinstance(c, ClipEnd))
        self._flush_control()

    def _send_frame(self, result: FrameResult) -> None:
        frame = result.frame
        slot = self._ring_for(frame.camera, frame.image).write(frame.seq, frame.t_capture, frame.image)
        if slot is None or not self._flush_control():
            self.dropped += 1  # a frame must not overtake a control message still waiting
            return
        meta = FrameMeta(
            camera=frame.camera,
            slot=slot,
            seq=frame.seq,
            ts=frame.t_capture,
            boxes=result.tracks.detections.xyxy,
            track_ids=tuple(int(t) for t in result.tracks.track_id),
            zones_json=zones_json(result),
            speed_kmh=result.vehicle.speed_kmh,
            indicator=result.vehicle.indicator.value,
        )
        try:
            self._inbox.put_nowait(meta)
            self._last_sent[frame.camera] = frame.t_capture
        except queue.Full:
            self.dropped += 1

    def with_clip(self, event: Event) -> Event:
        return dataclasses.replace(event, clip=self.planner.clip_of(event))

    def health(self) -> list[Health]:
        """Status changes from the recorder, and its own death (then a restart, with backoff)."""
        out = []
        while True:
            try:
                status: Status = self._outbox.get_nowait()
            except queue.Empty:
                break
            if status.status in ("disk_full", "clip_failed") or (status.status == "ok" and self._restarts):
                out.append(Health("recorder", status.status, status.detail, time.time()))
        if not self._process.is_alive() and time.monotonic() >= self._next_restart:
            out.append(
                Health("recorder", "offline", f"recorder exited ({self._process.exitcode}); restarting", time.time())
            )
            self._next_restart = time.monotonic() + RESTART_BACKOFF_S[min(self._restarts, len(RESTART_BACKOFF_S) - 1)]
            self._restarts += 1
            self._process = self._spawn()
        return out

    def close(self) -> None:
        """Stop promptly: the recorder finishes the clips it has open and skips whatever backlog it still has."""
        self._stopping.set()
        with contextlib.suppress(queue.Full):  # a full queue: the stop flag alone will do
            self._inbox.put(None, timeout=1.0)
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)
        for ring in self._rings.values():
            ring.close()
        self._inbox.cancel_join_thread()
