"""How soon the daemon reports a dead, hung or frozen camera on `health`, with four live RTSP cameras.

    .venv/bin/python benchmarks/bench_camera_faults.py [--rounds 3]

The real daemon reads four gst-rtsp-server cameras (tests/services/rtsp_server.py, 15 fps, read timeout 1 s). Each
round kills the rear camera's server (a dead camera: the connection drops) and SIGSTOPs the left one's (a hung
camera: the connection stays, nothing comes) and freezes the right one's picture (SIGUSR1: frames keep coming, all
the same picture, a hung encoder), and measures from each fault to the first `health` message saying so (`offline`
or `stalled`; `degraded` for the frozen picture, with the view monitor's defaults), then from the frozen camera's
picture moving again to its `ok`. All come back before the next round. At the end, each camera's frame rate over the
whole run and its reconnections. tests/test_rtsp.py and tests/test_view_rtsp.py check the same behaviour without
timing it. Needs the RTSP server's Debian packages (`make test` installs them).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.daemon import STALL_S  # noqa: E402
from tests.conftest import FOOTAGE, demo_data, free_port, to_toml  # noqa: E402
from tests.test_daemon import Listener, endpoint_of  # noqa: E402
from tests.test_rtsp import CAMERAS, DOWN, FPS, RtspCamera, health_after  # noqa: E402

TIMEOUT_S = 60.0


def wait_for(condition: Callable[[], dict | None], what: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.01)  # polling a list another thread fills; 10 ms is below what is measured here
    raise SystemExit(f"bench_camera_faults: no {what} within {TIMEOUT_S:.0f} s")


def config_for(folder: Path, cams: dict[str, RtspCamera]) -> Path:
    data = demo_data()
    data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    data["events"]["dir"] = str(folder / "events")
    data["recorder"] = {"enabled": False, "state_dir": str(folder / "state")}  # cameras and health only
    data["vehicle"] = {"source": "none"}
    for cam in data["cameras"]:
        cam["source"] = cams[cam["name"]].url
        cam["read_timeout_s"] = 1.0
    path = folder / "bus.toml"
    path.write_text(to_toml(data))
    return path


def report_delay(listener: Listener, camera: str, change: Callable[[], None], statuses: set[str]) -> float:
    """Seconds from `change()` to the first health message giving `camera` one of `statuses`."""
    at = time.time()
    change()
    report = wait_for(lambda: health_after(listener, camera, statuses, at), f"{statuses} for {camera}")
    return float(report["sent_ts"]) - at


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigie-bench-faults-") as tmp:
        folder = Path(tmp)
        cams = {name: RtspCamera(FOOTAGE / f"cam_{name}.mp4", folder / f"rtsp-{name}.log") for name in CAMERAS}
        config = config_for(folder, cams)
        listener = Listener(endpoint_of(config))
        stats_path = folder / "stats.json"
        started = time.time()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config), "--stats", str(stats_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        dead, hung, frozen, moving = [], [], [], []
        try:
            for name in CAMERAS:
                wait_for(lambda name=name: health_after(listener, name, {"ok"}, started), f"{name} ok")
            for _ in range(args.rounds):
                dead.append(report_delay(listener, "rear", cams["rear"].kill, DOWN))
                hung.append(report_delay(listener, "left", cams["left"].freeze, DOWN))
                right = cams["right"].proc
                frozen.append(
                    report_delay(listener, "right", lambda p=right: p.send_signal(signal.SIGUSR1), {"degraded"})
                )
                moving.append(report_delay(listener, "right", lambda p=right: p.send_signal(signal.SIGUSR2), {"ok"}))
                back = time.time()
                cams["rear"] = cams["rear"].restart()
                cams["left"].thaw()
                for name in ("rear", "left"):
                    wait_for(lambda n=name, t=back: health_after(listener, n, {"ok"}, t), f"{name} ok again")
        finally:
            daemon.send_signal(signal.SIGINT)
            daemon.wait(timeout=60)
            listener.close()
            for cam in cams.values():
                cam.close()
        stats = json.loads(stats_path.read_text())
    print(f"camera faults, {args.rounds} rounds, 4 RTSP cameras at {FPS} fps, stall threshold {STALL_S} s:")
    for what, delays in (
        ("dead camera (server killed) reported", dead),
        ("hung camera (SIGSTOP) reported", hung),
        ("frozen picture (SIGUSR1) reported degraded", frozen),
        ("moving picture again (SIGUSR2) reported ok", moving),
    ):
        shown = ", ".join(f"{d:.2f}" for d in delays)
        print(f"  {what} after {statistics.median(delays):.2f} s median (each: {shown} s)")
    for name, role in (("front", "untouched"), ("right", "picture frozen, frames on")):
        cam = stats["cameras"][name]
        print(f"  {name} ({role}): {cam['fps']:.1f} fps over the run, {cam['reconnects']} reconnections")


if __name__ == "__main__":
    main()
