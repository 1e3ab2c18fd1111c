"""Real CPU contention for tests and benchmarks: processes that spin on every core, and are always stopped.

Each hog spins only while the process that started it lives and never past a deadline, so even a harness that is
SIGKILLed leaves no spinning orphan behind; `stop` kills each hog's process group and reaps it.

Where the hogs run matters, because the kernel's autogroup (`/proc/sys/kernel/sched_autogroup_enabled`) shares the
CPU fairly between sessions first and only then by nice value inside a session:
- `same_session` (the default): hogs in the caller's session, so they compete with the daemon and its nice-19
  recorder directly: the recorder gets about 1 % of a core. The harshest case.
- otherwise each hog gets its own session, like another user's job on the machine: the daemon's session keeps its
  fair share and the recorder gets what the daemon leaves of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

# Spins while its parent is alive and the deadline has not passed; looks at both every ~50k loops.
_SPIN = """
import os, sys, time
parent, deadline = os.getppid(), time.monotonic() + float(sys.argv[1])
while os.getppid() == parent and time.monotonic() < deadline:
    for _ in range(50_000):
        pass
"""


@dataclass
class CpuHog:
    """`count` processes spinning for at most `max_s` seconds (a safety net: `stop` ends them first)."""

    count: int = 3
    max_s: float = 600.0
    same_session: bool = True
    _procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> CpuHog:
        where: dict = {"process_group": 0} if self.same_session else {"start_new_session": True}
        try:
            for _ in range(self.count):
                self._procs.append(subprocess.Popen([sys.executable, "-c", _SPIN, str(self.max_s)], **where))
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def alive(self) -> int:
        return sum(p.poll() is None for p in self._procs)

    def stop(self) -> None:
        """Kill every hog's process group and reap it (idempotent)."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # each hog leads its own group
            proc.wait()
        self._procs.clear()

    def __enter__(self) -> CpuHog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds the given live (or not yet reaped) processes have used: proof that a hog really ran."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


if __name__ == "__main__":  # by hand, beside a demo run: python -m tests.cpuhog [seconds]
    with CpuHog(max_s=float(sys.argv[1]) if len(sys.argv) > 1 else 30.0) as hog:
        while hog.alive():
            time.sleep(1.0)
