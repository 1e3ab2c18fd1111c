"""Anonymisation benchmark: where to run the face model, and `vigie anonymise` against the `deface` tool.

    .venv/bin/python benchmarks/bench_anonymise.py [--rounds 5] [--deface PATH] [--json OUT]

0. int8 vs float face model (models/centerface_int8.md): CPU ms per 768x576 camera frame, median of interleaved
   runs, one thread each; and the accuracy gate's own counts (tests/test_faces_int8.py).

1. Full frame vs crops: on every frame of the test clip (footage/faces/pan.mp4, 640x480) and the face test
   images, the Anonymiser's `blur_regions` with `detect_on="full"` and with `detect_on="crops"` (same person
   boxes, computed once), interleaved frame by frame so both see the same machine load. Reported: median ms
   per frame, their ratio, and recall: of the faces a full-frame run finds at the threshold, how many each
   mode's blurred regions cover.
2. vs deface: `vigie anonymise CLIP`, the recorder's path and `deface CLIP` as subprocesses (start-up and model
   loading included in all three), alternated `--rounds` times on the same clip (pan.mp4 played forth and back 3
   times, 240 frames): median wall time and ratios (target >= 2x). The recorder's path is what the recorder does
   with each frame of a clip (recorder/worker.py): the JPEG it rescues the frame as, decoding it again, the
   anonymiser with the daemon's person boxes (computed beforehand: the daemon sends them with the frame), and
   the clip writer (ClipFile: video and sidecar). Then coverage: every face box deface's own CenterFace run
   reports (its default threshold 0.2, frames read with imageio as deface does) must lie inside our blurred
   regions, for `vigie anonymise` and for the recorder's path; the faces left uncovered are listed.

deface pulls in opencv-python (the GUI build), which would shadow opencv-python-headless in .venv, so it lives
in its own venv: `python3 -m venv /tmp/defvenv && /tmp/defvenv/bin/pip install deface==1.5.0 onnx onnxruntime`
(with `onnx` installed deface runs onnxruntime, its fastest CPU path; without it, cv2.dnn). A face is
"covered" when at least 90 % of its box area is inside the union of our blurred rectangles. The machine is
shared and noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DetectorConfig  # noqa: E402
from edge.detector import PersonDetector  # noqa: E402
from recorder.anonymise import AnonymiseConfig, Anonymiser  # noqa: E402
from recorder.faces import FaceConfig, FaceDetector, operating_threshold  # noqa: E402

FACES = REPO / "footage" / "faces"
IMAGES = [FACES / "group.jpg", FACES / "astronaut.jpg", REPO / "footage" / "images" / "basketball1.png"]
COVERED = 0.9
DEFACE_THRESHOLD = 0.2  # deface's default

# Run by deface's interpreter: its own detector, its own frame reader, boxes as JSON (one list per frame).
DEFACE_BOXES = """
import json, sys, imageio.v2 as iio
from deface.centerface import CenterFace
cf = CenterFace(in_shape=None, backend="auto")
out = []
for frame in iio.get_reader(sys.argv[1]):
    dets, _ = cf(frame, threshold=float(sys.argv[2]))
    out.append([[float(v) for v in d[:5]] for d in dets])
print(json.dumps(out))
"""


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def coverage(faces: np.ndarray, boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean per face: is >= COVERED of its box inside the union of the blurred rectangles?"""
    mask = np.zeros(shape[:2], np.uint8)
    for x1, y1, x2, y2 in boxes:
        mask[y1:y2, x1:x2] = 1
    h, w = shape[:2]
    out = []
    for x1, y1, x2, y2 in np.round(faces[:, :4]).astype(int):
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        area = max(x2 - x1, 0) * max(y2 - y1, 0)
        out.append(area > 0 and mask[y1:y2, x1:x2].sum() >= COVERED * area)
    return np.asarray(out, dtype=bool)


