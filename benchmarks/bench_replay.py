"""Replay figures for the README: rerun speed on the demo footage, and list time on a synthetic fleet-year before
and after `vigie replay compact`.

    .venv/bin/python benchmarks/bench_replay.py [--buses 50] [--days 365] [--max-frames N] [--no-rerun] [--json OUT]

rerun   the four demo cameras (795 frames) through `replay.rerun.rerun`, the code behind `vigie replay rerun`:
        frames per second against the daemon's live rate (4 cameras x 10 fps = 40 fps).
list    `buses x days` bus-days of 3 events 10 minutes apart, each event in its own raw file (as the recorder writes
        them with flush_s = 30 s), in a temp folder; then what `vigie replay list` does (read the ten columns of its
        table, sorted, and format the lines; not the terminal) with no filter, a one-week filter and one day of one
        bus, and as the baseline pyarrow discovering the whole dataset before filtering (what a naive reader does).
        Then `replay.compact.compact` over the whole store (timed), and the same list cases again, now reading the
        curated tier: before/after in the same run.
Each filtered list timing is the best of 3 (the first run also warms the OS file cache); "all" runs once. CPU
seconds of the process are printed beside wall time: the machine is shared, read ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from core.types import Event, Level, Side, VehicleState  # noqa: E402
from edge.config import DEMO_CONFIG  # noqa: E402
from recorder.events import EVENT_SCHEMA, EventSink, event_row  # noqa: E402
from replay.compact import compact  # noqa: E402
from replay.rerun import RerunSettings, rerun  # noqa: E402
from replay.source import EventQuery, SourceSpec, read_store  # noqa: E402
from replay.views import TABLE_COLUMNS, table_lines  # noqa: E402

YEAR_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SIDES = list(Side)


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def bench_rerun(out: Path, max_frames: int | None) -> dict:
    settings = RerunSettings(DEMO_CONFIG, out, max_frames=max_frames, force=True)
    cpu = _cpu_s()
    result = rerun(settings)
    cpu = _cpu_s() - cpu  # includes the model load; on a shared machine it is steadier than wall time
    fps = result.total_frames / result.seconds
    live = sum(result.clock.fps.values())
    return {
        "frames": result.total_frames,
        "seconds": round(result.seconds, 2),
        "fps": round(fps, 1),
        "live_fps": live,
        "x_live": round(fps / live, 2),
        "events": len(result.events),
        "cpu_ms_per_frame": round(1000 * cpu / result.total_frames, 1),
    }


def _day_events(bus: int, day: int) -> list[Event]:
    base = (YEAR_START + dt.timedelta(days=day, hours=7 + bus % 10)).timestamp()
    return [
        Event(
            event_id=f"{bus:03d}{day:04d}{i:02d}".ljust(32, "0"),
            camera=SIDES[i % 4].value,
            side=SIDES[i % 4],
            zone="blind-spot",
            start_ts=base + 600 * i,
            end_ts=base + 600 * i + 5,
            max_level=Level(1 + i % 2),
            min_distance_m=1.5,
            frames=50,
            max_score=0.9,
            vehicle_at_start=VehicleState(speed_kmh=12.0, lat=45.76 + bus / 1000, lon=4.84),
        )
        for i in range(3)
    ]


def make_fleet(root: Path, buses: int, days: int) -> int:
    """One raw Parquet file per event (3 a bus-day) with the recorder's schema and row layout (no fsync: a benchmark
    fixture)."""
    files = 0
    for day in range(days):
        date = (YEAR_START + dt.timedelta(days=day)).strftime("%Y-%m-%d")
        for bus in range(buses):
            sink = EventSink(root, f"bus-{bus:03d}", "person_ssdlite@bench")
            folder = root / f"date={date}" / f"bus={sink.bus_id}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, ev in enumerate(_day_events(bus, day)):
                pq.write_table(
                    pa.Table.from_pylist([event_row(ev, sink)], schema=EVENT_SCHEMA),
                    folder / f"part-{7 + i:02d}0000-bench.parquet",
                    compression="zstd",
                )
                files += 1
    return files


def timed(fn, repeat: int = 3) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """(best wall seconds, CPU seconds of that run, rows)."""
    best, cpu_best, rows = float("inf"), 0.0, 0
    for _ in range(repeat):
        cpu, t = _cpu_s(), time.perf_counter()
        rows = fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, cpu_best = wall, _cpu_s() - cpu
    return best, cpu_best, rows


def list_lines(spec: SourceSpec, query: EventQuery) -> int:
    """What `vigie replay list` does before writing to the terminal; returns the number of events."""
    table = read_store(spec, query, [c for _, c, _ in TABLE_COLUMNS]).table
    text = "\n".join(table_lines(table))
    assert text.endswith(f"{table.num_rows} event(s)")
    return int(table.num_rows)


def bench_list(root: Path, buses: int, days: int, naive: bool) -> dict:
    spec = SourceSpec(str(root))
    mid = YEAR_START + dt.timedelta(days=days // 2)
    week = EventQuery(start=mid, end=mid + dt.timedelta(days=7))
    one = EventQuery(start=mid, end=mid + dt.timedelta(days=1), bus=f"bus-{min(7, buses - 1):03d}")
    cases = {
        "all": lambda: list_lines(spec, EventQuery()),
        "one week": lambda: list_lines(spec, week),
        "one day, one bus": lambda: list_lines(spec, one),
    }
    if naive:
        # Baseline: let pyarrow discover every file, then filter (partition pruning only at scan time).
        cases["one week, naive discovery"] = lambda: (
            ds.dataset(root, format="parquet", partitioning="hive")
            .to_table(
                filter=(ds.field("date") >= week.start.strftime("%Y-%m-%d"))
                & (ds.field("date") < week.end.strftime("%Y-%m-%d"))
            )
            .num_rows
        )
    out = {}
    for name, fn in cases.items():
        # Reading every file of a fleet-year takes long: once is enough to see it.
        seconds, cpu, rows = timed(fn, repeat=1 if name == "all" else 3)
        out[name] = {"seconds": round(seconds, 3), "cpu_s": round(cpu, 3), "rows": rows}
    return out


def bench_compact(root: Path) -> dict:
    cpu, t = _cpu_s(), time.perf_counter()
    result = compact(SourceSpec(str(root)), EventQuery())
    return {
        "seconds": round(time.perf_counter() - t, 1),
        "cpu_s": round(_cpu_s() - cpu, 1),
        "bus_days": result.bus_days,
        "raw_files": result.raw_files,
        "rows": result.rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buses", type=int, default=50)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--max-frames", type=int, default=None, help="cut the rerun (default: all the demo footage)")
    ap.add_argument("--no-rerun", action="store_true", help="only the list and compact figures")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        if not args.no_rerun:
            figures["rerun"] = bench_rerun(Path(tmp) / "rerun", args.max_frames)
            r = figures["rerun"]
            print(
                f"rerun: {r['frames']} frames in {r['seconds']} s = {r['fps']} fps, "
                f"{r['x_live']}x the daemon's live {r['live_fps']:g} fps ({r['events']} events, "
                f"{r['cpu_ms_per_frame']} ms CPU per frame)"
            )
        root = Path(tmp) / "fleet" / "events"
        t = time.perf_counter()
        files = make_fleet(root, args.buses, args.days)
        print(
            f"fleet: {args.buses} buses x {args.days} days = {files} raw files, made in {time.perf_counter() - t:.1f} s"
        )
        figures["fleet_files"] = files
        figures["list_raw"] = bench_list(root, args.buses, args.days, naive=True)
        figures["compact"] = c = bench_compact(root)
        print(
            f"compact: {c['bus_days']} bus-days from {c['raw_files']} raw files ({c['rows']} rows) "
            f"in {c['seconds']} s ({c['cpu_s']} CPU s)"
        )
        figures["list_curated"] = bench_list(root, args.buses, args.days, naive=False)
        print(f"{'list':28s} {'raw only':>20s} {'after compact':>20s} {'ratio':>7s}")
        for name, before in figures["list_raw"].items():
            after = figures["list_curated"].get(name)
            cells = f"{before['seconds'] * 1000:8.0f} ms {before['cpu_s']:5.1f} cpu"
            if after is not None:
                assert after["rows"] == before["rows"], (name, before, after)
                ratio = before["seconds"] / max(after["seconds"], 1e-9)
                cells += f" {after['seconds'] * 1000:8.0f} ms {after['cpu_s']:5.1f} cpu {ratio:6.1f}x"
            print(f"list {name:26s}{cells}  {before['rows']:6d} rows")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
