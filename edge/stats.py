"""Run-time figures: what the status line shows and what `vigie run --stats` writes at exit."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from core.types import StoreCounts
from edge.budget import AlertTally
from edge.capture import CameraCounters
from edge.vehicle import FeedCounts


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB, from /proc (Linux)."""
    cur = peak = 0.0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return cur, peak


def _percentiles(values: Iterable[float]) -> dict[str, float]:
    arr = np.fromiter(values, dtype=np.float64)
    if arr.size == 0:
        return {"p50": 0.0, "p99": 0.0}
    p50, p99 = np.percentile(arr, [50, 99])
    return {"p50": round(float(p50), 2), "p99": round(float(p99), 2)}


SAMPLES = 200_000  # per series: about an hour of frames at 4 x 15 fps, ~2 MB each at most


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class RunStats:
    started_mono: float = field(default_factory=time.monotonic)
    started_cpu: float = field(default_factory=_cpu_seconds)
    # Recent samples only: a daemon runs for weeks, and percentiles of the last ~hour are what an operator wants.
    inference_ms: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    alert_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    frame_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    alerts: int = 0
    events: int = 0
    frames_skipped: int = 0  # left undetected: their camera could not alert (edge/demand.py)
    tally: AlertTally = field(default_factory=AlertTally)
    vehicle: FeedCounts = field(default_factory=FeedCounts)  # live feed messages; zeros without one
    event_store: StoreCounts = field(default_factory=StoreCounts)  # set when the event writer has closed

    def record_inference(self, ms: float, batch: int, skipped: int) -> None:
        self.frames_skipped += skipped
        if batch:
            self.inference_ms.append(ms)
            self.batch_sizes.append(batch)

    def record_frame_done(self, frame_ts: float, done_ts: float) -> None:
        self.frame_latency_ms.append((done_ts - frame_ts) * 1000.0)

    def record_alert(self, frame_ts: float, sent_ts: float) -> None:
        self.alerts += 1
        self.alert_latency_ms.append((sent_ts - frame_ts) * 1000.0)

    def elapsed(self) -> float:
        return max(time.monotonic() - self.started_mono, 1e-6)

    def cpu_percent(self) -> float:
        return 100.0 * (_cpu_seconds() - self.started_cpu) / self.elapsed()

    def summary(self, counters: dict[str, CameraCounters]) -> dict:
        duration = self.elapsed()
        cur, peak = rss_mb()
        return {
            "duration_s": round(duration, 2),
            "cameras": {
                name: {
                    "frames": c.frames,
                    "fps": round(c.frames / duration, 2),
                    "processed": c.processed,
                    "processed_fps": round(c.processed / duration, 2),
                    "dropped": c.dropped,
                    "reconnects": c.reconnects,
                }
                for name, c in counters.items()
            },
            "inference_ms": _percentiles(self.inference_ms),
            "batch_mean": round(float(np.mean(self.batch_sizes)), 2) if self.batch_sizes else 0.0,
            "frames_skipped": self.frames_skipped,
            "alert_latency_ms": {**_percentiles(self.alert_latency_ms), "count": len(self.alert_latency_ms)},
            # Capture → decision for every frame, alert or not: the same path with many more samples.
            "frame_latency_ms": _percentiles(self.frame_latency_ms),
            "cpu_percent": round(self.cpu_percent(), 1),
            "rss_mb": round(cur, 1),
            "rss_peak_mb": round(peak, 1),
            "alerts": self.alerts,
            "driver_alerts": self.tally.budget(duration / 3600.0).as_dict(),
            "events": self.events,
            "vehicle": {"applied": self.vehicle.applied, "rejected": self.vehicle.rejected},
            "event_store": asdict(self.event_store),
            # CPU of exited child processes: the recorder, once the daemon has stopped and joined it.
            "children_cpu_s": round(os.times().children_user + os.times().children_system, 2),
        }
