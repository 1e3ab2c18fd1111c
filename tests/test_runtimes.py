"""`detector.runtime`: the daemon runs on OpenVINO as it does on onnxruntime, and a runtime that is not installed is
one line at start, exit 2, from `check-config` and `run` alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow.dataset as ds
import pytest

from edge.config import DetectorConfig
from edge.detector import PersonDetector

from .conftest import FOOTAGE, needs_openvino_wheel
from .test_daemon import TURNING_RIGHT, Listener, endpoint_of, rises, run_daemon

# `openvino` unimportable, as on a machine without the extra: Python's own way to refuse an import.
WITHOUT_OPENVINO = "import sys; sys.modules['openvino'] = None; from edge.cli import main; main()"


def vigie_without_openvino(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_OPENVINO, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_openvino_without_the_extra_is_one_line_and_exit_2(bus_config, command: str) -> None:
    config = bus_config(lambda d: d["detector"].update(runtime="openvino"))
    args = [command, str(config)] if command == "check-config" else [command, "--config", str(config)]
    proc = vigie_without_openvino(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"{config}: detector.runtime: openvino cannot be imported here (import of openvino halted; None in "
        "sys.modules); install the extra: pip install 'vigie[openvino]'"
    ]


def test_onnxruntime_configs_do_not_need_openvino(bus_config) -> None:
    config = bus_config()
    proc = vigie_without_openvino("check-config", str(config))
    assert proc.returncode == 0, proc.stderr


@needs_openvino_wheel
def test_a_batch_larger_than_openvino_compiled_for_runs_in_parts() -> None:
    """Compiled for batches of 1 to 4 (the four cameras); six frames run as four and two, same boxes as one by one."""
    detector = PersonDetector(DetectorConfig(runtime="openvino"))
    cap = cv2.VideoCapture(str(FOOTAGE / "cam_left.mp4"))
    frames = [cap.read()[1] for _ in range(6)]
    cap.release()
    together = detector.detect(frames)
    alone = [detector.detect([f])[0] for f in frames]
    assert len(together) == 6 and sum(len(d) for d in together) >= 12
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.5)


@needs_openvino_wheel
def test_the_daemon_runs_on_openvino(bus_config, tmp_path: Path) -> None:
    """The demo bus turning right, on OpenVINO: alerts on the bus, events written, every camera processed."""
    (tmp_path / "vehicle.csv").write_text(TURNING_RIGHT)

    def edit(data: dict) -> None:
        data["detector"]["runtime"] = "openvino"
        data["recorder"]["enabled"] = False
        data["events"]["flush_s"] = 2
        data["vehicle"] = {"source": "log", "log": str(tmp_path / "vehicle.csv")}

    config = bus_config(edit)
    listener = Listener(endpoint_of(config))
    try:
        # Start compiles the model once per batch size: seconds of CPU on a busy machine, before the duration counts.
        proc = run_daemon(config, "--duration", "10", "--stats", str(tmp_path / "stats.json"), timeout=300)
    finally:
        listener.close()
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert all(cam["processed"] > 0 for cam in stats["cameras"].values()), stats["cameras"]
    assert rises(listener.of("alert")) > 0
    rows = ds.dataset(tmp_path / "var" / "events", format="parquet", partitioning="hive").to_table().to_pylist()
    assert rows and {r["model_id"].split("@")[0] for r in rows} == {"person_ssdlite_int8"}
