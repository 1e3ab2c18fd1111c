"""Demand-driven detection (edge/demand.py): cameras that cannot alert are detected at the idle rate, and go live
again on the first frame after the bus's state changes. Unit tests on the demo config; a rerun on the real footage
with the real model shows what it saves and that alerts do not change."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
from click.testing import CliRunner

from core.types import Frame, Indicator, VehicleState
from edge.cli import main
from edge.config import Config
from edge.demand import DetectionDemand

from .conftest import demo_data, to_toml

IMAGE = np.zeros((4, 4, 3), np.uint8)


def config(**detector) -> Config:
    data = demo_data()
    data["recorder"]["enabled"] = False
    data["detector"] = {**data.get("detector", {}), **detector}
    return Config.model_validate(data)


def frame(camera: str, t: float) -> Frame:
    return Frame(camera=camera, seq=int(t * 100), t_capture=t, image=IMAGE)


def detected_times(demand: DetectionDemand, camera: str, vehicle: VehicleState, fps: float, seconds: float) -> list:
    times = [round(i / fps, 3) for i in range(int(seconds * fps))]
    return [t for t in times if demand.wants(frame(camera, t), vehicle)]


CRUISING = VehicleState(speed_kmh=40.0)
STOPPED = VehicleState(speed_kmh=0.0, stopped_s_ago=0.0)


def test_cameras_that_cannot_alert_are_detected_at_the_idle_rate() -> None:
    demand = DetectionDemand(config(idle_fps=2.0))
    for camera in ("front", "rear", "left", "right"):
        assert not demand.live(camera, CRUISING)
        assert detected_times(demand, camera, CRUISING, fps=8, seconds=3) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]


def test_every_frame_is_detected_where_a_zone_could_alert() -> None:
    demand = DetectionDemand(config(idle_fps=2.0))
    for camera in ("front", "rear", "left", "right"):
        assert demand.live(camera, STOPPED)
        assert len(detected_times(demand, camera, STOPPED, fps=10, seconds=2)) == 20


def test_the_policy_decides_which_side_is_live() -> None:
    """20 km/h forward: the sides still inform (below side_max_kmh), the front (above front_max_kmh) and the rear
    (moving forward) cannot; reversing makes the rear live again."""
    demand = DetectionDemand(config(idle_fps=2.0))
    at_20 = VehicleState(speed_kmh=20.0, indicator=Indicator.RIGHT)
    assert {c: demand.live(c, at_20) for c in ("front", "rear", "left", "right")} == {
        "front": False,
        "rear": False,
        "left": True,
        "right": True,
    }
    assert demand.live("rear", VehicleState(speed_kmh=5.0, reverse=True))
    assert not demand.live("left", VehicleState(speed_kmh=0.0, doors_open=True))


def test_a_zone_goes_live_on_the_first_frame_after_the_state_changes() -> None:
    demand = DetectionDemand(config(idle_fps=2.0))
    assert demand.wants(frame("front", 0.0), CRUISING)
    assert not demand.wants(frame("front", 0.1), CRUISING)
    assert demand.wants(frame("front", 0.2), STOPPED)
    assert demand.wants(frame("front", 0.3), STOPPED)


def test_idle_fps_0_detects_everything_and_the_recorder_raises_the_idle_rate() -> None:
    assert len(detected_times(DetectionDemand(config(idle_fps=0)), "rear", CRUISING, fps=8, seconds=2)) == 16
    data = demo_data()
    data["detector"] = {**data.get("detector", {}), "idle_fps": 2.0}
    data["recorder"].update(enabled=True, clip_fps=5.0)
    recording = DetectionDemand(Config.model_validate(data))
    assert len(detected_times(recording, "rear", CRUISING, fps=8, seconds=2)) == 8  # 5 fps: every other frame


def rerun(tmp_path: Path, name: str, speed_kmh: float) -> tuple[dict[str, int], list[dict]]:
    """The first 6 s of the demo's four cameras, with the real model, for a bus holding `speed_kmh`: the figures
    `rerun` prints and the events it wrote."""
    (tmp_path / f"{name}.csv").write_text(f"t,speed_kmh,indicator,doors_open,reverse\n0,{speed_kmh},off,false,false\n")
    data = demo_data()
    for cam in data["cameras"]:
        cam["source"] = str(Path(__file__).parents[1] / cam["source"])
    data["vehicle"]["log"] = str(tmp_path / f"{name}.csv")
    data["detector"] = {**data.get("detector", {}), "idle_fps": 2.0}
    data["recorder"]["enabled"] = False
    (tmp_path / f"{name}.toml").write_text(to_toml(data))
    out = tmp_path / name
    args = ["replay", "rerun", "--config", str(tmp_path / f"{name}.toml"), "--out", str(out), "--max-frames", "60"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    frames = int(re.search(r"rerun: (\d+) frames", result.output).group(1))
    seen = re.search(r"detected: (\d+) of", result.output)
    alerts = int(re.search(r"driver alerts: (\d+)", result.output).group(1))
    rows = ds.dataset(out, partitioning="hive").to_table().to_pylist() if list(out.rglob("*.parquet")) else []
    return {"frames": frames, "detected": int(seen.group(1)) if seen else frames, "alerts": alerts}, rows


def test_on_the_real_footage_a_cruising_bus_detects_fewer_frames_and_a_stopped_one_all(tmp_path: Path) -> None:
    """Cruising at 40 km/h no zone can alert: every camera is detected at 2 of its 10 fps and nothing reaches the
    driver. Stopped with the doors closed, every frame of the same footage is detected and alerts go out."""
    cruising, _ = rerun(tmp_path, "cruise", 40.0)
    assert cruising["frames"] == 240 and cruising["detected"] * 5 == cruising["frames"]
    assert cruising["alerts"] == 0
    stopped, rows = rerun(tmp_path, "stop", 0.0)
    assert stopped["detected"] == stopped["frames"] == 240
    assert stopped["alerts"] > 0 and rows
