"""The bundled ONNX person detector (SSDLite-MobileNetV2, see models/person_ssdlite.md).

The detector takes a batch of frames and returns one Detections per frame. Batching the four cameras into one
call is cheaper than four calls (measured in benchmarks/), and the call releases the GIL while it computes. What
computes it (onnxruntime by default, or OpenVINO: `detector.runtime`) is chosen once, in edge/runtime.py.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.models import verify_model
from core.types import Detections
from edge.config import REPO_ROOT, DetectorConfig
from edge.lowlight import DAYLIGHT, LowLight
from edge.runtime import ModelOutput, RuntimeSettings, open_runtime

MODEL_PATH = REPO_ROOT / "models" / "person_ssdlite.onnx"
INT8_MODEL_PATH = REPO_ROOT / "models" / "person_ssdlite_int8.onnx"
# The bundled models' digests; their model cards (models/*.md) say where they came from.
MODEL_SHA256 = "02430c0ad56987309f017fe7b0ee142bf64a0bb6d966afa9bea63f98079a3977"
INT8_MODEL_SHA256 = "84b39696d86f7738b8ac2d6c626922a14afa43c83689603a1ba2631894355e0f"


def bundled_digest(path: Path) -> str | None:
    """The digest a bundled model must have, or None for a model an operator points to."""
    known = {MODEL_PATH.resolve(): MODEL_SHA256, INT8_MODEL_PATH.resolve(): INT8_MODEL_SHA256}
    return known.get(path.resolve())


INPUT_SIZE = 300
PERSON = 0


def preprocess(images: list[np.ndarray], low_light: LowLight = DAYLIGHT) -> np.ndarray:
    """BGR frames of any size → (N, 300, 300, 3) uint8 RGB, the model's input."""
    batch = np.empty((len(images), INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        if low_light.is_dark(img):  # averaged down and brightened (edge/lowlight.py)
            small = low_light.shrink(img, INPUT_SIZE)
        else:
            small = cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=batch[i])
    return batch


class PersonDetector:
    def __init__(self, config: DetectorConfig):
        path = config.model_path
        # Only the bundled files have a known digest; a model an operator points to is hashed for the event rows.
        self.info = verify_model(path, bundled_digest(path))
        self.threshold = config.threshold  # the confident score: what may start a track or count in a zone
        self._min_height = config.min_height
        self._low_light = LowLight.from_config(config.low_light)
        self._runtime = open_runtime(config.runtime, RuntimeSettings(path, config.threads, "detector.model"))
        self.warm_up()

    def warm_up(self) -> None:
        """The first run allocates and plans; pay for it at start, not on the first alert."""
        blank = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        for n in range(1, 5):  # every batch size the four cameras can produce
            self.run_batch(preprocess([blank] * n))

    def run_batch(self, batch: np.ndarray) -> ModelOutput:
        return self._runtime.run(batch)

    def detect(self, images: list[np.ndarray], min_score: float | None = None) -> list[Detections]:
        """People in each image, scoring at least `min_score` (default: the configured, confident threshold).

        The tracker asks for a lower `min_score`: an unsure box is how a half-hidden person still looks.
        """
        if not images:
            return []
        raw = self.run_batch(preprocess(images, self._low_light))
        threshold = self.threshold if min_score is None else min_score
        return [self._postprocess(raw, i, img.shape, threshold) for i, img in enumerate(images)]

    def _postprocess(self, raw: ModelOutput, i: int, shape: tuple[int, ...], threshold: float) -> Detections:
        height, width = shape[0], shape[1]
        boxes = raw.boxes[i]  # ymin, xmin, ymax, xmax in 0..1
        scores = raw.scores[i]
        keep = (scores >= threshold) & ((boxes[:, 2] - boxes[:, 0]) >= self._min_height)
        b = boxes[keep]
        xyxy = np.stack([b[:, 1] * width, b[:, 0] * height, b[:, 3] * width, b[:, 2] * height], axis=1)
        n = int(keep.sum())
        return Detections(
            xyxy.astype(np.float32).reshape(n, 4),
            scores[keep].astype(np.float32),
            np.full(n, PERSON, dtype=np.int32),
        )
