"""A live MJPEG-over-HTTP camera (multipart/x-mixed-replace), the way cheap IP cameras serve video.

Runs in the test process on a thread: it JPEG-encodes a clip once, then serves it looping at a fixed rate to every
client. `stop()` closes the socket, which is what a camera losing power looks like to the reader.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "vigieframe"


def load_jpegs(path: Path, limit: int = 100, quality: int = 80) -> list[bytes]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    cap.release()
    return frames


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # a camera that comes back takes its old port at once
    daemon_threads = True


class MjpegCamera:
    def __init__(self, clip: Path, fps: float = 10.0, port: int = 0):
        self.frames = load_jpegs(clip)
        self.period = 1.0 / fps
        self._stopping = threading.Event()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                i = 0
                try:
                    while not camera._stopping.is_set():
                        jpeg = camera.frames[i % len(camera.frames)]
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        i += 1
                        time.sleep(camera.period)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def play(self, jpegs: list[bytes]) -> None:
        """Serve these frames from now on, looping, to the clients already connected: a camera whose view changes
        (goes dark, gets covered) while it keeps streaming."""
        self.frames = jpegs

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
