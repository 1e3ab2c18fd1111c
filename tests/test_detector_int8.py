"""The accuracy gate that lets the int8 model be the default (models/person_ssdlite_int8.md), and OpenVINO run it.

Against the float model it was made from, run by onnxruntime, at each model's operating threshold: on every 5th
frame of the demo footage (frames the calibration never saw) at least 96 % of the float model's detections are found
one-to-one (IoU >= 0.5), and on the bundled images not one person is lost. The same gate holds for each model on
OpenVINO (`detector.runtime = "openvino"`), which computes the same graph with other kernels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from edge.config import DetectorConfig
from edge.detector import PersonDetector
from edge.tracker import iou_matrix

from .conftest import FOOTAGE, IMAGES, needs_openvino_wheel

GATE = 0.96


def every_fifth_frame() -> list[np.ndarray]:
    frames = []
    for cam in ("front", "right", "rear", "left"):
        cap = cv2.VideoCapture(str(FOOTAGE / f"cam_{cam}.mp4"))
        index = 0
        ok, frame = cap.read()
        while ok:
            if index % 5 == 0:
                frames.append(frame)
            index += 1
            ok, frame = cap.read()
        cap.release()
    return frames


def kept(reference: np.ndarray, candidate: np.ndarray) -> int:
    """How many reference boxes the candidate boxes find, one-to-one at IoU >= 0.5."""
    if len(reference) == 0 or len(candidate) == 0:
        return 0
    iou = iou_matrix(reference, candidate)
    rows, cols = linear_sum_assignment(-iou)
    return int((iou[rows, cols] >= 0.5).sum())


CANDIDATES = [
    pytest.param(("onnxruntime", "int8"), id="onnxruntime-int8"),
    pytest.param(("openvino", "int8"), id="openvino-int8", marks=needs_openvino_wheel),
    pytest.param(("openvino", "fp32"), id="openvino-fp32", marks=needs_openvino_wheel),
]


@pytest.fixture(scope="module")
def reference() -> PersonDetector:
    return PersonDetector(DetectorConfig(model="fp32", threads=1))


@pytest.fixture(scope="module", params=CANDIDATES)
def models(request: pytest.FixtureRequest, reference: PersonDetector) -> tuple[PersonDetector, PersonDetector]:
    runtime, model = request.param
    return reference, PersonDetector(DetectorConfig(model=model, runtime=runtime, threads=1))


def test_keeps_at_least_96_percent_of_the_float_detections_on_the_footage(models) -> None:
    fp32, candidate = models
    total = found = 0
    for frame in every_fifth_frame():
        ref = fp32.detect([frame])[0].xyxy
        total += len(ref)
        found += kept(ref, candidate.detect([frame])[0].xyxy)
    assert total > 500  # the gate means something only on many people
    assert found / total >= GATE, f"{found}/{total} = {found / total:.3f}"


BUNDLED_IMAGES = sorted([*IMAGES.glob("*.png"), *IMAGES.glob("*.jpg"), *(FOOTAGE / "faces").glob("*.jpg")])


@pytest.mark.parametrize("image", BUNDLED_IMAGES, ids=lambda p: p.name)
def test_loses_no_person_on_the_bundled_images(models, image: Path) -> None:
    """Close, large people included (faces/group.jpg: six, some low-contrast): what a bus camera sees."""
    fp32, candidate = models
    frame = cv2.imread(str(image))
    ref, got = fp32.detect([frame])[0].xyxy, candidate.detect([frame])[0].xyxy
    assert kept(ref, got) == len(ref) and len(got) == len(ref)
