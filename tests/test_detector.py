"""The real bundled model on real images, and the checks that guard it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from core.models import ModelError, sha256_of
from edge.cli import main
from edge.config import DetectorConfig
from edge.detector import (
    INT8_MODEL_PATH,
    INT8_MODEL_SHA256,
    MODEL_PATH,
    MODEL_SHA256,
    PersonDetector,
)

from .conftest import FOOTAGE, IMAGES, needs_openvino_wheel

RUNTIMES_AND_MODELS = [
    pytest.param(("onnxruntime", "int8"), id="onnxruntime-int8"),
    pytest.param(("onnxruntime", "fp32"), id="onnxruntime-fp32"),
    pytest.param(("openvino", "int8"), id="openvino-int8", marks=needs_openvino_wheel),
    pytest.param(("openvino", "fp32"), id="openvino-fp32", marks=needs_openvino_wheel),
]


@pytest.fixture(scope="module", params=RUNTIMES_AND_MODELS)
def detector(request: pytest.FixtureRequest) -> PersonDetector:
    """Every behaviour below holds for both bundled models, on both runtimes."""
    runtime, model = request.param
    return PersonDetector(DetectorConfig(model=model, runtime=runtime))


def _box_contains(box: np.ndarray, x: float, y: float) -> bool:
    return bool(box[0] <= x <= box[2] and box[1] <= y <= box[3])


@pytest.mark.parametrize(
    ("path", "digest", "card"),
    [(MODEL_PATH, MODEL_SHA256, "person_ssdlite.md"), (INT8_MODEL_PATH, INT8_MODEL_SHA256, "person_ssdlite_int8.md")],
)
def test_bundled_models_match_their_cards(path: Path, digest: str, card: str) -> None:
    assert sha256_of(path) == digest
    assert digest in (path.parent / card).read_text()


def test_the_int8_model_is_the_default_with_its_own_threshold() -> None:
    cfg = DetectorConfig()
    assert cfg.model_path == INT8_MODEL_PATH and cfg.threshold == 0.38
    # Settled by benchmarks/bench_runtimes.py: the least CPU per frame without the memory OpenVINO costs.
    assert cfg.runtime == "onnxruntime" and cfg.threads == 1
    assert DetectorConfig(model="fp32").threshold == 0.40
    assert DetectorConfig(model="int8", score_threshold=0.5).threshold == 0.5


def test_finds_both_players(detector: PersonDetector) -> None:
    """basketball1.png: two players, one left of centre and one on the right."""
    image = cv2.imread(str(IMAGES / "basketball1.png"))
    dets = detector.detect([image])[0]
    assert len(dets) == 2
    left, right = sorted(dets.xyxy.tolist(), key=lambda b: b[0])
    assert _box_contains(np.array(left), 100, 300) and _box_contains(np.array(right), 540, 300)
    assert dets.score.min() > 0.9


def test_finds_nobody_in_an_empty_scene(detector: PersonDetector) -> None:
    image = cv2.imread(str(IMAGES / "fruits.jpg"))
    assert len(detector.detect([image])[0]) == 0


def test_boxes_are_in_pixels_of_the_original_image(detector: PersonDetector) -> None:
    image = cv2.imread(str(IMAGES / "basketball1.png"))
    big = cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2))
    small_boxes = detector.detect([image])[0].xyxy
    big_boxes = detector.detect([big])[0].xyxy
    # Both images are resized to the model's 300x300 input; the two resizes differ a little, and the int8 model turns
    # that into box edges a few pixels apart (of 1280, measured: 2 px on onnxruntime, 8 px on OpenVINO).
    np.testing.assert_allclose(np.sort(big_boxes, axis=0), np.sort(small_boxes, axis=0) * 2, atol=10)


def test_a_batch_of_four_equals_four_single_calls(detector: PersonDetector) -> None:
    cap = cv2.VideoCapture(str(FOOTAGE / "cam_front.mp4"))
    frames = [cap.read()[1] for _ in range(4)]
    batched = detector.detect(frames)
    single = [detector.detect([f])[0] for f in frames]
    for b, s in zip(batched, single, strict=True):
        np.testing.assert_allclose(b.xyxy, s.xyxy, atol=0.5)
        np.testing.assert_allclose(b.score, s.score, atol=1e-3)
    assert sum(len(b) for b in batched) >= 8  # the walkway footage has several people in every frame


def test_empty_batch_gives_empty_list(detector: PersonDetector) -> None:
    assert detector.detect([]) == []


def test_altered_model_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "person_ssdlite.onnx"
    shutil.copy(MODEL_PATH, broken)
    with open(broken, "r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x00" * 16)
    monkeypatch.setattr("edge.detector.MODEL_PATH", broken)
    with pytest.raises(ModelError, match=r"sha256 .* expected"):
        PersonDetector(DetectorConfig(model=str(broken)))


@pytest.mark.parametrize(
    "runtime", ["onnxruntime", pytest.param("openvino", marks=needs_openvino_wheel)], ids=lambda r: r
)
def test_unloadable_model_is_a_clear_error(tmp_path: Path, runtime: str) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=f"detector.model: .*junk.onnx cannot be loaded by {runtime}"):
        PersonDetector(DetectorConfig(model=str(junk), runtime=runtime))


def test_detect_cli_prints_one_json_object_per_image() -> None:
    result = CliRunner().invoke(main, ["detect", str(IMAGES / "basketball1.png"), str(IMAGES / "fruits.jpg"), "--json"])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.output.strip().splitlines())
    assert len(first["detections"]) == 2 and second["detections"] == []
    det = first["detections"][0]
    assert set(det) == {"box", "score", "label"} and det["label"] == "person" and len(det["box"]) == 4


def test_detect_cli_names_an_unreadable_image_and_still_reports_the_others(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    result = CliRunner().invoke(main, ["detect", str(bad), str(IMAGES / "basketball1.png")])
    assert result.exit_code == 2
    assert f"{bad}: not a readable image" in result.stderr
    assert "basketball1.png: 2 person(s)" in result.stdout
