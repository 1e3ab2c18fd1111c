"""Daylight frames made into what a colour camera gives at night: the darkening model of the low-light measurements.

Used by tests/test_lowlight.py and benchmarks/bench_night.py; never by vigie itself. A camera at night has already
opened its exposure as far as moving people allow and turned its gain up to its cap, so below some scene
illuminance its picture gets darker in proportion to the light, and noisier, because fewer photons arrive:

1. the 8-bit frame is taken back to linear light (the sRGB curve): a daylight frame, correctly exposed, stands for
   the scene's reflectances (white about 1.0, mid grey 0.18);
2. electrons per pixel = reflectance x illuminance (lux) x ELECTRONS_PER_LUX, from the optics below;
3. shot noise (Poisson in the electron count) and read noise (Gaussian, READ_NOISE_E) are added;
4. the camera's gain, at its cap, maps FULL_SCALE_E electrons to white: below CAP_LUX the picture darkens;
5. the sRGB curve again, rounded to 8 bits (clipped), as the camera would encode it.

The camera, roughly a 1/2.7" colour sensor of a bus side camera: 2.8 um pixels, an f/2.0 lens transmitting 90 %,
1/25 s exposure (longer smears a walking person), quantum efficiency 0.5 behind a Bayer filter that passes a third
of white light, and about 1.2e16 visible photons per second per m2 per lux of white light. Image-plane illuminance
of a Lambertian surface of reflectance R is E x R x T / (4 N^2), hence ELECTRONS_PER_LUX ~ 35. A 11,000 e- full well
read at a gain capped at 24 dB (16x) reaches white at ~700 e-, so the camera is exposed right down to CAP_LUX ~ 20
lux and is one stop under at 10 lux. Street lighting gives a pavement 2-15 lux on average (EN 13201 P classes), so
the levels go from 20 lux down to a fraction of a lux (benchmarks/bench_night.py: 20 to 0.3 lux). Left out, and
said where the results are quoted: the camera's own noise reduction (which would help), uneven light (lamps,
headlights, glare) and motion blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHOTONS_PER_LUX_S_M2 = 1.2e16  # visible photons of white light, per second, m2 and lux
F_NUMBER = 2.0
LENS_TRANSMISSION = 0.9
PIXEL_M = 2.8e-6
EXPOSURE_S = 1 / 25
QUANTUM_EFFICIENCY = 0.5
COLOUR_FILTER = 1 / 3  # a Bayer pixel sees about a third of white light
ELECTRONS_PER_LUX = (
    LENS_TRANSMISSION
    / (4 * F_NUMBER**2)
    * PHOTONS_PER_LUX_S_M2
    * PIXEL_M**2
    * EXPOSURE_S
    * QUANTUM_EFFICIENCY
    * COLOUR_FILTER
)  # ~35 electrons per lux for a white surface
FULL_SCALE_E = 700.0  # electrons that read as white at the gain cap (11,000 e- full well, 24 dB gain)
READ_NOISE_E = 3.0
CAP_LUX = FULL_SCALE_E / ELECTRONS_PER_LUX  # ~20 lux: below this the picture darkens


def to_linear(frame: np.ndarray) -> np.ndarray:
    """8-bit sRGB → linear light, 0..1, float32."""
    v = frame.astype(np.float32) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear light → 8-bit sRGB, clipped and rounded as a camera's encoder would."""
    v = np.clip(linear, 0.0, 1.0)
    s = np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.rint(s * 255.0).astype(np.uint8)


@dataclass(frozen=True, slots=True)
class NightLevel:
    lux: float

    @property
    def exposure(self) -> float:
        """Brightness of the picture relative to a correctly exposed one (1.0 down to CAP_LUX)."""
        return min(1.0, self.lux / CAP_LUX)

    @property
    def white_electrons(self) -> float:
        return self.lux * ELECTRONS_PER_LUX

    @property
    def label(self) -> str:
        return f"{self.lux:g} lux"


def darken(frame: np.ndarray, level: NightLevel, rng: np.random.Generator) -> np.ndarray:
    """A BGR daylight frame as the camera above would give it at `level`'s illuminance (noise drawn from `rng`)."""
    electrons = to_linear(frame) * np.float32(level.white_electrons)
    noisy = rng.poisson(electrons).astype(np.float32) + rng.normal(0.0, READ_NOISE_E, frame.shape).astype(np.float32)
    # At or above the gain cap the camera exposes correctly: white stays white, whatever the electron count.
    full_scale = max(FULL_SCALE_E, level.white_electrons)
    return to_srgb8(noisy / np.float32(full_scale))
