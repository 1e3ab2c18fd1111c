"""What the person detector is given when a camera's picture is dark (`detector.low_light`).

At night a camera with its exposure and gain at their limits gives a darker and noisier picture. The detector's
usual input, the frame stretched to 300x300 bilinearly (what the model was trained on), reads only about 4 of the
~6.5 pixels each input pixel stands for, so most of the noise goes straight in. For a dark frame the frame is instead
averaged down (INTER_AREA: every pixel counts, noise falls) and then brightened with a gamma curve, chosen from the
frame's own mean luma, that brings the mean up to DARK_TARGET. Brightening alone, or CLAHE on luma, or both, lost
recall on darkened footage, and averaging down lost recall on daylight frames; averaged and brightened, only below
`below_luma`, won (benchmarks/bench_night.py prints the figures; README "Low light").

Chosen per frame from a cheap luma measurement (one pixel in 8 each way), so a camera that passes under a street
lamp or into a tunnel switches by itself and a replay of the same footage takes the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.config import LowLightConfig

# The mean luma (0..1) a dark frame is brought to. Brighter lifts the noise with the signal: of 0.2, 0.3 and 0.45 (the
# daylight footage's own mean), tried on the benchmark's frames, 0.3 kept the most people at equal false boxes.
DARK_TARGET = 0.3
STRIDE = 8  # luma is measured on every 8th pixel each way: 96x72 of a 768x576 frame
# Rec. 601 luma weights, in OpenCV's B, G, R order.
LUMA_WEIGHTS = (0.114, 0.587, 0.299)
MIN_GAMMA = 0.25  # a nearly black frame is not stretched without limit: there is nothing in it to find


def mean_luma(image: np.ndarray) -> float:
    """Mean luma, 0-255, of a BGR frame, from about every STRIDE-th pixel each way."""
    # A nearest-neighbour shrink picks those pixels into a compact array: cv2.mean of the strided view copied it
    # first, 3.7x slower (0.09 against 0.024 ms at 768x576), in the detect thread's path of every frame.
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // STRIDE), max(1, h // STRIDE)), interpolation=cv2.INTER_NEAREST)
    means = cv2.mean(small)
    return float(sum(w * m for w, m in zip(LUMA_WEIGHTS, means, strict=False)))


def gamma_table(luma: float) -> np.ndarray:
    """A 256-entry table that maps a frame of mean `luma` (0-255) to a mean of about DARK_TARGET."""
    mean = min(max(luma / 255.0, 1e-3), 1.0 - 1e-3)
    gamma = float(np.clip(np.log(DARK_TARGET) / np.log(mean), MIN_GAMMA, 1.0))
    return np.rint(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)


@dataclass(frozen=True, slots=True)
class LowLight:
    """Built once from the config; per frame, `is_dark` says which input to make and `shrink` makes a dark one's."""

    below_luma: float  # 0: never dark

    @classmethod
    def from_config(cls, config: LowLightConfig) -> LowLight:
        return cls(config.below_luma if config.mode == "auto" else 0.0)

    def is_dark(self, image: np.ndarray) -> bool:
        return self.below_luma > 0 and mean_luma(image) < self.below_luma

    def shrink(self, image: np.ndarray, size: int) -> np.ndarray:
        """A dark BGR frame as the detector's size x size BGR input: averaged down, then brightened."""
        small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        return cv2.LUT(small, gamma_table(mean_luma(small)))


DAYLIGHT = LowLight(0.0)  # every frame as in daylight
