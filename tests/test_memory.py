"""What keeps the daemon and its recorder within their memory: settings measured by benchmarks/profile_memory.py and
benchmarks/bench_session_memory.py, held here so that a change cannot undo them unnoticed."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from core.models import open_session
from edge.allocator import limit_arenas
from edge.capture import open_capture
from edge.config import CameraConfig, ZoneConfig
from edge.detector import INT8_MODEL_PATH
from edge.runtime import RuntimeSettings
from edge.runtime_ort import OrtRuntime
from recorder.anonymise import Anonymiser
from recorder.clipfile import FrameMeta
from recorder.clips import ClipStart
from recorder.faces import DEFAULT_FACE_MODEL, FACE_MODELS
from recorder.retention import RetentionPolicy
from recorder.ring import FrameRing, ring_name
from recorder.worker import Recorder, RecorderSettings, RingAttach

from .conftest import FOOTAGE


def test_the_face_model_plans_no_memory_pattern_but_keeps_its_arena() -> None:
    """A pattern would keep a block per input shape; without the arena every run would map and fault its memory
    anew (60-70 % more CPU a frame, measured)."""
    options = open_session(FACE_MODELS[DEFAULT_FACE_MODEL].path, 1, "face model").get_session_options()
    assert options.enable_mem_pattern is False
    assert options.enable_cpu_mem_arena is True


def test_the_person_detector_keeps_its_memory_patterns() -> None:
    """Its many small tensors run 4-6 % faster from one planned block: worth the memory."""
    runtime = OrtRuntime(RuntimeSettings(INT8_MODEL_PATH, 1, "detector.model"))
    options = runtime._session.get_session_options()
    assert options.enable_mem_pattern is True
    assert options.enable_cpu_mem_arena is True


def test_every_session_allocates_from_the_one_arena_of_its_process() -> None:
    """onnxruntime's arena per session grows a ladder of regions, each touched (22 MB more for the person detector);
    the process's own starts with one region that holds either model's needs (core/models.py)."""
    sessions = (
        open_session(FACE_MODELS[DEFAULT_FACE_MODEL].path, 1, "face model"),
        OrtRuntime(RuntimeSettings(INT8_MODEL_PATH, 1, "detector.model"))._session,
    )
    for session in sessions:
        assert session.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"


@pytest.fixture
def ring():
    ring = FrameRing.create(ring_name(os.getpid(), "memtest"), 8, 48, 64)
    yield ring
    ring.close()


def test_the_recorder_blurs_one_frame_per_call(tmp_path: Path, ring: FrameRing, monkeypatch) -> None:
    """The face model's working memory grows with its batch: the recorder hands it one frame at a time."""
    batches: list[int] = []

    def anonymise(self, images: list[np.ndarray], persons: list[np.ndarray]) -> list[np.ndarray]:
        batches.append(len(images))
        return images

    monkeypatch.setattr(Anonymiser, "anonymise", anonymise)
    settings = RecorderSettings(
        root=tmp_path / "clips",
        bus_id="bus-1",
        fmt="avi",
        mode="persons",  # no face model to load: the batches are what is tested
        face_model=DEFAULT_FACE_MODEL,
        pre_roll_s=0.0,
        clip_fps=5.0,
        retention=RetentionPolicy(86400.0, 2**30),
        min_free_bytes=0,
        nice=0,
        cameras={},
    )
    recorder = Recorder(settings, queue.Queue())
    now = time.time()
    recorder.handle(RingAttach("right", ring.spec))
    recorder.handle(ClipStart("right", "clip-1", now))
    for seq in range(1, 6):
        ts = now + seq * 0.2
        slot = ring.write(seq, ts, np.full((48, 64, 3), seq * 40, np.uint8))
        assert slot is not None
        recorder.handle(FrameMeta("right", slot, seq, ts, np.zeros((0, 4), np.float32), (), (), 0.0, "off"))
    while recorder.behind:
        recorder.work()
    recorder.close()
    assert batches == [1] * 5


def test_each_camera_decodes_in_one_ffmpeg_thread() -> None:
    """The cameras decode in parallel already; a frame thread more per camera holds frames and a malloc arena."""
    zones = [ZoneConfig(name="z", polygon=[(0, 0), (1, 0), (1, 1)])]
    cap = open_capture(CameraConfig(name="cam", side="right", source=str(FOOTAGE / "cam_front.mp4"), zones=zones))
    try:
        assert cap.isOpened()
        assert cap.get(cv2.CAP_PROP_N_THREADS) == 1
    finally:
        cap.release()


# Six threads alive at once, each allocating: glibc's malloc_stats (on stderr) then lists every arena made.
ARENA_PROBE = """
import ctypes, sys, threading
from edge.allocator import limit_arenas
print(limit_arenas(2) if sys.argv[1] == "limit" else "none")
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
together = threading.Barrier(6)
def allocate():
    together.wait()
    libc.free(libc.malloc(4096))
    together.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc.malloc_stats()
"""


def arenas_of_probe(mode: str, env: dict[str, str]) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", ARENA_PROBE, mode], capture_output=True, text=True, check=True, env=env, timeout=60
    )
    return out.stdout.strip(), sum(line.startswith("Arena ") for line in out.stderr.splitlines())


@pytest.fixture
def probe_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return env


def test_the_daemon_threads_share_as_many_malloc_arenas_as_asked(probe_env: dict[str, str]) -> None:
    """Each thread that allocates would get an arena of its own (and keep its memory); capped, they share."""
    assert arenas_of_probe("none", probe_env)[1] > 2  # the probe does tell arenas apart
    assert arenas_of_probe("limit", probe_env) == ("True", 2)


def test_an_operators_malloc_arena_max_is_left_alone(probe_env: dict[str, str]) -> None:
    assert arenas_of_probe("limit", {**probe_env, "MALLOC_ARENA_MAX": "4"}) == ("False", 4)


def test_limit_arenas_defaults_to_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked without touching this process's allocator: mallopt is a stand-in here."""
    asked: list[tuple[int, int]] = []

    def mallopt(option: int, value: int) -> int:
        asked.append((option, value))
        return 1

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr("edge.allocator.ctypes.CDLL", lambda _: SimpleNamespace(mallopt=mallopt))
    assert limit_arenas() is True
    assert asked == [(-8, len(os.sched_getaffinity(0)))]
