"""The daemon's day, counted for the health summary: pure bookkeeping on a clock the caller passes in.

Time is told by the daemon's loop (`advance`, every pass, ~10 times a second at least) and attributed to each
camera's status as `health` last stated it, so a camera's uptime is exactly the share of the day's operating time
during which the daemon said `ok` for it: `degraded` (frames arrive but it cannot see), `stalled`, `offline` and the
seconds before its first frame after a start are not up. Counts come from the daemon's own counters, which run from
its start: a day's count is the counter now minus the counter when the day began (`Cumulative`). Status changes
(`observe`) give the rest: stalls, outages, views lost, recorder and event-store failures.

A day ends at midnight UTC: the pass that crosses it closes the day (a final summary, figures up to midnight;
counters read on that pass, a fraction of a second late) and opens the next. A pass that finds the wall clock moved
back, or forward by more than MAX_STEP_S (a clock set at boot, a suspended machine), counts no time for that gap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from core.types import Health, Status
from recorder.health import CameraDay, DayFigures, HealthSummary, Identity, SavedDay
from recorder.health_store import HealthWrite

MAX_STEP_S = 60.0  # the loop passes several times a second; a longer gap is a clock jump, not operating time
CHECKPOINT_S = 600.0  # the day so far is saved this often: a crash loses at most this much of its figures
RECORDER_FAILED = frozenset({Status.OFFLINE, Status.FAILED})
STORE_FAULTS = frozenset({Status.DISK_FULL, Status.FAILED})
_COUNTED = {Status.STALLED: "stalls", Status.OFFLINE: "outages", Status.DEGRADED: "degradations"}
_SECONDS = {
    Status.OK: "ok_s",
    Status.DEGRADED: "degraded_s",
    Status.STALLED: "stalled_s",
    Status.OFFLINE: "offline_s",
    Status.STARTING: "starting_s",
}


@dataclass(frozen=True, slots=True)
class CameraTotals:
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0


@dataclass(frozen=True, slots=True)
class Cumulative:
    """The daemon's counters since it started, read at one moment."""

    cameras: Mapping[str, CameraTotals] = field(default_factory=dict)
    info_alerts: int = 0
    warning_alerts: int = 0
    events_dropped: int = 0
    vehicle_rejected: int = 0


