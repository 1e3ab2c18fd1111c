"""Where the memory goes: the profile behind e2e.py's PSS figure, daemon and recorder mapped separately.

    .venv/bin/python benchmarks/profile_memory.py [--seconds 15] [--scenario paced rec] [--command vigie] [--json OUT]

Each scenario is e2e.py's own (same configs): the real `vigie run` as a subprocess. Like e2e.py, the sum of the PSS
of the process tree (daemon, recorder, multiprocessing's resource tracker) is sampled every 0.2 s from
/proc/PID/smaps_rollup; whenever that sum reaches a new peak, every process's /proc/PID/smaps is read, and the
snapshot of the highest peak is what is printed: PSS (shared pages split between the processes that map them, so
the frame rings both processes map count once in the sum) by group of mappings:

- a shared library by its package (cv2, onnxruntime, numpy, pyarrow, scipy, ...: the wheel's own .so files and its
  bundled `<name>.libs`), the interpreter, Python's own extension modules, the system's libraries;
- the shared-memory frame rings (/dev/shm/vigie-*);
- anonymous memory, split by how glibc lays it out: the main malloc arena ([heap]), the arenas of other threads
  (64 MB-aligned reservations, of which only the touched part counts), thread stacks (a mapping behind a 4 KB guard
  page), and the rest (blocks malloc mapped on their own: large numpy arrays, onnxruntime buffers, Python's object
  arenas).

Also printed per process: the packages it has loaded (from the extension modules it maps: a package the process
never needed shows up there) and when its peak came (start-up or steady state). To measure a setting of the
environment (MALLOC_ARENA_MAX, ...), set it on this command: the daemon and its recorder inherit it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.e2e import scenario_config  # noqa: E402

SAMPLE_S = 0.2
MB = 2**20
ARENA_BYTES = 64 * MB  # glibc's HEAP_MAX_SIZE on 64-bit: each thread arena reserves this, aligned to it
GUARD_BYTES = 4096  # glibc's default guard page below a thread stack
HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$")
SITE = re.compile(r"/site-packages/([^/]+)/")
ALIASES = {"opencv_python_headless": "cv2", "opencv_python": "cv2"}  # a wheel's .libs folder named by its project
ROLES = ("daemon", "recorder", "resource tracker")


@dataclass(frozen=True, slots=True)
class Mapping:
    """One line of /proc/PID/maps with its smaps counters, in bytes."""

    start: int
    end: int
    perms: str
    path: str
    rss: int
    pss: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One process at the tree's peak: PSS and RSS by group of mappings, in bytes."""

    role: str
    pid: int
    pss: dict[str, int]
    rss: dict[str, int]
    packages: tuple[str, ...]


