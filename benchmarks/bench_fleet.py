"""Fleet rerun throughput for the README: clips per second with 1 and with 2 Dask workers, in the same run.

    .venv/bin/python benchmarks/bench_fleet.py [--seconds 20] [--buses 4] [--rounds 2] [--json OUT]

Clips: a real `vigie run` of the demo bus for `--seconds` with the recorder on (one clip per camera, each as long
as the run), copied as `--buses` buses (tests/fleet_clips.py), in a temp folder. Each round runs
`replay.fleet.run_fleet`, the code behind `vigie replay rerun-fleet`, on a LocalCluster of 1 worker, then of 2 (one
process and one thread each), with the narrower right zone of the tests as the new config.

clips/s   clips / the time from the first clip submitted to the last result in (the cluster's start and the
          writing are printed apart: they do not grow with the range).
overhead  per clip, the replay time times the workers, less what the workers spent inside the pipeline, divided
          by the clips: fetching, the sidecar, the model's first load on each worker, Dask's scheduling. It is what a
          coarser task (one bus-day of clips) could save at most.
compare   what a rerun on clips changes by itself: the recording's own config rerun on its clips against the events
          the daemon wrote live, then the new config against the buses' events and against that own-config rerun
          (`--baseline`).
The machine is shared (2 cores, other engineers' tests): rounds alternate 1 and 2 workers, and the ratio is taken
between the best of each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import DEMO_CONFIG  # noqa: E402
from replay.fleet import Engine, FleetRun, FleetSettings, run_fleet  # noqa: E402
from replay.fleet_compare import compare_run, summary_lines  # noqa: E402
from replay.query import EventQuery, SourceSpec  # noqa: E402
from tests.conftest import demo_data, to_toml  # noqa: E402
from tests.fleet_clips import copy_as_bus, narrow_right_zone, record_store  # noqa: E402


def _nothing(_: int) -> None:
    pass


def _settings(store: Path, config: Path, workers: int, name: str, baseline: str | None = None) -> FleetSettings:
    events = SourceSpec(str(store / "events"))
    return FleetSettings(config, events, EventQuery(), name, Engine(workers=workers), baseline=baseline)


def _compare(store: Path, config: Path, name: str, baseline: str | None) -> list[str]:
    """What `rerun-fleet` prints for the finished rerun `name` against the buses' events or a baseline rerun."""
    settings = _settings(store, config, 2, name, baseline)
    done = RUNS[name]
    old = SourceSpec(str(store / "reruns" / baseline / "events")) if baseline else settings.store
    against = f"rerun {baseline}" if baseline else "the events the buses recorded"
    return [f"[{name}] {line}" for line in summary_lines(compare_run(done, old, settings, 0.5), against)]


RUNS: dict[str, FleetRun] = {}


def one_run(store: Path, config: Path, workers: int, name: str) -> dict:
    done = RUNS[name] = run_fleet(_settings(store, config, workers, name), _nothing, _nothing)
    clips = len(done.runs)
    inside = sum(r.seconds for r in done.runs)
    recorded_s = sum(r.end - r.start for r in done.runs)
    return {
        "workers": workers,
        "clips": clips,
        "frames": sum(r.frames for r in done.runs),
        "clip_fps": round((sum(r.frames for r in done.runs) - clips) / recorded_s, 2),
        "replay_s": round(done.replay_s, 2),
        "total_s": round(done.seconds, 2),
        "clips_per_s": round(clips / done.replay_s, 3),
        "pipeline_s_per_clip": round(inside / clips, 3),
        "overhead_s_per_clip": round((done.replay_s * done.workers - inside) / clips, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the recording (and of each clip)")
    parser.add_argument("--buses", type=int, default=4, help="copies of the recording, as that many buses")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
        tmp = Path(folder)
        store = record_store(tmp, args.seconds)
        for n in range(2, args.buses + 1):
            copy_as_bus(store, f"demo-{n:02d}")
        data = demo_data()
        narrow_right_zone(data)
        config = tmp / "narrow.toml"
        config.write_text(to_toml(data))
        runs = []
        load_before = os.getloadavg()[0]
        for i in range(args.rounds):
            for workers in (1, 2):
                runs.append(one_run(store, config, workers, f"bench-{i}-{workers}"))
                print(json.dumps(runs[-1]), flush=True)
        own = DEMO_CONFIG  # what the daemon recorded with (its recorder and folders aside)
        one_run(store, own, 2, "own")
        compared = [
            _compare(store, own, "own", None),
            _compare(store, config, "bench-0-2", None),
            _compare(store, config, "bench-0-2", "own"),
        ]
    load_after = os.getloadavg()[0]
    best = {w: max((r for r in runs if r["workers"] == w), key=lambda r: r["clips_per_s"]) for w in (1, 2)}
    one, two = best[1], best[2]
    print(
        f"fleet rerun: {one['clips']} clips of {one['frames'] // one['clips']} frames on average "
        f"({one['clip_fps']:.1f} frames/s as recorded); "
        f"1 worker {one['clips_per_s']:.2f} clips/s, 2 workers {two['clips_per_s']:.2f} clips/s: "
        f"{two['clips_per_s'] / one['clips_per_s']:.2f}x (best of {args.rounds} each, same run)"
    )
    print(
        f"per clip: {one['pipeline_s_per_clip']:.2f} s in the pipeline, {one['overhead_s_per_clip']:.2f} s around it "
        f"with 1 worker ({two['overhead_s_per_clip']:.2f} s with 2); cluster start and writing "
        f"{one['total_s'] - one['replay_s']:.1f} s / {two['total_s'] - two['replay_s']:.1f} s"
    )
    print(f"machine load (1 min average, 2 cores): {load_before:.1f} before, {load_after:.1f} after")
    for lines in compared:
        print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
