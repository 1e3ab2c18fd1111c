"""Per-camera person tracker: the ByteTrack recipe (Zhang et al., ECCV 2022) with a damped Kalman filter.

Why this recipe: an event is one person's stay in a zone, so the tracker must keep one id for a person through the
moments the detector is unsure of them (partly hidden behind a post or another person, small, blurred). ByteTrack's
observation is that those moments still produce boxes, only with low scores. So:

1. every track's box is predicted to now (edge/kalman.py);
2. confident boxes are matched to confirmed tracks, including lost ones, by global assignment on IoU;
3. low-score boxes are matched to the confirmed tracks still unmatched that were seen on the previous frame —
   they keep a person's track alive but never start one;
4. lost tracks still unmatched may take a confident box left over that lies within their predicted uncertainty
   (Mahalanobis gate, similar height) — beyond ByteTrack: a person walking behind a post reappears on its far side
   while the detector, seeing only the part left of the post, had taught the filter they stopped;
5. tentative tracks (born on a recent frame) take what confident boxes are left; a tentative track is confirmed once
   it has been matched for `confirm_s`, and dropped if it misses more than `tentative_gap_s` before that;
6. confident boxes still unmatched start tentative tracks; confirmed tracks unmatched for `lost_s` are dropped.

Every threshold is in seconds of the frames' own timestamps, so cameras at 10 and 15 fps behave alike. Matching is
global (`scipy.optimize.linear_sum_assignment`), not greedy: with two people crossing, greedy takes the single best
overlap first and can leave the other person with the wrong track.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.types import Detections, Tracks
from edge.kalman import BoxKalman, MotionModel, state_to_xyxy


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    high_score: float = 0.4  # boxes at or above this are matched first (the detector's confident threshold)
    # A new track needs a little more than that (as in ByteTrack): a box that is only just confident is more often a
    # duplicate of a person already tracked, or a part of them, than someone new.
    new_track_margin: float = 0.1
    # Nor does a box lying mostly (this share of its area) on boxes already given to tracks: two boxes on one person
    # (a whole body and a torso), or one between two people, would otherwise become one more person and event.
    new_track_overlap: float = 0.6
    low_score: float = 0.1  # boxes between this and high_score only extend existing tracks
    confirm_s: float = 0.1  # a tentative track matched this long after its birth is a person
    tentative_gap_s: float = 0.15  # a tentative track unmatched longer than this was noise
    lost_s: float = 2.5  # a confirmed track survives this long unseen (missed detections, occlusion)
    match_iou: float = 0.2  # confident boxes against confirmed tracks
    low_match_iou: float = 0.4  # low-score boxes: stricter, they are less certain to be this person
    tentative_match_iou: float = 0.3
    # A lost track's box and its candidates are grown by this fraction of their size per second lost (capped): the
    # longer a person is unseen, the less the prediction can be trusted to overlap them (buffered IoU).
    expand_per_s: float = 0.3
    max_expand: float = 0.6
    # Step 4: 95 % of a 2-D Gaussian lies within this squared Mahalanobis distance; heights within this ratio.
    recover_gate: float = 5.99
    recover_height_ratio: float = 1.5
    motion: MotionModel = field(default_factory=MotionModel)


class TrackState(enum.IntEnum):
    TENTATIVE = 0
    TRACKED = 1  # confirmed and matched on the latest frame
    LOST = 2  # confirmed, unmatched for less than lost_s


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes that broadcast against each other, (..., 4) xyxy."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-6)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4) against every box in b (M,4), xyxy."""
    return _iou(a[:, None, :], b[None, :, :]).astype(np.float32)


