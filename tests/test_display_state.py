"""What the driver's display shows, as rules (edge/display/state.py): pure logic, so messages are built here and time
is a number the test chooses. The browser tests (tests/test_display.py) check that the page shows what this decides."""

from __future__ import annotations

import json

import pytest

from edge.config import load_config
from edge.display.state import (
    CAMERA_FRESH_S,
    SILENCE_S,
    DisplaySettings,
    DisplayState,
    Refusal,
    Refused,
    parse,
)

SETTINGS = DisplaySettings.from_config(load_config(None))  # the demo bus: one camera and one zone per side
ZONES = {"front": "moving-off", "right": "blind-spot", "rear": "behind", "left": "blind-spot"}


def alert(
    camera: str, level: str, /, tracks: tuple[int, ...] = (), nearest: float | None = None, **extra
) -> list[bytes]:
    """An alert from one of the demo's cameras (each named after its side); `extra` overrides any field."""
    msg = {
        "schema": "vigie.alert/1",
        "bus_id": "demo-01",
        "camera": camera,
        "side": camera,
        "level": level,
        "zone": ZONES[camera],
        "track_ids": list(tracks),
        "nearest_m": nearest,
        "frame_ts": 1.0,
        "sent_ts": 2.0,
        **extra,
    }
    return [b"alert", json.dumps(msg).encode()]


def health(camera: str, status: str, detail: str = "heartbeat", /) -> list[bytes]:
    msg = {"schema": "vigie.alert/1", "bus_id": "demo-01", "camera": camera, "status": status, "detail": detail}
    return [b"health", json.dumps({**msg, "sent_ts": 2.0}).encode()]


def fed(*messages: list[bytes], at: float = 0.0) -> DisplayState:
    """A display that heard every camera say ok, every zone clear, then `messages`, all at time `at`."""
    state = DisplayState(SETTINGS)
    for frames in [*(health(c, "ok") for c in ZONES), *(alert(c, "clear") for c in ZONES), *messages]:
        state.receive(parse(frames, SETTINGS), at)
    return state


def side(state: DisplayState, name: str, now: float = 0.5, connected: bool = True):
    return next(s for s in state.snapshot(now, connected).sides if s.side == name)


def test_a_side_is_clear_only_when_vigie_said_so_and_its_camera_is_ok() -> None:
    assert side(fed(), "front").level == "clear"
    assert side(fed(), "front").health == "ok"
    state = DisplayState(SETTINGS)
    state.receive(parse(health("front", "ok"), SETTINGS), 0.0)
    assert side(state, "front").level == "unknown", "a camera that is ok but whose zone was never stated"


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([alert("right", "info", (1,), 2.5)], "info"),
        ([alert("right", "warning", (1,), 1.0)], "warning"),
        ([alert("right", "unknown")], "unknown"),  # a degraded camera's zones, on the wire
        ([alert("right", "warning", (1,)), alert("right", "clear")], "clear"),  # the newest word wins
        ([health("right", "stalled", "no frame for 1.6 s")], "unknown"),  # its last `clear` no longer holds
        ([health("right", "offline", "no connection")], "unknown"),
        ([health("right", "degraded", "dark")], "unknown"),
        ([health("right", "degraded", "dark"), alert("right", "clear")], "unknown"),
        ([health("right", "degraded", "glare"), alert("right", "warning", (2,))], "warning"),  # still seen: stands
    ],
)
def test_the_side_level_follows_the_last_word_and_the_camera(messages: list, expected: str) -> None:
    assert side(fed(*messages), "right").level == expected


def test_people_are_counted_once_per_camera_and_the_nearest_distance_is_the_smallest() -> None:
    s = side(fed(alert("left", "warning", (4, 7), 2.25)), "left")
    assert (s.level, s.people, s.nearest_m) == ("warning", 2, 2.25)
    assert side(fed(alert("rear", "info", (2,), None)), "rear").nearest_m is None  # uncalibrated: no distance


def test_a_word_too_old_is_no_longer_believed() -> None:
    state = fed(alert("front", "info", (1,)))
    assert side(state, "front", now=SETTINGS.zone_fresh_s - 0.1).level == "info"
    state.receive(parse(health("front", "ok"), SETTINGS), SETTINGS.zone_fresh_s)  # the daemon still talks
    assert side(state, "front", now=SETTINGS.zone_fresh_s + 0.1).level == "unknown"


def test_a_camera_not_heard_from_lately_is_unknown() -> None:
    state = fed()
    for c in ("right", "rear", "left"):  # the others keep going: the daemon is not silent
        state.receive(parse(health(c, "ok"), SETTINGS), CAMERA_FRESH_S)
        state.receive(parse(alert(c, "clear"), SETTINGS), CAMERA_FRESH_S)
    front = side(state, "front", now=CAMERA_FRESH_S + 0.1)
    assert (front.health, front.level) == ("unknown", "unknown")
    assert [b.text for b in front.banners] == ["no word from this camera"]


