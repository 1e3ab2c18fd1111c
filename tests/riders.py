"""The hand-labelled riders and pedestrians of footage/riders/, and how many of each a detector finds.

Shared by tests/test_riders.py and benchmarks/bench_riders.py.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from edge.detector import PersonDetector
from edge.tracker import iou_matrix

RIDERS = Path(__file__).resolve().parents[1] / "footage" / "riders"
KINDS = ("rider", "pedestrian")


@dataclass(frozen=True, slots=True)
class Labelled:
    image: str
    kind: str
    box: tuple[float, float, float, float]


def labels() -> list[Labelled]:
    with open(RIDERS / "boxes.csv", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return [Labelled(r["image"], r["kind"], tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2"))) for r in rows]


def matched(truth: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which truth boxes a detection finds, one-to-one at IoU >= 0.5 (one box cannot find two people)."""
    hit = np.zeros(len(truth), dtype=bool)
    if len(truth) and len(boxes):
        iou = iou_matrix(truth, boxes)
        rows, cols = linear_sum_assignment(-iou)
        hit[rows[iou[rows, cols] >= 0.5]] = True
    return hit


def person_boxes(detector: PersonDetector) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: detector.detect([image])[0].xyxy


def found_by_kind(
    boxes_of: Callable[[np.ndarray], np.ndarray], truth: list[Labelled]
) -> dict[str, tuple[int, int, list[str]]]:
    """Per kind: people found by `boxes_of` (an image's person boxes), people labelled, images with a miss."""
    found = dict.fromkeys(KINDS, 0)
    total = dict.fromkeys(KINDS, 0)
    missed: dict[str, list[str]] = {k: [] for k in KINDS}
    for name in sorted({t.image for t in truth}):
        people = [t for t in truth if t.image == name]
        hits = matched(np.array([p.box for p in people], np.float32), boxes_of(cv2.imread(str(RIDERS / name))))
        for person, hit in zip(people, hits, strict=True):
            total[person.kind] += 1
            found[person.kind] += int(hit)
            if not hit:
                missed[person.kind].append(name)
    return {k: (found[k], total[k], missed[k]) for k in KINDS}
