"""Where the CPU goes: the profile behind each e2e.py figure, daemon and recorder sampled separately.

    .venv/bin/python benchmarks/profile_e2e.py [--seconds 20] [--scenario paced rec unpaced naive] [--json OUT]

Each scenario is e2e.py's own (same configs): the real `vigie run` as a subprocess, sampled by py-spy (`bench`
extra) at 100 Hz, and its recorder, a child process py-spy is attached to as soon as it
appears. Two views per process, both in % of one core over the run:

- by thread, from the kernel (/proc/PID/task/*/stat, utime + stime over the run): every thread, FFmpeg's and
  onnxruntime's own included. Threads py-spy saw are labelled with their Python name;
- by stage: each Python thread's kernel CPU time split by where its busy samples were: the innermost frame of
  vigie's own code on the stack (`edge/capture.py` read, `edge/runtime_ort.py` run, `recorder/faces.py`
  run_batch ...), whatever library it is inside. Threads Python does not know of are their own stage.

`naive` profiles e2e.py's naive loop (float model, one camera after the other) in a subprocess the same way.
Sampling costs CPU of its own (py-spy runs beside the daemon on the same two cores): compare shares within a
profile, not its totals with e2e.py's.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.profile_memory import scenario_cmd as daemon_scenario_cmd  # noqa: E402

RATE_HZ = 100
TICKS = os.sysconf("SC_CLK_TCK")
OURS = ("edge/", "recorder/", "core/", "replay/", "benchmarks/e2e.py")
WAITS = ("threading.py", "queue.py", "selectors.py", "multiprocessing/connection.py", "zmq/")
FRAME = re.compile(r"^(?P<func>.+) \((?P<where>[^()]*)\)$")
NAIVE = "import sys; sys.path.insert(0, {repo!r}); from benchmarks.e2e import naive_loop; naive_loop({seconds})"


@dataclass(frozen=True, slots=True)
class Sampled:
    """One process: py-spy's collapsed stacks, and each thread's CPU seconds from the kernel."""

    role: str  # daemon, recorder, naive
    stacks: Path
    threads: dict[int, tuple[str, float]]  # tid -> (the kernel's name for it, CPU seconds over the run)
    wall_s: float


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Name and CPU seconds of every thread of `pid` so far (utime + stime, fields 14 and 15 of /proc/.../stat).
    Read while the threads live: FFmpeg's decoding threads end at each file loop."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            head, tail = (task / "stat").read_text().rsplit(")", 1)
        except OSError:  # the thread ended between the listing and the read
            continue
        fields = tail.split()
        out[int(task.name)] = (head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def spy(pid: int, out: Path) -> subprocess.Popen:
    spy_bin = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    # Without --native: py-spy then tells a thread waiting on a lock or an Event from one at work (with it, it
    # counted waits as work); a sample's stage is its innermost vigie frame either way.
    cmd = [spy_bin, "record", "--pid", str(pid), "--threads", "-r", str(RATE_HZ), "-f", "raw"]
    return subprocess.Popen([*cmd, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_sampled(cmd: list[str], folder: Path) -> list[Sampled]:
    """Run `cmd`, attach py-spy to it and to its first child process (the recorder), and keep each thread's
    CPU seconds as last seen before the process ended."""
    started = time.monotonic()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    spies = {proc.pid: spy(proc.pid, folder / f"{proc.pid}.txt")}
    threads: dict[int, dict[int, tuple[str, float]]] = {proc.pid: {}}
    while proc.poll() is None:
        try:
            for child in proc.children():
                if child.pid not in spies and "resource_tracker" not in " ".join(child.cmdline()):
                    spies[child.pid] = spy(child.pid, folder / f"{child.pid}.txt")
                    threads[child.pid] = {}
            for pid in threads:
                threads[pid].update(thread_cpu(pid))
        except (psutil.Error, OSError):  # a child ended between two looks
            pass
        time.sleep(0.1)
    wall_s = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[2:4]} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    for s in spies.values():
        s.wait(timeout=60)
    roles = ["daemon", "recorder", *(f"child{i}" for i in range(len(spies)))]
    return [
        Sampled(role, folder / f"{pid}.txt", threads[pid], wall_s)
        for role, pid in zip(roles, spies, strict=False)
        if (folder / f"{pid}.txt").exists()
    ]


def stage_of(frames: list[str]) -> str | None:
    """The innermost frame of vigie's own code, as `file:function`; None for a thread waiting (its innermost
    frame in threading, queue or selectors: py-spy's own idle test misses a wait inside a lock)."""
    if frames and (m := FRAME.match(frames[-1])) and m["where"].startswith(WAITS):
        return None
    for frame in reversed(frames):
        if (m := FRAME.match(frame)) and m["where"].startswith(OURS):
            return f"{m['where'].split(':')[0]}:{m['func']}"
    return "other"


