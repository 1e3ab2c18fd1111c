"""What a camera's FFmpeg decoding threads cost: one thread (edge/capture.py) against OpenCV's default, one per core.

    .venv/bin/python benchmarks/bench_decode_threads.py [--rounds 5]

Each round decodes every frame of the four footage files with each setting in turn (interleaved, so load elsewhere on
the shared machine hits both alike) and counts the CPU time of the whole process, FFmpeg's own threads included
(time.process_time). Prints CPU milliseconds per frame for each and their ratio, and whether both decoded the same
pixels. The memory side is the daemon's, measured by benchmarks/profile_memory.py (its malloc thread arenas).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.capture import DECODE_THREADS  # noqa: E402

SETTINGS = {"one per core (OpenCV's default)": 0, "edge/capture.py": DECODE_THREADS}


def decode(path: Path, threads: int) -> tuple[int, bytes, float]:
    """Frames, a digest of their pixels, and the CPU seconds it took to decode them all."""
    digest = hashlib.sha256()
    frames = 0
    began = time.process_time()
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames += 1
        digest.update(image.data)
    cap.release()
    return frames, digest.digest(), time.process_time() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    paths = sorted((REPO / "footage").glob("cam_*.mp4"))
    cpu = dict.fromkeys(SETTINGS, 0.0)
    frames = dict.fromkeys(SETTINGS, 0)
    pixels: dict[str, set[bytes]] = {name: set() for name in SETTINGS}
    for _ in range(args.rounds):
        for path in paths:
            for name, threads in SETTINGS.items():
                n, digest, seconds = decode(path, threads)
                frames[name] += n
                cpu[name] += seconds
                pixels[name].add(digest)
    per_frame = {name: 1000 * cpu[name] / frames[name] for name in SETTINGS}
    first = next(iter(SETTINGS))
    for name in SETTINGS:
        print(
            f"{name:32s}: {per_frame[name]:.3f} ms CPU a frame ({per_frame[name] / per_frame[first]:.3f}x), "
            f"{frames[name]} frames"
        )
    print(f"same pixels: {pixels[first] == pixels['edge/capture.py']}")


if __name__ == "__main__":
    main()
