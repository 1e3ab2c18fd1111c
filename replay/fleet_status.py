"""`vigie replay fleet-status`: the fleet's day from its health summaries, one line per bus, with what to look at.

Flags, and why each is drawn where it is:

- **no report**: a bus of the fleet (one with health summaries or events in the `fleet_days` days up to the date)
  has no summary for the date. It may have been in the depot all day; the flag asks someone to know that.
- **low uptime**: a camera `ok` for less than 95 % of the time the daemon ran with it (recorder/health.py). A camera
  that is degraded, stalled or offline leaves a blind spot its zones cannot clear.
- **alert rate**: a level's alerts per operating hour more than 3x, or less than a third of, the fleet's median for
  that level. The median is taken over the buses that operated at least an hour that day, so one broken bus cannot
  move it; a ratio is used because routes differ in how many people walk by, and 3x leaves them room. Yet a bus
  with few operating hours can land that far by chance (four alerts expected, one seen, happens one day in
  eleven), so the count must also be unlikely under the median rate: a Poisson tail below 1 in 1000, so a
  normal bus is flagged by chance at most once in a thousand days per level. A level whose median is zero, or
  a fleet of fewer than three buses with an hour of operation, is not compared (the header says so).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from scipy.special import pdtr, pdtrc

from recorder.health import HealthSummary

LEVELS = ("info", "warning")


@dataclass(frozen=True, slots=True)
class StatusSettings:
    day: dt.date
    fleet_days: int = 7  # a bus seen in this many days up to `day` (health or events) is in the fleet
    uptime_min_pct: float = 95.0
    rate_factor: float = 3.0
    min_hours: float = 1.0  # a bus counts towards the median rate from this much operating time
    chance: float = 1e-3  # a rate is far only if a count at least as extreme is this unlikely at the median rate
    min_peers: int = 3


class FlagKind(enum.StrEnum):
    NO_REPORT = "no_report"
    LOW_UPTIME = "low_uptime"
    ALERT_RATE = "alert_rate"


@dataclass(frozen=True, slots=True)
class Flag:
    kind: FlagKind
    subject: str  # the camera (low uptime), the level (alert rate), "" (no report)
    detail: str


@dataclass(frozen=True, slots=True)
class BusStatus:
    bus: str
    summary: HealthSummary | None  # the day's latest summary; None: no report
    last_seen: dt.date | None  # latest day with health or events, up to the date
    flags: tuple[Flag, ...]


@dataclass(frozen=True, slots=True)
class FleetMedian:
    """Median alerts per operating hour, by level, over `peers` buses; None where not compared."""

    per_hour: Mapping[str, float | None]
    peers: int


@dataclass(frozen=True, slots=True)
class FleetStatus:
    settings: StatusSettings
    buses: tuple[BusStatus, ...]
    median: FleetMedian


def latest(summaries: list[HealthSummary]) -> dict[str, HealthSummary]:
    """Per bus, the summary that supersedes the others: highest revision, then latest written."""
    best: dict[str, HealthSummary] = {}
    for s in summaries:
        cur = best.get(s.identity.bus_id)
        if cur is None or (s.revision, s.written_ts) > (cur.revision, cur.written_ts):
            best[s.identity.bus_id] = s
    return best


def _count(s: HealthSummary, level: str) -> int:
    return s.figures.info_alerts if level == "info" else s.figures.warning_alerts


def fleet_median(reports: Mapping[str, HealthSummary], settings: StatusSettings) -> FleetMedian:
    peers = [s for s in reports.values() if s.figures.operating_s >= settings.min_hours * 3600]
    if len(peers) < settings.min_peers:
        return FleetMedian(dict.fromkeys(LEVELS), len(peers))
    rates = {lv: statistics.median(_count(s, lv) * 3600 / s.figures.operating_s for s in peers) for lv in LEVELS}
    return FleetMedian({lv: r if r > 0 else None for lv, r in rates.items()}, len(peers))


def _rate_flags(s: HealthSummary, median: FleetMedian, settings: StatusSettings) -> list[Flag]:
    flags = []
    hours = s.figures.operating_s / 3600
    for level in LEVELS:
        fleet = median.per_hour[level]
        if fleet is None or hours <= 0:
            continue
        count, expected = _count(s, level), fleet * hours
        rate = count / hours
        if rate > settings.rate_factor * fleet:
            unlikely = count > 0 and float(pdtrc(count - 1, expected)) < settings.chance  # P(X >= count)
        elif rate < fleet / settings.rate_factor:
            unlikely = float(pdtr(count, expected)) < settings.chance  # P(X <= count)
        else:
            continue
        if unlikely:
            detail = (
                f"{level} {rate:.2f}/h = {rate / fleet:.1f}x the fleet median {fleet:.2f}/h ({count} in {hours:.1f} h)"
            )
            flags.append(Flag(FlagKind.ALERT_RATE, level, detail))
    return flags


def _uptime_flags(s: HealthSummary, settings: StatusSettings) -> list[Flag]:
    flags = []
    for cam in s.figures.cameras:
        if cam.uptime_pct is not None and cam.uptime_pct < settings.uptime_min_pct:
            detail = f"camera {cam.camera} up {cam.uptime_pct:.1f} % of {cam.watched_s / 3600:.1f} h"
            flags.append(Flag(FlagKind.LOW_UPTIME, cam.camera, f"{detail} (under {settings.uptime_min_pct:g} %)"))
    return flags


def assess(reports: Mapping[str, HealthSummary], seen: Mapping[str, dt.date], settings: StatusSettings) -> FleetStatus:
    """`reports`: each bus's latest summary of the day; `seen`: each bus of the fleet and the last day it was seen."""
    median = fleet_median(reports, settings)
    buses = []
    for bus in sorted(set(reports) | set(seen)):
        s = reports.get(bus)
        if s is None:
            when = seen[bus].isoformat()
            flags = [Flag(FlagKind.NO_REPORT, "", f"no health summary for {settings.day} (last seen {when})")]
        else:
            flags = _uptime_flags(s, settings) + _rate_flags(s, median, settings)
        buses.append(BusStatus(bus, s, seen.get(bus), tuple(flags)))
    return FleetStatus(settings, tuple(buses), median)