def by_stage(sampled: Sampled) -> dict[str, float]:
    """% of one core per stage: each thread's kernel CPU time, split by the share of its busy samples in each
    stage (so the total is the kernel's, not the sampler's). Threads py-spy does not see (FFmpeg's decoding
    threads, onnxruntime's pool) are their own stage."""
    per_thread: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in sampled.stacks.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        # A line: "thread (TID): NAME;frame;frame... COUNT", outermost frame first.
        thread, *frames = stack.split(";")
        tid = re.match(r"thread \((\d+)\)", thread)
        stage = stage_of(frames)
        if tid and stage:
            per_thread[tid[1]][stage] += int(n)
    out: collections.Counter[str] = collections.Counter()
    for tid, (comm, cpu_s) in sampled.threads.items():
        counts = per_thread.get(str(tid))
        if not counts:
            out[f"native thread: {comm}"] += cpu_s
            continue
        busy = sum(counts.values())
        for stage, n in counts.items():
            out[stage] += cpu_s * n / busy
    return {k: round(100 * v / sampled.wall_s, 1) for k, v in out.most_common()}


def by_thread(sampled: Sampled) -> dict[str, float]:
    """% of one core per thread, named by py-spy where Python knows the thread, else by the kernel's name."""
    names = dict(re.findall(r"^thread \((\d+)\): ([^; ]+)", sampled.stacks.read_text(), re.MULTILINE))
    out: collections.Counter[str] = collections.Counter()
    for tid, (comm, cpu_s) in sampled.threads.items():
        out[names.get(str(tid), f"native: {comm}")] += cpu_s
    return {k: round(100 * v / sampled.wall_s, 1) for k, v in out.most_common()}


def scenario_cmd(name: str, folder: Path, seconds: float) -> list[str]:
    """e2e.py's naive loop, or its daemon scenario `name` as the memory profile runs it."""
    if name == "naive":
        return [sys.executable, "-c", NAIVE.format(repo=str(REPO), seconds=seconds)]
    return daemon_scenario_cmd(name, folder, seconds)


def print_table(title: str, shares: dict[str, float], top: int) -> None:
    print(f"  {title}: total {sum(shares.values()):.1f} % of a core")
    for k, v in list(shares.items())[:top]:
        print(f"    {v:6.1f} %  {k}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--scenario", nargs="+", default=["paced", "rec", "unpaced", "naive"])
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="keep py-spy's collapsed stacks here (flamegraph input)")
    args = ap.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenario:
            folder = (args.keep or Path(tmp)) / name
            folder.mkdir(parents=True, exist_ok=True)
            print(f"{name}:")
            for s in run_sampled(scenario_cmd(name, folder, args.seconds), folder):
                stages, threads = by_stage(s), by_thread(s)
                results[f"{name}/{s.role}"] = {"stages": stages, "threads": threads}
                print(f" {s.role} ({s.wall_s:.0f} s)")
                print_table("by stage (py-spy)", stages, args.top)
                print_table("by thread (kernel)", threads, args.top)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