def read_smaps(pid: int) -> list[Mapping]:
    """Every mapping of `pid` with its Rss and Pss (kB in the file)."""
    out: list[Mapping] = []
    head: tuple[int, int, str, str] | None = None
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if m := HEADER.match(line):
            if head is not None:
                out.append(Mapping(*head, rss, pss))
            head, rss, pss = (int(m[1], 16), int(m[2], 16), m[3], m[4].strip()), 0, 0
        elif line.startswith("Rss:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) * 1024
    if head is not None:
        out.append(Mapping(*head, rss, pss))
    return out


def package_of(path: str) -> str:
    """The group of a file-backed mapping: its wheel's package, the interpreter, or where the system keeps it."""
    if path.startswith("/dev/shm/"):
        return "frame rings (shm)" if Path(path).name.startswith("vigie-") else "other shared memory"
    if m := SITE.search(path):
        name = m[1].removesuffix(".libs")
        return ALIASES.get(name, name)
    if "/site-packages/" in path:  # a module at the top of site-packages (e.g. _cffi_backend.*.so)
        return Path(path).name.split(".")[0]
    if "/lib-dynload/" in path:
        return "python stdlib extensions"
    name = Path(path).name
    if name.startswith(("python3", "libpython3")):
        return "python interpreter"
    if path.endswith(".onnx"):
        return "model files"
    if "/lib/" in path or "/lib64/" in path:
        return "system libraries (libc, libstdc++, ...)"
    return f"other files ({name})"


def group_of(maps: list[Mapping], i: int) -> str:
    """The group of the i-th mapping. Anonymous memory is told apart by glibc's layout: a thread arena starts on a
    64 MB boundary and is followed by the inaccessible rest of its reservation; a thread stack sits just above its
    guard page."""
    m = maps[i]
    if m.path == "[heap]":
        return "anon: malloc main arena [heap]"
    if m.path == "[stack]":
        return "anon: thread stacks"
    if m.path.startswith("["):
        return "kernel ([vdso], [vvar], ...)"
    if m.path:
        return package_of(m.path.removesuffix(" (deleted)"))
    before = maps[i - 1] if i > 0 else None
    after = maps[i + 1] if i + 1 < len(maps) else None
    if m.start % ARENA_BYTES == 0 and (
        m.end - m.start == ARENA_BYTES
        or (after is not None and not after.path and after.perms.startswith("---") and after.start == m.end)
    ):
        return "anon: malloc thread arenas"
    if (
        before is not None
        and not before.path
        and before.perms.startswith("---")
        and before.end == m.start
        and before.end - before.start == GUARD_BYTES
    ):
        return "anon: thread stacks"
    return "anon: other (large malloc blocks, numpy, onnxruntime, pymalloc)"


def snapshot(role: str, pid: int) -> Snapshot:
    maps = read_smaps(pid)
    pss: collections.Counter[str] = collections.Counter()
    rss: collections.Counter[str] = collections.Counter()
    for i, m in enumerate(maps):
        group = group_of(maps, i)
        pss[group] += m.pss
        rss[group] += m.rss
    extensions = {package_of(m.path) for m in maps if m.path.endswith(".so") and "/site-packages/" in m.path}
    return Snapshot(role, pid, dict(pss), dict(rss), tuple(sorted(extensions)))


def pss_of(pid: int) -> int:
    """The process's PSS in bytes: smaps_rollup is one line per counter, cheap enough to read every 0.2 s."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"/proc/{pid}/smaps_rollup has no Pss line")


def role_of(proc: psutil.Process, root: psutil.Process) -> str:
    if proc.pid == root.pid:
        return "daemon"
    return "resource tracker" if "resource_tracker" in " ".join(proc.cmdline()) else "recorder"


@dataclass(frozen=True, slots=True)
class Profile:
    peak_bytes: int  # the e2e figure: the sum of the tree's PSS (smaps_rollup) at its highest sample
    snapshot_bytes: int  # the sum of the snapshot below (smaps, read just after that sample or the highest one)
    peak_at_s: float  # seconds after the daemon started, of the snapshot
    wall_s: float
    processes: tuple[Snapshot, ...]
    own_peaks: dict[str, int]  # each role's own highest PSS, which need not be at the tree's peak


def run_profiled(cmd: list[str]) -> Profile:
    """Run `cmd` and sample its process tree until it exits; smaps of every process at each new peak of the sum."""
    started = time.monotonic()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    best: tuple[int, float, tuple[Snapshot, ...]] = (0, 0.0, ())
    peak = 0
    own: collections.Counter[str] = collections.Counter()
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error, OSError, ValueError):  # a process ended between two looks
            tree = [proc, *proc.children(recursive=True)]
            sizes = {p.pid: pss_of(p.pid) for p in tree}
            for p in tree:
                role = role_of(p, proc)
                own[role] = max(own[role], sizes[p.pid])
            peak = max(peak, sum(sizes.values()))
            if sum(sizes.values()) > best[0]:
                # The snapshot's own sum decides: a process exiting while its smaps is read (the recorder at the
                # end of the run) would leave a snapshot of half a process standing in for the peak.
                snaps = tuple(snapshot(role_of(p, proc), p.pid) for p in tree)
                if (snap_sum := sum(sum(s.pss.values()) for s in snaps)) > best[0]:
                    best = (snap_sum, time.monotonic() - started, snaps)
        time.sleep(SAMPLE_S)
    if proc.returncode != 0:
        raise SystemExit(f"vigie run failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return Profile(peak, best[0], best[1], time.monotonic() - started, best[2], dict(own))


def scenario_cmd(name: str, folder: Path, seconds: float, command: str = "module") -> list[str]:
    """e2e.py's scenario `name`, run as e2e.py runs it (`python -m edge`) or as a bus does (the installed `vigie`)."""
    at_15fps = lambda c: c.update(fps=15.0)  # noqa: E731
    configs = {
        "paced": lambda: scenario_config(folder, "paced", at_15fps),
        "rec": lambda: scenario_config(folder, "rec", at_15fps, recorder=True),
        "unpaced": lambda: scenario_config(folder, "unpaced", lambda c: c.update(realtime=False)),
    }
    config = configs[name]()
    start = [sys.executable, "-m", "edge"] if command == "module" else [str(Path(sys.executable).parent / "vigie")]
    return [*start, "run", "--config", str(config), "--duration", str(seconds)]


def by_role(profile: Profile) -> dict[str, Snapshot]:
    """One snapshot per role; several processes of one role (a restarted recorder) are summed."""
    out: dict[str, Snapshot] = {}
    for s in profile.processes:
        if s.role in out:
            prev = out[s.role]
            pss = collections.Counter(prev.pss) + collections.Counter(s.pss)
            rss = collections.Counter(prev.rss) + collections.Counter(s.rss)
            s = Snapshot(s.role, s.pid, dict(pss), dict(rss), tuple(sorted({*prev.packages, *s.packages})))
        out[s.role] = s
    return out


def print_profile(name: str, profile: Profile, top: int) -> None:
    roles = by_role(profile)
    present = [r for r in ROLES if r in roles]
    total = collections.Counter[str]()
    for s in roles.values():
        total.update(s.pss)
    print(
        f"{name}: peak PSS of the tree {profile.peak_bytes / MB:.1f} MB (e2e.py's figure); mapped below: "
        f"{profile.snapshot_bytes / MB:.1f} MB at {profile.peak_at_s:.1f} s of {profile.wall_s:.0f} s; own peaks "
        + ", ".join(f"{r} {profile.own_peaks.get(r, 0) / MB:.1f} MB" for r in present)
    )
    print(f"  {'MB PSS at the peak':64s}" + "".join(f"{r[:10]:>11s}" for r in present) + f"{'sum':>9s}")
    groups = [g for g, _ in total.most_common()]
    shown, rest = groups[:top], groups[top:]
    for g in shown:
        cells = "".join(f"{roles[r].pss.get(g, 0) / MB:11.1f}" for r in present)
        print(f"  {g:64s}{cells}{total[g] / MB:9.1f}")
    if rest:
        cells = "".join(f"{sum(roles[r].pss.get(g, 0) for g in rest) / MB:11.1f}" for r in present)
        print(f"  {f'{len(rest)} smaller groups':64s}{cells}{sum(total[g] for g in rest) / MB:9.1f}")
    cells = "".join(f"{sum(roles[r].pss.values()) / MB:11.1f}" for r in present)
    print(f"  {'total':64s}{cells}{sum(total.values()) / MB:9.1f}")
    for r in present:
        print(f"  {r} loads extension modules of: {', '.join(roles[r].packages)}")


def as_json(profile: Profile) -> dict:
    return {
        "peak_mb": round(profile.peak_bytes / MB, 1),
        "snapshot_mb": round(profile.snapshot_bytes / MB, 1),
        "peak_at_s": round(profile.peak_at_s, 1),
        "own_peaks_mb": {r: round(v / MB, 1) for r, v in profile.own_peaks.items()},
        "processes": {
            role: {
                "pss_mb": {g: round(v / MB, 2) for g, v in sorted(s.pss.items(), key=lambda kv: -kv[1])},
                "rss_mb": {g: round(v / MB, 2) for g, v in sorted(s.rss.items(), key=lambda kv: -kv[1])},
                "packages": list(s.packages),
            }
            for role, s in by_role(profile).items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--scenario", nargs="+", default=["paced", "rec"], choices=["paced", "rec", "unpaced"])
    ap.add_argument("--top", type=int, default=16, help="groups shown; the rest are summed on one line")
    ap.add_argument("--json", type=Path)
    # A spawned child runs its parent's main script again (not a package's __main__): what the installed command
    # imports there, its recorder loads too.
    ap.add_argument("--command", choices=["module", "vigie"], default="module", help="python -m edge, or vigie")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenario:
            profile = run_profiled(scenario_cmd(name, Path(tmp), args.seconds, args.command))
            print_profile(name, profile, args.top)
            results[name] = as_json(profile)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
