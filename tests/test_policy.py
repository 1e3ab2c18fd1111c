"""Alert policy scenarios, in the spirit of UN R151 (side blind spot) and R159 (moving off).

Each row: what the bus does, who is where, and the level the driver must see. Pure logic: no camera, no model.
"""

from __future__ import annotations

import pytest

from core.types import Indicator, Level, Side, VehicleState, ZoneHits
from edge.config import AlertsConfig, EventsConfig, PolicyConfig
from edge.policy import ZoneKey, ZonePolicy, level_for

ALERTS = AlertsConfig(enter_frames=3, clear_frames=5)
POLICY = PolicyConfig()


def bus(
    speed: float = 0.0,
    indicator: Indicator = Indicator.OFF,
    doors: bool = False,
    reverse: bool = False,
    stopped_ago: float | None = None,
) -> VehicleState:
    return VehicleState(
        speed_kmh=speed,
        indicator=indicator,
        doors_open=doors,
        reverse=reverse,
        stopped_s_ago=0.0 if speed < 1 else stopped_ago,
    )


def someone(distance: float = 1.25, track: int = 1) -> ZoneHits:
    return ZoneHits("blind-spot", (track,), (True,), (0.9,), (distance,))


NOBODY = ZoneHits("blind-spot", (), (), (), ())


def hidden(*tracks: int) -> ZoneHits:
    """Nobody seen in the zone, but these tracks are alive: the people are hidden or missed, not gone."""
    return ZoneHits("blind-spot", (), (), (), (), hidden=frozenset(tracks))


def drive(side: Side, vehicle: VehicleState, hits: ZoneHits, frames: int = 10) -> Level:
    policy = ZonePolicy(ZoneKey("cam", side, "blind-spot"), ALERTS, POLICY)
    for i in range(frames):
        policy.step(hits, vehicle, ts=i * 0.1)
    return policy.level


SCENARIOS = [
    # (description, side, vehicle, who, expected level)
    (
        "cyclist alongside at 1.25 m while turning right",
        Side.RIGHT,
        bus(15, Indicator.RIGHT),
        someone(1.25),
        Level.WARNING,
    ),
    ("the same at 40 km/h", Side.RIGHT, bus(40, Indicator.RIGHT), someone(1.25), Level.NONE),
    ("cyclist alongside, going straight at 20 km/h", Side.RIGHT, bus(20), someone(1.25), Level.INFO),
    ("indicating left: nobody on the right side warns", Side.RIGHT, bus(15, Indicator.LEFT), someone(1.25), Level.INFO),
    ("hazard lights are not a turn", Side.LEFT, bus(10, Indicator.HAZARD), someone(2.0), Level.INFO),
    ("person outside the zone", Side.RIGHT, bus(15, Indicator.RIGHT), NOBODY, Level.NONE),
    ("indicator alone with nobody there", Side.LEFT, bus(10, Indicator.LEFT), NOBODY, Level.NONE),
    ("pedestrian ahead while moving off from a stop", Side.FRONT, bus(5, stopped_ago=2.0), someone(1.5), Level.WARNING),
    ("pedestrian ahead, bus standing at a red light", Side.FRONT, bus(0), someone(1.5), Level.INFO),
    (
        "pedestrian ahead at 8 km/h long after the last stop",
        Side.FRONT,
        bus(8, stopped_ago=60.0),
        someone(2.0),
        Level.INFO,
    ),
    (
        "pedestrian ahead at 12 km/h: past the moving-off range",
        Side.FRONT,
        bus(12, stopped_ago=2.0),
        someone(2.0),
        Level.NONE,
    ),
    ("doors open at a stop: passengers, not danger", Side.RIGHT, bus(0, doors=True), someone(0.5), Level.NONE),
    ("someone behind while reversing", Side.REAR, bus(3, reverse=True), someone(2.0), Level.WARNING),
    ("someone behind while driving forward", Side.REAR, bus(20), someone(2.0), Level.NONE),
]


@pytest.mark.parametrize(
    ("vehicle", "side", "hits", "expected"), [pytest.param(v, s, h, e, id=d) for d, s, v, h, e in SCENARIOS]
)
def test_scenario(vehicle: VehicleState, side: Side, hits: ZoneHits, expected: Level) -> None:
    assert drive(side, vehicle, hits) == expected


def test_a_person_must_stay_enter_frames_before_an_alert() -> None:
    """Two frames of presence are not enough with enter_frames = 3; the third raises the alert."""
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY)
    levels = [policy.step(someone(), bus(10), i * 0.1).alert for i in range(3)]
    assert [a is not None for a in levels] == [False, False, True]


