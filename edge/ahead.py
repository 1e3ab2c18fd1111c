"""Detection one batch ahead of tracking: the daemon's two cores both at work.

The detector call (onnxruntime, which lets go of the GIL) and the rest of a batch (each camera's tracker, zones,
policies, the alert bus, the recorder's hand-off: Python holding it) used to run one after the other on the daemon's
one thread, so unpaced the daemon used one core of two (benchmarks/profile_e2e.py). Here a `detect` thread takes the
cameras' newest frames and runs `Pipeline.detect` on them while the main thread tracks the batch before; the two meet
in a queue of one batch, so a detected batch never waits behind more than the one being tracked and the frame →
alert latency does not grow. The detector keeps its one intra-op thread: the overlap is between stages, not inside
the model (which costs more CPU per frame, bench_runtimes.py).

A failure of the detect thread is not swallowed: `next` raises it in the main thread, which stops the daemon as a
failure in the loop itself did.
"""

from __future__ import annotations

import queue
import threading

from edge.capture import FrameHub
from edge.pipeline import Detected, Pipeline

POLL_S = 0.1  # how often a waiting thread looks at the stop flag


class DetectAhead:
    def __init__(self, hub: FrameHub, pipeline: Pipeline):
        self._hub = hub
        self._pipeline = pipeline
        self._out: queue.Queue[Detected] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="detect", daemon=True)

    def start(self) -> DetectAhead:
        self._thread.start()
        return self

    def next(self, timeout: float) -> Detected | None:
        """The next detected batch, or None if none came within `timeout`; re-raises the detect thread's failure."""
        try:
            return self._out.get(timeout=timeout)
        except queue.Empty:
            if self._error is not None:
                raise self._error from None
            return None

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frames = self._hub.take(timeout=POLL_S)
                if not frames:
                    continue
                detected = self._pipeline.detect(frames)
                while not self._stop.is_set():
                    try:
                        self._out.put(detected, timeout=POLL_S)
                        break
                    except queue.Full:  # the main thread is still tracking the batch before
                        continue
        except BaseException as exc:  # handed to the main thread, which stops the daemon
            self._error = exc
