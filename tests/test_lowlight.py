"""The low-light path (edge/lowlight.py): dark frames only, chosen by luma, and more people found at night.

Night here is the demo footage darkened by tests/night.py's camera model; the truth is the float model's confident
boxes on the daylight frames (no hand-drawn boxes exist for this footage). The frames are not the ones the path was
tuned on (benchmarks/bench_night.py uses every 5th frame from 0; these start at 2), with other noise.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.config import DetectorConfig, LowLightConfig
from edge.detector import PersonDetector, preprocess
from edge.lowlight import DARK_TARGET, LowLight, gamma_table, mean_luma

from .conftest import FOOTAGE, demo_data, to_toml
from .night import NightLevel, darken
from .test_detector_int8 import kept

SHIPPED = LowLight.from_config(LowLightConfig())
SEED = 7


def frames(offset: int = 2, step: int = 5) -> list[np.ndarray]:
    out = []
    for cam in ("front", "right", "rear", "left"):
        cap = cv2.VideoCapture(str(FOOTAGE / f"cam_{cam}.mp4"))
        index = 0
        ok, frame = cap.read()
        while ok:
            if index % step == offset:
                out.append(frame)
            index += 1
            ok, frame = cap.read()
        cap.release()
    return out


@pytest.fixture(scope="module")
def footage() -> list[np.ndarray]:
    return frames()


def test_daylight_frames_take_the_usual_input(footage: list[np.ndarray]) -> None:
    """The demo footage (daylight, mean luma ~117) is never touched: the same model input as without the path."""
    assert not any(SHIPPED.is_dark(f) for f in footage)
    assert np.array_equal(preprocess(footage[:8], SHIPPED), preprocess(footage[:8]))


@pytest.mark.parametrize("lux", [2.5, 1.25, 0.6])
def test_night_frames_take_the_low_light_path(footage: list[np.ndarray], lux: float) -> None:
    dark = darken(footage[0], NightLevel(lux), np.random.default_rng(SEED))
    assert SHIPPED.is_dark(dark)
    assert not LowLight.from_config(LowLightConfig(mode="off")).is_dark(dark)
    # Brightened towards DARK_TARGET: the model sees a picture, not a near-black frame.
    assert mean_luma(preprocess([dark], SHIPPED)[0][..., ::-1]) > mean_luma(dark) + 10


def test_the_threshold_is_the_configured_luma(footage: list[np.ndarray]) -> None:
    luma = mean_luma(footage[0])
    assert LowLight(luma + 1).is_dark(footage[0]) and not LowLight(luma - 1).is_dark(footage[0])


@pytest.mark.parametrize("luma", [5.0, 20.0, 41.0, 60.0])
def test_gamma_brings_the_mean_towards_the_target(luma: float) -> None:
    table = gamma_table(luma)
    assert abs(int(table[round(luma)]) - DARK_TARGET * 255) <= 2
    assert np.all(np.diff(table.astype(int)) >= 0) and table[0] == 0 and table[255] == 255


def test_a_bright_frame_is_left_as_it_is_by_the_gamma() -> None:
    assert np.array_equal(gamma_table(200.0), np.arange(256, dtype=np.uint8))


def _recall_and_false(detector: PersonDetector, dark: list[np.ndarray], truth: list[np.ndarray]) -> tuple[float, int]:
    total = found = false = 0
    for start in range(0, len(dark), 4):
        for t, dets in zip(truth[start : start + 4], detector.detect(dark[start : start + 4]), strict=True):
            k = kept(t, dets.xyxy)
            total, found, false = total + len(t), found + k, false + len(dets) - k
    return found / total, false


def test_the_real_model_finds_more_people_at_night_with_no_more_false_boxes(footage: list[np.ndarray]) -> None:
    """2.5 lux (two stops under, mean luma ~41): the int8 model at its threshold, with and without the path."""
    truth_model = PersonDetector(DetectorConfig(model="fp32", threads=1, low_light=LowLightConfig(mode="off")))
    truth = [truth_model.detect([f])[0].xyxy for f in footage]
    rng = np.random.default_rng(SEED)
    dark = [darken(f, NightLevel(2.5), rng) for f in footage]
    off = PersonDetector(DetectorConfig(threads=1, low_light=LowLightConfig(mode="off")))
    auto = PersonDetector(DetectorConfig(threads=1))
    recall_off, false_off = _recall_and_false(off, dark, truth)
    recall_auto, false_auto = _recall_and_false(auto, dark, truth)
    assert recall_auto >= recall_off + 0.05, (recall_off, recall_auto)
    assert false_auto <= false_off, (false_off, false_auto)


@pytest.mark.parametrize(
    ("low_light", "key"),
    [
        ({"mode": "on"}, "detector.low_light.mode"),
        ({"below_luma": 300.0}, "detector.low_light.below_luma"),
        ({"below_luma": 0.0}, "detector.low_light.below_luma"),
        ({"below_luma": True}, "detector.low_light.below_luma"),
        ({"threshold": 40.0}, "detector.low_light.threshold: unknown key"),
    ],
)
def test_a_bad_low_light_setting_is_one_line_naming_its_key(tmp_path: Path, low_light: dict, key: str) -> None:
    data = demo_data()
    data["detector"]["low_light"] = low_light
    path = tmp_path / "bus.toml"
    path.write_text(to_toml(data))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2, result.output
    assert key in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_low_light_can_be_switched_off_in_the_config(tmp_path: Path) -> None:
    data = demo_data()
    data["detector"]["low_light"] = {"mode": "off", "below_luma": 40.0}
    path = tmp_path / "bus.toml"
    path.write_text(to_toml(data))
    assert CliRunner().invoke(main, ["check-config", str(path)]).exit_code == 0