def test_alert_clears_only_after_clear_frames_without_anyone() -> None:
    """A missed detection does not drop the alert; clear_frames empty frames do."""
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY)
    for i in range(4):
        policy.step(someone(), bus(10), i * 0.1)
    results = [policy.step(NOBODY, bus(10), 0.4 + i * 0.1) for i in range(5)]
    assert [r.changed for r in results] == [False, False, False, False, True]
    assert results[-1].alert is not None and results[-1].alert.level == Level.NONE


def test_the_event_closes_when_the_stay_gap_is_over_and_ends_when_the_person_was_last_in() -> None:
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY, EventsConfig(stay_gap_s=1.0))
    for i in range(4):
        policy.step(someone(), bus(10), i * 0.1)
    closed = [(i, ev) for i in range(1, 15) for ev in policy.step(NOBODY, bus(10), 0.3 + i * 0.1).closed]
    ((frame, event),) = closed
    assert frame == 11  # 1.1 s after the last sighting: more than the 1.0 s gap
    assert event.end_ts == pytest.approx(0.3) and event.frames == 4
    assert event.max_level == Level.INFO and event.min_distance_m == 1.25


def test_a_person_who_steps_out_and_back_within_the_gap_is_one_event() -> None:
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY, EventsConfig(stay_gap_s=1.5))
    frames = [someone()] * 5 + [NOBODY] * 12 + [someone()] * 5
    closed = [ev for i, h in enumerate(frames) for ev in policy.step(h, bus(10), i * 0.1).closed]
    assert closed == []
    (event,) = policy.flush(10.0)
    assert event.start_ts == 0.0 and event.end_ts == pytest.approx(2.1) and event.frames == 10


def test_a_hidden_person_keeps_their_stay_open_however_long_the_tracker_keeps_them() -> None:
    """Behind a post for 3 s (longer than the gap): the track is alive, so it is the same stay."""
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY, EventsConfig(stay_gap_s=1.0))
    frames = [someone()] * 5 + [hidden(1)] * 30 + [someone()] * 5
    closed = [ev for i, h in enumerate(frames) for ev in policy.step(h, bus(10), i * 0.1).closed]
    assert closed == [] and len(policy.flush(10.0)) == 1


def test_a_person_seen_only_by_an_unconfirmed_track_opens_no_event() -> None:
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY)
    unsure = ZoneHits("blind-spot", (7,), (False,), (0.9,), (1.0,))
    opened = [ev for i in range(5) for ev in policy.step(unsure, bus(10), i * 0.1).opened]
    assert opened == [] and policy.level == Level.NONE
    assert len(policy.step(someone(track=7), bus(10), 0.5).opened) == 1


def test_one_stray_detection_is_not_an_event() -> None:
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY)
    policy.step(someone(), bus(10), 0.0)
    closed = [ev for i in range(10) for ev in policy.step(NOBODY, bus(10), 0.1 * (i + 1)).closed]
    assert closed == [] and policy.flush(2.0) == ()


def test_one_person_is_one_event_and_two_people_are_two() -> None:
    policy = ZonePolicy(ZoneKey("cam", Side.LEFT, "z"), ALERTS, POLICY)
    both = ZoneHits("z", (1, 2), (True, True), (0.8, 0.7), (1.0, 3.0))
    for i in range(6):
        policy.step(both, bus(10, Indicator.LEFT), i * 0.1)
    events = policy.flush(1.0)
    assert sorted(e.min_distance_m for e in events) == [1.0, 3.0]
    assert all(e.max_level == Level.WARNING for e in events)


def test_level_rises_to_warning_when_the_indicator_comes_on() -> None:
    policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY)
    for i in range(4):
        policy.step(someone(), bus(15), i * 0.1)
    res = policy.step(someone(), bus(15, Indicator.RIGHT), 0.5)
    assert res.changed and res.alert is not None and res.alert.level == Level.WARNING
    assert res.alert.nearest_m == 1.25 and res.alert.track_ids == (1,)


def test_event_ids_are_reproducible_from_the_same_input() -> None:
    """Replay of the same footage must give the same rows."""

    def run() -> str:
        policy = ZonePolicy(ZoneKey("cam", Side.RIGHT, "z"), ALERTS, POLICY)
        for i in range(4):
            policy.step(someone(), bus(10), 100 + i * 0.1)
        return policy.flush(101.0)[0].event_id

    assert run() == run()


@pytest.mark.parametrize(
    ("side", "speed", "expected"),
    [
        (Side.RIGHT, 30.0, Level.INFO),
        (Side.RIGHT, 30.1, Level.NONE),
        (Side.FRONT, 10.0, Level.INFO),
        (Side.FRONT, 10.1, Level.NONE),
    ],
)
def test_speed_limits_of_each_zone(side: Side, speed: float, expected: Level) -> None:
    assert level_for(side, bus(speed, stopped_ago=300.0), POLICY) == expected