def day_of(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def midnight_after(day: dt.date) -> float:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()


class RunPart:
    """This run's share of one day: seconds by status, and what changed, since the day (or the run) began."""

    def __init__(self, cameras: Sequence[str], base: Cumulative, statuses: Mapping[str, Status]):
        self._cameras = list(cameras)
        self._base = base
        self._seconds = {name: dict.fromkeys(_SECONDS.values(), 0.0) for name in cameras}
        self._counts = {name: dict.fromkeys(_COUNTED.values(), 0) for name in cameras}
        self.status = dict(statuses)  # carried over midnight: a camera offline at 23:59 is still offline
        self.operating_s = 0.0
        self.vehicle_stale_s = 0.0
        self.vehicle_ok = True
        self.recorder_failures = self.clip_failures = self.recorder_disk_full = self.store_faults = 0
        self.recorder_status = Status.OK
        self.store_status = Status.OK

    def add_time(self, seconds: float) -> None:
        self.operating_s += seconds
        for name in self._cameras:
            self._seconds[name][_SECONDS.get(self.status[name], "starting_s")] += seconds
        if not self.vehicle_ok:
            self.vehicle_stale_s += seconds

    def observe(self, h: Health) -> None:
        if h.camera in self._seconds:
            if h.status != self.status[h.camera] and h.status in _COUNTED:
                self._counts[h.camera][_COUNTED[h.status]] += 1
            self.status[h.camera] = h.status
        elif h.camera == "recorder":
            if h.status in RECORDER_FAILED:
                self.recorder_failures += 1
            elif h.status == Status.CLIP_FAILED:
                self.clip_failures += 1  # one message per failed clip
            elif h.status == Status.DISK_FULL and self.recorder_status != Status.DISK_FULL:
                self.recorder_disk_full += 1
            if h.status != Status.CLIP_FAILED:
                self.recorder_status = h.status
        elif h.camera == "events":
            # The store repeats its fault when events are dropped: only the start of a fault is one.
            if h.status in STORE_FAULTS and self.store_status not in STORE_FAULTS:
                self.store_faults += 1
            self.store_status = h.status
        elif h.camera == "vehicle":
            self.vehicle_ok = h.status == Status.OK

    def figures(self, now: Cumulative) -> DayFigures:
        base = self._base
        cameras = []
        for name in self._cameras:
            cur, was = now.cameras.get(name, CameraTotals()), base.cameras.get(name, CameraTotals())
            seconds, counts = self._seconds[name], self._counts[name]
            cameras.append(
                CameraDay(
                    name,
                    ok_s=seconds["ok_s"],
                    degraded_s=seconds["degraded_s"],
                    stalled_s=seconds["stalled_s"],
                    offline_s=seconds["offline_s"],
                    starting_s=seconds["starting_s"],
                    stalls=counts["stalls"],
                    outages=counts["outages"],
                    degradations=counts["degradations"],
                    reconnects=cur.reconnects - was.reconnects,
                    frames=cur.frames - was.frames,
                    dropped=cur.dropped - was.dropped,
                )
            )
        return DayFigures(
            operating_s=self.operating_s,
            runs=1,
            cameras=tuple(cameras),
            info_alerts=now.info_alerts - base.info_alerts,
            warning_alerts=now.warning_alerts - base.warning_alerts,
            recorder_failures=self.recorder_failures,
            clip_failures=self.clip_failures,
            recorder_disk_full=self.recorder_disk_full,
            event_store_faults=self.store_faults,
            events_dropped=now.events_dropped - base.events_dropped,
            vehicle_stale_s=self.vehicle_stale_s,
            vehicle_rejected=now.vehicle_rejected - base.vehicle_rejected,
        )

    def next_day(self, base: Cumulative) -> RunPart:
        """The same run, from midnight: statuses carried, everything else from zero."""
        part = RunPart(self._cameras, base, self.status)
        part.vehicle_ok, part.recorder_status, part.store_status = (
            self.vehicle_ok,
            self.recorder_status,
            self.store_status,
        )
        return part


class DailyHealth:
    """This run's days, joined with what earlier runs of the same day saved; says what to write and when."""

    def __init__(self, identity: Identity, cameras: Sequence[str], saved: SavedDay | None, now: float):
        self._identity = identity
        self._cameras = list(cameras)
        self.writes: list[HealthWrite] = []  # to hand to the store; taken by `take`
        today = day_of(now)
        if saved is not None and saved.identity.bus_id != identity.bus_id:
            saved = None  # another bus's state folder (a copied disk): its figures are not ours
        if saved is not None and saved.day < today and not saved.final_written:
            # The daemon was not running when that day ended: this is the first moment after it.
            self._close_saved(saved)
        if saved is None or saved.day != today:
            saved = SavedDay(identity, today, 0, False, now)
        self._day = saved
        self._part = RunPart(cameras, Cumulative(), dict.fromkeys(cameras, Status.STARTING))
        self._last = now
        self._next_checkpoint = now + CHECKPOINT_S

    @property
    def day(self) -> dt.date:
        return self._day.day

    def _close_saved(self, saved: SavedDay) -> None:
        final = replace(saved, revision=saved.revision + 1, final_written=True)
        summary = HealthSummary(saved.identity, saved.day, final.revision, True, saved.through_ts, saved.figures)
        self.writes.append(HealthWrite(summary, final))

    def observe(self, health: Health) -> None:
        self._part.observe(health)

    def advance(self, now: float, counters: Callable[[], Cumulative]) -> None:
        """Count the time since the last pass, closing the day at midnight; `counters` is read only when needed."""
        gap = now - self._last
        counted_to = now if 0 <= gap <= MAX_STEP_S else self._last
        midnight = midnight_after(self._day.day)
        if counted_to >= midnight:
            self._part.add_time(midnight - self._last)
            self._roll(midnight, counters(), new_day_start=midnight)
            self._part.add_time(counted_to - midnight)
        else:
            self._part.add_time(counted_to - self._last)
            if day_of(now) != self._day.day:  # a jump across midnight: nothing counted in between
                self._roll(self._last, counters(), new_day_start=now)
        self._last = now
        if now >= self._next_checkpoint:
            self._next_checkpoint = now + CHECKPOINT_S
            self.writes.append(HealthWrite(None, self._standing(now, counters())))

    def _standing(self, now: float, cum: Cumulative) -> SavedDay:
        """The day's figures so far: earlier runs' and this one's, as this run describes it."""
        figures = self._day.figures.plus(self._part.figures(cum))
        return replace(self._day, identity=self._identity, through_ts=now, figures=figures)

    def _roll(self, through: float, cum: Cumulative, new_day_start: float) -> None:
        standing = self._standing(through, cum)
        done = replace(standing, revision=standing.revision + 1, final_written=True)
        summary = HealthSummary(self._identity, done.day, done.revision, True, through, done.figures)
        self._day = SavedDay(self._identity, day_of(new_day_start), 0, False, new_day_start)
        self._part = self._part.next_day(cum)
        self.writes.append(HealthWrite(summary, self._day))

    def stop(self, now: float, cum: Cumulative) -> None:
        """The daemon stops: the day so far as a partial summary, which a later one of the same day supersedes."""
        self.advance(now, lambda: cum)
        standing = self._standing(now, cum)
        standing = replace(standing, revision=standing.revision + 1)
        summary = HealthSummary(self._identity, standing.day, standing.revision, False, now, standing.figures)
        self.writes.append(HealthWrite(summary, standing))

    def take(self) -> list[HealthWrite]:
        writes, self.writes = self.writes, []
        return writes
