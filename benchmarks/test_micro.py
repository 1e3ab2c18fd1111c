"""Per-stage costs on fixed inputs (real model, real footage). Run with `make bench`.

Compare within one run: `inference_batch4` against `inference_batch1_x4` is the case for batching the cameras.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.config import REPO_ROOT, DetectorConfig, load_config
from edge.detector import PersonDetector, preprocess
from edge.pipeline import CameraPipeline
from edge.types import Frame, VehicleState

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
