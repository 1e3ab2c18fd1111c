"""The driver's display in a real browser: Debian's Chromium (headless, driven by Selenium) on the page `vigie display`
serves, fed by a real ZeroMQ publisher speaking vigie.alert/1 in its own process (tests/services/alert_publisher.py),
and once by the real daemon on the demo footage. Every wait is on a condition in the DOM.

Screenshots of each state are saved under var/test-artefacts/display/ (VIGIE_ARTEFACTS to change it).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.config import REPO_ROOT

from .conftest import demo_data, free_port, to_toml, wait_until
from .services.display_rig import DisplayServer, Publisher, chromium, have_browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not have_browser() and not os.environ.get("CI"), reason="chromium-driver not installed"),
]
ARTEFACTS = Path(os.environ.get("VIGIE_ARTEFACTS", REPO_ROOT / "var" / "test-artefacts")) / "display"
SIDES = ("front", "right", "rear", "left")
ZONE = {"front": "front/moving-off", "right": "right/blind-spot", "rear": "rear/behind", "left": "left/blind-spot"}


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


@dataclass
class Rig:
    """A publisher, the display it feeds, and the browser showing it."""

    config: Path
    endpoint: str
    publisher: Publisher
    display: DisplayServer
    driver: object
    tmp: Path

    def js(self, script: str) -> object:
        return self.driver.execute_script(script)  # type: ignore[attr-defined]

    def side(self, side: str, attribute: str = "level") -> str:
        return str(self.js(f"return document.getElementById('side-{side}').dataset.{attribute}"))

    def text(self, selector: str) -> str:
        return str(self.js(f"return document.querySelector({json.dumps(selector)}).innerText"))

    def connection(self) -> str:
        return str(self.js("return document.documentElement.dataset.connection"))

    def wait(self, what: str, condition) -> None:
        wait_until(condition, what)

    def open(self, query: str = "") -> None:
        self.driver.get(self.display.url + query)  # type: ignore[attr-defined]
        self.wait("the page live", lambda: self.connection() == "live")

    def shot(self, name: str) -> None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTEFACTS / f"{name}.png"))  # type: ignore[attr-defined]

    def restart_publisher(self) -> None:
        self.publisher = Publisher(self.config, self.endpoint, self.tmp / "publisher.log")


def bus_toml(tmp: Path, edit=None) -> tuple[Path, str]:
    data = demo_data()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    data["alerts"]["endpoint"] = endpoint
    if edit:
        edit(data)
    path = tmp / "bus.toml"
    path.write_text(to_toml(data))
    return path, endpoint


@pytest.fixture
def rig(browser, tmp_path: Path) -> Iterator[Rig]:
    config, endpoint = bus_toml(tmp_path)
    publisher = Publisher(config, endpoint, tmp_path / "publisher.log")
    display = DisplayServer(config, free_port(), tmp_path / "display.log")
    r = Rig(config, endpoint, publisher, display, browser, tmp_path)
    try:
        yield r
    finally:
        r.display.stop()
        r.publisher.stop(signal.SIGKILL)


def test_each_level_change_reaches_the_dom(rig: Rig) -> None:
    rig.open()
    rig.wait("every side stated clear", lambda: all(rig.side(s) == "clear" for s in SIDES))
    rig.shot("all-clear")
    steps = [
        ("right", "info", [1], 3.2, "1 person · 3.2 m"),
        ("right", "warning", [1, 2], 1.2, "2 people · 1.2 m"),
        ("left", "info", [5], None, "1 person"),
        ("front", "warning", [9], 0.8, "1 person · 0.8 m"),
        ("rear", "unknown", [], None, ""),  # what the daemon sends for a camera that cannot see
        ("right", "clear", [], None, ""),
        ("front", "info", [9], 2.0, "1 person · 2.0 m"),
    ]
    for side, level, tracks, nearest, detail in steps:
        rig.publisher.send(zone=ZONE[side], level=level, tracks=tracks, nearest_m=nearest)
        rig.wait(f"{side} {level}", lambda side=side, level=level: rig.side(side) == level)
        assert rig.text(f"#side-{side} .detail") == detail
    assert [rig.side(s) for s in SIDES] == ["info", "clear", "unknown", "info"]
    assert rig.text("#side-left .word") == "PERSON" and rig.text("#side-rear .word") == "NO DATA"
    rig.shot("levels")


def test_a_stalled_camera_shows_its_banner(rig: Rig) -> None:
    """Waited for, not timed: how fast the page shows a message is measured by benchmarks/bench_display.py."""
    rig.open()
    rig.publisher.send(health="left", status="stalled", detail="no frame for 1.6 s")
    rig.wait("left stalled", lambda: rig.side("left", "health") == "stalled")
    assert rig.side("left") == "unknown"
    assert rig.text("#side-left .side-banner") == "camera frozen: no new picture"
    assert rig.js("return getComputedStyle(document.querySelector('#side-left .side-banner')).display") != "none"
    rig.shot("camera-stalled")
    rig.publisher.send(health="left", status="ok", detail="frames arriving")
    rig.wait("left back", lambda: rig.side("left", "health") == "ok" and rig.side("left") == "clear")


def test_a_camera_that_cannot_see_is_unknown_with_the_reason(rig: Rig) -> None:
    rig.open()
    rig.publisher.send(health="front", status="degraded", detail="dark")
    rig.publisher.send(zone=ZONE["front"], level="unknown")
    rig.wait("front degraded", lambda: rig.side("front", "health") == "degraded")
    assert rig.side("front") == "unknown"
    assert rig.text("#side-front .side-banner") == "camera cannot see: dark"
    rig.publisher.send(health="rear", status="offline", detail="no connection for 2.0 s, reconnecting")
    rig.wait("rear offline", lambda: rig.side("rear", "health") == "offline")
    assert rig.text("#side-rear .side-banner") == "camera offline"
    rig.shot("camera-degraded-offline")


def test_killing_the_publisher_loses_the_page_and_it_comes_back(rig: Rig) -> None:
    """Waited for, not timed: when silence counts as lost is the page's logic, checked on a given clock in
    tests/test_display_state.py."""
    rig.open()
    rig.publisher.send(zone=ZONE["right"], level="warning", tracks=[1], nearest_m=1.0)
    rig.wait("right warning", lambda: rig.side("right") == "warning")
    rig.publisher.stop(signal.SIGKILL)
    rig.wait("the page lost", lambda: rig.connection() == "lost")
    assert [rig.side(s) for s in SIDES] == ["unknown"] * 4, "a lost page must not show the last levels"
    assert "NO CONNECTION TO VIGIE" in rig.text("#lost")
    rig.shot("publisher-killed")
    rig.restart_publisher()  # a new daemon run: it states everything again
    rig.wait("live again", lambda: rig.connection() == "live")
    rig.wait("every side stated again", lambda: all(rig.side(s) == "clear" for s in SIDES))
    assert rig.js("return getComputedStyle(document.getElementById('lost')).display") == "none"


def test_a_hung_publisher_is_called_out_after_3_s_of_silence(rig: Rig) -> None:
    rig.open()
    os.kill(rig.publisher.proc.pid, signal.SIGSTOP)  # alive, connected, silent: a hung daemon
    try:
        rig.wait("the page lost", lambda: rig.connection() == "lost")
        assert rig.js("return document.querySelector('[data-banner=silence]') !== null")
        assert "No word from vigie" in rig.text("[data-banner=silence]")
        assert [rig.side(s) for s in SIDES] == ["unknown"] * 4
        rig.shot("publisher-silent")
    finally:
        os.kill(rig.publisher.proc.pid, signal.SIGCONT)
    rig.wait("live again", lambda: rig.connection() == "live")


def test_the_display_server_going_away_is_lost_on_the_page_and_found_again(rig: Rig) -> None:
    rig.open()
    port = int(rig.display.url.rsplit(":", 1)[1].strip("/"))
    rig.display.stop(signal.SIGKILL)
    rig.wait("the page lost", lambda: rig.connection() == "lost")
    assert "lost its connection" in rig.text("#lost-why")
    assert [rig.side(s) for s in SIDES] == ["unknown"] * 4, "a lost page must not show the last levels"
    rig.display = DisplayServer(rig.config, port, rig.tmp / "display.log")
    rig.wait("the page reconnected by itself", lambda: rig.connection() == "live")


def luminance(css_colour: str) -> float:
    """Relative luminance (WCAG) of `rgb(r, g, b)` / `rgba(r, g, b, a)`; transparent counts as 0."""
    parts = css_colour[css_colour.index("(") + 1 : -1].split(",")
    if len(parts) == 4 and float(parts[3]) == 0:
        return 0.0

    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(float(p)) for p in parts[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


BACKGROUNDS = """
const colours = [];
for (const el of [document.documentElement, document.body, ...document.querySelectorAll('body *')]) {
  const style = getComputedStyle(el);
  colours.push(style.backgroundColor);
  colours.push(...(style.backgroundImage.match(/rgba?\\([^)]*\\)/g) || []));
}
return colours;
"""


def test_night_theme_has_no_bright_background(rig: Rig) -> None:
    rig.open("?theme=night")
    for side, level in (("right", "warning"), ("left", "info"), ("rear", "unknown")):
        rig.publisher.send(zone=ZONE[side], level=level, tracks=[1] if level != "unknown" else [])
    rig.publisher.send(health="vehicle", status="stale", detail="no vehicle state for more than 2 s")
    rig.wait("every level on screen", lambda: rig.side("rear") == "unknown" and rig.side("left") == "info")
    rig.wait("a banner", lambda: rig.js("return document.querySelector('[data-banner=vehicle]') !== null"))
    assert rig.js("return document.documentElement.dataset.theme") == "night"
    night = [luminance(c) for c in rig.js(BACKGROUNDS)]  # type: ignore[union-attr]
    rig.shot("night")
    assert max(night) < 0.25, "a bright background at night"
    rig.open("?theme=day")  # the same check sees a day page's light background: it can fail
    assert max(luminance(c) for c in rig.js(BACKGROUNDS)) > 0.5  # type: ignore[union-attr]
    rig.shot("day")


def test_the_theme_follows_the_bus_local_time_without_a_query(browser, tmp_path: Path) -> None:
    now = datetime.now(UTC)

    def night_now(data: dict) -> None:
        hhmm = lambda t: t.strftime("%H:%M")  # noqa: E731
        data["display"] = {
            "timezone": "UTC",
            "night_from": hhmm(now - timedelta(hours=1)),
            "day_from": hhmm(now + timedelta(hours=1)),
        }

    config, endpoint = bus_toml(tmp_path, night_now)
    publisher = Publisher(config, endpoint, tmp_path / "publisher.log")
    display = DisplayServer(config, free_port(), tmp_path / "display.log")
    try:
        browser.get(display.url)
        wait_until(
            lambda: browser.execute_script("return document.documentElement.dataset.connection") == "live", "live"
        )
        assert browser.execute_script("return document.documentElement.dataset.theme") == "night"
    finally:
        display.stop()
        publisher.stop(signal.SIGKILL)


def test_bad_messages_are_ignored_counted_and_never_break_the_page(rig: Rig) -> None:
    rig.open()
    rig.publisher.send(raw=["alert", "not json"])
    rig.publisher.send(raw=["alert", json.dumps({"schema": "vigie.alert/9", "bus_id": "demo-01"})])
    rig.publisher.send(raw=["health", "{" * 10_000])
    rig.publisher.send(raw=["alert", json.dumps({"schema": "vigie.alert/1", "bus_id": "demo-01", "sent_ts": 1})])
    rig.wait("four ignored", lambda: rig.js("return document.getElementById('diag').dataset.ignored") == "4")
    assert "ignored 4 (malformed 2, schema 1, invalid 1)" in rig.text("#diag")
    rig.publisher.send(zone=ZONE["left"], level="warning", tracks=[2], nearest_m=1.5)
    rig.wait("left warning after the garbage", lambda: rig.side("left") == "warning")
    assert rig.connection() == "live"
    rig.shot("ignored-messages")


def test_warnings_chime_at_most_once_per_second_per_side(rig: Rig) -> None:
    rig.open()
    assert rig.js("return document.documentElement.dataset.sound") == "on"
    rig.publisher.send(zone=ZONE["left"], level="info", tracks=[1])
    rig.wait("left info", lambda: rig.side("left") == "info")
    rises = 0

    def right_chimes() -> list[float]:
        chimes = rig.js("return window.vigie.chimes")
        return [c["t"] for c in chimes if c["side"] == "right"]  # type: ignore[union-attr]

    def rise_until_two_chimes() -> bool:
        """Rises of the right side as fast as the page follows them: on a machine of any speed, the chimes are
        counted by the page's own clock (at most one a second), never by ours."""
        nonlocal rises
        for level in ("warning", "clear"):
            rig.publisher.send(zone=ZONE["right"], level=level, tracks=[1])
            rig.wait(f"right {level}", lambda level=level: rig.side("right") == level)
        rises += 1
        return len(right_chimes()) >= 2

    wait_until(rise_until_two_chimes, "two chimes on the right", timeout=60)
    chimes = rig.js("return window.vigie.chimes")
    assert not [c for c in chimes if c["side"] == "left"], "info must be silent"  # type: ignore[union-attr]
    right = right_chimes()
    assert len(right) <= rises
    assert min(b - a for a, b in itertools.pairwise(right)) >= 1000