# -- what the analyst reads ------------------------------------------------------------------------------------------


def _free_pct(s: HealthSummary) -> float | None:
    disks = [d for d in (s.events_disk, s.clips_disk) if d is not None and d.total_mb > 0]
    return min(100 * d.free_mb / d.total_mb for d in disks) if disks else None


def header_line(status: FleetStatus) -> str:
    st, med = status.settings, status.median
    reported = sum(b.summary is not None for b in status.buses)
    flagged = sum(bool(b.flags) for b in status.buses)
    if med.peers < st.min_peers:
        enough = f"{st.min_hours:g} h or more"
        rates = f"alert rates not compared: {med.peers} bus(es) operated {enough}, fewer than {st.min_peers}"
    else:
        parts = [f"{lv} {r:.2f}" if r is not None else f"{lv} 0 (not compared)" for lv, r in med.per_hour.items()]
        rates = f"fleet median per operating hour over {med.peers} bus(es): " + ", ".join(parts)
    return (
        f"fleet-status {st.day}: {len(status.buses)} bus(es) seen in the {st.fleet_days} days to {st.day}, "
        f"{reported} reported, {flagged} flagged; {rates}"
    )


def bus_line(b: BusStatus) -> str:
    s = b.summary
    if s is None:
        return f"{b.bus:<12} NO REPORT" + "".join(f"  !! {f.detail}" for f in b.flags)
    fig = s.figures
    cams = [c for c in fig.cameras if c.uptime_pct is not None]
    low = min(cams, key=lambda c: c.uptime_pct or 0.0, default=None)
    uptime = f"uptime {low.uptime_pct:5.1f} % ({low.camera})" if low is not None else "uptime -"
    rates = "  ".join(
        f"{lv} {r:.2f}/h" if (r := fig.per_hour(_count(s, lv))) is not None else f"{lv} -" for lv in LEVELS
    )
    free = _free_pct(s)
    parts = [
        f"{b.bus:<12} {'final' if s.final else 'partial'} r{s.revision}",
        f"{fig.operating_s / 3600:5.1f} h",
        uptime,
        f"stalls {sum(c.stalls for c in fig.cameras)} reconnects {sum(c.reconnects for c in fig.cameras)}"
        f" dropped {sum(c.dropped for c in fig.cameras)}",
        rates,
        f"recorder failures {fig.recorder_failures} clips failed {fig.clip_failures}",
        f"store faults {fig.event_store_faults}",
        f"disk {free:.0f} % free" if free is not None else "disk -",
        f"vigie {s.identity.vigie_version} model {s.identity.model_sha256[:8]} config {s.identity.config_sha256[:8]}",
    ]
    return "  ".join(parts) + "".join(f"  !! {f.detail}" for f in b.flags)


def text_lines(status: FleetStatus) -> Iterator[str]:
    yield header_line(status)
    for b in status.buses:
        yield bus_line(b)


def _bus_json(b: BusStatus, day: dt.date) -> dict:
    out: dict = {"bus": b.bus, "date": day.isoformat(), "reported": b.summary is not None}
    out["last_seen"] = b.last_seen.isoformat() if b.last_seen else None
    s = b.summary
    if s is not None:
        fig = s.figures
        out |= {
            "final": s.final,
            "revision": s.revision,
            "through": dt.datetime.fromtimestamp(s.through_ts, dt.UTC).isoformat().replace("+00:00", "Z"),
            "operating_h": round(fig.operating_s / 3600, 3),
            "runs": fig.runs,
            "cameras": [
                {
                    "camera": c.camera,
                    "uptime_pct": None if c.uptime_pct is None else round(c.uptime_pct, 2),
                    **{
                        k: getattr(c, k)
                        for k in ("stalls", "outages", "degradations", "reconnects", "frames", "dropped")
                    },
                }
                for c in fig.cameras
            ],
            **{f"{lv}_alerts": _count(s, lv) for lv in LEVELS},
            **{f"{lv}_per_hour": _rounded(fig.per_hour(_count(s, lv))) for lv in LEVELS},
            **{
                k: getattr(fig, k)
                for k in (
                    "recorder_failures",
                    "clip_failures",
                    "recorder_disk_full",
                    "event_store_faults",
                    "events_dropped",
                )
            },
            "disk_free_pct": _rounded(_free_pct(s)),
            "vigie_version": s.identity.vigie_version,
            "model_sha256": s.identity.model_sha256,
            "config_sha256": s.identity.config_sha256,
        }
    out["flags"] = [{"kind": f.kind.value, "subject": f.subject, "detail": f.detail} for f in b.flags]
    return out


def _rounded(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def json_lines(status: FleetStatus) -> Iterator[str]:
    for b in status.buses:
        yield json.dumps(_bus_json(b, status.settings.day), ensure_ascii=False)
