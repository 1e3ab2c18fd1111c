"""Vehicle state: the message schema, the live ZeroMQ feed that must outlive any message, and recorded logs."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq

from core.types import Indicator, VehicleState
from edge.vehicle import LOG_EVERY_S, STALE_S, ZmqVehicle
from edge.vehicle_schema import LINE_CHARS, MAX_MESSAGE_BYTES, VehicleInputError, decode_message

from .conftest import free_port
from .vehicle_fuzz import malformed


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> float:
    """Poll `condition` until it holds; the seconds it took. Fails after `timeout`, generous because the machine may
    be busy: tests never sleep blindly, and never bound how long the code takes."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - start


def msg(**fields: object) -> list[bytes]:
    return [b"vehicle", json.dumps(fields).encode()]


# (what, frames, the start of the one-line error). Every one of these either raised out of the old receiver and
# killed the feed, or was applied.
MALFORMED = [
    ("401-digit integer", [b"v", b'{"speed_kmh": ' + b"9" * 401 + b"}"], "speed_kmh: expected a finite number"),
    ("100 000 nested [", [b"v", b"[" * 100_000], "message: 100000 bytes, more than 4096"),
    ("4 000 nested [ (within the size limit)", [b"v", b"[" * 4000], "message: nested deeper than 2 levels"),
    ("1 MB string", msg(speed_kmh=5, indicator="x" * 1_000_000), "message: 1000033 bytes, more than 4096"),
    ("1e308 km/h", msg(speed_kmh=1e308), "speed_kmh: must be <= 200"),
    ("NaN speed", [b"v", b'{"speed_kmh": NaN}'], "speed_kmh: expected a finite number, got nan"),
    ("infinite ts", [b"v", b'{"speed_kmh": 5, "ts": Infinity}'], "ts: expected a finite number, got inf"),
    ("negative speed", msg(speed_kmh=-1), "speed_kmh: must be >= 0"),
    ("lat 999", msg(speed_kmh=5, lat=999, lon=4.8), "lat: must be <= 90"),
    ("lon -181", msg(speed_kmh=5, lat=45.0, lon=-181), "lon: must be >= -180"),
    ("lat without lon", msg(speed_kmh=5, lat=45.0), "lon: missing while lat is given"),
    ("full-width digit", msg(speed_kmh="\uff15"), "speed_kmh: expected a number, got '\uff15'"),
    ("number as text", msg(speed_kmh="5"), "speed_kmh: expected a number, got '5'"),
    ("boolean as speed", msg(speed_kmh=True), "speed_kmh: expected a number, got True"),
    ("1 as doors_open", msg(speed_kmh=5, doors_open=1), "doors_open: expected true or false, got 1"),
    ('"true" as reverse', msg(speed_kmh=5, reverse="true"), "reverse: expected true or false"),
    ("null speed", msg(speed_kmh=None), "speed_kmh: expected a number, got None"),
    ("speed in a list", msg(speed_kmh=[5]), "speed_kmh: expected a number, got [5]"),
    ("unknown indicator", msg(speed_kmh=5, indicator="up"), "indicator: expected one of off/left/right/hazard"),
    ("indicator in capitals", msg(speed_kmh=5, indicator="LEFT"), "indicator: expected one of"),
    ("unknown field", msg(speed_kmh=5, gear=3), "gear: unknown field"),
    ("log time in a message", msg(speed_kmh=5, t=1.0), "t: unknown field"),
    ("no speed", msg(indicator="left"), "speed_kmh: missing"),
    ("field given twice", [b"v", b'{"speed_kmh": 250, "speed_kmh": 5}'], "speed_kmh: given twice"),
    ("JSON array", [b"v", b"[1, 2]"], "message: expected a JSON object, got list"),
    ("JSON string", [b"v", b'"speed_kmh"'], "message: expected a JSON object, got str"),
    ("not JSON", [b"v", b"speed_kmh=5"], "message: not JSON"),
    ("trailing bytes", [b"v", b'{"speed_kmh": 5} {}'], "message: not JSON: Extra data"),
    ("invalid UTF-8", [b"v", b'{"speed_kmh": 5, "indicator": "\xff"}'], "message: not UTF-8 (byte 31)"),
    ("empty message", [b"v", b""], "message: empty"),
    ("whitespace only", [b"v", b" \n "], "message: empty"),
    ("three frames", [b"v", b"x", b'{"speed_kmh": 5}'], "message: expected 1 or 2 frames"),
    ("JSON first, then a topic", [b'{"speed_kmh": 5}', b"vehicle"], "message: not JSON"),
    ("oversized topic frame", [b"v" * 1000, b'{"speed_kmh": 5}'], "message: topic frame of 1000 bytes"),
]