@pytest.mark.parametrize(
    ("status", "detail", "banner"),
    [
        ("stalled", "no frame for 1.6 s", "camera frozen: no new picture"),
        ("offline", "no connection for 2 s", "camera offline"),
        ("degraded", "dark", "camera cannot see: dark"),
        ("degraded", "glare", "camera cannot see: glare"),
    ],
)
def test_a_camera_that_cannot_see_gets_a_banner_on_its_side(status: str, detail: str, banner: str) -> None:
    s = side(fed(health("left", status, detail)), "left")
    assert s.health == status
    assert [(b.kind, b.text, b.side, b.camera) for b in s.banners] == [("camera", banner, "left", "left")]


def test_silence_for_3_s_loses_the_connection_and_every_side() -> None:
    state = fed(alert("right", "warning", (1,)))
    assert state.snapshot(SILENCE_S - 0.1, connected=True).connection == "live"
    picture = state.snapshot(SILENCE_S + 0.1, connected=True)
    assert picture.connection == "lost"
    assert {s.level for s in picture.sides} == {"unknown"}
    assert [b.kind for b in picture.banners] == ["silence"] and "for 3 s" in picture.banners[0].text


def test_a_dropped_link_is_lost_at_once_and_forgotten() -> None:
    state = fed(alert("right", "warning", (1,)))
    picture = state.snapshot(0.1, connected=False)
    assert picture.connection == "lost" and [b.kind for b in picture.banners] == ["connection"]
    state.forget()
    state.receive(parse(health("right", "ok"), SETTINGS), 1.0)  # a restarted daemon: its word, not the old one
    assert side(state, "right", now=1.1).level == "unknown"


@pytest.mark.parametrize(
    ("component", "status", "detail", "text"),
    [
        ("vehicle", "stale", "no vehicle state for more than 2 s", "vehicle state stale: zones inform"),
        ("vehicle", "waiting", "heartbeat", "no vehicle state yet: zones inform"),
        ("recorder", "failed", "OSError: disk; restarting in 4 s", "recorder failed: OSError: disk"),
        ("events", "disk_full", "/var/lib/vigie/events", "event store disk full: /var/lib/vigie/events"),
    ],
)
def test_the_other_parts_troubles_are_whole_screen_banners(component: str, status: str, detail: str, text: str) -> None:
    picture = fed(health(component, status, detail)).snapshot(0.5, connected=True)
    assert [b.kind for b in picture.banners] == [component]
    assert picture.banners[0].text.startswith(text)
    assert fed(health(component, "ok")).snapshot(0.5, connected=True).banners == ()


def test_one_failed_clip_is_news_for_a_while_not_a_state() -> None:
    from edge.display.state import CLIP_FAILED_SHOWN_S

    state = fed(health("recorder", "clip_failed", "c-12: disk I/O error"))
    assert [b.kind for b in state.snapshot(1.0, connected=True).banners] == ["recorder"]
    for c in ZONES:  # the daemon goes on talking
        state.receive(parse(health(c, "ok"), SETTINGS), CLIP_FAILED_SHOWN_S)
    assert state.snapshot(CLIP_FAILED_SHOWN_S + 0.1, connected=True).banners == ()


def test_a_lost_page_shows_no_level_even_one_still_fresh() -> None:
    """With repeat_s = 2 a word stays fresh for 5 s, longer than the 3 s of silence that loses the page."""
    slow = DisplaySettings(SETTINGS.bus_id, SETTINGS.cameras, zone_fresh_s=5.0, publishing=True)
    state = DisplayState(slow)
    state.receive(parse(health("right", "ok"), slow), 0.0)
    state.receive(parse(alert("right", "warning", (1,), 1.0), slow), 0.0)
    picture = state.snapshot(SILENCE_S + 0.5, connected=True)
    right = next(s for s in picture.sides if s.side == "right")
    assert (picture.connection, right.level, right.people) == ("lost", "unknown", 0)


def test_stealth_mode_says_why_nothing_is_shown() -> None:
    stealthy = DisplaySettings(SETTINGS.bus_id, SETTINGS.cameras, SETTINGS.zone_fresh_s, publishing=False)
    state = DisplayState(stealthy)
    state.receive(parse(health("front", "ok"), stealthy), 0.0)
    picture = state.snapshot(0.1, connected=True)
    assert [b.kind for b in picture.banners] == ["stealth"]
    assert {s.level for s in picture.sides} == {"unknown"}


