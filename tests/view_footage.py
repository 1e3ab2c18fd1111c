"""Real footage made unusable the ways a bus camera's view fails, for the view-quality tests.

Each transform takes a real BGR frame from footage/ and returns what the camera would send: too little light
(gamma and gain down, sensor noise up), a smeared lens (a wide blur), half the lens covered (a black patch, or a
smeared one), the sun in the lens (a saturated blob with its halo). A frozen camera is one frame repeated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.config import REPO_ROOT

FOOTAGE = REPO_ROOT / "footage"
CAMERAS = ("front", "right", "rear", "left")
FPS = 10.0  # the bundled footage's rate


def read_clip(name: str, limit: int | None = None) -> list[np.ndarray]:
    """The frames of footage/cam_NAME.mp4, decoded."""
    return list(iter_clip(FOOTAGE / f"cam_{name}.mp4", limit))


def iter_clip(path: Path, limit: int | None = None) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        n = 0
        while limit is None or n < limit:
            ok, frame = cap.read()
            if not ok:
                return
            n += 1
            yield frame
    finally:
        cap.release()


def _noisy(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def darkened(image: np.ndarray, seed: int = 0, gain: float = 0.06) -> np.ndarray:
    """Night without light: a darker, steeper response and the sensor noise a camera's gain brings."""
    dim = (image.astype(np.float32) / 255.0) ** 1.5 * 255.0 * gain
    return _noisy(dim, 3.0, seed)


def smeared(image: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """Grease or water on the lens: the whole view blurred (8 px at 768x576 hides every person from the model)."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def half_covered(image: np.ndarray, patch: str = "black") -> np.ndarray:
    """The left half of the lens covered by something dark (`black`) or smeared with dirt (`smear`)."""
    out = image.copy()
    half = out[:, : out.shape[1] // 2]
    half[:] = 0 if patch == "black" else cv2.GaussianBlur(half, (0, 0), 25.0)
    return out


def glare(image: np.ndarray, radius: float = 0.35) -> np.ndarray:
    """The low sun in the lens: a saturated disc (`radius` of the height) fading into a bright halo."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    distance = np.hypot(xx - 0.7 * w, yy - 0.3 * h) / (radius * h)
    light = np.clip(1.6 - distance, 0.0, 1.0)[..., None] * 400.0
    return np.clip(image.astype(np.float32) + light, 0, 255).astype(np.uint8)


def write_clip(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    """An mp4v file, as the bundled footage is written, for a file camera to play."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
