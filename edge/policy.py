"""Alert policy: from "who stands in which zone" and "what the bus is doing" to alert levels and events.

Pure logic, no I/O and no clock: time comes in with each frame, so replay gives the same answers as the live bus.

Why this shape (earlier French trials failed on alerts without real danger):
- a person must be seen in a zone for `enter_frames` frames before anything is raised, and the zone clears only after
  `clear_frames` frames without anyone, so one missed detection neither raises nor drops an alert;
- an event is one person's stay, not one track fragment: it opens once the tracker is sure of the person and they
  have been in the zone for `enter_frames` frames; it survives the person being hidden (their track is still alive,
  see edge/tracker.py) and short steps out of the zone (`events.stay_gap_s`), and closes only after that;
- `warning` needs both a person and a bus about to move toward them (UN R151: turning toward that side at low speed;
  UN R159: moving off from a stop), never the turn indicator alone;
- above the speed where a zone matters, and with the doors open (the bus is held at the stop), a zone stays quiet.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from core.types import Alert, Event, Indicator, Level, Side, VehicleState, ZoneHits
from edge.config import AlertsConfig, EventsConfig, PolicyConfig

MOVING_KMH = 1.0  # below this the bus counts as standing still
_EVENT_NS = uuid.UUID("6f0c1a52-7d1e-4c39-9d8e-0a5b7c1e2f34")


def level_for(side: Side, vehicle: VehicleState, cfg: PolicyConfig) -> Level:
    """The level a person in a zone on `side` deserves, given what the bus is doing."""
    if cfg.quiet_when_doors_open and vehicle.doors_open:
        return Level.NONE
    speed = vehicle.speed_kmh
    if side in (Side.LEFT, Side.RIGHT):
        if speed > cfg.side_max_kmh:
            return Level.NONE
        turning_toward = vehicle.indicator == Indicator(side.value)
        return Level.WARNING if turning_toward else Level.INFO
    if side == Side.FRONT:
        if speed > cfg.front_max_kmh:
            return Level.NONE
        moving_off = (
            speed >= MOVING_KMH and vehicle.stopped_s_ago is not None and vehicle.stopped_s_ago <= cfg.moving_off_s
        )
        return Level.WARNING if moving_off else Level.INFO
    # Rear: only reversing moves the bus toward someone behind it.
    if vehicle.reverse:
        return Level.WARNING
    return Level.INFO if speed < MOVING_KMH else Level.NONE


@dataclass(slots=True)
class _Stay:
    """One track's ongoing stay in one zone (becomes an Event when it ends)."""

    start_ts: float
    vehicle_at_start: VehicleState
    last_in_ts: float
    ordinal: int  # this zone's count of stays so far: makes the event id unique, and links nothing
    in_frames: int = 0
    out_frames: int = 0
    max_score: float = 0.0
    min_distance_m: float = math.inf
    max_level: Level = Level.NONE
    confirmed: bool = False
    info_alerts: int = 0
    warning_alerts: int = 0


@dataclass(frozen=True, slots=True)
class ZoneKey:
    camera: str
    side: Side
    zone: str


@dataclass(frozen=True, slots=True)
class StepResult:
    alert: Alert | None  # the zone's state after this frame; None while the zone is quiet and unchanged
    changed: bool  # the level changed on this frame: publish now
    opened: tuple[Event, ...]  # stays confirmed on this frame, as events so far (the write-ahead log keeps them)
    closed: tuple[Event, ...]


