"""The day's health bookkeeping (edge/health_day.py) on an injected clock: pure logic, so the clock and the
daemon's counters are plain values here. The real daemon's summary is tested in tests/test_fleet_health.py."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from core.types import Health, Status
from edge.health_day import CHECKPOINT_S, MAX_STEP_S, CameraTotals, Cumulative, DailyHealth
from recorder.health import DayFigures, Identity, SavedDay

BUS = "bus-0412"
ID = Identity(BUS, "0.1.0", "person_ssdlite_int8@abc", "ab" * 32, "cd" * 32, "publish")
CAMS = ["front", "left"]
DAY1 = dt.date(2026, 11, 20)
NOON = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC).timestamp()
MIDNIGHT = dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp()


def counters(frames: int = 0, info: int = 0, warning: int = 0, dropped: int = 0, rejected: int = 0) -> Cumulative:
    return Cumulative(
        cameras={c: CameraTotals(frames, frames // 100, 0) for c in CAMS},
        info_alerts=info,
        warning_alerts=warning,
        events_dropped=dropped,
        vehicle_rejected=rejected,
    )


class Clock:
    """The daemon's loop stand-in: passes every `step` seconds, with status changes on the way."""

    def __init__(self, day: DailyHealth, now: float, cum: Cumulative | None = None):
        self.day, self.now, self.cum = day, now, cum or Cumulative()

    def run(self, seconds: float, step: float = 0.5) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = min(self.now + step, end)
            self.day.advance(self.now, lambda: self.cum)

    def jump(self, to: float) -> None:
        """The wall clock is set: the next pass sees the new time at once."""
        self.now = to
        self.day.advance(self.now, lambda: self.cum)

    def say(self, camera: str, status: Status) -> None:
        self.day.observe(Health(camera, status, "", self.now))


def start(now: float = NOON, saved: SavedDay | None = None) -> Clock:
    return Clock(DailyHealth(ID, CAMS, saved, now), now)


def stopped(clock: Clock) -> SavedDay:
    clock.day.stop(clock.now, clock.cum)
    write = clock.day.take()[-1]
    assert write.summary is not None and not write.summary.final
    return write.state


def test_a_camera_is_up_only_while_health_says_ok() -> None:
    """Starting, degraded, stalled and offline seconds are not up; each entry into a bad status is counted once."""
    c = start()
    c.run(2)  # before the first frame: starting
    c.say("front", Status.OK)
    c.say("left", Status.OK)
    c.run(8)
    c.say("front", Status.DEGRADED)
    c.run(2)
    c.say("front", Status.DEGRADED)  # its reasons changed (dark, then dark and frozen): the same episode
    c.run(3)
    c.say("front", Status.STALLED)
    c.run(3)
    c.say("front", Status.OFFLINE)
    c.run(2)
    state = stopped(c)
    front, left = state.figures.cameras
    assert state.figures.operating_s == pytest.approx(20)
    assert (front.starting_s, front.ok_s, front.degraded_s, front.stalled_s, front.offline_s) == pytest.approx(
        (2, 8, 5, 3, 2)
    )
    assert (front.degradations, front.stalls, front.outages) == (1, 1, 1)
    assert front.uptime_pct == pytest.approx(40.0)
    assert left.uptime_pct == pytest.approx(90.0) and left.watched_s == pytest.approx(20)


def test_counts_are_the_daemon_counters_since_the_day_began() -> None:
    c = start()
    c.cum = counters(frames=600, info=7, warning=2, dropped=3, rejected=5)
    c.run(60)
    fig = stopped(c).figures
    assert (fig.info_alerts, fig.warning_alerts, fig.events_dropped, fig.vehicle_rejected) == (7, 2, 3, 5)
    assert [(cam.frames, cam.dropped) for cam in fig.cameras] == [(600, 6), (600, 6)]
    assert fig.per_hour(fig.info_alerts) == pytest.approx(7 * 60)


def test_midnight_closes_the_day_with_a_final_summary_and_opens_the_next() -> None:
    c = start(MIDNIGHT - 60)
    c.say("front", Status.OK)
    c.say("left", Status.OFFLINE)
    c.cum = counters(frames=500, info=4)
    c.run(59.75)
    assert not c.day.take()
    c.run(0.5)  # this pass crosses midnight
    (write,) = c.day.take()
    summary = write.summary
    assert summary is not None and summary.final and summary.day == DAY1 and summary.revision == 1
    assert summary.through_ts == MIDNIGHT
    assert summary.figures.operating_s == pytest.approx(60)
    assert summary.figures.info_alerts == 4 and summary.figures.cameras[0].frames == 500
    assert write.state.day == DAY1 + dt.timedelta(days=1) and write.state.revision == 0
    # The next day counts from the counters as they were at midnight, and statuses carry over.
    c.cum = counters(frames=800, info=5)
    c.run(30)
    nxt = stopped(c)
    assert nxt.day == DAY1 + dt.timedelta(days=1) and nxt.revision == 1
    front, left = nxt.figures.cameras
    assert nxt.figures.operating_s == pytest.approx(30.25)
    assert front.frames == 300 and nxt.figures.info_alerts == 1
    assert front.ok_s == pytest.approx(30.25) and left.offline_s == pytest.approx(30.25)
    assert left.outages == 0, "still the outage of the day before, not a new one"


