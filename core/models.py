"""Loading an ONNX model the way every vigie process does: its digest checked, its session set up for a small shared
CPU. Used by the person detector (edge/detector.py) and the face model (recorder/faces.py)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

# The first region of the process's onnxruntime arena. onnxruntime's own per-session arena starts at 1 MB and doubles
# each region it adds when a tensor does not fit the free chunks of the regions it has (a chunk never spans two), so
# warming up and running a model leaves it a ladder of regions, every one of them touched. One region this size holds
# what either model needs at 768x576 (the person detector's batches of 1-4, the int8 face model's frame), so freed
# chunks merge and are taken again, and only the pages used count (benchmarks/bench_session_memory.py).
ARENA_FIRST_REGION_BYTES = 64 * 2**20


class ModelError(Exception):
    """The model file is missing, altered or unusable; the daemon refuses to start."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    path: Path
    sha256: str

    @property
    def model_id(self) -> str:
        return f"{self.path.stem}@{self.sha256[:12]}"


def verify_model(path: Path, expected_sha256: str | None) -> ModelInfo:
    if not path.is_file():
        raise ModelError(f"detector.model: file not found: {path}")
    digest = sha256_of(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ModelError(
            f"detector.model: {path} has sha256 {digest[:16]}…, expected {expected_sha256[:16]}… "
            "(corrupt or replaced file; restore it from the repository)"
        )
    return ModelInfo(path, digest)


def session_options(threads: int, plan_memory: bool) -> ort.SessionOptions:
    """How every vigie session runs: few threads that sleep when idle, memory planned only where it pays, and one
    arena for the whole process."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # On a 2-core bus computer, spinning threads steal the core the capture threads need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # A memory pattern is one block per input shape, planned on its first run and kept in the arena from then on.
    # For the face model's few large tensors it is 28 MB kept (int8; fp32: 17 MB) for no CPU saved; for the person
    # model's many small ones, 20 MB that save 4-6 % of its CPU per frame (benchmarks/bench_session_memory.py).
    opts.enable_mem_pattern = plan_memory
    register_shared_arena()
    opts.add_session_config_entry("session.use_env_allocators", "1")
    return opts


@functools.cache
def register_shared_arena() -> None:
    """The CPU arena every session of this process allocates from (ARENA_FIRST_REGION_BYTES); registered once, before
    the first session asks for it."""
    cpu = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(cpu, ort.OrtArenaCfg({"initial_chunk_size_bytes": ARENA_FIRST_REGION_BYTES}))


def open_session(path: Path, threads: int, what: str, plan_memory: bool = False) -> ort.InferenceSession:
    """A CPU onnxruntime session set up for a small shared machine; `what` names the model in errors;
    `plan_memory` keeps a memory pattern per input shape (see session_options)."""
    opts = session_options(threads, plan_memory)
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{what}: {path} cannot be loaded by onnxruntime: {exc}") from None