@pytest.mark.parametrize(("frames", "error"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_message_is_refused_in_one_short_line_naming_its_field(frames: list[bytes], error: str) -> None:
    with pytest.raises(VehicleInputError) as caught:
        decode_message(frames)
    text = str(caught.value)
    assert text.startswith(error)
    assert len(text) <= LINE_CHARS and "\n" not in text


def test_no_frames_at_all_is_refused() -> None:
    with pytest.raises(VehicleInputError, match=r"message: expected 1 or 2 frames .*, got 0"):
        decode_message([])


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        (msg(speed_kmh=0), VehicleState(speed_kmh=0.0)),
        (msg(speed_kmh=200, indicator="hazard"), VehicleState(speed_kmh=200.0, indicator=Indicator.HAZARD)),
        (
            msg(speed_kmh=12.5, indicator="left", doors_open=True, reverse=False, lat=-90, lon=180, ts=1.7e9),
            VehicleState(12.5, Indicator.LEFT, True, False, -90.0, 180.0, 1.7e9),
        ),
        ([b'{"speed_kmh": 30, "lat": null, "lon": null}'], VehicleState(speed_kmh=30.0)),  # one frame, no topic
        ([b"v", b'{\n  "speed_kmh": 8,\n  "reverse": true\n}\n'], VehicleState(speed_kmh=8.0, reverse=True)),
    ],
    ids=["standing", "200 km/h", "every field at its limit", "no topic frame", "pretty-printed"],
)
def test_a_valid_message_is_read_exactly(frames: list[bytes], expected: VehicleState) -> None:
    assert decode_message(frames) == expected


def test_every_fuzzed_variant_is_refused_by_the_schema() -> None:
    """300 malformed variants of valid messages (tests/vehicle_fuzz.py): each is refused, in one short line."""
    for kind, frames in malformed(300):
        with pytest.raises(VehicleInputError) as caught:
            decode_message(frames)
        assert len(str(caught.value)) <= LINE_CHARS, kind


@dataclass
class Gateway:
    """The bus's side of the feed: an XPUB socket, so a test can wait for the subscription instead of sleeping."""

    pub: zmq.Socket
    feed: ZmqVehicle

    def send(self, frames: list[bytes]) -> None:
        self.pub.send_multipart(frames)

    def apply(self, frames: list[bytes]) -> None:
        """Send a valid message and wait until the feed has applied it."""
        applied = self.feed.counts().applied
        self.send(frames)
        wait_until(lambda: self.feed.counts().applied > applied, "the valid message to be applied")


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.bind(endpoint)
    feed = ZmqVehicle(ctx, endpoint)
    try:
        assert pub.poll(5000), "the feed never subscribed"
        assert pub.recv() == b"\x01"  # subscribe to everything
        yield Gateway(pub, feed)
    finally:
        feed.close()
        pub.close(0)
        ctx.term()


