"""Detection one batch ahead of tracking: the daemon's two cores both at work.

The detector call (onnxruntime, which lets go of the GIL) and the rest of a batch (each camera's tracker, zones,
policies, the alert bus, the recorder's hand-off: Python holding it) used to run one after the other on the daemon's
one thread, so unpaced the daemon used one core of two (benchmarks/profile_e2e.py). Here a `detect` thread takes the
cameras' newest frames and runs `Pipeline.detect` on them while the main thread tracks the batch before. It takes
new frames only once the main thread has collected its last batch, so at most two batches are in flight (one
tracked, one detected) and a batch never waits behind an older one: after a pause of the main thread, the next frames
it gets are fresh ones, as before. The detector keeps its one intra-op thread: the overlap is between stages, not inside
the model (which costs more CPU per frame, bench_runtimes.py).

A failure of the detect thread is not swallowed: `next` raises it in the main thread, which stops the daemon as a
failure in the loop itself did, and `check` raises one that came as the loop was ending.

Threads: `Pipeline.detect` (demand, vehicle state, detector) runs only here; `Pipeline.track` (cameras' trackers,
zones, policies, view monitors) only in the main thread. Nothing else is shared.
"""

from __future__ import annotations

import logging
import queue
import threading

from edge.capture import FrameHub
from edge.pipeline import Detected, Pipeline

log = logging.getLogger(__name__)
POLL_S = 0.1  # how often a waiting thread looks at the stop flag


class DetectAhead:
    def __init__(self, hub: FrameHub, pipeline: Pipeline):
        self._hub = hub
        self._pipeline = pipeline
        self._out: queue.Queue[Detected] = queue.Queue()  # never more than one: see _run
        self._collected = threading.Event()  # the main thread took the last batch handed over
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="detect", daemon=True)

    def start(self) -> DetectAhead:
        self._thread.start()
        return self

    def next(self, timeout: float) -> Detected | None:
        """The next detected batch, or None if none came within `timeout`; re-raises the detect thread's failure."""
        try:
            batch = self._out.get(timeout=timeout)
        except queue.Empty:
            self.check()
            return None
        self._collected.set()
        return batch

    @property
    def ready(self) -> bool:
        """A detected batch waits for the main thread."""
        return not self._out.empty()

    def check(self) -> None:
        """Raise the detect thread's failure, if it had one."""
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():  # inside one detector call: it returns on its own
            log.error("detect thread did not stop within %.1f s", timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frames = self._hub.take(timeout=POLL_S)
                if not frames:
                    continue
                detected = self._pipeline.detect(frames)
                self._collected.clear()
                self._out.put(detected)
                # No new frames until the main thread takes this batch: frames taken now would wait behind it.
                while not self._collected.wait(POLL_S) and not self._stop.is_set():
                    pass
        except BaseException as exc:  # handed to the main thread, which stops the daemon
            self._error = exc