def full_vs_crops(frames: list[np.ndarray], rounds: int) -> dict:
    persons = PersonDetector(DetectorConfig(min_height=0.0))
    boxes = [persons.detect([f])[0].xyxy for f in frames]
    faces = FaceDetector()
    modes = {m: Anonymiser(AnonymiseConfig(detect_on=m), faces) for m in ("full", "crops")}
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for f, p in zip(frames, boxes, strict=True):
            for m, anon in modes.items():
                t = time.perf_counter()
                anon.blur_regions([f], [p])
                times[m].append((time.perf_counter() - t) * 1000)
    threshold = AnonymiseConfig().threshold
    ref_total, covered = 0, {m: 0 for m in modes}
    found = {m: 0 for m in modes}
    for f, p in zip(frames, boxes, strict=True):
        ref = faces.detect([f], threshold)[0]
        ref_total += len(ref)
        for m, anon in modes.items():
            r = anon.blur_regions([f], [p])[0]
            found[m] += len(r.faces)
            covered[m] += int(coverage(ref, r.boxes, f.shape).sum())
    ms = {m: round(statistics.median(t), 1) for m, t in times.items()}
    return {
        "frames": len(frames),
        "persons": int(sum(len(b) for b in boxes)),
        "median_ms": ms,
        "full_over_crops": round(ms["full"] / ms["crops"], 2),
        "reference_faces": ref_total,
        "faces_found": found,
        "reference_faces_covered": covered,
    }


def int8_vs_fp32(rounds: int) -> dict:
    """CPU per camera frame of each face model, and the gate's counts (the test's own functions)."""
    from tests.test_detector_int8 import kept
    from tests.test_faces_int8 import covered, unseen_frames

    cams = [read_video(REPO / "footage" / f"cam_{c}.mp4")[0] for c in ("front", "right", "rear", "left")]
    models = {name: FaceDetector(FaceConfig(name, threads=1)) for name in ("fp32", "int8")}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds * 10):
        for name, model in models.items():
            for frame in cams:
                t = time.process_time()
                model.detect([frame])
                cpu[name].append((time.process_time() - t) * 1000)
    frames = unseen_frames()
    anon = Anonymiser(AnonymiseConfig(face_model="int8", threads=1), models["int8"])
    total = blurred = found = int8_faces = 0
    for f in frames:
        ref = models["fp32"].detect([f], operating_threshold("fp32"))[0]
        got = models["int8"].detect([f], operating_threshold("int8"))[0]
        regions = anon.blur_regions([f], [np.zeros((0, 4), np.float32)])[0]  # faces alone: no head fallback
        total += len(ref)
        blurred += covered(ref, regions.boxes, f.shape)
        found += kept(ref[:, :4], got[:, :4])
        int8_faces += len(got)
    ms = {name: round(statistics.median(v), 1) for name, v in cpu.items()}
    return {
        "cpu_ms_per_frame": ms,
        "int8_less_cpu": round(ms["fp32"] / ms["int8"], 2),
        "gate_frames": len(frames),
        "fp32_faces": total,
        "blurred_by_int8_faces_alone": blurred,
        "found_by_int8": found,
        "int8_faces_not_float": int8_faces - found,  # more blurred than the float model would: never less
    }


def recorder_path(clip: Path, boxes: Path, out: Path) -> None:
    """What the recorder does with each frame of a clip, on `clip` (run as its own process by vs_deface)."""
    from recorder.clipfile import ClipFile, FrameMeta
    from recorder.worker import JPEG_QUALITY, WORK_BATCH, _decode

    persons = [np.asarray(b, np.float32).reshape(-1, 4) for b in json.loads(boxes.read_text())]
    anon = Anonymiser(AnonymiseConfig(threads=1))  # the recorder's own settings (recorder/worker.py)
    frames = read_video(clip)
    h, w = frames[0].shape[:2]
    file = ClipFile(out, "bench", "mp4", 10.0, (w, h))
    for start in range(0, len(frames), WORK_BATCH):
        batch = range(start, min(start + WORK_BATCH, len(frames)))
        jpegs = [cv2.imencode(".jpg", frames[i], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes() for i in batch]
        images = [_decode(j) for j in jpegs]
        for i, image in zip(batch, anon.anonymise(images, [persons[i] for i in batch]), strict=True):
            file.add(image, FrameMeta("cam", 0, i, float(i), persons[i], (), (), 0.0, "off"))
    file.finish({})


def recorder_regions(frames: list[np.ndarray], persons: list[np.ndarray]) -> list[np.ndarray]:
    """The rectangles the recorder's path blurs on each frame (its anonymiser, after the JPEG round trip)."""
    from recorder.worker import JPEG_QUALITY, _decode

    anon = Anonymiser(AnonymiseConfig(threads=1))
    out = []
    for f, p in zip(frames, persons, strict=True):
        image = _decode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes())
        out.append(anon.blur_regions([image], [p])[0].boxes)
    return out


