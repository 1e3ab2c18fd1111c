"""`vigie replay report`: one figure an analyst reads at a glance.

Four panels: alerting events by hour of day (stacked by level), by camera, how close people came, and the busiest
coarse locations. The panels count events (people) that reached info or warning; events the policy kept quiet (bus
too fast, doors open) are counted in the title only, and so are the alerts the driver actually received per
operating hour (edge/budget.py), which is fewer: a zone already raised does not alert again for the next person.
matplotlib is an optional extra (`pip install 'vigie[report]'`): the bus
never draws charts, so it is imported here, lazily.
"""

from __future__ import annotations

import zoneinfo
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.atomic import write_atomic
from edge.budget import Budget
from replay.errors import ReplayError

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 8.0, 100  # 1200 x 800 px: legible on a laptop, small enough to mail
LEVEL_COLOURS = {"info": "#f2a541", "warning": "#d7263d"}
TOP_LOCATIONS = 10


@dataclass(frozen=True, slots=True)
class ReportSettings:
    output: Path
    tz: str = "UTC"
    title_source: str = ""
    budget: Budget | None = None  # driver alerts over operating hours, when the store records them


def check_tz(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ReplayError(f"--tz {name}: unknown time zone (e.g. UTC, Europe/Paris)") from None
    return name


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ReplayError("report needs matplotlib: pip install 'vigie[report]'") from None
    matplotlib.use("Agg")  # no screen on a server; must be chosen before pyplot is imported
    import matplotlib.pyplot as plt

    return plt


def local_hours(table: pa.Table, tz: str) -> np.ndarray:
    ts = table["start_ts"].cast(pa.timestamp("ms", tz=tz))
    return np.asarray(pc.hour(ts).to_numpy(zero_copy_only=False), dtype=int)


def _hour_panel(ax, table: pa.Table, tz: str) -> None:
    hours = local_hours(table, tz)
    levels = np.asarray(table["max_level"].to_pylist())
    bottom = np.zeros(24)
    for level, colour in LEVEL_COLOURS.items():
        counts = np.bincount(hours[levels == level], minlength=24)
        ax.bar(np.arange(24), counts, bottom=bottom, color=colour, label=level, width=0.85)
        bottom += counts
    ax.set_title(f"Alerts by hour of day ({tz})")
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlim(-0.6, 23.6)
    ax.legend(loc="upper left", frameon=False)


def _camera_panel(ax, table: pa.Table) -> None:
    cams = table["camera"].to_pylist()
    levels = table["max_level"].to_pylist()
    names = sorted(set(cams))
    left = np.zeros(len(names))
    for level, colour in LEVEL_COLOURS.items():
        counts = Counter(c for c, lv in zip(cams, levels, strict=True) if lv == level)
        values = np.array([counts.get(n, 0) for n in names], dtype=float)
        ax.barh(names, values, left=left, color=colour, label=level)
        left += values
    ax.set_title("Alerts by camera")
    ax.invert_yaxis()


def _distance_panel(ax, table: pa.Table) -> None:
    dist = np.asarray(table["min_distance_m"].to_numpy(zero_copy_only=False), dtype=float)
    dist = dist[~np.isnan(dist)]
    if dist.size:
        ax.hist(dist, bins=np.arange(0.0, max(dist.max(), 1.0) + 0.5, 0.25), color="#2e86ab")
    ax.set_title(f"Closest approach to the bus body (m), {dist.size} alerts with a distance")
    ax.set_xlabel("metres")


def _location_panel(ax, table: pa.Table) -> None:
    lat, lon = table["lat"].to_pylist(), table["lon"].to_pylist()
    counts = Counter(f"{a:.2f}, {b:.2f}" for a, b in zip(lat, lon, strict=True) if a is not None and b is not None)
    top = counts.most_common(TOP_LOCATIONS)
    if top:
        ax.barh([k for k, _ in top], [v for _, v in top], color="#3b1f2b")
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, "no location recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Top coarse locations (lat, lon; about 1 km)")


def draw_report(table: pa.Table, settings: ReportSettings) -> None:
    check_tz(settings.tz)
    plt = pyplot()
    alerts = table.filter(pc.is_in(table["max_level"], pa.array(list(LEVEL_COLOURS))))
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        _hour_panel(axes[0][0], alerts, settings.tz)
        _camera_panel(axes[0][1], alerts)
        _distance_panel(axes[1][0], alerts)
        _location_panel(axes[1][1], alerts)
        span = ""
        if table.num_rows:
            first, last = pc.min(table["start_ts"]).as_py(), pc.max(table["start_ts"]).as_py()
            span = f", {first:%Y-%m-%d} to {last:%Y-%m-%d}"
        quiet = table.num_rows - alerts.num_rows
        received = ""
        if settings.budget is not None:
            rate = settings.budget.per_hour()
            received = f"; driver alerts {settings.budget.total()}" + (f", {rate:.1f}/h" if rate is not None else "")
        fig.suptitle(
            f"vigie events{span}: {alerts.num_rows} alerting events ({quiet} quiet){received}"
            + (f" — {settings.title_source}" if settings.title_source else ""),
            fontsize=13,
        )
        fig.tight_layout()
        try:
            settings.output.parent.mkdir(parents=True, exist_ok=True)
            # matplotlib picks the format from the temporary name's suffix, the destination's.
            write_atomic(settings.output, lambda tmp: fig.savefig(tmp, dpi=DPI))
        except OSError as exc:
            raise ReplayError(f"{settings.output}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
