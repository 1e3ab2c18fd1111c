"""vigie's first tracker (until commit 0709b2c), kept only as the baseline the tracking benchmark compares against.

Greedy IoU matching with a smoothed velocity, a second chance on centre distance, and a lost buffer in frames.
It fragmented tracks whenever the detector missed a person for more than a second or two, which is why
edge/tracker.py replaced it. Not used by vigie itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.types import Detections
from edge.tracker import iou_matrix


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    iou_match: float = 0.25
    # A track survives this many frames without a match (a person briefly hidden, or missed by the detector).
    max_missed: int = 10
    # Second-chance match: centres closer than this fraction of the person's height.
    max_centre_shift: float = 0.5


def centre_closeness(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - (centre distance / height of the box in a): 1 for the same centre, <= 0 a whole body height away."""
    ca = (a[:, :2] + a[:, 2:]) * 0.5
    cb = (b[:, :2] + b[:, 2:]) * 0.5
    dist = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
    height = np.maximum(a[:, 3] - a[:, 1], 1.0)
    return 1.0 - dist / height[:, None]


def greedy_match(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row, col) taken in order of decreasing IoU, each row and column used once."""
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    keep_r, keep_c = [], []
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            keep_r.append(r)
            keep_c.append(c)
    return np.array(keep_r, dtype=np.int64), np.array(keep_c, dtype=np.int64)


class IouTracker:
    """Per-camera tracker. `update` takes one frame's detections and returns them with track ids.

    Each track keeps its last box and a smoothed per-frame velocity; matching is against the box moved by that
    velocity, so a walking person still overlaps their prediction after a few missed frames. Detections left over
    are matched a second time on centre distance (small, jittery boxes can overlap poorly and still be one person).
    """

    def __init__(self, config: TrackerConfig | None = None):
        self._cfg = config or TrackerConfig()
        self._boxes = np.zeros((0, 4), dtype=np.float32)
        self._velocity = np.zeros((0, 4), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._missed = np.zeros(0, dtype=np.int64)
        self._next_id = 1

    def update(self, dets: Detections) -> np.ndarray:
        """Track ids of the detections, in their order."""
        predicted = self._boxes + self._velocity * (self._missed[:, None] + 1)
        track_rows, det_rows = self._match(predicted, dets.xyxy)

        det_ids = np.zeros(len(dets), dtype=np.int64)
        det_ids[det_rows] = self._ids[track_rows]
        velocity = np.zeros((len(dets), 4), dtype=np.float32)
        step = (dets.xyxy[det_rows] - self._boxes[track_rows]) / (self._missed[track_rows, None] + 1)
        velocity[det_rows] = 0.5 * self._velocity[track_rows] + 0.5 * step
        new = np.ones(len(dets), dtype=bool)
        new[det_rows] = False
        n_new = int(new.sum())
        det_ids[new] = np.arange(self._next_id, self._next_id + n_new)
        self._next_id += n_new

        missed = self._missed + 1
        waiting = missed <= self._cfg.max_missed
        waiting[track_rows] = False

        # Matched tracks take their new box; unmatched ones keep their last box while they wait.
        self._boxes = np.concatenate([dets.xyxy, self._boxes[waiting]])
        self._velocity = np.concatenate([velocity, self._velocity[waiting]])
        self._ids = np.concatenate([det_ids, self._ids[waiting]])
        self._missed = np.concatenate([np.zeros(len(dets), dtype=np.int64), missed[waiting]])
        return det_ids

    def _match(self, predicted: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = greedy_match(iou_matrix(predicted, boxes), self._cfg.iou_match)
        free_r = np.setdiff1d(np.arange(predicted.shape[0]), rows)
        free_c = np.setdiff1d(np.arange(boxes.shape[0]), cols)
        if free_r.size == 0 or free_c.size == 0:
            return rows, cols
        closeness = centre_closeness(predicted[free_r], boxes[free_c])
        r2, c2 = greedy_match(closeness, 1.0 - self._cfg.max_centre_shift)
        return np.concatenate([rows, free_r[r2]]), np.concatenate([cols, free_c[c2]])
