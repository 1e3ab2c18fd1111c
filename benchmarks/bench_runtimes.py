"""onnxruntime against OpenVINO, float against int8, one thread against two: what a frame costs. `make bench` runs it.

    .venv/bin/python benchmarks/bench_runtimes.py [--rounds 5]

Prints, from one run (the machine is shared and noisy: compare within the run):
- CPU milliseconds per frame (process + children CPU time, all threads: what the bus computer pays) and wall
  milliseconds per batch, at batch sizes 1 and 4 (the daemon batches its four cameras), for every runtime, model and
  thread count a config can choose, through the detector the daemon uses (edge/detector.py);
- the alternatives the defaults were chosen against, built here: onnxruntime with its intra-op threads spin-waiting
  (`session.intra_op.allow_spinning = 1`, onnxruntime's own default), OpenVINO compiled once with a dynamic batch
  axis instead of once per batch size, and OpenVINO running the float layers in bf16 (its default on this CPU);
- the accuracy gate of tests/test_detector_int8.py for each runtime and model against onnxruntime's float model;
- the share of the non-max-suppression Loop in each runtime's time, and what each costs at start.
Rounds interleave every variant, so a burst of load elsewhere hits all of them alike; medians are printed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import openvino as ov

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DetectorConfig, RuntimeName  # noqa: E402
from edge.detector import PersonDetector, preprocess  # noqa: E402
from edge.runtime_openvino import MAX_BATCH  # noqa: E402
from tests.test_detector_int8 import BUNDLED_IMAGES, every_fifth_frame, kept  # noqa: E402

CALLS = {1: 24, 4: 8}  # calls per round and batch size: 24 frames each
Run = Callable[[np.ndarray], object]


def cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@dataclass
class Variant:
    label: str
    run: Run
    cpu_ms_per_frame: dict[int, list[float]]
    wall_ms_per_batch: dict[int, list[float]]

    def measure(self, batch: np.ndarray) -> None:
        n = len(batch)
        walls = []
        start = cpu_seconds()
        for _ in range(CALLS[n]):
            t = time.perf_counter()
            self.run(batch)
            walls.append((time.perf_counter() - t) * 1000.0)
        self.cpu_ms_per_frame[n].append((cpu_seconds() - start) * 1000.0 / (CALLS[n] * n))
        self.wall_ms_per_batch[n].extend(walls)

    def cpu(self, n: int) -> float:
        return statistics.median(self.cpu_ms_per_frame[n])

    def wall(self, n: int) -> float:
        return statistics.median(self.wall_ms_per_batch[n])


def variant(label: str, run: Run) -> Variant:
    return Variant(label, run, {1: [], 4: []}, {1: [], 4: []})


def model_path(model: str) -> Path:
    return DetectorConfig(model=model).model_path


def ort_spinning(model: str, threads: int) -> Run:
    """onnxruntime as it comes: worker threads spin-wait for work (vigie turns that off: core/models.py)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    session = ort.InferenceSession(str(model_path(model)), opts, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(["detection_boxes", "detection_scores"], {"image_tensor": batch})


def ov_compiled(model: str, threads: int, size: int | None, precision: str = "f32", profile: bool = False):  # type: ignore[no-untyped-def]
    """OpenVINO as edge/runtime_openvino.py compiles it, but for one batch size, or a dynamic one (None)."""
    core = ov.Core()
    net = core.read_model(str(model_path(model)))
    if size is not None:
        net.reshape({net.inputs[0]: [size, 300, 300, 3]})
    settings = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    settings |= {"INFERENCE_PRECISION_HINT": precision, "ENABLE_CPU_PINNING": False, "PERF_COUNT": profile}
    return core.compile_model(net, "CPU", settings)


def ov_variant(model: str, threads: int, *, per_batch_size: bool, precision: str = "f32") -> Run:
    if not per_batch_size:
        request = ov_compiled(model, threads, None, precision).create_infer_request()
        return lambda batch: request.infer({0: batch})
    requests = {n: ov_compiled(model, threads, n, precision).create_infer_request() for n in (1, 4)}
    return lambda batch: requests[len(batch)].infer({0: batch})


def build_variants() -> tuple[list[Variant], dict[str, float]]:
    """Every choice a config has, through the daemon's own detector; then the alternatives. Also: start CPU."""
    variants, start_cpu = [], {}
    for runtime in ("onnxruntime", "openvino"):
        for model in ("fp32", "int8"):
            for threads in (1, 2):
                before = cpu_seconds()
                det = PersonDetector(DetectorConfig(model=model, runtime=runtime, threads=threads))
                start_cpu[f"{runtime} {model} {threads}t"] = cpu_seconds() - before
                variants.append(
                    variant(f"{runtime:11s} {model} {threads} thread{'s' if threads > 1 else ''}", det.run_batch)
                )
    for threads in (1, 2):
        variants.append(
            variant(
                f"onnxruntime int8 {threads} thread{'s' if threads > 1 else ''}, spinning",
                ort_spinning("int8", threads),
            )
        )
    variants.append(
        variant("openvino    int8 1 thread, one dynamic-batch compile", ov_variant("int8", 1, per_batch_size=False))
    )
    before = cpu_seconds()
    ov_compiled("int8", 1, None)
    start_cpu["openvino int8 dynamic compile"] = cpu_seconds() - before
    for model in ("fp32", "int8"):
        variants.append(
            variant(
                f"openvino    {model} 1 thread, bf16 float layers",
                ov_variant(model, 1, per_batch_size=True, precision="bf16"),
            )
        )
    return variants, start_cpu


def gate_line(reference: PersonDetector, runtime: RuntimeName, model: str, frames: list[np.ndarray]) -> str:
    """tests/test_detector_int8.py's gate: the float model on onnxruntime is the reference, each at its threshold."""
    candidate = PersonDetector(DetectorConfig(model=model, runtime=runtime, threads=1))
    total = found = 0
    for frame in frames:
        ref = reference.detect([frame])[0].xyxy
        total, found = total + len(ref), found + kept(ref, candidate.detect([frame])[0].xyxy)
    lost = 0
    for path in BUNDLED_IMAGES:
        image = cv2.imread(str(path))
        ref, got = reference.detect([image])[0].xyxy, candidate.detect([image])[0].xyxy
        lost += len(ref) - kept(ref, got)
    return (
        f"{runtime:11s} {model}: {found}/{total} float detections kept ({found / total:.1%}), "
        f"{lost} person(s) lost on the {len(BUNDLED_IMAGES)} bundled images"
    )


def loop_inputs(model_file: Path) -> list[str]:
    """The tensors the model's non-max-suppression Loop reads from outside its body: the decoded boxes and scores."""
    import onnx  # the `bench` extra: only this measurement edits a graph

    graph = onnx.load(str(model_file)).graph
    body = next(a.g for n in graph.node if n.op_type == "Loop" for a in n.attribute if a.name == "body")
    inside = (
        {o for n in body.node for o in n.output} | {i.name for i in body.input} | {i.name for i in body.initializer}
    )
    outer = {o for n in graph.node for o in n.output}  # computed tensors only: constants cost nothing
    return sorted({i for n in body.node for i in n.input if i and i not in inside and i in outer})


def nms_cost(model: str, rounds: int, batch: np.ndarray) -> str:
    """CPU per frame of the whole model against the model cut just before its NMS Loop, on both runtimes."""
    import onnx.utils

    with tempfile.TemporaryDirectory() as tmp:
        cut = Path(tmp) / "cut.onnx"
        full = model_path(model)
        onnx.utils.extract_model(str(full), str(cut), ["image_tensor"], loop_inputs(full), check_model=False)
        runs = {}
        for label, path in (("full", full), ("cut", cut)):
            session = ort.InferenceSession(str(path), _quiet_ort(), providers=["CPUExecutionProvider"])
            runs[f"onnxruntime {label}"] = variant(label, lambda b, s=session: s.run(None, {"image_tensor": b}))
            net = ov.Core().read_model(str(path))
            net.reshape({net.inputs[0]: list(batch.shape)})
            settings = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
            request = ov.Core().compile_model(net, "CPU", settings).create_infer_request()
            runs[f"openvino {label}"] = variant(label, lambda b, r=request: r.infer({0: b}))
        for _ in range(rounds):
            for v in runs.values():
                v.measure(batch)
    parts = []
    for runtime in ("onnxruntime", "openvino"):
        whole, before = runs[f"{runtime} full"].cpu(len(batch)), runs[f"{runtime} cut"].cpu(len(batch))
        parts.append(f"{runtime} {whole - before:.2f} of {whole:.2f} ms ({(whole - before) / whole:.0%})")
    return f"NMS Loop ({model}, batch {len(batch)}, 1 thread), CPU per frame: " + "; ".join(parts)


# A fresh process per runtime and model: what building the detector (load, compile, warm-up) adds to a daemon's RSS.
RSS_PROBE = """
import sys, psutil
from edge.config import DetectorConfig
from edge.detector import PersonDetector
process = psutil.Process()
before = process.memory_info().rss
detector = PersonDetector(DetectorConfig(model=sys.argv[2], runtime=sys.argv[1], threads=1))  # alive when measured
print((process.memory_info().rss - before) / 2**20)
"""


def rss_line() -> str:
    parts = []
    for runtime in ("onnxruntime", "openvino"):
        for model in ("fp32", "int8"):
            out = subprocess.run(
                [sys.executable, "-c", RSS_PROBE, runtime, model], capture_output=True, text=True, check=True, cwd=REPO
            )
            parts.append(f"{runtime} {model} {float(out.stdout):.0f} MB")
    return "RSS the detector adds to its process (load, compile, warm-up): " + ", ".join(parts)


def _quiet_ort() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    frames = every_fifth_frame()
    # One frame of each camera: a batch the daemon would make.
    batches = {1: preprocess(frames[:1]), 4: preprocess(frames[:: len(frames) // 4][:4])}
    assert MAX_BATCH >= 4
    variants, start_cpu = build_variants()
    for v in variants:  # first calls allocate: not part of what a frame costs
        for batch in batches.values():
            v.run(batch)
    for _ in range(args.rounds):
        for v in variants:
            for batch in batches.values():
                v.measure(batch)
    reference = variants[0].cpu(4)  # onnxruntime, float model, 1 thread: the figure the ratios are against
    print(f"CPU ms per frame and wall ms per batch, median of {args.rounds} interleaved rounds; x = CPU per frame at")
    print("batch 4 against onnxruntime fp32 1 thread")
    print(f"{'':58s} {'CPU/frame b1':>12s} {'b4':>6s} {'wall/batch b1':>14s} {'b4':>6s} {'x less CPU':>10s}")
    for v in variants:
        print(
            f"{v.label:58s} {v.cpu(1):12.2f} {v.cpu(4):6.2f} {v.wall(1):14.1f} {v.wall(4):6.1f} "
            f"{reference / v.cpu(4):10.2f}"
        )
    print("CPU seconds at start (load, compile, warm-up): " + ", ".join(f"{k} {s:.2f}" for k, s in start_cpu.items()))
    reference_detector = PersonDetector(DetectorConfig(model="fp32", threads=1))
    for runtime, model in (("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8")):
        print("gate: " + gate_line(reference_detector, runtime, model, frames))
    for model in ("fp32", "int8"):
        print(nms_cost(model, args.rounds, batches[4]))
    print(rss_line())


if __name__ == "__main__":
    main()
