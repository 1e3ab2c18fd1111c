"""What onnxruntime's memory settings cost: the person detector and the face model as the daemon and the recorder
run them, memory and CPU, before and after.

    .venv/bin/python benchmarks/bench_session_memory.py [--person-runs 200] [--face-frames 100]

Arms, on frames of footage/cam_*.mp4 (768x576), one intra-op thread as both processes run them:
- person: batches of 4 (the daemon's four cameras) after a warm-up at batches 1 to 4 as PersonDetector does: with
  memory patterns (one block planned per input shape and kept) and onnxruntime's own arena, as before; without
  patterns (measured, not taken: it costs CPU); with patterns in the process's shared arena (core/models.py);
- face, the recorder's int8 model and the float one: two frames a call with patterns in its own arena (before); one
  frame a call; without patterns; in the shared arena (now).

Memory, each arm in a process of its own, above what the process held before the session: its PSS once the model
is loaded and warmed up, its highest PSS while running (what e2e.py's sum sees of it), and the rise of its peak
resident set (VmHWM, between two samples included). CPU, every arm of a model in one process, interleaved in blocks
of ten calls so that load elsewhere on the shared machine hits them alike: CPU milliseconds of `run` per frame
(time.process_time), and the ratio to the first arm. Each arm's outputs, frame by frame, are compared with the first
arm's: a memory setting must not change a single value.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.models import session_options  # noqa: E402
from edge.detector import INPUT_SIZE, INT8_MODEL_PATH, preprocess  # noqa: E402
from recorder.faces import FACE_MODELS, to_batch  # noqa: E402

BLOCK = 10
POOL = 40  # distinct frames, cycled: enough to vary the faces and persons, few enough not to weigh on memory


@dataclass(frozen=True, slots=True)
class Arm:
    model: str  # person, or a face model of recorder.faces.FACE_MODELS (int8, the recorder's default; fp32)
    batch: int
    pattern: bool  # memory patterns
    shared: bool  # the process's arena (core/models.py), or onnxruntime's own per session

    @property
    def label(self) -> str:
        what = self.model if self.model == "person" else f"face {self.model}"
        arena = "shared arena" if self.shared else "own arena"
        return f"{what}, batch {self.batch}, patterns {'on' if self.pattern else 'off'}, {arena}"

    @property
    def key(self) -> str:
        return f"{self.model}:{self.batch}:{int(self.pattern)}:{int(self.shared)}"

    @classmethod
    def parse(cls, key: str) -> Arm:
        model, batch, pattern, shared = key.split(":")
        return cls(model, int(batch), pattern == "1", shared == "1")


# The first arm of each model is how it ran before (onnxruntime's defaults, the recorder two frames a call); the last
# is how it runs now; those between tell each change's share, or what was measured and not taken.
ARMS = {
    "person": (Arm("person", 4, True, False), Arm("person", 4, False, False), Arm("person", 4, True, True)),
    **{
        face: (
            Arm(face, 2, True, False),
            Arm(face, 1, True, False),
            Arm(face, 1, False, False),
            Arm(face, 1, False, True),
        )
        for face in ("int8", "fp32")
    },
}


def options(arm: Arm) -> ort.SessionOptions:
    if arm.shared:
        return session_options(1, plan_memory=arm.pattern)
    # Before: the same threads and optimisation, each session with onnxruntime's own arena.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_mem_pattern = arm.pattern
    return opts


def footage(frames: int) -> list[np.ndarray]:
    """`frames` frames taken in turn from the four cameras, as the daemon's batches mix them; a file at its end
    starts again, as the daemon loops it."""
    paths = sorted((REPO / "footage").glob("cam_*.mp4"))
    caps = [cv2.VideoCapture(str(p)) for p in paths]
    out: list[np.ndarray] = []
    while len(out) < frames:
        for i, cap in enumerate(caps):
            ok, image = cap.read()
            if not ok:
                caps[i] = cap = cv2.VideoCapture(str(paths[i]))
                ok, image = cap.read()
            if not ok:
                raise SystemExit(f"{paths[i]}: no frame can be read")
            out.append(image)
    return out[:frames]


class Session:
    """One arm's session, fed as the daemon or the recorder feeds the model."""

    def __init__(self, arm: Arm):
        self.arm = arm
        opts = options(arm)
        path = INT8_MODEL_PATH if arm.model == "person" else FACE_MODELS[arm.model].path
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        # The warm-ups of PersonDetector and FaceDetector: they shape what the arena holds from the start.
        if arm.model == "person":
            for n in range(1, 5):
                self._session.run(None, {self._input: np.zeros((n, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)})
        else:
            self._session.run(None, {self._input: to_batch([np.zeros((64, 64, 3), np.uint8)] * 2)})

    def batch(self, pool: list[np.ndarray], call: int) -> np.ndarray:
        """The model's input for the `call`-th call: the next frames of the pool, in turn."""
        n = self.arm.batch
        start = call * n % (len(pool) - n + 1)
        return (preprocess if self.arm.model == "person" else to_batch)(pool[start : start + n])

    def run(self, batch: np.ndarray) -> list[list[np.ndarray]]:
        """The outputs of each frame of the batch."""
        outputs = self._session.run(None, {self._input: batch})
        return [[o[i] for o in outputs] for i in range(len(batch))]


def kilobytes(field: str, path: str = "/proc/self/status") -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ValueError(f"{path} has no {field}")


def pss_kb() -> int:
    return kilobytes("Pss", "/proc/self/smaps_rollup")


def child(key: str, calls: int) -> None:
    """One arm alone in this process: its memory, as the rise above what the process held before the session."""
    arm = Arm.parse(key)
    pool = footage(POOL)
    before_hwm, before = kilobytes("VmHWM"), pss_kb()
    session = Session(arm)
    loaded = most = pss_kb()
    for i in range(calls):
        session.run(session.batch(pool, i))
        most = max(most, pss_kb())
    mb = {"loaded": loaded - before, "running": most - before, "peak_rss": kilobytes("VmHWM") - before_hwm}
    print(json.dumps({k: v / 1024 for k, v in mb.items()}))


def memory(arm: Arm, frames: int) -> dict:
    cmd = [sys.executable, __file__, "--child", arm.key, "--calls", str(frames // arm.batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout)


def cpu_and_equality(arms: tuple[Arm, ...], frames: int) -> tuple[list[float], list[bool]]:
    """CPU ms per frame of each arm's `run`, interleaved; and whether each arm's outputs equal the first arm's."""
    pool = footage(POOL)
    sessions = [Session(arm) for arm in arms]
    cpu = [0.0] * len(arms)
    outputs: list[list[list[np.ndarray]]] = [[] for _ in arms]
    for start in range(0, frames, BLOCK * 4):
        for i, session in enumerate(sessions):
            n = session.arm.batch
            for call in range(start // n, min(start + BLOCK * 4, frames) // n):
                batch = session.batch(pool, call)
                began = time.process_time()
                got = session.run(batch)
                cpu[i] += time.process_time() - began
                if len(outputs[i]) < len(pool):  # the pool's frames once: the rest repeat them
                    outputs[i] += got
    per_frame = [1000 * c / frames for c in cpu]
    same = [all(all(map(np.array_equal, a, b)) for a, b in zip(o, outputs[0], strict=True)) for o in outputs]
    return per_frame, same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--person-runs", type=int, default=200, help="calls of batch 4 per arm")
    ap.add_argument("--face-frames", type=int, default=100, help="frames per face arm (16-40 ms CPU each)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.calls)
        return
    for model, arms in ARMS.items():
        frames = 4 * args.person_runs if model == "person" else args.face_frames
        per_frame, same = cpu_and_equality(arms, frames)
        what = model if model == "person" else f"face {model}"
        print(f"{what} ({frames} frames per arm; memory: above the process before the session, warm-up included):")
        for arm, ms, ok in zip(arms, per_frame, same, strict=True):
            mem = memory(arm, frames)
            print(
                f"  {arm.label:47s} PSS +{mem['loaded']:5.1f} MB loaded, +{mem['running']:5.1f} MB running (peak RSS"
                f" +{mem['peak_rss']:5.1f}); CPU {ms:5.2f} ms a frame ({ms / per_frame[0]:.3f}x); outputs "
                + ("equal" if ok else "DIFFER")
            )


if __name__ == "__main__":
    main()
