"""The false-alert budget: alerts counted the way the driver receives them, per operating hour.

Earlier French trials failed because drivers got too many alerts without real danger, so this is the number an
operator watches before and after switching a bus on. An alert is a rise of one zone's level (none → info,
none/info → warning): a zone that stays raised while people come and go is one alert, a clear is none. Pure
bookkeeping on the pipeline's level changes, shared by the daemon (`--stats`), `replay rerun` and `replay report`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from core.types import Alert, Level, Side


@dataclass(frozen=True, slots=True)
class Budget:
    """Alert counts by side and level over `hours` of operation."""

    counts: dict[tuple[Side, Level], int]
    hours: float

    def total(self, level: Level | None = None) -> int:
        return sum(n for (_, lv), n in self.counts.items() if level is None or lv == level)

    def per_hour(self, level: Level | None = None) -> float | None:
        return self.total(level) / self.hours if self.hours > 0 else None

    def lines(self) -> list[str]:
        """What rerun and report print."""
        if self.hours <= 0:
            rate = "operating time unknown"
        else:
            span = f"{self.hours:.1f} h" if self.hours >= 1 else f"{self.hours * 60:.1f} min"
            rate = f"{self.per_hour():.1f} per operating hour over {span}"
        out = [
            f"driver alerts: {self.total()} ({self.total(Level.INFO)} info, {self.total(Level.WARNING)} warning), "
            + rate
        ]
        for side in Side:
            info, warn = self.counts.get((side, Level.INFO), 0), self.counts.get((side, Level.WARNING), 0)
            if info or warn:
                hourly = f" ({info / self.hours:.1f} / {warn / self.hours:.1f} per hour)" if self.hours > 0 else ""
                out.append(f"  {side.value:5s} info {info:4d}  warning {warn:4d}{hourly}")
        return out

    def as_dict(self) -> dict:
        return {
            "info": self.total(Level.INFO),
            "warning": self.total(Level.WARNING),
            "hours": round(self.hours, 4),
            "per_hour": None if self.per_hour() is None else round(self.per_hour() or 0.0, 2),
            "by_side": {
                side.value: {lv.label: self.counts.get((side, lv), 0) for lv in (Level.INFO, Level.WARNING)}
                for side in Side
            },
        }


@dataclass(slots=True)
class AlertTally:
    """Feed it every level change (the pipeline's `changed` alerts); it counts the rises."""

    counts: Counter[tuple[Side, Level]] = field(default_factory=Counter)
    _levels: dict[tuple[str, str], Level] = field(default_factory=dict)

    def add(self, alert: Alert) -> None:
        key = (alert.camera, alert.zone)
        if alert.level > self._levels.get(key, Level.NONE):
            self.counts[(alert.side, alert.level)] += 1
        self._levels[key] = alert.level

    def budget(self, hours: float) -> Budget:
        return Budget(dict(self.counts), hours)
