"""Cut the walkers of the bundled footage out as sprites, for scenarios with known truth (replay/scenario.py).

Reproduce with `.venv/bin/python footage/people/make_people.py` from the repository root. What it does:

1. an empty walkway: the per-pixel median of every 4th frame of the four bundled camera files (people move, the
   ground does not, so the median is the ground);
2. the walkers: the bundled person detector at a high threshold, linked over frames by vigie's own tracker, so each
   sprite sequence shows one real person walking;
3. each sprite: the pixels inside the person's box that differ from the empty walkway, cleaned up, kept as the
   alpha channel of an RGBA PNG. Only isolated people (no other box near), fully inside the frame and with a
   plausible silhouette are kept.

The output is data derived from the OpenCV sample video (see ../PROVENANCE.md, same licence). The detector is used
only to find people to cut out; the scenarios' truth comes from where the generator pastes them, never from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from core.types import Detections  # noqa: E402
from edge.config import DetectorConfig  # noqa: E402
from edge.detector import PersonDetector  # noqa: E402
from edge.tracker import ByteTracker, TrackerConfig, iou_matrix  # noqa: E402

CAMERAS = ("front", "right", "rear", "left")
MIN_SCORE = 0.6
MIN_HEIGHT_PX = 60
MAX_WIDTH_RATIO = 0.55
SPRITES_PER_PERSON = 16
MIN_SPRITES = 10
MAX_PEOPLE = 10
DIFF_LEVEL = 28  # grey levels from the empty walkway that count as "person"


def read_all() -> list[np.ndarray]:
    frames = []
    for cam in CAMERAS:
        cap = cv2.VideoCapture(str(HERE.parent / f"cam_{cam}.mp4"))
        ok, frame = cap.read()
        while ok:
            frames.append(frame)
            ok, frame = cap.read()
        cap.release()
    return frames


def silhouette(frame: np.ndarray, background: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """Alpha mask (uint8) of the person in `box`, or None when the cut-out does not look like one person."""
    x1, y1, x2, y2 = box
    diff = cv2.absdiff(frame[y1:y2, x1:x2], background[y1:y2, x1:x2]).max(axis=2)
    mask = (diff > DIFF_LEVEL).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        return None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == biggest).astype(np.uint8)
    fill = mask.mean()
    rows = np.flatnonzero(mask.any(axis=1))
    # A person fills part of their box and spans most of its height (head to feet).
    if not 0.25 <= fill <= 0.8 or rows.size == 0 or (rows[-1] - rows[0]) < 0.8 * mask.shape[0]:
        return None
    return cv2.GaussianBlur(mask * 255, (3, 3), 0)


def main() -> None:
    frames = read_all()
    background = np.median(np.stack(frames[::4]), axis=0).astype(np.uint8)
    cv2.imwrite(str(HERE / "background.jpg"), background, [cv2.IMWRITE_JPEG_QUALITY, 95])

    detector = PersonDetector(DetectorConfig(model="fp32", score_threshold=MIN_SCORE, threads=1))
    tracker = ByteTracker(TrackerConfig(high_score=MIN_SCORE))
    height, width = background.shape[:2]
    sprites: dict[int, list[np.ndarray]] = {}
    for i, frame in enumerate(frames):
        if i % 200 == 0:
            tracker = ByteTracker(TrackerConfig(high_score=MIN_SCORE))  # a new camera file: new people
        dets: Detections = detector.detect([frame])[0]
        tracks = tracker.update(dets, i / 10.0)
        boxes = np.round(tracks.detections.xyxy).astype(int)
        near = iou_matrix(tracks.detections.xyxy, tracks.detections.xyxy) > 0
        for k, (box, tid) in enumerate(zip(boxes, tracks.track_id, strict=True)):
            x1, y1, x2, y2 = box
            alone = near[k].sum() == 1
            inside = x1 > 2 and y1 > 2 and x2 < width - 2 and y2 < height - 2
            slim = (x2 - x1) <= MAX_WIDTH_RATIO * (y2 - y1)  # wider boxes are mostly two people walking together
            if not (alone and inside and slim and y2 - y1 >= MIN_HEIGHT_PX):
                continue
            alpha = silhouette(frame, background, box)
            if alpha is not None:
                rgba = np.dstack([frame[y1:y2, x1:x2], alpha])
                sprites.setdefault(int(tid) + 1000 * (i // 200), []).append(rgba)
    kept = sorted((s for s in sprites.values() if len(s) >= MIN_SPRITES), key=len, reverse=True)[:MAX_PEOPLE]
    for old in HERE.glob("walker_*.png"):
        old.unlink()
    for p, seq in enumerate(kept):
        step = max(len(seq) // SPRITES_PER_PERSON, 1)
        for k, rgba in enumerate(seq[::step][:SPRITES_PER_PERSON]):
            cv2.imwrite(str(HERE / f"walker_{p:02d}_{k:02d}.png"), rgba)
    print(f"background.jpg and {len(kept)} walkers ({sum(min(len(s), SPRITES_PER_PERSON) for s in kept)} sprites)")


if __name__ == "__main__":
    main()