def test_the_feed_applies_good_messages_and_skips_bad_ones(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    gateway.apply(msg(speed_kmh=0, doors_open=True))
    gateway.send(msg(speed_kmh="oops"))
    gateway.apply(msg(speed_kmh=5, indicator="right"))
    state = gateway.feed.state_at(time.time())
    assert state.speed_kmh == 5 and state.indicator == Indicator.RIGHT and not state.doors_open
    assert state.stopped_s_ago is not None and state.stopped_s_ago < 2
    counts = gateway.feed.counts()
    assert (counts.applied, counts.rejected) == (2, 1)
    assert counts.last_rejection == "speed_kmh: expected a number, got 'oops'"
    assert "vehicle message rejected: speed_kmh: expected a number, got 'oops'" in caplog.text
    assert gateway.feed.feed_status() == "ok"


def test_no_malformed_message_stops_the_feed(gateway: Gateway) -> None:
    """Each message of the table, each followed by a valid one that must still be applied; all of them counted."""
    for i, (what, frames, _) in enumerate(MALFORMED, start=1):
        gateway.send(frames)
        gateway.apply(msg(speed_kmh=float(i), indicator="left"))
        counts = gateway.feed.counts()
        assert (counts.applied, counts.rejected) == (i, i), what
        assert gateway.feed.state_at(time.time()).speed_kmh == float(i), what
    assert gateway.feed.feed_status() == "ok"


def test_three_hundred_fuzzed_messages_change_nothing_and_the_feed_goes_on(gateway: Gateway) -> None:
    gateway.apply(msg(speed_kmh=42.0, indicator="hazard", doors_open=True, lat=45.0, lon=4.8))
    before = gateway.feed.state_at(time.time())
    variants = malformed(300)
    for _, frames in variants:
        gateway.send(frames)
    wait_until(lambda: gateway.feed.counts().rejected == len(variants), "every variant to be rejected")
    assert gateway.feed.counts().applied == 1  # none of the 300 was applied
    if gateway.feed.feed_status() == "ok":  # on a slow machine the feed may have gone stale meanwhile: also safe
        assert gateway.feed.state_at(time.time()) == before
    gateway.apply(msg(speed_kmh=7.0))
    assert gateway.feed.state_at(time.time()).speed_kmh == 7.0 and gateway.feed.feed_status() == "ok"


def test_a_huge_bad_value_makes_one_short_log_line(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """Within the size limit a bad value is quoted, but clipped; beyond it, only its size is told."""
    caplog.set_level(logging.WARNING, logger="edge.vehicle")
    long_field = "k" * (MAX_MESSAGE_BYTES - 40)
    gateway.send([b"v", json.dumps({"speed_kmh": 5, long_field: 1}).encode()])
    gateway.apply(msg(speed_kmh=1))
    assert gateway.feed.counts().last_rejection.startswith("'kkkk") and "unknown field" in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.vehicle"]
    assert lines and all(len(line) <= LINE_CHARS and "\n" not in line for line in lines)


def test_a_flood_of_bad_messages_is_counted_but_logged_at_most_once_a_second(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.vehicle")
    start = time.monotonic()
    for _ in range(500):
        gateway.send(msg(speed_kmh=5, indicator="LEFT"))
    wait_until(lambda: gateway.feed.counts().rejected == 500, "500 rejections")
    gateway.send(msg(speed_kmh=5, indicator="LEFT"))
    wait_until(lambda: gateway.feed.counts().rejected == 501, "one more rejection")
    elapsed = time.monotonic() - start
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.vehicle"]
    assert 1 <= len(lines) <= 1 + elapsed / LOG_EVERY_S
    assert lines[0].startswith("vehicle message rejected: indicator: expected one of")


def test_a_silent_feed_goes_stale_and_falls_back_to_a_standing_bus(gateway: Gateway) -> None:
    """Last words must not freeze: doors open would otherwise silence every zone while the gateway is down."""
    assert gateway.feed.feed_status() == "waiting"
    gateway.apply(msg(speed_kmh=50, doors_open=True))
    assert gateway.feed.state_at(time.time()).doors_open
    took = wait_until(lambda: gateway.feed.feed_status() == "stale", "the feed to go stale")
    assert took >= STALE_S - 0.1  # not before its time (how long after depends on the machine, and is not checked)
    state = gateway.feed.state_at(time.time())
    assert (state.speed_kmh, state.doors_open) == (0.0, False)


def test_a_feed_of_bad_messages_only_goes_stale_too(gateway: Gateway) -> None:
    """Rejected messages are not signs of life: a gateway sending only bad ones leaves the bus 'standing'."""
    gateway.apply(msg(speed_kmh=50, doors_open=True))
    deadline = time.monotonic() + 30  # generous: when it goes stale is checked above, not here
    while gateway.feed.feed_status() == "ok" and time.monotonic() < deadline:
        gateway.send(msg(speed_kmh=50, doors_open=1))
        time.sleep(0.05)  # pacing the sender, not waiting for a result
    assert gateway.feed.feed_status() == "stale" and gateway.feed.counts().rejected > 0
    assert not gateway.feed.state_at(time.time()).doors_open


def test_the_daemon_reports_rejected_messages_on_health_and_in_its_stats(bus_config, tmp_path: Path) -> None:
    """A live daemon fed by a gateway: bad messages show on `health` (camera "vehicle") and in the --stats file."""
    vehicle_endpoint = f"tcp://127.0.0.1:{free_port()}"

    def live_feed(data: dict) -> None:
        data["vehicle"] = {"source": "zmq", "endpoint": vehicle_endpoint}
        data["recorder"]["enabled"] = False

    config = bus_config(live_feed)
    alerts_endpoint = tomllib.loads(config.read_text())["alerts"]["endpoint"]
    stats_path = tmp_path / "stats.json"
    ctx = zmq.Context()
    pub, sub = ctx.socket(zmq.XPUB), ctx.socket(zmq.SUB)
    pub.bind(vehicle_endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"health")
    sub.connect(alerts_endpoint)
    health: list[dict] = []

    def heard(condition: Callable[[dict], bool]) -> bool:
        while sub.poll(10):
            health.append(json.loads(sub.recv_multipart()[1]))
        return any(condition(h) for h in health)

    out_path, err_path = tmp_path / "daemon.out", tmp_path / "daemon.err"
    with open(out_path, "w") as out_fh, open(err_path, "w") as err_fh:  # files: nobody drains a pipe meanwhile
        daemon = subprocess.Popen(
            # No --duration: the test stops it once it has heard what it needs, however long that took.
            [sys.executable, "-m", "edge", "run", "--config", str(config), "--stats", str(stats_path)],
            stdout=out_fh,
            stderr=err_fh,
        )
    try:
        wait_until(lambda: bool(pub.poll(10)) and pub.recv() == b"\x01", "the daemon to subscribe", timeout=60)
        wait_until(lambda: heard(lambda h: True), "the daemon's first health message", timeout=60)
        for frames in (msg(speed_kmh=1e308), msg(speed_kmh="\uff15"), [b"v", b"[" * 100_000]):
            pub.send_multipart(frames)

        def rejection_reported() -> bool:
            pub.send_multipart(msg(speed_kmh=12.0))  # keep the feed alive meanwhile
            return heard(lambda h: h["camera"] == "vehicle" and "(3 since start)" in h["detail"])

        # The three may be reported together or, 2 s apart, in two parts: wait for the report that counts all three.
        wait_until(rejection_reported, "a health message counting the 3 rejected messages", timeout=60)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=60)
        sub.close(0)
        pub.close(0)
        ctx.term()
    out, err = out_path.read_text(), err_path.read_text()
    assert daemon.returncode == 0, err
    assert "Traceback" not in err
    assert any(line.startswith("health  vehicle:") and "rejected" in line for line in out.splitlines())
    report = next(h for h in health if h["camera"] == "vehicle" and "(3 since start)" in h["detail"])
    assert report["status"] in ("ok", "waiting", "stale") and "last: " in report["detail"]
    assert len(report["detail"]) <= 2 * LINE_CHARS
    stats = json.loads(stats_path.read_text())
    assert stats["vehicle"]["rejected"] == 3 and stats["vehicle"]["applied"] >= 1
