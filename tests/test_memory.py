"""What keeps the daemon and its recorder within their memory: settings measured by benchmarks/profile_memory.py and
benchmarks/bench_session_memory.py, held here so that a change cannot undo them unnoticed."""

from __future__ import annotations

from core.models import open_session
from edge.detector import INT8_MODEL_PATH
from edge.runtime import RuntimeSettings
from edge.runtime_ort import OrtRuntime
from recorder.faces import FACE_MODEL_PATH


def test_the_face_model_plans_no_memory_pattern_but_keeps_its_arena() -> None:
    """A pattern would keep a block per input shape; without the arena every run would map and fault its memory
    anew (60-70 % more CPU a frame, measured)."""
    options = open_session(FACE_MODEL_PATH, 1, "face model").get_session_options()
    assert options.enable_mem_pattern is False
    assert options.enable_cpu_mem_arena is True


def test_the_person_detector_keeps_its_memory_patterns() -> None:
    """Its many small tensors run 4-5 % faster from one planned block: worth the memory."""
    runtime = OrtRuntime(RuntimeSettings(INT8_MODEL_PATH, 1, "detector.model"))
    options = runtime._session.get_session_options()
    assert options.enable_mem_pattern is True
    assert options.enable_cpu_mem_arena is True
