"""Riders against pedestrians: does the person detector miss people on bicycles? `make bench` runs it.

On footage/riders/ (11 frames of a 1906 street film, filmed from a cable car: see its README), every person at least
60 px tall is boxed by hand, riders without their bicycle. Each bundled model at its operating threshold; a box
finds a person one-to-one at IoU >= 0.5. Only recall is scored: people under 60 px are not labelled, so a box on
one of them is neither right nor wrong here.

Also checks what a second cue would cost: the bundled network is a COCO SSDLite fine-tuned to one class, so if it
still had bicycle or motorcycle outputs they would come free with every inference. It prints the classes the model
returns on these frames.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.models import open_session
from edge.config import DetectorConfig
from edge.detector import PersonDetector, preprocess
from tests.riders import KINDS, RIDERS, found_by_kind, labels


def classes_returned(detector_model: Path, images: list[np.ndarray]) -> set[float]:
    session = open_session(detector_model, 1, "detector.model")
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(names, {session.get_inputs()[0].name: preprocess(images)}), strict=True))
    return {float(c) for c in np.unique(out["detection_classes"])}


def main() -> None:
    truth = labels()
    images = sorted({t.image for t in truth})
    print(f"{len(images)} frames, " + ", ".join(f"{sum(t.kind == k for t in truth)} {k}s" for k in KINDS))
    for model in ("int8", "fp32"):
        detector = PersonDetector(DetectorConfig(model=model))
        result = found_by_kind(detector, truth)
        cells = [f"{k}s {f}/{n} ({f / n:.0%})" for k, (f, n, _) in result.items()]
        print(f"{model} at {detector.threshold:.2f}: " + ", ".join(cells))
        print(f"  riders missed in: {', '.join(result['rider'][2]) or 'none'}")
    frames = [cv2.imread(str(RIDERS / name)) for name in images]
    config = DetectorConfig()
    classes = classes_returned(config.model_path, frames)
    print(
        f"classes the bundled model returns on these frames (100 boxes each): {sorted(classes)} "
        "(1 = person: no bicycle or motorcycle output to keep)"
    )


if __name__ == "__main__":
    main()
