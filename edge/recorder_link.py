"""The daemon's end of the recorder: hands frames over without ever waiting, and watches the recorder's health.

Per frame the daemon pays one copy into shared memory and one small non-blocking queue put. A recorder that falls
behind (starved of CPU, a slow disk, a burst of clips) is sent less: no pre-roll, and a frame a second of open clips;
if its queue still fills, messages are dropped and counted; if it crashes, alerts go on, `health` says so, and it is
restarted with backoff. A failure of this end (an exception out of `submit`) is handled the same way, since the
recorder may then disagree with the planner about which clips are open. Clip ids are decided here (recorder.clips),
so event rows can name their clip even when the recorder is behind.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import time
from multiprocessing.process import BaseProcess

import numpy as np

from core.types import Event, Health, Level, Status
from edge.config import Config
from edge.demand import period_due
from edge.pipeline import FrameResult
from recorder.clipfile import FrameMeta, ZoneState, clean_partials
from recorder.clips import COVER_HALF_S, ClipEnd, ClipPlanner, ClipStart
from recorder.retention import RetentionPolicy
from recorder.ring import FrameRing, remove_stale, ring_name
from recorder.worker import RecorderSettings, RecorderStatus, RingAttach, describe_camera, run

log = logging.getLogger(__name__)

RING_SECONDS = 2.0  # transit only: the recorder copies frames out (to its JPEG pre-roll) well within this
STARTUP_WAIT_S = 15.0
# A recorder with this many seconds of writing waiting, or that leaves the ring's worth of messages unread, is behind:
# the daemon stops sending it pre-roll (frames of cameras with no clip open) and sends open clips one frame a second,
# the slowest rate at which every moment of an event is still within COVER_HALF_S of a frame. What it no longer
# sends costs the recorder nothing; frames it would send anyway would be dropped there, after a copy and a JPEG.
BEHIND_S = 2.0
BEHIND_PERIOD_S = 2 * COVER_HALF_S * 0.9  # a little under a second: capture jitter must not open 1 s gaps


def zone_states(result: FrameResult) -> tuple[ZoneState, ...]:
    levels = {a.zone: a for a in result.alerts}
    return tuple(
        ZoneState(
            zone=hits.zone,
            level=Level(levels[hits.zone].level).label if hits.zone in levels else "none",
            track_ids=tuple(hits.track_ids),
            nearest_m=min((d for d in hits.distances_m if d == d), default=None),
        )
        for hits in result.zone_hits
    )


def send_period(period: float, behind: bool, clip_open: bool) -> float:
    """Least time between two frames of one camera sent to the recorder. Behind, pre-roll goes first (never sent)
    and open clips drop to a frame a second."""
    if not behind:
        return period
    return max(period, BEHIND_PERIOD_S) if clip_open else float("inf")


@dataclasses.dataclass(frozen=True, slots=True)
class RestartBackoff:
    """How long a failed recorder waits before its restart: soon after a rare failure, never more often than every
    `delays_s[-1]` for one that fails every time (a restart costs the alert loop a spawn, and the machine the
    recorder's start-up: imports and the face model, seconds of CPU)."""

    delays_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
    stable_s: float = 60.0  # a recorder that ran this long before failing is forgiven its earlier failures

    def failures_after(self, failures: int, uptime_s: float) -> int:
        """The count of failures in a row, this one included."""
        return 1 if uptime_s >= self.stable_s else failures + 1

    def delay(self, failures: int) -> float:
        return self.delays_s[min(max(failures, 1), len(self.delays_s)) - 1]


class RecorderLink:
    def __init__(self, config: Config):
        rc = config.recorder
        self._config = config
        self._settings = RecorderSettings(
            root=rc.dir,
            bus_id=config.bus.id,
            fmt=rc.format,
            mode=rc.mode,
            face_model=rc.face_model,
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
        self.dropped = 0  # frames not handed to the recorder: it was behind, or its queue full
        self._backoff = RestartBackoff()
        self._restarts = 0
        self._failures = 0  # in a row, for the backoff
        self._spawned_at = 0.0
        self._next_restart = 0.0
        self._down = False  # from a failure until the restart: nothing is sent, clips are still planned
        self._fault: str | None = None  # a failure of this end, to report on the next `health`
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

    def _spawn(self) -> BaseProcess:
        """A recorder with fresh queues: one killed mid-`get` leaves the old queue's lock held for ever."""
        self._spawned_at = time.monotonic()
        self._inbox = self._ctx.Queue(maxsize=1000)
        self._outbox = self._ctx.Queue(maxsize=100)
        self._lag = self._ctx.Value("d", 0.0, lock=False)  # the recorder's writing backlog, in seconds
        proc = self._ctx.Process(
            target=run,
            args=(self._settings, self._inbox, self._outbox, self._stopping, self._lag),
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
            name = ring_name(os.getpid(), camera)
            ring = self._rings[camera] = FrameRing.create(name, self._ring_slots(), image.shape[0], image.shape[1])
            self._control.append(RingAttach(camera, ring.spec))
        return ring

    def submit(self, result: FrameResult) -> None:
        frame = result.frame
        commands = self.planner.step(frame.camera, frame.t_capture, result.opened, result.closed)
        if self._down:
            return  # nobody to send to; the restarted recorder is told which clips are open
        # A clip that starts on this frame must be open before the frame arrives; one that ends, closed after it.
        self._control.extend(c for c in commands if isinstance(c, ClipStart))
        period = send_period(self._period, self._behind(), self.planner.current(frame.camera) is not None)
        last = self._last_sent.get(frame.camera, float("-inf"))
        if period_due(last, frame.t_capture, period):
            self._send_frame(result)
        elif period_due(last, frame.t_capture, self._period):
            self.dropped += 1  # held back: the recorder is behind
        self._control.extend(c for c in commands if isinstance(c, ClipEnd))
        self._flush_control()

    def _behind(self) -> bool:
        if self._lag.value > BEHIND_S:
            return True
        try:
            return self._inbox.qsize() > self._ring_slots()
        except NotImplementedError:  # qsize is missing where sem_getvalue is (macOS)
            return False

    def _ring_slots(self) -> int:
        return max(8, int(RING_SECONDS * self._config.recorder.clip_fps) + 2)

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
            zones=zone_states(result),
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

    def failed(self, exc: Exception) -> None:
        """This end raised (the daemon calls this when `submit` does). The recorder may have missed a clip start or
        end, so it is killed and, like a recorder that died, restarted after a backoff; `health` reports it."""
        if self._down:
            return  # the same trouble again before the restart: already reported and scheduled
        log.error("recorder link failed; restarting the recorder", exc_info=exc)
        self._fault = f"{type(exc).__name__}: {exc}"
        self._process.kill()
        self._schedule_restart()

    def _schedule_restart(self) -> float:
        now = time.monotonic()
        self._failures = self._backoff.failures_after(self._failures, now - self._spawned_at)
        delay = self._backoff.delay(self._failures)
        self._next_restart = now + delay
        self._down = True
        return delay

    def health(self) -> list[Health]:
        """Status changes from the recorder, its failures and its death, and its restart (with backoff)."""
        out = []
        while True:
            try:
                status: RecorderStatus = self._outbox.get_nowait()
            except queue.Empty:
                break
            if status.status in (Status.DISK_FULL, Status.CLIP_FAILED) or (
                status.status == Status.OK and self._restarts
            ):
                out.append(Health("recorder", status.status, status.detail, time.time()))
        if self._fault is not None:
            wait = self._next_restart - time.monotonic()
            out.append(Health("recorder", Status.FAILED, f"{self._fault}; restarting in {wait:.0f} s", time.time()))
            self._fault = None
        elif not self._down and not self._process.is_alive():
            delay = self._schedule_restart()
            detail = f"recorder exited ({self._process.exitcode}); restarting in {delay:.0f} s"
            out.append(Health("recorder", Status.OFFLINE, detail, time.time()))
        if self._down and time.monotonic() >= self._next_restart and not self._process.is_alive():
            # The old inbox's feeder thread may be blocked for ever on a pipe the dead recorder left full: it
            # must not be joined at exit.
            self._inbox.cancel_join_thread()
            try:
                self._process = self._spawn()
            except Exception as exc:  # no room for the queues' semaphores in /dev/shm, no memory to fork, ...
                log.error("cannot start the recorder", exc_info=exc)
                delay = self._schedule_restart()
                detail = f"cannot start the recorder: {exc}; trying again in {delay:.0f} s"
                out.append(Health("recorder", Status.FAILED, detail, time.time()))
            else:
                self._down = False
                self._restarts += 1
        return out

    def close(self) -> None:
        """Stop promptly: the recorder finishes the clips it has open and skips whatever backlog it still has."""
        # Open clips end here, with their events' spans, so that their sidecars say how much of each event they show.
        ends = self.planner.end_all()
        self._stopping.set()
        if self._process.is_alive() and not self._down:
            with contextlib.suppress(queue.Full):  # a full queue: the stop flag alone will do
                for msg in [*self._control, *ends, None]:
                    self._inbox.put(msg, timeout=1.0)
        self._process.join(timeout=10)
        stopped = self._process.is_alive()
        if stopped:
            self._process.terminate()
            self._process.join(timeout=5)
        if self._process.is_alive():
            # Starved of CPU, a dying process can take longer than this to tear down its memory.
            self._process.kill()
            self._process.join(timeout=5)
        if stopped or self._process.exitcode != 0:
            # Stopped or died mid-clip (starved of CPU, most likely): its unfinished files are no clip, and nobody
            # else would remove them before the next start; their events read as having their clip missing. A
            # process sent a fatal signal writes nothing more, even before it is gone.
            removed = clean_partials(self._settings.root)
            if removed:
                log.warning("recorder stopped before finishing %d clip file(s); removed them", removed)
        for ring in self._rings.values():
            ring.close()
        self._inbox.cancel_join_thread()