def test_a_restart_on_the_same_day_carries_its_figures_and_supersedes_the_earlier_summary() -> None:
    first = start()
    first.say("front", Status.OK)
    first.run(100)
    saved = stopped(first)
    assert saved.revision == 1 and saved.figures.runs == 1

    second = start(first.now + 50, saved)
    second.say("front", Status.OK)
    second.run(100)
    again = stopped(second)
    assert again.revision == 2 and again.figures.runs == 2
    assert again.figures.operating_s == pytest.approx(200), "the 50 s the daemon was stopped are not operating time"
    assert again.figures.cameras[0].ok_s == pytest.approx(200)


def test_a_day_that_ended_while_the_daemon_was_stopped_gets_its_final_summary_at_the_next_start() -> None:
    first = start()
    first.run(100)
    saved = stopped(first)
    nxt = DailyHealth(ID, CAMS, saved, MIDNIGHT + 3600)
    (write,) = nxt.take()
    assert write.summary is not None
    assert write.summary.final and write.summary.day == DAY1 and write.summary.revision == 2
    assert write.summary.figures == saved.figures and write.summary.through_ts == saved.through_ts
    assert write.state.final_written
    # Described as the run that saved it ran, not as the one that closes it (a config changed overnight).
    newer = DailyHealth(dataclasses.replace(ID, config_sha256="ee" * 32), CAMS, saved, MIDNIGHT + 3600).take()
    assert newer[0].summary is not None and newer[0].summary.identity == ID
    # Once final, a later start leaves that day alone.
    assert DailyHealth(ID, CAMS, write.state, MIDNIGHT + 7200).take() == []


def test_another_bus_state_is_not_carried() -> None:
    other = SavedDay(
        dataclasses.replace(ID, bus_id="bus-9999"), DAY1, 3, False, NOON, DayFigures(operating_s=999, runs=4)
    )
    c = start(NOON + 10, other)
    assert c.day.take() == []
    c.run(10)
    state = stopped(c)
    assert state.revision == 1 and state.figures.operating_s == pytest.approx(10)


@pytest.mark.parametrize("jump", [-30.0, MAX_STEP_S + 1, 3 * 3600.0])
def test_a_clock_jump_is_not_operating_time(jump: float) -> None:
    c = start()
    c.run(10)
    c.jump(c.now + jump)
    c.run(10)
    assert stopped(c).figures.operating_s == pytest.approx(20)


def test_a_clock_jump_across_midnight_closes_the_day_where_counting_stopped() -> None:
    c = start(MIDNIGHT - 20)
    c.run(10)
    c.jump(MIDNIGHT + 60)
    c.run(5)
    (write,) = c.day.take()
    assert write.summary is not None and write.summary.final
    assert write.summary.through_ts == MIDNIGHT - 10 and write.summary.figures.operating_s == pytest.approx(10)
    assert stopped(c).figures.operating_s == pytest.approx(5)


def test_the_day_so_far_is_saved_every_checkpoint_without_a_summary() -> None:
    c = start()
    c.run(CHECKPOINT_S + 1, step=1.0)
    (write,) = c.day.take()
    assert write.summary is None and write.state.revision == 0
    assert write.state.figures.operating_s == pytest.approx(CHECKPOINT_S)


def test_recorder_and_event_store_failures_are_counted_once_per_occurrence() -> None:
    c = start()
    for camera, status in [
        ("recorder", Status.OFFLINE),
        ("recorder", Status.OK),
        ("recorder", Status.FAILED),
        ("recorder", Status.CLIP_FAILED),
        ("recorder", Status.CLIP_FAILED),
        ("recorder", Status.DISK_FULL),
        ("recorder", Status.CLIP_FAILED),
        ("recorder", Status.DISK_FULL),  # still full: not a second time
        ("events", Status.DISK_FULL),
        ("events", Status.DISK_FULL),  # the store repeats its fault when it drops events
        ("events", Status.FAILED),
        ("events", Status.OK),
        ("events", Status.FAILED),
    ]:
        c.say(camera, status)
    fig = stopped(c).figures
    assert (fig.recorder_failures, fig.clip_failures, fig.recorder_disk_full, fig.event_store_faults) == (2, 3, 1, 2)


def test_a_stale_vehicle_feed_is_timed() -> None:
    c = start()
    c.say("vehicle", Status.WAITING)
    c.run(3)
    c.say("vehicle", Status.OK)
    c.run(10)
    c.say("vehicle", Status.STALE)
    c.run(4)
    assert stopped(c).figures.vehicle_stale_s == pytest.approx(7)
