"""The alert bus: a ZeroMQ PUB socket the driver display (and anyone else allowed) subscribes to.

Messages are multipart `[topic, json]` with topics `alert` and `health`; the JSON layout is `vigie.alert/1`, documented
in the README. PUB never blocks the hot loop: a slow or absent subscriber loses messages, it does not delay them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import zmq

from core.types import Alert, Health, Level

SCHEMA = "vigie.alert/1"
TOPIC_ALERT = b"alert"
TOPIC_HEALTH = b"health"


def level_text(level: Level) -> str:
    return "clear" if level == Level.NONE else level.label


def shown_level(alert: Alert) -> str:
    """The level on the wire: `unknown` for a quiet zone whose camera cannot see, never `clear` (edge/view.py)."""
    return "unknown" if alert.unknown else level_text(alert.level)


def alert_message(alert: Alert, bus_id: str, sent_ts: float) -> dict:
    return {
        "schema": SCHEMA,
        "bus_id": bus_id,
        "camera": alert.camera,
        "side": alert.side.value,
        "level": shown_level(alert),
        "zone": alert.zone,
        "track_ids": list(alert.track_ids),
        "nearest_m": alert.nearest_m,
        "frame_ts": round(alert.frame_ts, 6),
        "sent_ts": round(sent_ts, 6),
    }


def health_message(health: Health, bus_id: str) -> dict:
    return {
        "schema": SCHEMA,
        "bus_id": bus_id,
        "camera": health.camera,
        "status": health.status,
        "detail": health.detail,
        "sent_ts": round(health.ts, 6),
    }


@dataclass(frozen=True, slots=True)
class Published:
    alert: Alert
    sent_ts: float


class AlertBus:
    def __init__(self, ctx: zmq.Context, endpoint: str, bus_id: str):
        self._bus_id = bus_id
        self._sock = ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.LINGER, 500)
        self._sock.setsockopt(zmq.SNDHWM, 1000)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise OSError(f"alerts.endpoint: cannot bind {endpoint}: {exc}") from None

    def alert(self, alert: Alert) -> Published:
        sent = time.time()
        payload = json.dumps(alert_message(alert, self._bus_id, sent)).encode()
        self._sock.send_multipart([TOPIC_ALERT, payload], flags=zmq.NOBLOCK)
        return Published(alert, sent)

    def health(self, health: Health) -> None:
        payload = json.dumps(health_message(health, self._bus_id)).encode()
        self._sock.send_multipart([TOPIC_HEALTH, payload], flags=zmq.NOBLOCK)

    def close(self) -> None:
        self._sock.close()
