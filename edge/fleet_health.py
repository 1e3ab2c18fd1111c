"""The daemon's end of the daily health summary: what ran (version, model, config digest), its counters read as one
`Cumulative`, and the day's bookkeeping (edge/health_day.py) handed to its writer thread (recorder/health_store.py).

The config digest is the sha256 of the config as the daemon runs it (parsed, defaults filled in, paths resolved),
serialised with sorted keys, after credentials are taken out: URLs lose their user, password and query string
(where cameras take credentials). S3 keys are never in the config. Neither the digest's input nor any credential is
written or logged.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from core.models import ModelInfo
from core.types import Health, Level
from edge.capture import FrameHub
from edge.config import Config, health_root
from edge.health_day import CameraTotals, Cumulative, DailyHealth
from edge.stats import RunStats
from edge.vehicle import VehicleSource, ZmqVehicle
from recorder.events import EventWriter
from recorder.health import STATE_NAME, Identity, load_state
from recorder.health_store import HealthPlaces, HealthStore

log = logging.getLogger(__name__)


def _without_credentials(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_credentials(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_credentials(v) for v in value]
    if isinstance(value, str) and "://" in value:
        try:
            url = urlsplit(value)
            host, port = url.hostname or "", url.port
        except ValueError:  # not a URL after all: the config's own check would have refused a broken one
            return value
        host = f"[{host}]" if ":" in host else host
        netloc = f"{host}:{port}" if port is not None else host
        return urlunsplit((url.scheme, netloc, url.path, "", ""))
    return value


def config_digest(cfg: Config) -> str:
    data = _without_credentials(cfg.model_dump(mode="json"))
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def vigie_version() -> str:
    try:
        return importlib.metadata.version("vigie")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def identity(cfg: Config, model: ModelInfo) -> Identity:
    return Identity(cfg.bus.id, vigie_version(), model.model_id, model.sha256, config_digest(cfg), cfg.alerts.mode)


def read_counters(hub: FrameHub, stats: RunStats, writer: EventWriter, vehicle: VehicleSource) -> Cumulative:
    """The daemon's counters since its start, as the health summary counts them."""
    alerts = stats.tally.counts
    return Cumulative(
        cameras={n: CameraTotals(c.frames, c.dropped, c.reconnects) for n, c in hub.counters.items()},
        info_alerts=sum(n for (_, level), n in alerts.items() if level == Level.INFO),
        warning_alerts=sum(n for (_, level), n in alerts.items() if level == Level.WARNING),
        events_dropped=writer.counts.dropped,
        vehicle_rejected=vehicle.counts().rejected if isinstance(vehicle, ZmqVehicle) else 0,
    )


class FleetHealth:
    """Counts the day from the daemon's loop; summaries and the saved day are written by a thread of their own."""

    def __init__(self, cfg: Config, model: ModelInfo, counters: Callable[[], Cumulative], now: float):
        state_path = cfg.recorder.state_dir / STATE_NAME
        places = HealthPlaces(
            health_root(cfg.events), state_path, cfg.events.dir, cfg.recorder.dir if cfg.recorder.enabled else None
        )
        self._counters = counters
        self._day = DailyHealth(identity(cfg, model), [c.name for c in cfg.cameras], load_state(state_path), now)
        self._store = HealthStore(places)
        self._hand_over()

    def _hand_over(self) -> None:
        for write in self._day.take():
            self._store.submit(write)

    def step(self, now: float, health: Iterable[Health]) -> None:
        """One pass of the loop: the time since the last one, then the status changes it found."""
        self._day.advance(now, self._counters)
        for h in health:
            self._day.observe(h)
        if self._day.writes:
            self._hand_over()

    def stop(self, now: float) -> int:
        """The day so far as a partial summary; waits for the writer. Returns how many summaries were not written."""
        self._day.stop(now, self._counters())
        self._hand_over()
        return self._store.close()
