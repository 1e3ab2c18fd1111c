"""`vigie replay report --map`: where people stand in the buses' blind spots, as one picture.

Alerting events (info or warning) are binned on the store's own coarse location (0.01 degree, about 1 km) and drawn
on plain longitude/latitude axes, scaled so a square looks square: no map tiles, nothing fetched from the network
(a report made on the city's machines must not tell a tile server where the buses stop). A large map shows every
side together; four small ones show each side, info and warning apart; a last panel puts the driver's alerts over
the hours the buses operated, by side and level. Distance driven is not recorded by the buses, so there is no rate
per 100 km, and the figure says so rather than leaving it out silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.atomic import write_atomic
from core.types import Level, Side
from edge.budget import Budget
from replay.errors import ReplayError
from replay.report import DPI, HEIGHT_IN, LEVEL_COLOURS, WIDTH_IN, pyplot

BIN_DEGREES = 0.01
KM_PER_DEGREE = 111.32
LEVELS = (Level.INFO, Level.WARNING)
SIDES = tuple(Side)


@dataclass(frozen=True, slots=True)
class MapBins:
    """Alerting events per coarse square: `counts[b, s, l]` for bin b, side SIDES[s], level LEVELS[l]."""

    lat: np.ndarray  # (B,) square centres, degrees
    lon: np.ndarray
    counts: np.ndarray  # (B, 4, 2) int
    unlocated: int  # alerting events recorded without a position

    def totals(self) -> np.ndarray:
        return self.counts.sum(axis=(1, 2))


@dataclass(frozen=True, slots=True)
class MapSettings:
    output: Path
    title_source: str = ""
    budget: Budget | None = None


def map_bins(table: pa.Table) -> MapBins:
    alerts = table.filter(pc.is_in(table["max_level"], pa.array([lv.label for lv in LEVELS])))
    lat = np.asarray(alerts["lat"].to_numpy(zero_copy_only=False), dtype=float)
    lon = np.asarray(alerts["lon"].to_numpy(zero_copy_only=False), dtype=float)
    located = ~(np.isnan(lat) | np.isnan(lon))
    # Integer square indices: rounding floats to 2 decimals and comparing them would split a square in two.
    keys = np.stack([np.round(lat[located] / BIN_DEGREES), np.round(lon[located] / BIN_DEGREES)], axis=1)
    squares, index = np.unique(keys, axis=0, return_inverse=True) if len(keys) else (np.zeros((0, 2)), np.zeros(0))
    side_of = {s.value: i for i, s in enumerate(SIDES)}
    level_of = {lv.label: i for i, lv in enumerate(LEVELS)}
    sides = np.array([side_of[s] for s in alerts["side"].to_pylist()], dtype=int)[located]
    levels = np.array([level_of[v] for v in alerts["max_level"].to_pylist()], dtype=int)[located]
    counts = np.zeros((len(squares), len(SIDES), len(LEVELS)), dtype=int)
    np.add.at(counts, (np.asarray(index, dtype=int).ravel(), sides, levels), 1)
    return MapBins(squares[:, 0] * BIN_DEGREES, squares[:, 1] * BIN_DEGREES, counts, int((~located).sum()))


def _frame(ax, bins: MapBins) -> None:
    """Same extent on every map, a square on the ground drawn square, and a 1 km bar for scale."""
    pad = BIN_DEGREES * 1.5
    west, east = bins.lon.min() - pad, bins.lon.max() + pad
    south, north = bins.lat.min() - pad, bins.lat.max() + pad
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1.0 / math.cos(math.radians((south + north) / 2)))
    ax.grid(True, color="#dddddd", linewidth=0.5)
    ax.set_axisbelow(True)
    km = 1.0 / (KM_PER_DEGREE * math.cos(math.radians((south + north) / 2)))
    y = south + (north - south) * 0.05
    ax.plot([west + pad * 0.3, west + pad * 0.3 + km], [y, y], color="black", linewidth=2)
    ax.text(west + pad * 0.3 + km / 2, y, "1 km", ha="center", va="bottom", fontsize=8)


def _all_sides(ax, bins: MapBins, plt) -> None:
    from matplotlib.patches import Rectangle

    totals = bins.totals()
    cmap = plt.get_cmap("YlOrRd")
    half = BIN_DEGREES / 2
    for lat, lon, n in zip(bins.lat, bins.lon, totals, strict=True):
        shade = 0.25 + 0.75 * n / totals.max()
        ax.add_patch(
            Rectangle((lon - half, lat - half), BIN_DEGREES, BIN_DEGREES, facecolor=cmap(shade), edgecolor="grey")
        )
        text = "white" if shade > 0.7 else "black"  # legible on the darkest squares too
        ax.text(lon, lat, str(n), ha="center", va="center", fontsize=9, fontweight="bold", color=text)
    _frame(ax, bins)
    ax.set_title("Alerting events per square of about 1 km (all sides)")
    ax.set_xlabel("longitude (degrees east)")
    ax.set_ylabel("latitude (degrees north)")


def _one_side(ax, bins: MapBins, side: int) -> None:
    biggest = max(int(bins.counts.max()), 1)
    offset = BIN_DEGREES / 4  # info left of the square's centre, warning right: neither hides the other
    for li, level in enumerate(LEVELS):
        n = bins.counts[:, side, li]
        shown = n > 0
        ax.scatter(
            bins.lon[shown] + (2 * li - 1) * offset,
            bins.lat[shown],
            s=30 + 400 * n[shown] / biggest,
            color=LEVEL_COLOURS[level.label],
            label=level.label,
            edgecolors="black",
            linewidths=0.5,
        )
    _frame(ax, bins)
    info, warning = int(bins.counts[:, side, 0].sum()), int(bins.counts[:, side, 1].sum())
    ax.set_title(f"{SIDES[side].value}: {info} info, {warning} warning", fontsize=10)
    ax.tick_params(labelbottom=False, labelleft=False)


def _rates(ax, bins: MapBins, budget: Budget | None) -> None:
    """Driver alerts per operating hour by side and level where the store has both; plain counts otherwise."""
    y = np.arange(len(SIDES))
    rated = budget is not None and budget.hours > 0
    for li, level in enumerate(LEVELS):
        if budget is not None:
            values = np.array([budget.counts.get((s, level), 0) for s in SIDES], dtype=float)
            if rated:
                values /= budget.hours
        else:
            values = bins.counts[:, :, li].sum(axis=0).astype(float)
        ax.barh(y + (li - 0.5) * 0.38, values, height=0.38, color=LEVEL_COLOURS[level.label], label=level.label)
    ax.set_yticks(y, [s.value for s in SIDES])
    ax.set_xlim(left=0)
    ax.invert_yaxis()
    ax.legend(loc="best", fontsize=8)
    if rated:
        assert budget is not None
        span = f"{budget.hours:.1f} h" if budget.hours >= 1 else f"{budget.hours * 60:.1f} min"
        title = f"Driver alerts per operating hour ({span} of operation)"
    elif budget is not None:
        title = "Driver alerts (no operating time recorded: no rate)"
    else:
        title = "Alerting events (driver alerts not recorded: schema < 3)"
    ax.set_title(title + "\nper 100 km: not available (the buses record no distance driven)", fontsize=9)


def draw_map(table: pa.Table, settings: MapSettings) -> MapBins:
    plt = pyplot()
    bins = map_bins(table)
    fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        grid = fig.add_gridspec(3, 4)
        main = fig.add_subplot(grid[:, :2])
        if len(bins.lat):
            _all_sides(main, bins, plt)
            for i in range(len(SIDES)):
                _one_side(fig.add_subplot(grid[i // 2, 2 + i % 2]), bins, i)
        else:
            main.text(0.5, 0.5, "no alerting event with a position", ha="center", va="center", transform=main.transAxes)
            main.set_axis_off()
        _rates(fig.add_subplot(grid[2, 2:]), bins, settings.budget)
        located = int(bins.totals().sum())
        span = ""
        if table.num_rows:
            first, last = pc.min(table["start_ts"]).as_py(), pc.max(table["start_ts"]).as_py()
            span = f", {first:%Y-%m-%d} to {last:%Y-%m-%d}"
        fig.suptitle(
            f"Where people stand in the buses' blind spots{span}\n{located} alerting events placed on the map"
            + (f", {bins.unlocated} without a position" if bins.unlocated else "")
            + "; squares of 0.01 degree, no background map"
            + (f" — {settings.title_source}" if settings.title_source else ""),
            fontsize=12,
        )
        fig.tight_layout()
        try:
            settings.output.parent.mkdir(parents=True, exist_ok=True)
            # A picture handed to an elected official is either the new one or the old one, never half.
            write_atomic(settings.output, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
        except OSError as exc:
            raise ReplayError(f"{settings.output}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return bins