def test_a_hundred_pages_cost_the_daemon_one_subscriber(rig: Rig) -> None:
    rig.open()
    host, port = rig.display.url.split("//")[1].strip("/").split(":")
    streams = []
    try:
        for _ in range(100):
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request("GET", "/events")
            response = conn.getresponse()
            assert response.status == 200 and response.readline() == b"retry: 1000\n"
            streams.append(conn)
        rig.publisher.send(zone=ZONE["rear"], level="info", tracks=[4])
        rig.wait("rear info on the page", lambda: rig.side("rear") == "info")
        assert rig.publisher.accepted() == 1
    finally:
        for conn in streams:
            conn.close()


def test_the_page_is_read_only_and_needs_nothing_from_elsewhere(rig: Rig) -> None:
    rig.open()
    host, port = rig.display.url.split("//")[1].strip("/").split(":")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", "/events", "/state", "/static/display.js"):
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request(method, path, body=b"{}")
            assert conn.getresponse().status == 405, (method, path)
            conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/", headers={"Host": "display.example.com"})  # a rebound name from another site
    assert conn.getresponse().status == 421
    conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200 and "default-src 'self'" in response.getheader("Content-Security-Policy", "")
    conn.close()
    origin = rig.display.url.rstrip("/")
    loaded = rig.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(str(name).startswith(origin) for name in loaded)  # type: ignore[union-attr]
    assert rig.js("return document.querySelectorAll('form, input, select, textarea, a[href]').length") == 0