def buffered_iou(a: np.ndarray, b: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """IoU of a (N,4) against b (M,4), both boxes of row i grown by ratio[i] of their size on every side."""
    grow_a = (a[:, 2:] - a[:, :2]) * ratio[:, None]
    grown_a = np.concatenate([a[:, :2] - grow_a, a[:, 2:] + grow_a], axis=1)
    grow_b = (b[None, :, 2:] - b[None, :, :2]) * ratio[:, None, None]  # (N, M, 2)
    grown_b = np.concatenate([b[None, :, :2] - grow_b, b[None, :, 2:] + grow_b], axis=2)
    return _iou(grown_a[:, None, :], grown_b).astype(np.float32)


def _newcomers(candidates: np.ndarray, taken: np.ndarray, max_share: float) -> np.ndarray:
    """Mask of candidate boxes of which at most `max_share` of the area lies on taken boxes.

    Overlaps are summed, not maxed: a box straddling two tracked people (a classic duplicate between two people
    walking together) is covered by both and is nobody new.
    """
    if candidates.shape[0] == 0 or taken.shape[0] == 0:
        return np.ones(candidates.shape[0], dtype=bool)
    a, b = candidates[:, None, :], taken[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = np.maximum((candidates[:, 2] - candidates[:, 0]) * (candidates[:, 3] - candidates[:, 1]), 1e-6)
    return ((w * h).sum(axis=1) / area) <= max_share


def assign(similarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the assignment with the highest total similarity, keeping pairs at or above threshold."""
    if similarity.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # Pairs under the threshold are made useless rather than forbidden, so the solver always has a full solution.
    cost = np.where(similarity >= threshold, 1.0 - similarity, 1e3)
    rows, cols = linear_sum_assignment(cost)
    keep = similarity[rows, cols] >= threshold
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


class ByteTracker:
    """One camera's tracks as parallel arrays; `update` takes a frame's detections and its timestamp (seconds)."""

    def __init__(self, config: TrackerConfig | None = None):
        self._cfg = config or TrackerConfig()
        self._kf = BoxKalman(self._cfg.motion)
        self._ids = np.zeros(0, dtype=np.int64)
        self._state = np.zeros(0, dtype=np.int8)
        self._born = np.zeros(0)
        self._last_hit = np.zeros(0)
        self._mean = np.zeros((0, 8))
        self._cov = np.zeros((0, 8, 8))
        self._now: float | None = None
        self._next_id = 1

    def update(self, dets: Detections, ts: float) -> Tracks:
        cfg = self._cfg
        dt = 0.0 if self._now is None else max(ts - self._now, 0.0)
        self._now = ts
        self._mean, self._cov = self._kf.predict(self._mean, self._cov, dt)
        predicted = state_to_xyxy(self._mean)

        high = np.flatnonzero(dets.score >= cfg.high_score)
        low = np.flatnonzero((dets.score >= cfg.low_score) & (dets.score < cfg.high_score))
        confirmed = np.flatnonzero(self._state != TrackState.TENTATIVE)
        tentative = np.flatnonzero(self._state == TrackState.TENTATIVE)

        # 1. Confident boxes against every confirmed track, lost ones with buffered boxes.
        ratio = np.minimum((ts - self._last_hit[confirmed]) * cfg.expand_per_s, cfg.max_expand)
        r1, c1 = assign(buffered_iou(predicted[confirmed], dets.xyxy[high], ratio), cfg.match_iou)
        free_tracks = np.setdiff1d(confirmed, confirmed[r1])
        free_high = np.setdiff1d(high, high[c1])
        # 2. Low-score boxes against the confirmed tracks left that were seen on the previous frame.
        recent = free_tracks[self._state[free_tracks] == TrackState.TRACKED]
        r2, c2 = assign(iou_matrix(predicted[recent], dets.xyxy[low]), cfg.low_match_iou)
        # 3. Lost tracks left against confident boxes left, within their predicted uncertainty.
        lost = free_tracks[self._state[free_tracks] == TrackState.LOST]
        r3, c3 = assign(self._recovery(lost, dets.xyxy[free_high]), 1e-6)
        recovered = free_high[c3]
        free_high = np.setdiff1d(free_high, recovered)
        # 4. Tentative tracks take the confident boxes left.
        r4, c4 = assign(iou_matrix(predicted[tentative], dets.xyxy[free_high]), cfg.tentative_match_iou)
        track_rows = np.concatenate([confirmed[r1], recent[r2], lost[r3], tentative[r4]])
        det_rows = np.concatenate([high[c1], low[c2], recovered, free_high[c4]])
        unclaimed = np.setdiff1d(free_high, free_high[c4])
        unclaimed = unclaimed[dets.score[unclaimed] >= cfg.high_score + cfg.new_track_margin]
        unclaimed = unclaimed[_newcomers(dets.xyxy[unclaimed], dets.xyxy[det_rows], cfg.new_track_overlap)]
        self._correct(track_rows, det_rows, dets.xyxy, ts)
        ids = self._ids[track_rows]
        is_confirmed = self._state[track_rows] != TrackState.TENTATIVE
        self._age(track_rows, ts)
        # 4. What is still unclaimed and confident is someone new.
        new_ids = self._start(dets.xyxy[unclaimed], ts)

        rows = np.concatenate([det_rows, unclaimed])
        ids = np.concatenate([ids, new_ids])
        is_confirmed = np.concatenate([is_confirmed, np.zeros(new_ids.shape[0], dtype=bool)])
        order = np.argsort(rows, kind="stable")  # detection order, so callers can line tracks up with boxes
        return Tracks(dets.filter(rows[order]), ids[order], is_confirmed[order], self._ids.copy())

    def _recovery(self, lost: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Similarity in 0..1 of each lost track to each box: 1 at the predicted centre, 0 at the gate or beyond,
        and 0 for a box whose height does not fit the person's."""
        cfg = self._cfg
        d2 = self._kf.centre_distance(self._mean[lost], self._cov[lost], boxes)
        heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)[None, :]
        ratio = heights / np.maximum(self._mean[lost, 3], 1.0)[:, None]
        fits = (ratio <= cfg.recover_height_ratio) & (ratio >= 1.0 / cfg.recover_height_ratio)
        return np.where(fits, np.clip(1.0 - d2 / cfg.recover_gate, 0.0, 1.0), 0.0)

    def _correct(self, rows: np.ndarray, det_rows: np.ndarray, xyxy: np.ndarray, ts: float) -> None:
        mean, cov = self._kf.update(self._mean[rows], self._cov[rows], xyxy[det_rows])
        self._mean[rows] = mean
        self._cov[rows] = cov
        self._last_hit[rows] = ts
        ripe = (self._state[rows] == TrackState.TENTATIVE) & (ts - self._born[rows] >= self._cfg.confirm_s)
        found = self._state[rows] == TrackState.LOST
        self._state[rows[ripe | found]] = TrackState.TRACKED

    def _age(self, matched: np.ndarray, ts: float) -> None:
        """Unmatched confirmed tracks become lost, then go; unmatched tentative ones go sooner."""
        unmatched = np.ones(self._ids.shape[0], dtype=bool)
        unmatched[matched] = False
        self._state[unmatched & (self._state == TrackState.TRACKED)] = TrackState.LOST
        limit = np.where(self._state == TrackState.TENTATIVE, self._cfg.tentative_gap_s, self._cfg.lost_s)
        keep = ~(unmatched & (ts - self._last_hit > limit))
        self._ids, self._state = self._ids[keep], self._state[keep]
        self._born, self._last_hit = self._born[keep], self._last_hit[keep]
        self._mean, self._cov = self._mean[keep], self._cov[keep]

    def _start(self, xyxy: np.ndarray, ts: float) -> np.ndarray:
        n = xyxy.shape[0]
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        mean, cov = self._kf.initiate(xyxy)
        self._ids = np.concatenate([self._ids, ids])
        self._state = np.concatenate([self._state, np.full(n, TrackState.TENTATIVE, dtype=np.int8)])
        self._born = np.concatenate([self._born, np.full(n, ts)])
        self._last_hit = np.concatenate([self._last_hit, np.full(n, ts)])
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        return ids