def test_a_side_without_a_camera_is_unknown_and_says_so() -> None:
    cameras = tuple(c for c in SETTINGS.cameras if c.side != "rear")
    state = DisplayState(DisplaySettings("demo-01", cameras, 3.0, True))
    rear = next(s for s in state.snapshot(0.0, connected=True).sides if s.side == "rear")
    assert (rear.level, rear.health) == ("unknown", None)
    assert rear.banners == ()


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"alert"], Refusal.MALFORMED),
        ([b"alert", b"{}", b"extra"], Refusal.MALFORMED),
        ([b"alerts", alert("front", "info")[1]], Refusal.MALFORMED),  # a prefix of a topic we subscribe to
        ([b"alert", b"not json"], Refusal.MALFORMED),
        ([b"alert", b"[1, 2]"], Refusal.MALFORMED),
        ([b"alert", b"\xff\xfe"], Refusal.MALFORMED),
        ([b"alert", b'{"x": "' + b"a" * 5000 + b'"}'], Refusal.MALFORMED),
        (alert("front", "info", schema="vigie.alert/2"), Refusal.SCHEMA),
        (alert("front", "info", bus_id="bus-0412"), Refusal.OTHER_BUS),
        (alert("front", "purple"), Refusal.INVALID),
        (alert("front", "info", side="rear"), Refusal.INVALID),  # the config says front
        (alert("front", "info", zone="elsewhere"), Refusal.INVALID),
        (alert("front", "info", camera="roof"), Refusal.INVALID),
        (alert("front", "info", track_ids=[True]), Refusal.INVALID),
        (alert("front", "info", track_ids="1"), Refusal.INVALID),
        (alert("front", "info", nearest_m=-1), Refusal.INVALID),
        (alert("front", "info", nearest_m="2"), Refusal.INVALID),
        (alert("front", "info", sent_ts=None), Refusal.INVALID),
        ([b"alert", alert("front", "info")[1].replace(b'"nearest_m": null', b'"nearest_m": NaN')], Refusal.MALFORMED),
        (health("front", "sleepy"), Refusal.INVALID),
        (health("front", "unknown"), Refusal.INVALID),  # the page's own word, never the daemon's
        (health("toaster", "ok"), Refusal.INVALID),
        (health("recorder", "not a status"), Refusal.INVALID),
    ],
)
def test_bad_messages_are_refused_with_a_reason(frames: list[bytes], reason: Refusal) -> None:
    assert parse(frames, SETTINGS) == Refused(reason)


def test_refused_messages_are_counted_and_change_nothing() -> None:
    state = fed(alert("right", "warning", (1,)))
    for frames in ([b"alert", b"garbage"], alert("right", "clear", bus_id="other"), alert("right", "purple")):
        state.receive(parse(frames, SETTINGS), 0.2)
    picture = state.snapshot(0.5, connected=True)
    assert picture.ignored == {"malformed": 1, "schema": 0, "other_bus": 1, "invalid": 1}
    assert side(state, "right").level == "warning"


def test_a_status_detail_is_clipped_and_made_printable() -> None:
    s = side(fed(health("left", "degraded", "dark\n" + "x" * 500)), "left")
    (camera,) = s.cameras
    assert "\n" not in camera.detail and len(camera.detail) <= 80


def test_the_picture_is_json_with_the_documented_fields() -> None:
    picture = fed(alert("right", "warning", (1,), 1.5)).snapshot(0.5, connected=True, sent_ts=2.0)
    data = json.loads(json.dumps(picture.to_json(seq=7, theme="night")))
    assert set(data) == {"schema", "seq", "bus_id", "connection", "silent_s", "theme", "sides", "banners", "ignored",
                         "sent_ts", "pushed_ts"}  # fmt: skip
    assert data["schema"] == "vigie.display/1" and data["sent_ts"] == 2.0
    right = next(s for s in data["sides"] if s["side"] == "right")
    assert right == {
        "side": "right",
        "level": "warning",
        "health": "ok",
        "people": 1,
        "nearest_m": 1.5,
        "cameras": [{"name": "right", "status": "ok", "detail": "heartbeat"}],
        "banners": [],
    }


@pytest.mark.parametrize(
    ("utc", "theme"),
    [
        ("2026-06-01T17:59:00", "day"),  # 19:59 in Paris (CEST)
        ("2026-06-01T18:00:00", "night"),  # 20:00
        ("2026-06-01T04:59:00", "night"),  # 06:59
        ("2026-06-01T05:00:00", "day"),  # 07:00
        ("2026-12-01T18:59:00", "day"),  # 19:59 in Paris (CET): the bus's local time, not UTC
    ],
)
def test_the_theme_follows_the_bus_local_time(utc: str, theme: str) -> None:
    from datetime import UTC, datetime

    from edge.display.config import DisplayConfig

    config = DisplayConfig(timezone="Europe/Paris", night_from="20:00", day_from="07:00")
    assert config.theme_at(datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp()) == theme


def test_a_night_inside_one_day_is_understood_too() -> None:
    from edge.display.config import DisplayConfig

    config = DisplayConfig(timezone="UTC", night_from="01:00", day_from="05:00")
    assert [config.theme_at(h * 3600.0) for h in (0, 1, 4, 5)] == ["day", "night", "night", "day"]
