"""Per-stage costs on fixed inputs (real model, real footage). Run with `make bench`.

Compare within one run: `inference_batch4` against `inference_batch1_x4` is the case for batching the cameras.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.types import Detections, Frame, VehicleState
from edge.config import REPO_ROOT, DetectorConfig, load_config
from edge.detector import PersonDetector, preprocess
from edge.pipeline import CameraPipeline

CAMERAS = ["cam_front", "cam_right", "cam_rear", "cam_left"]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    out = []
    for name in CAMERAS:
        cap = cv2.VideoCapture(str(REPO_ROOT / "footage" / f"{name}.mp4"))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 50)
        out.append(cap.read()[1])
        cap.release()
    return out


@pytest.fixture(scope="module")
def detector() -> PersonDetector:
    return PersonDetector(DetectorConfig())


def test_preprocess_four_frames(benchmark, frames) -> None:
    batch = benchmark(preprocess, frames)
    assert batch.shape == (4, 300, 300, 3)


def test_inference_batch1_x4(benchmark, detector, frames) -> None:
    singles = [preprocess([f]) for f in frames]
    benchmark(lambda: [detector.run_batch(b) for b in singles])


def test_inference_batch4(benchmark, detector, frames) -> None:
    batch = preprocess(frames)
    benchmark(detector.run_batch, batch)


def test_zones_tracker_policy_per_frame(benchmark, detector, frames) -> None:
    """Everything after the detector for one camera frame: tracker, zone tests, policy."""
    config = load_config(None)
    cam = CameraPipeline(config, 1)
    dets = detector.detect([frames[1]])[0]
    vehicle = VehicleState(speed_kmh=15.0)
    clock = iter(range(10**9))

    def step() -> None:
        i = next(clock)
        cam.step(Frame("right", i, i * 0.1, frames[1]), dets, vehicle)

    benchmark(step)
    assert len(dets) > 0


def test_zones_tracker_policy_per_frame_ten_people(benchmark) -> None:
    """The same for a crowded frame: ten people walking, two of them unsure (low-score) boxes."""
    config = load_config(None)
    cam = CameraPipeline(config, 1)
    vehicle = VehicleState(speed_kmh=15.0)
    image = np.zeros((576, 768, 3), np.uint8)
    x0 = np.arange(10, dtype=np.float32) * 70 + 10
    scores = np.array([0.9] * 8 + [0.25, 0.3], np.float32)
    clock = iter(range(10**9))

    def step() -> None:
        i = next(clock)
        x = x0 + (i % 50) * 2.0
        xyxy = np.stack([x, np.full(10, 300.0), x + 50, np.full(10, 450.0)], axis=1).astype(np.float32)
        cam.step(Frame("right", i, i * 0.1, image), Detections(xyxy, scores, np.zeros(10, np.int32)), vehicle)

    benchmark(step)
