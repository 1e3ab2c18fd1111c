"""A hung HTTP camera: a real listening socket that accepts every connection and never sends a byte.

That is what an IP camera with a frozen encoder looks like from the bus: its TCP stack still answers, so the
connection succeeds and the reader can only give up on its open timeout. Connections are kept open (not closed,
which would look like a refused camera) until `stop()`.
"""

from __future__ import annotations

import socket
import threading


class HungCamera:
    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)  # closing a socket does not wake a blocked accept() on Linux; polling does
        self._stopping = threading.Event()
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def accepted(self) -> int:
        """Connections accepted so far: each is one open attempt by a reader."""
        with self._lock:
            return len(self._held)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._held.append(conn)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._sock.close()
        with self._lock:
            for conn in self._held:
                conn.close()
            self._held.clear()
