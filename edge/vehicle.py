"""What the bus is doing (speed, indicator, doors, reverse), from the bus's ZeroMQ feed or from a recorded log.

Both sources answer `state_at(ts)`. Live, ts is the frame's capture time; in replay it is the frame's time on the
footage, so the same log gives the same answers at any playback speed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import threading
import time
from bisect import bisect_right
from pathlib import Path
from typing import Protocol

import zmq

from edge.policy import MOVING_KMH
from edge.types import Indicator, VehicleState

log = logging.getLogger(__name__)

_BOOL_TEXT = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


class VehicleSource(Protocol):
    def state_at(self, ts: float) -> VehicleState: ...

    def close(self) -> None: ...


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    raise ValueError(f"{name}: expected true/false, got {value!r}")


def _as_float(name: str, value: object, optional: bool = False) -> float | None:
    if optional and (value is None or value == ""):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return out


def parse_state(fields: dict) -> VehicleState:
    """A VehicleState from a JSON message or a log row; raises ValueError naming the bad field."""
    if not isinstance(fields, dict):
        raise ValueError(f"message: expected a JSON object, got {type(fields).__name__}")
    unknown = set(fields) - {"speed_kmh", "indicator", "doors_open", "reverse", "lat", "lon", "ts", "t"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown field")
    if "speed_kmh" not in fields:
        raise ValueError("speed_kmh: missing")
    speed = _as_float("speed_kmh", fields["speed_kmh"])
    assert speed is not None
    if speed < 0:
        raise ValueError(f"speed_kmh: must be >= 0, got {speed}")
    try:
        indicator = Indicator(str(fields.get("indicator", "off") or "off").lower())
    except ValueError:
        raise ValueError(f"indicator: expected one of off/left/right/hazard, got {fields['indicator']!r}") from None
    return VehicleState(
        speed_kmh=speed,
        indicator=indicator,
        doors_open=_as_bool("doors_open", fields.get("doors_open", False)),
        reverse=_as_bool("reverse", fields.get("reverse", False)),
        lat=_as_float("lat", fields.get("lat"), optional=True),
        lon=_as_float("lon", fields.get("lon"), optional=True),
        ts=_as_float("ts", fields.get("ts", 0.0)) or 0.0,
    )


class StaticVehicle:
    """No vehicle feed: a bus standing still with doors closed (every zone informs, nothing warns)."""

    def state_at(self, ts: float) -> VehicleState:
        return VehicleState(ts=ts, stopped_s_ago=0.0)

    def close(self) -> None:
        pass


class VehicleLog:
    """A recorded CSV log with a `t` column (seconds from the start of the log) and the state fields.

    Playback starts at `t0` (the daemon's start, or 0 in replay) and loops if asked, like the demo's endless drive.
    """

    def __init__(self, path: Path, t0: float, loop: bool = True):
        self._t0 = t0
        self._loop = loop
        self._times: list[float] = []
        self._states: list[VehicleState] = []
        self._last_stop: list[float | None] = []
        with open(path, newline="", encoding="utf-8") as fh:
            for line_no, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    t = _as_float("t", row.get("t"))
                    state = parse_state(row)
                except ValueError as exc:
                    raise ValueError(f"{path}:{line_no}: {exc}") from None
                assert t is not None
                if self._times and t <= self._times[-1]:
                    raise ValueError(f"{path}:{line_no}: t: must increase, got {t} after {self._times[-1]}")
                stopped = state.speed_kmh < MOVING_KMH
                prev_stop = self._last_stop[-1] if self._last_stop else None
                self._times.append(t)
                self._states.append(state)
                self._last_stop.append(t if stopped else prev_stop)
        if not self._times:
            raise ValueError(f"{path}: no rows")
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


class ZmqVehicle:
    """Subscribes to the bus's vehicle-state feed (JSON, one message per update) on a background thread.

    A feed that falls silent must not freeze its last word: "doors open" or "50 km/h" would silence every zone for
    as long as the gateway is down. After STALE_S without a message the state falls back to a bus standing with its
    doors closed (every zone informs, nothing warns) and `feed_status()` says so, for the `health` topic.
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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vehicle", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                parts = self._sock.recv_multipart()
            except zmq.Again:
                continue
            except zmq.ZMQError:
                return
            try:
                state = parse_state(json.loads(parts[-1]))
            except (ValueError, UnicodeDecodeError) as exc:
                log.warning("vehicle message rejected: %s", exc)
                continue
            now = time.time()
            with self._lock:
                self._state = state
                self._last_msg = now
                if state.speed_kmh < MOVING_KMH:
                    self._last_stop = now

    def feed_status(self) -> str:
        with self._lock:
            last = self._last_msg
        if last is None:
            return "waiting"
        return "ok" if time.time() - last <= STALE_S else "stale"

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
