"""Camera capture: one thread per camera, newest frame wins.

OpenCV's FFmpeg backend releases the GIL while it decodes, so four reader threads decode in parallel with inference.
Each reader drops its frame into a shared FrameHub slot; if the previous frame was never taken, it is counted as
dropped rather than queued, so a slow consumer can never make alerts late.

A dead or hung camera only stops its own thread: reads time out (open/read timeouts are passed to FFmpeg), the reader
reconnects with capped exponential backoff, and the hub's watchdog reports it stalled within `stall_s`. Opens run in
parallel too: OpenCV's process-wide open lock is switched off below.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from core.types import Frame
from edge.config import CameraConfig

log = logging.getLogger(__name__)

# Read by OpenCV's FFmpeg backend when a capture opens, so set before any. RTSP over TCP (cameras on a bus are on
# a wired switch; UDP loss shows as smeared frames), and no probing: without it an RTSP open takes ~1.4 s and the
# first second of frames arrives stale in a burst. FFmpeg's own log is silenced: failures are reported on `health`.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|probesize;32|analyzeduration;0")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# OpenCV's FFmpeg backend holds one process-wide mutex through every open (avformat_open_input and
# find_stream_info), so a camera that accepts the connection and never answers held every other camera's open —
# and every file's loop back to its start — behind it for its whole open timeout. FFmpeg has been thread-safe there
# since 4.0 (the wheel bundles FFmpeg 8: libavformat 62; 2,400 concurrent file, HTTP and RTSP opens all succeeded
# without the lock), so the lock only serialises. Forced, not defaulted: cameras not blocking each other is a promise.
os.environ["OPENCV_FFMPEG_IS_THREAD_SAFE"] = "1"
# With that switch OpenCV warns on every open (each file loop, each reconnect attempt, each clip the recorder
# starts: children inherit the switch), and its other videoio warnings repeat what `health` and our own log line
# say. This process read OPENCV_LOG_LEVEL when cv2 was imported, so it is told directly; children read the variable.
# OPENCV_LOG_LEVEL, when set, is left to the operator.
if "OPENCV_LOG_LEVEL" not in os.environ:
    os.environ["OPENCV_LOG_LEVEL"] = "ERROR"
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0
DECODE_THREADS = 1


@dataclass(slots=True)
class CameraCounters:
    frames: int = 0  # decoded
    processed: int = 0  # taken by the pipeline
    dropped: int = 0  # replaced by a newer frame before the pipeline took it
    reconnects: int = 0
    last_frame_mono: float = 0.0
    connected: bool = False


class FrameHub:
    """The newest frame of each camera, plus counters, behind one condition variable."""

    def __init__(self, cameras: list[str]):
        self._cond = threading.Condition()
        self._slots: dict[str, Frame | None] = dict.fromkeys(cameras)
        self.counters = {name: CameraCounters() for name in cameras}
        self._closed = False

    def put(self, frame: Frame, wait_stop: threading.Event | None = None) -> None:
        """Store a camera's newest frame. With `wait_stop`, wait for the slot to be free instead of dropping
        (files read faster than real time: a replay must see every frame); the wait ends if that event is set."""
        with self._cond:
            while wait_stop is not None and self._slots[frame.camera] is not None and not wait_stop.is_set():
                self._cond.wait(0.1)
            if self._closed:
                return
            c = self.counters[frame.camera]
            if self._slots[frame.camera] is not None:
                c.dropped += 1
            self._slots[frame.camera] = frame
            c.frames += 1
            c.last_frame_mono = time.monotonic()
            self._cond.notify_all()

    def take(self, timeout: float) -> list[Frame]:
        """Every camera's new frame since the last take (waits up to `timeout` for at least one)."""
        with self._cond:
            if not any(self._slots.values()):
                self._cond.wait(timeout)
            frames = [f for f in self._slots.values() if f is not None]
            for f in frames:
                self.counters[f.camera].processed += 1
                self._slots[f.camera] = None
            if frames:
                self._cond.notify_all()  # readers waiting for a free slot
        return frames

    def close(self) -> None:
        """The pipeline has stopped taking frames: later ones are discarded, neither counted decoded nor dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def set_connected(self, camera: str, connected: bool, reconnect: bool = False) -> None:
        with self._cond:
            c = self.counters[camera]
            c.connected = connected
            c.reconnects += int(reconnect)


@dataclass(slots=True)
class Pacer:
    """When a file played as a live camera shows its next frame: one every `period`, from `next_due` on. A reader
    that fell behind (a busy machine) goes on from where it is rather than rushing through the backlog."""

    period: float
    next_due: float

    def wait_s(self, now: float) -> float:
        """How long to wait before showing the frame just decoded."""
        return max(self.next_due - now, 0.0)

    def shown(self, now: float) -> None:
        self.next_due = max(self.next_due + self.period, now - self.period)


def paced(previous: Pacer | None, fps: float, now: float) -> Pacer:
    """The pacer of a file (re)opened to play at `fps`. A looping file is one camera that never stopped: its first
    frame after the loop is due a period after the last one shown. A new pacer showed it at once, two frames within
    a period, and the hub counted the first of them dropped at every loop of every camera (e2e.py's drops)."""
    if previous is not None and previous.period == 1.0 / fps:
        return previous
    return Pacer(1.0 / fps, now)


def _is_file(source: str) -> bool:
    return "://" not in source


def open_capture(cam: CameraConfig) -> cv2.VideoCapture:
    # One FFmpeg decoding thread per camera, not one per core: the cameras already decode in parallel, each in its
    # reader thread, and each extra frame thread holds its own frames and malloc arena (5 MB less for four cameras,
    # same CPU per frame: benchmarks/bench_decode_threads.py) and delays a live picture by a frame.
    threads = [cv2.CAP_PROP_N_THREADS, DECODE_THREADS]
    if _is_file(cam.source):
        return cv2.VideoCapture(str(Path(cam.source)), cv2.CAP_FFMPEG, threads)
    params = [
        *threads,
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(cam.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(cam.read_timeout_s * 1000),
    ]
    return cv2.VideoCapture(cam.source, cv2.CAP_FFMPEG, params)


class CameraReader:
    """Reads one camera forever (until stopped), pacing files at their frame rate like a live camera."""

    def __init__(self, cam: CameraConfig, hub: FrameHub):
        self._cam = cam
        self._hub = hub
        self._stop = threading.Event()
        self._seq = 0
        self._pacer: Pacer | None = None  # a file played as a live camera: kept across its loops
        self._thread = threading.Thread(target=self._run, name=f"capture-{cam.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def name(self) -> str:
        return self._cam.name

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stop_within_s(self) -> float:
        """How long a stopped reader may still run: an open or read already inside FFmpeg cannot be interrupted and
        returns on its timeout. The process must not exit before that (see `Daemon.run`)."""
        return self._cam.open_timeout_s + self._cam.read_timeout_s + 1.0

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        is_file = _is_file(self._cam.source)
        opened_before = False
        while not self._stop.is_set():
            cap = open_capture(self._cam)
            got_any = False
            if cap.isOpened():
                # A file that loops is not reconnecting; a stream opened again is.
                self._hub.set_connected(self._cam.name, True, reconnect=opened_before and not is_file)
                opened_before = True
                got_any = self._read_until_end(cap)
            cap.release()
            self._hub.set_connected(self._cam.name, False)
            if self._stop.is_set() or (is_file and not self._cam.loop):
                return
            if got_any:
                backoff = BACKOFF_START_S
                if is_file:
                    continue  # a looping file restarts at once, like a camera that never stopped
            log.warning("camera %s: no frames, reconnecting in %.1f s", self._cam.name, backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _read_until_end(self, cap: cv2.VideoCapture) -> bool:
        """Read until the stream ends or fails; True if at least one frame came."""
        is_file = _is_file(self._cam.source)
        fps = (self._cam.fps or cap.get(cv2.CAP_PROP_FPS)) if is_file and self._cam.realtime else 0.0
        # Live cameras and real-time files drop what the pipeline misses; a file read flat out waits for it.
        drop_late = not is_file or self._cam.realtime
        pacer = self._pacer = paced(self._pacer, fps, time.monotonic()) if fps and fps > 0 else None
        got_any = False
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                break
            got_any = True
            if pacer is not None:  # files play in real time: wait until this frame's moment
                if (delay := pacer.wait_s(time.monotonic())) > 0:
                    self._stop.wait(delay)
                pacer.shown(time.monotonic())
            self._seq += 1
            self._hub.put(
                Frame(self._cam.name, self._seq, time.time(), image), wait_stop=None if drop_late else self._stop
            )
        return got_any
