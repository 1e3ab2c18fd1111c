"""How much of each event its clip shows when the recorder is starved of CPU, and whether the clip says so.

    .venv/bin/python benchmarks/bench_starved.py [--seconds 40] [--hogs 3] [--checkout PATH]

Runs the demo bus (recorder on, bus standing so every zone is live) twice in one go: on the machine as it is, then
with `--hogs` processes spinning in the daemon's own session (tests/cpuhog.py), so the nice-19 recorder gets almost
no CPU. For every event row that names a clip it prints how much of the event's span the clip's frames show
(recorder.clips.coverage: within 0.5 s of a clip frame), whether the sidecar said so, and the recorder's losses.
`--checkout` runs the daemon from another checkout (e.g. a worktree of main), to compare before and after.
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
from recorder.clips import EventSpan, coverage  # noqa: E402
from tests.conftest import free_port, to_toml  # noqa: E402
from tests.cpuhog import CpuHog, cpu_seconds  # noqa: E402

COMPLETE = 0.95


@dataclass(frozen=True, slots=True)
class EventCover:
    event_id: str
    duration_s: float
    shown: float | None  # None: the clip it names is not on disk
    said: float | None  # the sidecar's own figure for this event (None: not listed)
    flagged: bool  # the clip (or its absence) tells the analyst it is incomplete


def write_config(folder: Path) -> Path:
    data = tomllib.loads(DEMO_CONFIG.read_text())
    data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    data["events"]["dir"] = str(folder / "events")
    data["events"]["flush_s"] = 2
    data["recorder"].update(dir=str(folder / "clips"), state_dir=str(folder / "state"), audit_log=str(folder / "a"))
    data["vehicle"] = {"source": "none"}  # a bus standing with doors closed: every zone live, the most clips
    for cam in data["cameras"]:
        cam["source"] = str(REPO / cam["source"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bus.toml"
    path.write_text(to_toml(data))
    return path


def run_daemon(checkout: Path, folder: Path, seconds: float) -> dict:
    config = write_config(folder)
    cmd = [sys.executable, "-m", "edge", "run", "--config", str(config), "--duration", str(seconds)]
    cmd += ["--stats", str(folder / "stats.json")]
    subprocess.run(cmd, check=True, capture_output=True, cwd=checkout, timeout=seconds + 180)
    return json.loads((folder / "stats.json").read_text())


def covers(folder: Path) -> tuple[list[EventCover], dict]:
    rows = ds.dataset(folder / "events", partitioning="hive").to_table().to_pylist()
    sidecars = {p.name.removesuffix(".frames.parquet"): p for p in (folder / "clips").rglob("*.frames.parquet")}
    lost = thinned = 0
    metas = {}
    for clip_id, path in sidecars.items():
        table = pq.read_table(path, columns=["ts"])
        meta = json.loads((table.schema.metadata or {}).get(b"vigie.clip", b"{}"))
        metas[clip_id] = (table.column("ts").to_pylist(), meta)
        lost += meta.get("frames_lost", 0)
        thinned += meta.get("frames_thinned", 0)
    out = []
    for r in rows:
        if not r["clip"]:
            continue
        span = EventSpan(r["event_id"], r["start_ts"].timestamp(), r["end_ts"].timestamp())
        if r["clip"] not in metas:
            out.append(EventCover(span.event_id, span.end_ts - span.start_ts, None, None, True))
            continue
        ts, meta = metas[r["clip"]]
        said = {e["event_id"]: e["coverage"] for e in meta.get("events", [])}.get(span.event_id)
        shown = coverage(span, ts)
        flagged = said is not None and said < COMPLETE  # the sidecar itself says the clip falls short
        out.append(EventCover(span.event_id, span.end_ts - span.start_ts, shown, said, flagged))
    partials = len(list((folder / "clips").rglob(".*")))
    return out, {"clips": len(sidecars), "frames_lost": lost, "frames_thinned": thinned, "partials": partials}


def report(name: str, events: list[EventCover], extra: dict, stats: dict) -> None:
    shown = [e.shown or 0.0 for e in events]
    secs = sum(e.duration_s for e in events)
    kept = sum((e.shown or 0.0) * e.duration_s for e in events)
    incomplete = [e for e in events if (e.shown or 0.0) < COMPLETE]
    missing = sum(e.shown is None for e in events)
    unsaid = sum(not e.flagged for e in incomplete if e.shown is not None)
    print(
        f"{name:10s}: {len(events)} events with a clip, {extra['clips']} clips; events' seconds shown "
        f"{kept:.1f}/{secs:.1f} s ({100 * kept / max(secs, 1e-9):.0f} %); per event min "
        f"{min(shown, default=0):.2f} median {statistics.median(shown) if shown else 0:.2f}; "
        f"{len(incomplete)} under {COMPLETE:.0%}: {missing} with no clip on disk, {unsaid} whose sidecar does not "
        f"say so; frames lost {extra['frames_lost']}, thinned {extra['frames_thinned']}; {extra['partials']} "
        f"unfinished files left; recorder CPU {stats.get('children_cpu_s', 0):.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--hogs", type=int, default=3)
    parser.add_argument("--checkout", type=Path, default=REPO, help="run the daemon from this checkout")
    parser.add_argument("--only", choices=("idle", "hog"), help="run one scenario only")
    parser.add_argument(
        "--hog-session",
        choices=("same", "own"),
        default="same",
        help="hogs in the daemon's session (the recorder gets ~1%% of a core) or each in its own (another user's job)",
    )
    args = parser.parse_args()
    print(f"daemon from {args.checkout.resolve()} ({args.seconds:g} s of the demo bus, recorder on)")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "hog":
            stats = run_daemon(args.checkout, Path(tmp) / "idle", args.seconds)
            report("no hog", *covers(Path(tmp) / "idle"), stats)
        if args.only != "idle":
            with CpuHog(args.hogs, max_s=args.seconds + 240, same_session=args.hog_session == "same") as hog:
                stats = run_daemon(args.checkout, Path(tmp) / "hog", args.seconds)
                hog_cpu = cpu_seconds(hog.pids)
            report(f"{args.hogs} hogs", *covers(Path(tmp) / "hog"), stats)
            print(f"{'':10s}  (hogs in the {args.hog_session} session as the daemon; they used {hog_cpu:.0f} CPU s)")


if __name__ == "__main__":
    main()