def test_a_listen_address_beyond_loopback_needs_the_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge", "display", "--listen", f"0.0.0.0:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "vigie: --listen 0.0.0.0: not loopback; add --allow-remote to serve the display to other computers"
    ]


TURNING_RIGHT = "t,speed_kmh,indicator,doors_open,reverse\n0,15,right,false,false\n"


def start_daemon(config: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], stdout=out, stderr=out)


def test_the_real_daemon_drives_the_page(browser, tmp_path: Path) -> None:
    """The demo footage, the bus turning right at 15 km/h: right warns, left informs, front (above 10 km/h) and rear
    (driving forward) are clear because the daemon says so. Killing the daemon loses the page; a new daemon brings it
    back."""
    (tmp_path / "vehicle.csv").write_text(TURNING_RIGHT)

    def real_bus(data: dict) -> None:
        data["events"] = {"dir": str(tmp_path / "var" / "events"), "flush_s": 5}
        data["recorder"] = {"enabled": False, "state_dir": str(tmp_path / "var" / "state")}
        data["vehicle"] = {"source": "log", "log": str(tmp_path / "vehicle.csv")}
        for cam in data["cameras"]:
            cam["source"] = str(REPO_ROOT / cam["source"])

    config, _ = bus_toml(tmp_path, real_bus)
    display = DisplayServer(config, free_port(), tmp_path / "display.log")
    daemon = start_daemon(config, tmp_path / "daemon.log")
    level = lambda side: browser.execute_script(f"return document.getElementById('side-{side}').dataset.level")  # noqa: E731
    connection = lambda: browser.execute_script("return document.documentElement.dataset.connection")  # noqa: E731
    try:
        browser.get(display.url)
        wait_until(lambda: connection() == "live", "the page live on the daemon's messages", timeout=90)
        wait_until(lambda: level("front") == "clear" and level("rear") == "clear", "front and rear stated clear")
        wait_until(lambda: level("right") == "warning", "a warning on the right", timeout=60)
        browser.save_screenshot(str(ARTEFACTS / "real-daemon.png"))
        wait_until(lambda: level("left") == "info", "someone on the left", timeout=60)
        daemon.kill()
        daemon.wait()
        wait_until(lambda: connection() == "lost", "the page lost")
        assert {level(s) for s in SIDES} == {"unknown"}
        daemon = start_daemon(config, tmp_path / "daemon.log")
        wait_until(lambda: connection() == "live", "the page live on the new daemon", timeout=90)
        wait_until(lambda: level("right") == "warning", "the new daemon's warning on the right", timeout=60)
    finally:
        daemon.kill()
        daemon.wait()
        display.stop()
