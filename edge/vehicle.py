"""What the bus is doing (speed, indicator, doors, reverse), from the bus's ZeroMQ feed or from a recorded log.

Both sources answer `state_at(ts)`. Live, ts is the frame's capture time; in replay it is the frame's time on the
footage, so the same log gives the same answers at any playback speed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zmq

from core.types import Status, VehicleState
from edge.policy import MOVING_KMH
from edge.vehicle_log import read_log
from edge.vehicle_schema import LINE_CHARS, VehicleInputError, clip, decode_message

log = logging.getLogger(__name__)


class VehicleSource(Protocol):
    def state_at(self, ts: float) -> VehicleState: ...

    def close(self) -> None: ...


class StaticVehicle:
    """No vehicle feed: a bus standing still with doors closed (every zone informs, nothing warns)."""

    def state_at(self, ts: float) -> VehicleState:
        return VehicleState(ts=ts, stopped_s_ago=0.0)

    def close(self) -> None:
        pass


class VehicleLog:
    """A recorded CSV or Parquet log with a `t` column (seconds from the start of the log) and the message fields.

    Playback starts at `t0` (the daemon's start, or 0 in replay) and loops if asked, like the demo's endless drive.
    """

    def __init__(self, path: Path, t0: float, loop: bool = True):
        self._t0 = t0
        self._loop = loop
        self._times, self._states = read_log(Path(path))
        self._last_stop: list[float | None] = []
        for t, state in zip(self._times, self._states, strict=True):
            prev_stop = self._last_stop[-1] if self._last_stop else None
            self._last_stop.append(t if state.speed_kmh < MOVING_KMH else prev_stop)
        self._span = self._times[-1] + (self._times[1] - self._times[0] if len(self._times) > 1 else 1.0)

    def state_at(self, ts: float) -> VehicleState:
        rel = max(ts - self._t0, 0.0)
        if self._loop:
            rel %= self._span
        i = max(bisect_right(self._times, rel) - 1, 0)
        last_stop = self._last_stop[i]
        stopped_ago = None if last_stop is None else max(rel - last_stop, 0.0)
        state = self._states[i]
        return dataclasses.replace(state, ts=ts, stopped_s_ago=0.0 if state.speed_kmh < MOVING_KMH else stopped_ago)

    def close(self) -> None:
        pass


STALE_S = 2.0  # a feed silent this long is treated as lost
LOG_EVERY_S = 1.0  # at most one rejection line a second: a gateway sending only bad messages must not fill the disk


@dataclass(frozen=True, slots=True)
class FeedCounts:
    """What the live feed has received so far, for `health` and the run's stats."""

    applied: int = 0
    rejected: int = 0
    last_rejection: str = ""  # "field: reason" of the latest rejected message, one clipped line


class ZmqVehicle:
    """Subscribes to the bus's vehicle-state feed (JSON, one message per update) on a background thread.

    A feed that falls silent must not freeze its last word: "doors open" or "50 km/h" would silence every zone for
    as long as the gateway is down. After STALE_S without a valid message the state falls back to a bus standing with
    its doors closed (every zone informs, nothing warns) and `feed_status()` says so, for the `health` topic.

    Each message is decoded inside its own guard (vehicle_schema.decode_message, with size and depth limits): a bad
    one is counted, logged in one clipped line and dropped, and the next one is read as if nothing had happened.
    """

    def __init__(self, ctx: zmq.Context, endpoint: str):
        self._sock = ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._sock.setsockopt(zmq.RCVTIMEO, 200)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._lock = threading.Lock()
        self._state = VehicleState()
        self._last_stop: float | None = None
        self._last_msg: float | None = None
        self._counts = FeedCounts()
        self._next_log = 0.0
        self._unlogged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vehicle", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frames = self._sock.recv_multipart()
            except zmq.Again:
                continue
            except zmq.ContextTerminated:
                return  # shutting down
            except Exception as exc:  # e.g. no memory for a huge message: the feed must outlive it too
                if self._stop.is_set() or self._sock.closed:
                    return
                log.warning("%s", clip(f"vehicle feed: receive failed: {type(exc).__name__}: {exc}", LINE_CHARS))
                self._stop.wait(1.0)  # an error that repeats is logged once a second, not in a hot loop
                continue
            self._take(frames)

    def _take(self, frames: Sequence[bytes]) -> None:
        try:
            state = decode_message(frames)
        except VehicleInputError as exc:
            self._reject(str(exc))
            return
        except Exception as exc:  # a bug in decoding must cost one message, never the feed
            log.debug("vehicle message decoding failed", exc_info=True)
            self._reject(f"message: could not be decoded ({type(exc).__name__}: {exc})")
            return
        now = time.time()
        with self._lock:
            self._state = state
            self._last_msg = now
            self._counts = dataclasses.replace(self._counts, applied=self._counts.applied + 1)
            if state.speed_kmh < MOVING_KMH:
                self._last_stop = now

    def _reject(self, reason: str) -> None:
        reason = clip(reason, LINE_CHARS)
        with self._lock:
            self._counts = dataclasses.replace(self._counts, rejected=self._counts.rejected + 1, last_rejection=reason)
        now = time.monotonic()
        if now < self._next_log:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more since the last line)" if self._unlogged else ""
        # The count goes before the reason so that clipping the line can only shorten the quoted input.
        log.warning("%s", clip(f"vehicle message rejected{more}: {reason}", LINE_CHARS))
        self._next_log, self._unlogged = now + LOG_EVERY_S, 0

    def counts(self) -> FeedCounts:
        with self._lock:
            return self._counts

    def feed_status(self) -> Status:
        with self._lock:
            last = self._last_msg
        if last is None:
            return Status.WAITING
        return Status.OK if time.time() - last <= STALE_S else Status.STALE

    def state_at(self, ts: float) -> VehicleState:
        if self.feed_status() != "ok":
            return VehicleState(ts=ts, stopped_s_ago=0.0)  # fail-safe: standing, doors closed
        with self._lock:
            s, last_stop = self._state, self._last_stop
        stopped_ago = None if last_stop is None else max(ts - last_stop, 0.0)
        return dataclasses.replace(s, stopped_s_ago=0.0 if s.speed_kmh < MOVING_KMH else stopped_ago)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        self._sock.close()
