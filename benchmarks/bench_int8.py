"""The int8 person model against the float one: accuracy and CPU, both in the same run. `make bench` runs it.

Prints what models/person_ssdlite_int8.md and the README quote: detections of the float model kept by the int8
one (every 5th frame of the bundled footage, each model at its operating threshold, one-to-one at IoU >= 0.5),
and CPU seconds per batch of four frames on one onnxruntime thread (process CPU time, not wall time: the machine
is shared, and CPU is what the bus computer pays).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config import DetectorConfig
from edge.detector import PersonDetector, preprocess
from tests.test_detector_int8 import every_fifth_frame, kept

ROUNDS = 30


def cpu_ms_per_batch(detector: PersonDetector, batch) -> float:  # type: ignore[no-untyped-def]
    detector.run_batch(batch)
    start = time.process_time()
    for _ in range(ROUNDS):
        detector.run_batch(batch)
    return (time.process_time() - start) / ROUNDS * 1000.0


def main() -> None:
    fp32 = PersonDetector(DetectorConfig(model="fp32", threads=1))
    int8 = PersonDetector(DetectorConfig(model="int8", threads=1))
    frames = every_fifth_frame()
    total = found = extra = 0
    for frame in frames:
        ref, got = fp32.detect([frame])[0].xyxy, int8.detect([frame])[0].xyxy
        k = kept(ref, got)
        total, found, extra = total + len(ref), found + k, extra + len(got) - k
    print(
        f"int8 vs fp32 on {len(frames)} frames: {found}/{total} float detections kept ({found / total:.1%}), "
        f"{extra} int8 boxes the float model does not have"
    )
    batch = preprocess(frames[:4])
    # Alternate the two so a burst of load elsewhere hits both alike.
    a = b = 0.0
    for _ in range(3):
        a += cpu_ms_per_batch(fp32, batch)
        b += cpu_ms_per_batch(int8, batch)
    print(f"CPU per batch of 4, 1 thread: fp32 {a / 3:.1f} ms, int8 {b / 3:.1f} ms: {a / b:.2f}x less CPU")


if __name__ == "__main__":
    main()