def long_clip(folder: Path) -> Path:
    frames = read_video(FACES / "pan.mp4")
    clip = folder / "clip.mp4"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    for _ in range(3):
        for f in frames + frames[::-1]:
            writer.write(f)
    writer.release()
    return clip


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def vs_deface(deface: Path, rounds: int) -> dict:
    vigie = REPO / ".venv" / "bin" / "vigie"
    persons = PersonDetector(DetectorConfig(min_height=0.0))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = long_clip(folder)
        frames = read_video(clip)
        person_boxes = [persons.detect([f])[0].xyxy for f in frames]
        boxes = folder / "boxes.json"
        boxes.write_text(json.dumps([b.tolist() for b in person_boxes]))
        ours, ours_fp32, recorder, theirs = [], [], [], []
        for i in range(rounds):
            ours.append(timed([str(vigie), "anonymise", str(clip), "-o", str(folder / f"ours{i}.mp4")]))
            fp32 = [str(vigie), "anonymise", "--face-model", "fp32", str(clip), "-o", str(folder / f"fp32{i}.mp4")]
            ours_fp32.append(timed(fp32))
            (folder / f"rec{i}").mkdir()
            cmd = [sys.executable, __file__, "--recorder-path", str(clip), str(boxes), str(folder / f"rec{i}")]
            recorder.append(timed(cmd))
            theirs.append(timed([str(deface), str(clip), "-o", str(folder / f"deface{i}.mp4")]))
        python = deface.parent / "python"
        raw = subprocess.run(
            [str(python), "-c", DEFACE_BOXES, str(clip), str(DEFACE_THRESHOLD)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        deface_faces = [np.asarray(b, np.float32).reshape(-1, 5) for b in json.loads(raw.strip().splitlines()[-1])]
    anon = Anonymiser(AnonymiseConfig())
    ours_regions = [anon.blur_regions([f], [p])[0].boxes for f, p in zip(frames, person_boxes, strict=True)]
    paths = {"vigie anonymise": ours_regions, "recorder": recorder_regions(frames, person_boxes)}
    total, missed = 0, {name: [] for name in paths}
    for i, (f, theirs_f) in enumerate(zip(frames, deface_faces, strict=True)):
        total += len(theirs_f)
        for name, regions in paths.items():
            ok = coverage(theirs_f, regions[i], f.shape)
            missed[name] += [
                {"frame": i, "box": [round(float(v), 1) for v in theirs_f[j]]} for j in np.flatnonzero(~ok)
            ]
    med_ours, med_rec, med_theirs = statistics.median(ours), statistics.median(recorder), statistics.median(theirs)
    return {
        "frames": len(frames),
        "vigie_s": round(med_ours, 2),
        "vigie_fp32_face_model_s": round(statistics.median(ours_fp32), 2),
        "recorder_path_s": round(med_rec, 2),
        "deface_s": round(med_theirs, 2),
        "speedup": round(med_theirs / med_ours, 2),
        "recorder_path_speedup": round(med_theirs / med_rec, 2),
        "deface_faces": total,
        "deface_faces_left_unblurred": {name: len(m) for name, m in missed.items()},
        "missed": {name: m[:20] for name, m in missed.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--deface", type=Path, default=None, help="deface executable (default: PATH, /tmp/defvenv)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--recorder-path", nargs=3, type=Path, metavar=("CLIP", "BOXES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.recorder_path:  # one timed run of the recorder's path (vs_deface runs it as its own process)
        recorder_path(*args.recorder_path)
        return

    result = {"int8_vs_fp32": int8_vs_fp32(args.rounds)}
    print("face model, int8 vs fp32:", json.dumps(result["int8_vs_fp32"]))
    frames = read_video(FACES / "pan.mp4") + [cv2.imread(str(p)) for p in IMAGES]
    result["full_vs_crops"] = full_vs_crops(frames, args.rounds)
    print("full frame vs crops:", json.dumps(result["full_vs_crops"]))
    deface = args.deface or Path(shutil.which("deface") or "/tmp/defvenv/bin/deface")
    if deface.exists():
        result["vs_deface"] = vs_deface(deface, args.rounds)
        print("vs deface:", json.dumps(result["vs_deface"]))
    else:
        print(f"vs deface: skipped ({deface} not found; see this script's docstring)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
