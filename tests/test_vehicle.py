"""Vehicle state: message validation, recorded logs, and the live ZeroMQ feed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import zmq

from edge.types import Indicator
from edge.vehicle import VehicleLog, ZmqVehicle, parse_state

from .conftest import free_port


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, "speed_kmh: missing"),
        ({"speed_kmh": "fast"}, "speed_kmh: expected a number"),
        ({"speed_kmh": -3}, "speed_kmh: must be >= 0"),
        ({"speed_kmh": float("nan")}, "speed_kmh: expected a finite number"),
        ({"speed_kmh": 5, "indicator": "up"}, "indicator: expected one of"),
        ({"speed_kmh": 5, "doors_open": "maybe"}, "doors_open: expected true/false"),
        ({"speed_kmh": 5, "gear": 3}, "gear: unknown field"),
        ([1, 2], "message: expected a JSON object"),
    ],
)
def test_bad_messages_name_the_field(fields: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_state(fields)  # type: ignore[arg-type]


def test_a_good_message() -> None:
    s = parse_state({"speed_kmh": 12.5, "indicator": "LEFT", "doors_open": False, "reverse": 0, "lat": 45.1, "ts": 3})
    assert (s.speed_kmh, s.indicator, s.doors_open, s.reverse, s.lat, s.lon) == (
        12.5,
        Indicator.LEFT,
        False,
        False,
        45.1,
        None,
    )


def test_log_playback_loops_and_knows_when_the_bus_last_stood_still(tmp_path: Path) -> None:
    log = tmp_path / "v.csv"
    log.write_text(
        "t,speed_kmh,indicator,doors_open,reverse\n0,0,off,true,false\n2,6,off,false,false\n4,30,right,false,false\n"
    )
    v = VehicleLog(log, t0=100.0, loop=True)
    assert v.state_at(100.5).doors_open and v.state_at(100.5).stopped_s_ago == 0.0
    moving_off = v.state_at(103.0)
    assert moving_off.speed_kmh == 6 and moving_off.stopped_s_ago == pytest.approx(3.0)
    assert v.state_at(105.0).indicator == Indicator.RIGHT
    assert v.state_at(106.5).doors_open  # the 6 s log has looped


def test_a_bad_log_row_names_line_and_field(tmp_path: Path) -> None:
    log = tmp_path / "v.csv"
    log.write_text("t,speed_kmh,indicator\n0,10,off\n1,ten,off\n")
    with pytest.raises(ValueError, match=r"v.csv:3: speed_kmh: expected a number"):
        VehicleLog(log, t0=0.0)


def test_zmq_feed_updates_the_state_and_skips_bad_messages(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(endpoint)
    feed = ZmqVehicle(ctx, endpoint)
    try:
        time.sleep(0.3)  # let the subscription reach the publisher
        pub.send_multipart([b"vehicle", json.dumps({"speed_kmh": 0, "doors_open": True}).encode()])
        pub.send_multipart([b"vehicle", json.dumps({"speed_kmh": 5, "indicator": "right"}).encode()])
        pub.send_multipart([b"vehicle", b'{"speed_kmh": "oops"}'])
        deadline = time.monotonic() + 3
        while feed.state_at(time.time()).speed_kmh != 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        state = feed.state_at(time.time())
        assert state.speed_kmh == 5 and state.indicator == Indicator.RIGHT
        assert state.stopped_s_ago is not None and state.stopped_s_ago < 2
        assert "speed_kmh: expected a number" in caplog.text
        assert feed.feed_status() == "ok"
    finally:
        feed.close()
        pub.close(0)
        ctx.term()


def test_a_silent_feed_goes_stale_and_falls_back_to_a_standing_bus() -> None:
    """Last words must not freeze: doors open would otherwise silence every zone while the gateway is down."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(endpoint)
    feed = ZmqVehicle(ctx, endpoint)
    try:
        assert feed.feed_status() == "waiting"
        time.sleep(0.3)
        pub.send_multipart([b"vehicle", json.dumps({"speed_kmh": 50, "doors_open": True}).encode()])
        deadline = time.monotonic() + 3
        while feed.feed_status() != "ok" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed.state_at(time.time()).doors_open
        time.sleep(2.3)
        assert feed.feed_status() == "stale"
        state = feed.state_at(time.time())
        assert (state.speed_kmh, state.doors_open) == (0.0, False)
    finally:
        feed.close()
        pub.close(0)
        ctx.term()
