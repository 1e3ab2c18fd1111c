"""A live RTSP camera that freezes: the real RTSP server goes on streaming, at its rate, one picture over and over
(a hung sensor or encoder). Frames keep arriving, so the capture watchdog sees a healthy camera; the view monitor
reports it `degraded` (`frozen`), and `ok` again once the picture moves for `clear_s`. The test waits for each report
without timing it: how soon they come is measured by benchmarks/bench_camera_faults.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import FOOTAGE
from .test_daemon import Listener, endpoint_of
from .test_rtsp import RtspCamera, wait_for_health
from .test_rtsp import pytestmark as rtsp_marks
from .test_view_daemon import assert_never_clear_while_degraded

pytestmark = rtsp_marks
CLEAR_S = 2.0


def test_a_frozen_rtsp_camera_is_reported_and_recovers(bus_config, tmp_path: Path) -> None:
    camera = RtspCamera(FOOTAGE / "cam_front.mp4", tmp_path / "rtsp.log")

    def one_rtsp_camera(data: dict) -> None:
        data["vehicle"] = {"source": "none"}
        data["recorder"]["enabled"] = False
        data["view"] = {"clear_s": CLEAR_S}
        data["cameras"] = [{**c, "source": camera.url} for c in data["cameras"] if c["name"] == "front"]

    config = bus_config(one_rtsp_camera)
    listener = Listener(endpoint_of(config))
    out_path = tmp_path / "daemon.out"
    with open(out_path, "w") as out_fh:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],  # stopped below, however long it took
            stdout=out_fh,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(listener, "front", {"ok"}, 0.0)
        frozen_at = time.time()
        camera.proc.send_signal(signal.SIGUSR1)
        degraded = wait_for_health(listener, "front", {"degraded"}, frozen_at)
        assert degraded["detail"].startswith("frozen: "), degraded

        moving_at = time.time()
        camera.proc.send_signal(signal.SIGUSR2)
        wait_for_health(listener, "front", {"ok"}, moving_at)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=30)
        listener.close()
        camera.close()
    assert daemon.returncode == 0, out_path.read_text()
    # Frames never stopped: the camera was never stalled or offline, only its picture was.
    assert {m["status"] for m in listener.of("health") if m["camera"] == "front"} == {"ok", "degraded"}
    assert_never_clear_while_degraded(listener, "front")
