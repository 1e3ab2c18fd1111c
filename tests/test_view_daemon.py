"""The real daemon with cameras whose view fails: `degraded` with its reason on the real ZeroMQ `health` topic, the
camera's zones `unknown` on `alert`, and both back to normal once the view is.

Four cameras, one run: a live HTTP camera that the test turns dark at a moment it knows; two file cameras playing
footage made in the test, half covered and smeared for five seconds in every eight; and the demo footage, which must
stay `ok` through its loop point. Each step waits for what the daemon says, without timing it: how soon a bad view
is flagged is measured by benchmarks/bench_view.py (footage time) and bench_camera_faults.py (on the wire).
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

from .conftest import wait_until
from .services.mjpeg_http import MjpegCamera
from .test_daemon import Listener, endpoint_of
from .view_footage import FOOTAGE, darkened, half_covered, read_clip, smeared, write_clip

CLEAR_S = 2.0  # short, so recovery is seen in seconds; the default is 10 s


def jpegs(frames: list) -> list[bytes]:
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes() for f in frames]


@pytest.fixture
def live_camera() -> Iterator[MjpegCamera]:
    camera = MjpegCamera(FOOTAGE / "cam_front.mp4", fps=10)
    yield camera
    camera.stop()


def footage_with_a_bad_spell(path: Path, name: str, spoil: Callable) -> Path:
    """Three good seconds of a bundled camera, then five spoiled ones: a file camera loops it every 8 s."""
    clip = read_clip(name, limit=80)
    return write_clip(path, clip[:30] + [spoil(f) for f in clip[30:80]])


def first(listener: Listener, topic: str, match: Callable[[dict], bool], what: str, timeout: float = 30.0) -> dict:
    found: list[dict] = []

    def seen() -> bool:
        found[:] = [m for m in listener.of(topic) if match(m)]
        return bool(found)

    wait_until(seen, what, timeout)
    return found[0]


def spells_over(listener: Listener, camera: str) -> int:
    """How many times `camera` went from `degraded` back to `ok` (the heartbeat repeats each status: count changes)."""
    statuses = [m["status"] for m in listener.of("health") if m["camera"] == camera]
    return sum(1 for before, now in itertools.pairwise(statuses) if (before, now) == ("degraded", "ok"))


def assert_never_clear_while_degraded(listener: Listener, camera: str) -> None:
    """From each `degraded` to the next `ok` of `camera`, none of its zones said `clear`. (The zone's change back to
    `clear` goes out just before the `ok`, in the same turn of the daemon's loop: hence the half second.)"""
    spells, start = [], None
    for m in listener.of("health"):
        if m["camera"] == camera and m["status"] == "degraded" and start is None:
            start = m["sent_ts"]
        elif m["camera"] == camera and m["status"] == "ok" and start is not None:
            spells.append((start, m["sent_ts"] - 0.5))
            start = None
    assert spells, f"{camera} never degraded and back"
    clears = [m["sent_ts"] for m in listener.of("alert") if m["camera"] == camera and m["level"] == "clear"]
    assert not [t for t in clears for a, b in spells if a <= t <= b], camera


def test_degraded_views_reach_the_bus_and_recover(bus_config, live_camera: MjpegCamera, tmp_path: Path) -> None:
    covered = footage_with_a_bad_spell(tmp_path / "covered.mp4", "right", half_covered)
    blurred = footage_with_a_bad_spell(tmp_path / "blurred.mp4", "rear", smeared)
    dark_view = jpegs([darkened(f, seed=i) for i, f in enumerate(read_clip("front", limit=30))])
    good_view = list(live_camera.frames)

    def edit(data: dict) -> None:
        data["vehicle"] = {"source": "none"}  # a bus standing: every zone informs
        data["recorder"]["enabled"] = False
        data["view"] = {"clear_s": CLEAR_S}
        sources = {"front": live_camera.url, "right": str(covered), "rear": str(blurred)}
        for cam in data["cameras"]:
            cam["source"] = sources.get(cam["name"], cam["source"])  # left: the demo footage

    config = bus_config(edit)
    stats_path = tmp_path / "stats.json"
    listener = Listener(endpoint_of(config))
    out_path = tmp_path / "daemon.out"
    with open(out_path, "w") as out_fh:  # a file, not a pipe: nobody drains a pipe while the test runs
        run = ["run", "--config", str(config), "--stats", str(stats_path)]  # stopped below, once it has seen enough
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edge", *run],
            stdout=out_fh,
            stderr=subprocess.STDOUT,
        )

    def health(camera: str, status: str, after: float) -> Callable[[dict], bool]:
        return lambda m: m["camera"] == camera and m["status"] == status and m["sent_ts"] >= after

    def alert(camera: str, levels: set[str], after: float) -> Callable[[dict], bool]:
        return lambda m: m["camera"] == camera and m["level"] in levels and m["sent_ts"] >= after

    try:
        first(listener, "health", health("front", "ok", 0.0), "the live camera ok", timeout=60)

        dark_at = time.time()
        live_camera.play(dark_view)
        degraded = first(listener, "health", health("front", "degraded", dark_at), "front degraded")
        assert degraded["detail"].startswith("dark: "), degraded
        first(listener, "alert", alert("front", {"unknown"}, dark_at), "front's zone unknown")

        back_at = time.time()
        live_camera.play(good_view)
        ok = first(listener, "health", health("front", "ok", back_at), "front ok again")
        first(listener, "alert", alert("front", {"clear", "info", "warning"}, back_at), "front's zone back")

        for camera in ("right", "rear"):  # both loop: bad from 3 s to 8 s of every 8
            bad = first(listener, "health", health(camera, "degraded", 0.0), f"{camera} degraded")
            assert bad["detail"].startswith("blocked: "), bad
            first(listener, "health", health(camera, "ok", bad["sent_ts"]), f"{camera} ok again")
        # The smeared lens hides everyone: its zone says so. (Half covered, the right camera still sees people in
        # its zone through the other half: they are `info`, as they must be.)
        first(listener, "alert", alert("rear", {"unknown"}, 0.0), "rear's zone unknown")
        # The demo camera must pass its loop point. File cameras play side by side at the same pace, so the right
        # camera's footage clock is the left one's: back from its third bad spell (8 s of footage each), right has
        # played 24 s, and left more than its 19.5 s.
        wait_until(lambda: spells_over(listener, "right") >= 3, "the right camera back from three bad spells", 120)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=60)
        listener.close()
    assert daemon.returncode == 0, out_path.read_text()

    for camera in ("front", "right", "rear"):
        assert_never_clear_while_degraded(listener, camera)
    # Once front was ok again, no `unknown` for it: repeats stop with the degraded state.
    late = [m for m in listener.of("alert") if m["camera"] == "front" and m["sent_ts"] > ok["sent_ts"] + 0.5]
    assert all(m["level"] != "unknown" for m in late)
    # The demo footage played past its end and started again, and was never judged degraded.
    stats = json.loads(stats_path.read_text())
    assert stats["cameras"]["left"]["frames"] > 195
    left = {m["status"] for m in listener.of("health") if m["camera"] == "left"}
    assert left == {"ok"}, left
    assert not any(m["camera"] == "left" and m["level"] == "unknown" for m in listener.of("alert"))
