"""The reference driver-side client: subscribes to the alert bus and shows each message as it arrives."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import zmq

from edge.bus import TOPIC_ALERT, TOPIC_HEALTH


def describe(topic: bytes, msg: dict) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(msg.get("sent_ts", time.time())))
    if topic == TOPIC_HEALTH:
        return f"{when}  health  {msg.get('camera') or 'daemon'}: {msg.get('status')} ({msg.get('detail')})"
    dist = msg.get("nearest_m")
    dist_text = f"{dist:.1f} m" if isinstance(dist, int | float) else "distance unknown"
    where = f"{msg.get('side', '?'):5s} {msg.get('camera')}/{msg.get('zone')}"
    return f"{when}  {msg.get('level', '?').upper():7s} {where}  {dist_text}"


class AlertClient:
    def __init__(self, endpoint: str):
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        for topic in (TOPIC_ALERT, TOPIC_HEALTH):
            self._sock.setsockopt(zmq.SUBSCRIBE, topic)
        self._sock.connect(endpoint)

    def __enter__(self) -> AlertClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._sock.close()
        self._ctx.term()

    def listen(self, as_json: bool, count: int | None, timeout_s: float | None, echo: Callable[[str], None]) -> int:
        """Print messages until `count` alerts arrived or `timeout_s` passed; returns the alerts seen.

        The daemon restates every quiet zone as `clear` each `repeat_s`; those are shown only when they end a level
        shown here, so the terminal shows alerts, not the heartbeat.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        alerts = 0
        raised: set[tuple[object, object]] = set()  # (camera, zone) last shown above clear
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while count is None or alerts < count:
            wait_ms = 200 if deadline is None else max(0, min(200, int((deadline - time.monotonic()) * 1000)))
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not poller.poll(wait_ms):
                continue
            topic, payload = self._sock.recv_multipart()[:2]
            try:
                msg = json.loads(payload)
            except ValueError:
                echo(f"malformed message on {topic.decode(errors='replace')!r} ignored")
                continue
            if topic == TOPIC_ALERT:
                zone = (msg.get("camera"), msg.get("zone"))
                if msg.get("level") != "clear":
                    raised.add(zone)
                elif zone in raised:
                    raised.discard(zone)
                else:
                    continue
                alerts += 1
            echo(json.dumps({"topic": topic.decode(), **msg}) if as_json else describe(topic, msg))
        return alerts
