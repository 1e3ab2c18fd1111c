#!/usr/bin/python3
"""A small live RTSP server that plays video files as endless camera streams.

Tests and benchmarks use it to stand in for the bus's IP cameras::

    /usr/bin/python3 tests/services/rtsp_server.py --port 8554 \\
        --mount /cam=footage/cam_front.mp4 [--mount /cam2=footage/cam_left.mp4 ...] \\
        [--fps 15]

Each mount is served at rtsp://127.0.0.1:PORT/MOUNT as Motion-JPEG over RTP
(RFC 2435), looping forever and paced at --fps like a real camera: a client
that connects late sees the current frame, not the start of the file.  Once
listening, the server prints one line to stdout::

    ready rtsp://127.0.0.1:8554/cam [rtsp://127.0.0.1:8554/cam2 ...]

``--port 0`` picks a free port (read it from that line).  SIGTERM or SIGINT
stops it with exit status 0; bad arguments exit with 2, an unreadable file
or a busy port with 1.

SIGUSR1 freezes every stream on the picture it is showing: frames keep
coming at the same rate, every one the same (a camera whose sensor or
encoder hung while its network side goes on).  SIGUSR2 lets them play on.

Only RTP over the RTSP TCP connection is offered.  FFmpeg clients (OpenCV)
should set ``OPENCV_FFMPEG_CAPTURE_OPTIONS=rtsp_transport;tcp``; without it
FFmpeg first asks for UDP, gets "461 Unsupported transport", logs it and
falls back to TCP by itself.

Input files: a ``.mjpeg``/``.mjpg`` file (JPEG images simply concatenated) is
split into frames and sent as is.  Any other video GStreamer can decode (e.g.
the .mp4 segments in footage/) is decoded and JPEG-encoded once, at start-up,
into memory.  Either way nothing is encoded while streaming, so four servers
fit on a small machine next to the pipeline under test.

It needs the system interpreter, because the GStreamer bindings (python3-gi,
gir1.2-gst-rtsp-server-1.0) come from Debian packages and are not visible
from a virtualenv; for the same reason it imports nothing outside the standard
library and gi.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from fractions import Fraction
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
# Importing GstApp also gives appsink elements their Python methods.
from gi.repository import GLib, Gst, GstApp, GstRtsp, GstRtspServer  # noqa: E402

BIND_ADDRESS = "127.0.0.1"
# Used when a non-MJPEG file is JPEG-encoded at start-up: ~75 kB per
# 768x576 frame, visually lossless for the pedestrian footage.
JPEG_QUALITY = 80
LOAD_TIMEOUT_S = 120


def _untimed(buffer: Gst.Buffer) -> Gst.Buffer:
    """Copy of buffer (sharing its bytes) without the file's timestamps.

    appsrc's do-timestamp only stamps buffers that carry no timestamp, and
    the file's own ones (0 s, 0.1 s, ...) are in the past for the live
    pipeline, which then never sends them.
    """
    buffer = buffer.copy()
    buffer.pts = buffer.dts = buffer.duration = Gst.CLOCK_TIME_NONE
    buffer.offset = buffer.offset_end = Gst.BUFFER_OFFSET_NONE
    return buffer


def load_jpeg_frames(path: Path) -> tuple[list[Gst.Buffer], int, int]:
    """Return (JPEG frames, width, height) for a video file, read once."""
    if path.suffix.lower() in (".mjpeg", ".mjpg"):
        convert = "jpegparse"
    else:
        convert = f"decodebin ! videoconvert ! jpegenc quality={JPEG_QUALITY}"
    pipeline = Gst.parse_launch(f"filesrc name=file ! {convert} ! appsink name=sink sync=false")
    pipeline.get_by_name("file").set_property("location", str(path))
    sink: GstApp.AppSink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()

    frames: list[Gst.Buffer] = []
    caps = None
    pipeline.set_state(Gst.State.PLAYING)
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    try:
        while not sink.is_eos():
            # A decoding error never reaches the appsink as EOS, so poll the
            # bus between short waits instead of blocking on pull-sample.
            error = bus.pop_filtered(Gst.MessageType.ERROR)
            if error is not None:
                err, detail = error.parse_error()
                raise RuntimeError(f"{path}: {err.message} ({detail})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path}: loading took over {LOAD_TIMEOUT_S} s")
            sample = sink.try_pull_sample(100 * Gst.MSECOND)
            if sample is not None:
                caps = caps or sample.get_caps()
                frames.append(_untimed(sample.get_buffer()))
    finally:
        pipeline.set_state(Gst.State.NULL)

    if not frames:
        raise RuntimeError(f"{path}: no video frames found")
    structure = caps.get_structure(0)
    return frames, structure.get_int("width")[1], structure.get_int("height")[1]


class LoopingCamera:
    """Plays a list of JPEG frames forever, in real time, into live appsrcs.

    The clock runs from server start whether or not anyone watches, as a
    camera would.  Frames are timestamped when pushed (do-timestamp), so
    they leave as "just captured".  (A client that stops reading still
    finds a backlog in its TCP socket buffers when it resumes, as with a
    real camera over TCP; draining that is the client's job.)
    """

    def __init__(self, frames: list[Gst.Buffer], fps: float):
        self._frames = frames
        self._period = 1.0 / fps
        self._index = 0
        self._frame = frames[0]
        self._sources: set[Gst.Element] = set()
        self._next_due = 0.0
        self.frozen = False  # keep sending the current picture (SIGUSR1/SIGUSR2)

    def attach(self, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("src")
        self._sources.add(appsrc)
        media.connect("unprepared", lambda _media: self._sources.discard(appsrc))

    def start(self) -> None:
        self._next_due = time.monotonic()
        self._tick()

    def _tick(self) -> bool:
        if not self.frozen:
            self._frame = self._frames[self._index % len(self._frames)]
            self._index += 1
        for appsrc in list(self._sources):
            # A shallow copy shares the JPEG bytes but gets its own timestamp.
            appsrc.emit("push-buffer", self._frame.copy())

        self._next_due += self._period
        delay = self._next_due - time.monotonic()
        if delay < -self._period:
            # We were stalled (e.g. SIGSTOP); drop the missed frames rather
            # than bursting them out, as a real camera would.
            self._next_due = time.monotonic()
            delay = 0.0
        GLib.timeout_add(max(0, round(delay * 1000)), self._tick)
        return GLib.SOURCE_REMOVE


def make_factory(camera: LoopingCamera, width: int, height: int, fps: float) -> GstRtspServer.RTSPMediaFactory:
    rate = Fraction(fps).limit_denominator(1001)
    caps = f"image/jpeg,width={width},height={height},framerate={rate.numerator}/{rate.denominator}"
    # Keep at most two frames queued and drop the oldest: a paused or slow
    # pipeline must show the newest frame next, never a growing backlog.
    launch = (
        f"( appsrc name=src is-live=true format=time do-timestamp=true "
        f'max-buffers=2 leaky-type=downstream caps="{caps}" '
        f"! rtpjpegpay name=pay0 pt=26 )"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    # One pipeline per mount, however many clients: a fixed cost per camera.
    factory.set_shared(True)
    # Interleaved TCP only: no UDP sockets bound to all interfaces, and no
    # lost RTP packets tearing the ~75 kB JPEG frames.
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    factory.connect("media-configure", lambda _factory, media: camera.attach(media))
    return factory


def parse_mount(text: str) -> tuple[str, Path]:
    mount, sep, path = text.partition("=")
    if not sep or not mount.startswith("/") or not path:
        raise argparse.ArgumentTypeError(f"expected /MOUNT=PATH, got {text!r}")
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {path}")
    return mount, Path(path)


def frame_rate(text: str) -> float:
    value = float(text)
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError("must be in (0, 120]")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve video files as looping live RTSP (MJPEG) streams on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8554, help="TCP port, 0 for any free one (default 8554)")
    parser.add_argument(
        "--mount",
        type=parse_mount,
        action="append",
        required=True,
        metavar="/MOUNT=PATH",
        help="serve PATH at /MOUNT (repeatable)",
    )
    parser.add_argument("--fps", type=frame_rate, default=15.0, help="frames per second of every stream (default 15)")
    args = parser.parse_args()
    mount_names = [mount for mount, _ in args.mount]
    if len(set(mount_names)) != len(mount_names):
        parser.error("each --mount needs a different /MOUNT")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(BIND_ADDRESS)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    cameras = []
    for mount, path in args.mount:
        try:
            frames, width, height = load_jpeg_frames(path)
        except RuntimeError as exc:
            print(f"rtsp_server: {exc}", file=sys.stderr)
            return 1
        camera = LoopingCamera(frames, args.fps)
        mounts.add_factory(mount, make_factory(camera, width, height, args.fps))
        cameras.append(camera)

    try:
        # create_source() reports a busy port as an error; attach() would
        # only return 0 and leave the server deaf.
        server.create_source(None).attach(None)
    except GLib.Error as exc:
        print(f"rtsp_server: {exc.message}", file=sys.stderr)
        return 1

    # Sessions of clients that vanished without TEARDOWN otherwise linger
    # for their 60 s timeout.
    GLib.timeout_add_seconds(2, lambda: server.get_session_pool().cleanup() >= 0)

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)

    def freeze(frozen: bool) -> bool:
        for camera in cameras:
            camera.frozen = frozen
        return GLib.SOURCE_CONTINUE  # keep handling the signal

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, freeze, True)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR2, freeze, False)

    for camera in cameras:
        camera.start()
    port = server.get_bound_port()
    urls = " ".join(f"rtsp://{BIND_ADDRESS}:{port}{mount}" for mount, _ in args.mount)
    print(f"ready {urls}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
