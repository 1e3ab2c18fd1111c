"""What the view-quality monitor costs per camera frame (target: at most 0.5 ms). Run with `make bench`.

Real frames of the demo footage, one after another as a camera sends them (so the frozen check compares real
neighbours); the same at 1920x1080, since the monitor first reduces any frame to the same small picture.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from edge.view import ViewMonitor
from edge.view_config import ViewConfig
from tests.view_footage import read_clip

TARGET_MS = 0.5


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return read_clip("right", limit=20)


def per_frame(benchmark, frames: list[np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    monitor = ViewMonitor(ViewConfig())
    feed = itertools.cycle(frames)
    clock = itertools.count()
    benchmark(lambda: monitor.update(next(feed), next(clock) / 10.0))
    if benchmark.stats is not None:  # None when run with --benchmark-disable (the suite's default): one call only
        ms = benchmark.stats.stats.median * 1000.0
        print(f"\nview monitor, {frames[0].shape[1]}x{frames[0].shape[0]}: {ms:.3f} ms per frame (target {TARGET_MS})")


def test_view_monitor_per_frame_768x576(benchmark, clip) -> None:
    per_frame(benchmark, clip)


def test_view_monitor_per_frame_1920x1080(benchmark, clip) -> None:
    per_frame(benchmark, [cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_LINEAR) for f in clip])
