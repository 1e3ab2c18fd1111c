"""Bad configs are refused with exit 2 and one line naming the key; the bundled configs are valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.config import REPO_ROOT

from .conftest import demo_data, to_toml


def mutate(path: str, value: object) -> dict:
    """A deep copy of the demo config with one key set (value None deletes it)."""
    data = demo_data()
    *parents, last = path.replace("]", "").replace("[", ".").split(".")
    node: object = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]  # type: ignore[index]
    if value is None:
        del node[int(last) if last.isdigit() else last]  # type: ignore[union-attr]
    else:
        node[int(last) if last.isdigit() else last] = value  # type: ignore[index]
    return data


BAD = [
    # (change, value, the key path the error must name)
    ("bus.id", None, "bus.id: required key is missing"),
    ("bus.colour", "red", "bus.colour: unknown key"),
    ("detector.score_threshold", 1.5, "detector.score_threshold"),
    ("alerts.endpoint", "tcp://0.0.0.0:5560", "alerts.endpoint"),
    ("alerts.endpoint", "http://x", "alerts.endpoint"),
    ("alerts.enter_frames", 0, "alerts.enter_frames"),
    ("vehicle.source", "can-bus", "vehicle.source"),
    ("cameras[2].zones[0].polygon", [[0.1, 0.1], [0.5, 0.5]], "cameras[2].zones[0].polygon: needs at least 3 points"),
    ("cameras[2].zones[0].polygon", [[0.1, 0.1], [0.5, 1.5], [0.2, 0.9]], "cameras[2].zones[0].polygon[1][1]"),
    ("cameras[1].side", "top", "cameras[1].side"),
    ("cameras[1].calibration.ground", [[0, 0], [1, 1], [2, 2]], "cameras[1].calibration.ground"),
    ("cameras[2].zones[0].ground_polygon", [[0, 0], [1, 1], [2, 0]], "cameras[2].zones[0].polygon: give exactly one"),
    ("cameras[1].name", "front", "cameras: camera names must be unique"),
    ("cameras[0].source", "footage/no-such-file.mp4", "cameras[0].source: file not found"),
    ("cameras[0].source", "ftp://camera/stream", "cameras[0].source: unsupported scheme"),
    ("vehicle.log", "configs/missing.csv", "vehicle.log: file not found"),
    ("detector.model", "models/nope.onnx", "detector.model: file not found"),
    ("detector.runtime", "tensorrt", "detector.runtime"),
    ("recorder.face_model", "int4", "recorder.face_model"),
    ("cameras[3].fps", -5, "cameras[3].fps"),
    ("display.listen", "0.0.0.0:8090", "display.listen: 0.0.0.0 is not loopback; set display.allow_remote"),
    ("display.listen", "127.0.0.1", "display.listen: must be HOST:PORT"),
    ("display.listen", "127.0.0.1:0", "display.listen: port must be a number from 1 to 65535"),
    ("display.allow_remote", "yes", "display.allow_remote"),
    ("display.timezone", "Mars/Olympus_Mons", 'display.timezone: "Mars/Olympus_Mons" is not a known time zone'),
    ("display.timezone", "../../etc/passwd", "display.timezone"),
    ("display.night_from", "25:00", "display.night_from: must be a time of day"),
    ("display.day_from", 7, "display.day_from"),
    ("display.day_from", "20:00", "display.night_from: must differ from day_from"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_bad_config_names_its_key(tmp_path: Path, key: str, value: object, message: str) -> None:
    path = tmp_path / "bus.toml"
    path.write_text(to_toml(mutate(key, value)))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_ground_zone_without_calibration_is_refused(tmp_path: Path) -> None:
    data = mutate("cameras[1].calibration", None)
    path = tmp_path / "bus.toml"
    path.write_text(to_toml(data))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "cameras[1].zones[0].ground_polygon: needs this camera's calibration" in result.stderr


@pytest.mark.parametrize("text", ["this is = = not toml", "[bus\nid='x'"])
def test_unparseable_toml_is_one_line_exit_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "not valid TOML" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_config_file() -> None:
    result = CliRunner().invoke(main, ["check-config", "/nonexistent/bus.toml"])
    assert result.exit_code == 2 and "file not found" in result.stderr


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_bundled_configs_are_valid(path: Path) -> None:
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output


def test_run_with_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    """The real entry point, as a user would call it."""
    path = tmp_path / "bus.toml"
    path.write_text(to_toml(mutate("bus.colour", "red")))
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{path}: bus.colour: unknown key"
