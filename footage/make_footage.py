#!/usr/bin/env python3
"""Rebuild the bundled demo footage from OpenCV's sample data.

The demo bus has four blind-spot cameras. We have no real bus footage we may
redistribute, so the cameras are played by OpenCV's ``vtest.avi`` sample
(768x576, 795 frames, 10 fps, people walking across a campus walkway), cut
into four ~20 s segments:

    cam_front.mp4   frames   0-199
    cam_right.mp4   frames 200-399
    cam_rear.mp4    frames 400-599
    cam_left.mp4    frames 600-794

``tests/services/rtsp_server.py`` serves these .mp4 files directly (it
JPEG-encodes each one once, in ~0.5 s, at start-up), so no MJPEG copy is
stored: at JPEG quality 80 the 795 frames would take ~60 MB against ~12.5 MB
for the four .mp4 files.

It also copies three still images for detector tests: two with people
(basketball1.png) and one without (fruits.jpg).

The source files come from the Debian package ``opencv-doc`` (see
PROVENANCE.md for versions, licence and checksums).  Usage::

    python3 -m venv /tmp/fvenv && /tmp/fvenv/bin/pip install opencv-python numpy
    /tmp/fvenv/bin/python footage/make_footage.py            # fetches opencv-doc
    /tmp/fvenv/bin/python footage/make_footage.py --data-dir DIR   # already extracted

Without ``--data-dir`` the script runs ``apt-get download opencv-doc`` and
``dpkg-deb -x`` in a temporary directory (needs ``apt-get update`` first).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

FOOTAGE_DIR = Path(__file__).resolve().parent
DATA_SUBDIR = "usr/share/doc/opencv-doc/examples/data"

# The inputs are pinned by checksum so a different opencv-doc version cannot
# silently change the footage that tests and benchmarks rely on.
SOURCE_SHA256 = {
    "vtest.avi": "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
    "basketball1.png": "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
    "fruits.jpg": "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
}

# (output name, first frame, last frame inclusive)
SEGMENTS = [
    ("cam_front", 0, 199),
    ("cam_right", 200, 399),
    ("cam_rear", 400, 599),
    ("cam_left", 600, 794),
]
IMAGES = ["basketball1.png", "fruits.jpg"]

EXPECTED_SIZE = (768, 576)
EXPECTED_FPS = 10.0
EXPECTED_FRAMES = 795


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_opencv_doc(workdir: Path) -> Path:
    """Download and unpack opencv-doc; return its examples/data directory."""
    subprocess.run(["apt-get", "download", "opencv-doc"], cwd=workdir, check=True)
    deb = sorted(glob.glob(str(workdir / "opencv-doc_*.deb")))[-1]
    print(f"using {Path(deb).name}")
    subprocess.run(["dpkg-deb", "-x", deb, str(workdir / "root")], check=True)
    return workdir / "root" / DATA_SUBDIR


def check_sources(data_dir: Path) -> None:
    for name, expected in SOURCE_SHA256.items():
        actual = sha256(data_dir / name)
        if actual != expected:
            sys.exit(
                f"{name}: sha256 {actual} differs from the pinned {expected}; "
                "the opencv-doc version changed, review PROVENANCE.md"
            )


def read_all_frames(path: Path) -> list:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        sys.exit(f"cannot open {path}")
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if len(frames) != EXPECTED_FRAMES:
        sys.exit(f"{path}: decoded {len(frames)} frames, expected {EXPECTED_FRAMES}")
    return frames


def write_mp4(path: Path, frames: list) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), EXPECTED_FPS, EXPECTED_SIZE)
    if not writer.isOpened():
        sys.exit(f"cannot open a mp4v writer for {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()


def verify_mp4(path: Path, expected_frames: int) -> None:
    """Read the file back the way vigie will, and fail loudly on any mismatch."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    fps = cap.get(cv2.CAP_PROP_FPS)
    decoded = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if (frame.shape[1], frame.shape[0]) != EXPECTED_SIZE:
            sys.exit(f"{path}: frame size {frame.shape[1]}x{frame.shape[0]}")
        decoded += 1
    cap.release()
    if decoded != expected_frames or abs(fps - EXPECTED_FPS) > 1e-3:
        sys.exit(f"{path}: read back {decoded} frames at {fps} fps, expected {expected_frames} at {EXPECTED_FPS}")
    print(f"  verified {path.name}: {decoded} frames, {fps:g} fps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help=f"opencv-doc's extracted {DATA_SUBDIR} (default: fetch it)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or fetch_opencv_doc(Path(tmp))
        check_sources(data_dir)
        frames = read_all_frames(data_dir / "vtest.avi")

        for name, first, last in SEGMENTS:
            segment = frames[first : last + 1]
            mp4 = FOOTAGE_DIR / f"{name}.mp4"
            write_mp4(mp4, segment)
            verify_mp4(mp4, len(segment))

        images_dir = FOOTAGE_DIR / "images"
        images_dir.mkdir(exist_ok=True)
        for name in IMAGES:
            shutil.copyfile(data_dir / name, images_dir / name)

    # Same "sha256  path" layout as sha256sum, to paste into PROVENANCE.md.
    outputs = [FOOTAGE_DIR / f"{name}.mp4" for name, _, _ in SEGMENTS]
    outputs += [FOOTAGE_DIR / "images" / name for name in IMAGES]
    for path in outputs:
        print(f"{sha256(path)}  {path.relative_to(FOOTAGE_DIR)}  ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
