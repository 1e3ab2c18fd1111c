"""A constant-velocity Kalman filter on person boxes, batched over every track of one camera.

State per track: box centre, width and height, and their rates of change, in pixels and pixels per second
(`cx, cy, w, h, vcx, vcy, vw, vh`). Time is in seconds, not frames, so a 10 fps and a 15 fps camera predict alike.

Why damped: a plain constant-velocity model extrapolates forever, and a box whose height was growing when the person
was last seen keeps growing while they are hidden, until it covers half the image and matches anything. Here every
rate decays exponentially while predicted: the centre's slowly (a walker keeps walking through a 2 s occlusion), the
size's fast (people do not change size much, and a wrong size rate is what makes boxes explode). The decay is applied
exactly over any `dt`, so the result does not depend on the frame rate.

Noise scales with the box height, as in SORT/DeepSORT: a near, tall person moves more pixels than a far, short one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class MotionModel:
    centre_tau_s: float = 4.0  # time constant of the decay of the centre's velocity while predicted
    size_tau_s: float = 0.3  # the same for width and height: size rates die out fast
    # Process noise, in box heights per sqrt(second) (positions) and box heights per second per sqrt(second) (rates).
    position_noise: float = 0.15
    velocity_noise: float = 0.6
    # Measurement noise of a detector box edge, in box heights.
    measurement_noise: float = 0.05
    initial_velocity_std: float = 1.0  # box heights per second: a new track could be walking either way


def xyxy_to_state(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) corners → (N, 4) centre x, centre y, width, height."""
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w, h], axis=1).astype(np.float64)


def state_to_xyxy(mean: np.ndarray) -> np.ndarray:
    """(N, 8) states → (N, 4) corners; width and height never below one pixel."""
    w = np.maximum(mean[:, 2], 1.0)
    h = np.maximum(mean[:, 3], 1.0)
    return np.stack([mean[:, 0] - w / 2, mean[:, 1] - h / 2, mean[:, 0] + w / 2, mean[:, 1] + h / 2], axis=1).astype(
        np.float32
    )


class BoxKalman:
    """Stateless maths; the tracker owns the arrays. Every method works on all tracks at once."""

    def __init__(self, model: MotionModel | None = None):
        self.model = model or MotionModel()

    def initiate(self, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.model
        n = xyxy.shape[0]
        mean = np.zeros((n, 8))
        mean[:, :4] = xyxy_to_state(xyxy)
        h = np.maximum(mean[:, 3], 1.0)
        std = np.concatenate(
            [
                np.repeat((2 * m.measurement_noise * h)[:, None], 4, axis=1),
                np.repeat((m.initial_velocity_std * h)[:, None], 4, axis=1),
            ],
            axis=1,
        )
        cov = np.zeros((n, 8, 8))
        idx = np.arange(8)
        cov[:, idx, idx] = std**2
        return mean, cov

    def _transition(self, dt: float) -> np.ndarray:
        m = self.model
        f = np.eye(8)
        for i, tau in enumerate((m.centre_tau_s, m.centre_tau_s, m.size_tau_s, m.size_tau_s)):
            decay = np.exp(-dt / tau)
            f[i, i + 4] = tau * (1.0 - decay)  # distance covered by a rate that decays over dt
            f[i + 4, i + 4] = decay
        return f

    def predict(self, mean: np.ndarray, cov: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        if mean.shape[0] == 0 or dt <= 0:
            return mean, cov
        m = self.model
        f = self._transition(dt)
        h = np.maximum(mean[:, 3], 1.0)
        q = (
            np.concatenate(
                [
                    np.repeat((m.position_noise * h)[:, None] ** 2, 4, axis=1),
                    np.repeat((m.velocity_noise * h)[:, None] ** 2, 4, axis=1),
                ],
                axis=1,
            )
            * dt
        )
        idx = np.arange(8)
        new_cov = f @ cov @ f.T
        new_cov[:, idx, idx] += q
        return mean @ f.T, new_cov

    def update(self, mean: np.ndarray, cov: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct each state with its matched box (rows aligned)."""
        if mean.shape[0] == 0:
            return mean, cov
        z = xyxy_to_state(xyxy)
        r_std = self.model.measurement_noise * np.maximum(z[:, 3], 1.0)
        s = cov[:, :4, :4].copy()
        idx = np.arange(4)
        s[:, idx, idx] += (r_std**2)[:, None]
        gain = np.linalg.solve(s, cov[:, :4, :]).transpose(0, 2, 1)  # (N, 8, 4); S is symmetric
        innovation = z - mean[:, :4]
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ cov[:, :4, :]
        return new_mean, new_cov

    def centre_distance(self, mean: np.ndarray, cov: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance (N, M) from each track's predicted centre to each box's centre.

        It grows slower than pixel distance for a track unseen for long (its uncertainty has grown), which is what
        lets a person who walked on behind a post be found again where a fixed pixel gate would give up.
        """
        if mean.shape[0] == 0 or xyxy.shape[0] == 0:
            return np.zeros((mean.shape[0], xyxy.shape[0]))
        z = xyxy_to_state(xyxy)[:, :2]
        s = cov[:, :2, :2] + np.eye(2)[None] * (self.model.measurement_noise * mean[:, 3:4, None]) ** 2
        diff = z[None, :, :] - mean[:, None, :2]  # (N, M, 2)
        solved = np.linalg.solve(s[:, None, :, :], diff[..., None])[..., 0]
        return np.einsum("nmi,nmi->nm", diff, solved)
