"""Build the face test files in footage/faces/ from two registry packages (provenance: footage/PROVENANCE.md).

- `astronaut.jpg`: scikit-image's `skimage/data/astronaut.png` (NASA, public domain), re-encoded as JPEG.
- `group.jpg`: a 2x2 collage of OpenCV's `basketball1.png`, `basketball2.png` (mirrored) and the astronaut
  (twice, once mirrored): four frontal faces and two heads turned away, at different sizes.
- `pan.mp4`: 40 frames (10 fps, mp4v) of a 640x480 window panning diagonally across `group.jpg`, so faces
  enter and leave the frame and move between frames.

    python footage/faces/make_faces.py --skimage-wheel /tmp/skim/scikit_image-0.26.0-...whl \\
        --opencv-data /tmp/ocvdoc/usr/share/doc/opencv-doc/examples/data

Obtain the sources with `pip download scikit-image==0.26.0 --no-deps` and `apt-get download opencv-doc` +
`dpkg-deb -x` (the latter as in footage/make_footage.py).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
SOURCES = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "basketball1.png": "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
    "basketball2.png": "b3047772e0dc6c9d83c26f64894ca1a897f799f855c5574ac24b2ef934c2978e",
}
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 90]
PAN_FRAMES, PAN_FPS, PAN_SIZE = 40, 10.0, (640, 480)


def load(data: bytes, name: str, expected: str | None) -> np.ndarray:
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        sys.exit(f"{name}: sha256 {digest} differs from the recorded one")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"{name}: not an image")
    return img


def collage(astro: np.ndarray, b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    a = cv2.resize(astro, (480, 480), interpolation=cv2.INTER_AREA)
    top = np.hstack([b1, a])
    bottom = np.hstack([cv2.flip(a, 1), cv2.flip(b2, 1)])
    return np.vstack([top, bottom])  # 1120 x 960


def pan(group: np.ndarray, out: Path) -> None:
    w, h = PAN_SIZE
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), PAN_FPS, (w, h))
    if not writer.isOpened():
        sys.exit("cv2.VideoWriter cannot write mp4v here")
    for i in range(PAN_FRAMES):
        t = i / (PAN_FRAMES - 1)
        x = round(t * (group.shape[1] - w))
        y = round(t * (group.shape[0] - h))
        writer.write(np.ascontiguousarray(group[y : y + h, x : x + w]))
    writer.release()
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if n != PAN_FRAMES:
        sys.exit(f"{out}: read back {n} frames, expected {PAN_FRAMES}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skimage-wheel", type=Path, required=True)
    ap.add_argument("--opencv-data", type=Path, required=True)
    args = ap.parse_args()
    with zipfile.ZipFile(args.skimage_wheel) as zf:
        astro = load(zf.read("skimage/data/astronaut.png"), "astronaut.png", SOURCES["astronaut.png"])
    b1 = load((args.opencv_data / "basketball1.png").read_bytes(), "basketball1.png", SOURCES["basketball1.png"])
    b2 = load((args.opencv_data / "basketball2.png").read_bytes(), "basketball2.png", SOURCES["basketball2.png"])
    cv2.imwrite(str(HERE / "astronaut.jpg"), astro, JPEG)
    group = collage(astro, b1, b2)
    cv2.imwrite(str(HERE / "group.jpg"), group, JPEG)
    pan(group, HERE / "pan.mp4")
    for name in ("astronaut.jpg", "group.jpg", "pan.mp4"):
        path = HERE / name
        print(f"{name}  {path.stat().st_size}  {hashlib.sha256(path.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