class ZonePolicy:
    """Debounced presence, level and per-person events for one zone of one camera."""

    def __init__(self, key: ZoneKey, alerts: AlertsConfig, policy: PolicyConfig, events: EventsConfig | None = None):
        self.key = key
        self._alerts = alerts
        self._policy = policy
        self._stay_gap_s = (events or EventsConfig()).stay_gap_s
        self._stays: dict[int, _Stay] = {}
        self._stay_count = 0
        self.level = Level.NONE

    def step(self, hits: ZoneHits, vehicle: VehicleState, ts: float) -> StepResult:
        zone_level = level_for(self.key.side, vehicle, self._policy)
        opened, closed = self._update_stays(hits, vehicle, ts, zone_level)
        present = [tid for tid, s in self._stays.items() if s.confirmed and s.out_frames == 0]
        # The zone's level is debounced in frames, whatever the stays: the driver sees what was agreed.
        lingering = any(s.confirmed and s.out_frames < self._alerts.clear_frames for s in self._stays.values())
        if present:
            new_level = zone_level
        elif lingering:
            new_level = self.level if self.level == Level.NONE else min(self.level, zone_level)
        else:
            new_level = Level.NONE
        changed = new_level != self.level
        if new_level > self.level:
            self._count_rise(present, new_level)
        self.level = new_level
        alert = self._alert(hits, present, ts) if changed or new_level != Level.NONE else None
        return StepResult(alert, changed, tuple(opened), tuple(closed))

    def _count_rise(self, present: list[int], level: Level) -> None:
        """The driver just got an alert: it belongs to the person who has been in the zone longest."""
        first = min((self._stays[t] for t in present), key=lambda s: (s.start_ts, s.ordinal))
        if level == Level.WARNING:
            first.warning_alerts += 1
        else:
            first.info_alerts += 1

    def flush(self, ts: float) -> tuple[Event, ...]:
        """Close every open stay (shutdown); unconfirmed ones were never events."""
        events = tuple(self._event(s, min(s.last_in_ts, ts)) for s in self._stays.values() if s.confirmed)
        self._stays.clear()
        self.level = Level.NONE
        return events

    def _update_stays(
        self, hits: ZoneHits, vehicle: VehicleState, ts: float, level: Level
    ) -> tuple[list[Event], list[Event]]:
        seen = set()
        opened = []
        for tid, sure, score, dist in zip(hits.track_ids, hits.confirmed, hits.scores, hits.distances_m, strict=True):
            seen.add(tid)
            stay = self._stays.get(tid)
            if stay is None:
                self._stay_count += 1
                stay = self._stays[tid] = _Stay(
                    start_ts=ts, vehicle_at_start=vehicle, last_in_ts=ts, ordinal=self._stay_count
                )
            stay.in_frames += 1
            stay.out_frames = 0
            stay.last_in_ts = ts
            stay.max_score = max(stay.max_score, score)
            if not math.isnan(dist):
                stay.min_distance_m = min(stay.min_distance_m, dist)
            if not stay.confirmed and sure and stay.in_frames >= self._alerts.enter_frames:
                stay.confirmed = True
                stay.max_level = level
                opened.append(self._event(stay, ts))
            elif stay.confirmed:
                stay.max_level = max(stay.max_level, level)
        closed = []
        for tid in [t for t in self._stays if t not in seen]:
            stay = self._stays[tid]
            stay.out_frames += 1
            # An unconfirmed stay is forgotten at once: a single stray detection is not an event.
            if not stay.confirmed:
                del self._stays[tid]
            # A hidden person (track alive, not seen) is still there; one seen elsewhere, or gone, has left once
            # the gap is over. Coming back within the gap continues the same stay.
            elif tid not in hits.hidden and ts - stay.last_in_ts > self._stay_gap_s:
                closed.append(self._event(stay, stay.last_in_ts))
                del self._stays[tid]
        return opened, closed

    def _alert(self, hits: ZoneHits, present: list[int], ts: float) -> Alert:
        dists = [d for t, d in zip(hits.track_ids, hits.distances_m, strict=True) if t in present and not math.isnan(d)]
        return Alert(
            camera=self.key.camera,
            side=self.key.side,
            zone=self.key.zone,
            level=self.level,
            track_ids=tuple(sorted(present)),
            nearest_m=round(min(dists), 2) if dists else None,
            frame_ts=ts,
        )

    def _event(self, stay: _Stay, end_ts: float) -> Event:
        # Derived, not random, so a replay of the same footage gives the same ids; the inputs hold no person data.
        # Not the track id: hashed with the row's own camera, zone and time it could be recovered by brute force and
        # would link one person's events across zones.
        event_id = uuid.uuid5(_EVENT_NS, f"{self.key.camera}/{self.key.zone}/{stay.start_ts:.6f}/{stay.ordinal}").hex
        return Event(
            event_id=event_id,
            camera=self.key.camera,
            side=self.key.side,
            zone=self.key.zone,
            start_ts=stay.start_ts,
            end_ts=end_ts,
            max_level=stay.max_level,
            min_distance_m=None if math.isinf(stay.min_distance_m) else round(stay.min_distance_m, 2),
            frames=stay.in_frames,
            max_score=round(stay.max_score, 3),
            vehicle_at_start=stay.vehicle_at_start,
            info_alerts=stay.info_alerts,
            warning_alerts=stay.warning_alerts,
        )
