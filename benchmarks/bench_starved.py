"""How much of each event its clip shows when the recorder is starved of CPU, and whether the clip says so.

    .venv/bin/python benchmarks/bench_starved.py [--seconds 60] [--hogs 3] [--before PATH] [--scenarios ...]

Runs the demo bus (recorder on, bus standing so every camera has events) in each scenario:
  idle       the machine as it is (shared: other people's work runs too)
  hog-own    `--hogs` processes spinning, each in its own session: another user's job busy on both cores
  hog-same   the same hogs in the daemon's session, so they compete with the nice-19 recorder directly (autogroup
             shares the CPU between sessions first): the recorder gets about 1 % of a core
For every event row it prints how much of the event's span its clip shows (recorder.clips.coverage: within 0.5 s of
a clip frame), how many events fall short and how many of those nothing on disk admits to (the sidecar's own figures;
a clip absent from disk is counted apart), and what the recorder wrote, thinned and lost.
`--before PATH` runs every scenario a second time with the daemon of another checkout (e.g. `git worktree add
/tmp/before main`), alternating with this tree so that both see the same noise, and prints their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DEMO_CONFIG  # noqa: E402
from recorder.clips import COMPLETE, EventSpan, coverage  # noqa: E402
from tests.conftest import free_port, to_toml  # noqa: E402
from tests.cpuhog import CpuHog, cpu_seconds  # noqa: E402

SCENARIOS = ("idle", "hog-own", "hog-same")


@dataclass(frozen=True, slots=True)
class EventCover:
    duration_s: float
    shown: float | None  # fraction of the span its clip shows; None: the clip it names is not on disk
    said_short: bool  # the sidecar says this event's clip falls short of it


@dataclass(frozen=True, slots=True)
class RunResult:
    events: tuple[EventCover, ...]
    clips: int
    written: int  # frames in the clips
    thinned: int  # frames given up to the recorder's budgets (sidecar figures)
    lost: int  # frames overwritten in the ring before the recorder rescued them
    leftovers: int  # hidden files (unfinished clips) left under the clips folder
    recorder_cpu_s: float

    @property
    def shown_share(self) -> float:
        total = sum(e.duration_s for e in self.events)
        return sum((e.shown or 0.0) * e.duration_s for e in self.events) / max(total, 1e-9)


def write_config(folder: Path) -> Path:
    data = tomllib.loads(DEMO_CONFIG.read_text())
    data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    data["events"]["dir"] = str(folder / "events")
    data["events"]["flush_s"] = 2
    data["recorder"].update(dir=str(folder / "clips"), state_dir=str(folder / "state"), audit_log=str(folder / "a"))
    data["vehicle"] = {"source": "none"}  # a bus standing with doors closed: every zone live, the most clips
    for cam in data["cameras"]:
        cam["source"] = str(REPO / cam["source"])
    folder.mkdir(parents=True)
    path = folder / "bus.toml"
    path.write_text(to_toml(data))
    return path


def run_daemon(checkout: Path, folder: Path, seconds: float) -> dict:
    cmd = [sys.executable, "-m", "edge", "run", "--config", str(write_config(folder)), "--duration", str(seconds)]
    cmd += ["--stats", str(folder / "stats.json")]
    subprocess.run(cmd, check=True, capture_output=True, cwd=checkout, timeout=seconds + 180)
    return json.loads((folder / "stats.json").read_text())


def measure(folder: Path, stats: dict) -> RunResult:
    clips: dict[str, tuple[list[float], dict]] = {}
    for sidecar in (folder / "clips").rglob("*.frames.parquet"):
        table = pq.read_table(sidecar, columns=["ts"])
        meta = json.loads((table.schema.metadata or {}).get(b"vigie.clip", b"{}"))
        clips[sidecar.name.removesuffix(".frames.parquet")] = (table.column("ts").to_pylist(), meta)
    events = []
    for r in ds.dataset(folder / "events", partitioning="hive").to_table().to_pylist():
        if not r["clip"]:
            continue
        span = EventSpan(r["event_id"], r["start_ts"].timestamp(), r["end_ts"].timestamp())
        if r["clip"] not in clips:
            events.append(EventCover(span.end_ts - span.start_ts, None, False))
            continue
        ts, meta = clips[r["clip"]]
        said = {e["event_id"]: e["coverage"] for e in meta.get("events", [])}.get(span.event_id)
        events.append(EventCover(span.end_ts - span.start_ts, coverage(span, ts), said is not None and said < COMPLETE))
    return RunResult(
        events=tuple(events),
        clips=len(clips),
        written=sum(len(ts) for ts, _ in clips.values()),
        thinned=sum(meta.get("frames_thinned", 0) for _, meta in clips.values()),
        lost=sum(meta.get("frames_lost", 0) for _, meta in clips.values()),
        leftovers=len(list((folder / "clips").rglob(".*"))),
        recorder_cpu_s=stats.get("children_cpu_s", 0.0),
    )


def run_scenario(scenario: str, checkout: Path, folder: Path, args: argparse.Namespace) -> RunResult:
    if scenario == "idle":
        return measure(folder, run_daemon(checkout, folder, args.seconds))
    with CpuHog(args.hogs, max_s=args.seconds + 300, same_session=scenario == "hog-same") as hog:
        stats = run_daemon(checkout, folder, args.seconds)
        if cpu_seconds(hog.pids) < 1.0:
            raise SystemExit("the hogs did not run")
    return measure(folder, stats)


def line(label: str, r: RunResult) -> str:
    shown = [e.shown or 0.0 for e in r.events]
    short = [e for e in r.events if (e.shown or 0.0) < COMPLETE]
    missing = sum(e.shown is None for e in r.events)
    unsaid = sum(not e.said_short for e in short if e.shown is not None)
    return (
        f"{label:22s} {len(r.events):4d} events, shown {100 * r.shown_share:3.0f} % of their seconds, per event median "
        f"{statistics.median(shown) if shown else 0:.2f}; {len(short)} under {COMPLETE:.0%} ({missing} clip not on "
        f"disk, {unsaid} short and unsaid by the sidecar); {r.clips} clips, {r.written} frames written, "
        f"{r.thinned} thinned, {r.lost} lost; {r.leftovers} unfinished files left; "
        f"recorder CPU {r.recorder_cpu_s:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hogs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="also run the daemon of this checkout, for a before/after ratio")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args()
    trees = [("this tree", REPO)] + ([("before", args.before.resolve())] if args.before else [])
    print(f"{args.seconds:g} s of the demo bus per run, recorder on; {args.hogs} hogs")
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios:
            results = {}
            for name, checkout in trees:
                results[name] = run_scenario(scenario, checkout, Path(tmp) / f"{scenario}-{name}", args)
                print(line(f"{scenario}, {name}:", results[name]), flush=True)
            if len(results) == 2:
                after, before = results["this tree"].shown_share, results["before"].shown_share
                ratio = f"{after / before:.1f}x" if before >= 0.005 else "n/a (before showed none)"
                print(f"{scenario}: events' seconds shown, this tree / before = {ratio}")


if __name__ == "__main__":
    main()
