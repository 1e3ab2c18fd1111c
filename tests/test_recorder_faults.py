"""Recorder faults with real processes: a daemon that dies takes its recorder, helpers and rings with it."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from recorder.ring import SHM_DIR, ring_name

from .test_recorder import recorder_config, var_of

DEADLINE_S = 90.0  # generous: these tests must pass on a machine busy with other work


def wait_for(condition: Callable[[], object], what: str, timeout: float = DEADLINE_S) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE  # dead, waiting for init to reap it
    except psutil.NoSuchProcess:
        return True


def shm_mapped_by(pid: int) -> set[Path]:
    """The /dev/shm files a process maps: its frame rings and multiprocessing's semaphores."""
    with open(f"/proc/{pid}/maps") as fh:
        return {Path(line.split()[-1]) for line in fh if str(SHM_DIR) in line}


def rings_of(pid: int) -> list[Path]:
    return list(SHM_DIR.glob(ring_name(pid, "*")))


def start_daemon(config: Path, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config), *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def is_tracker(proc: psutil.Process) -> bool:
    try:
        return "resource_tracker" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def kill_leftovers(daemon: subprocess.Popen, helpers: list[psutil.Process]) -> None:
    """After a failed assertion, leave the machine as it was: no process, no 16 MB ring. The resource tracker goes
    last, on its own once nobody holds its pipe: killed, it would leave the semaphores it tracks behind."""
    if daemon.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            helpers = [*helpers, *psutil.Process(daemon.pid).children()]
    trackers = [p for p in helpers if is_tracker(p)]
    for proc in helpers:
        if proc not in trackers and not gone(proc):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    with contextlib.suppress(AssertionError):
        wait_for(lambda: all(gone(p) for p in trackers), "the resource tracker exits", timeout=10)
    for proc in trackers:
        if not gone(proc):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
    for path in rings_of(daemon.pid):
        path.unlink(missing_ok=True)


# -- the daemon dies ----------------------------------------------------------------------------------------------

ORPHAN_SCRIPT = """
import multiprocessing as mp, os, time
from recorder.lifeline import Lifeline
from recorder.ring import FrameRing, ring_name

def stuck():
    Lifeline(grace_s=1.0).start()
    time.sleep(3600)  # a recorder whose stop never ends

if __name__ == "__main__":
    ring = FrameRing.create(ring_name(os.getpid(), "cam"), 2, 8, 8)
    child = mp.get_context("spawn").Process(target=stuck)
    child.start()
    print(child.pid, flush=True)
    time.sleep(3600)
"""


def test_a_child_whose_stop_hangs_is_ended_by_its_lifeline_once_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    helpers: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        helpers = psutil.Process(parent.pid).children()  # the child and multiprocessing's resource tracker
        assert child_pid in {p.pid for p in helpers} and len(helpers) == 2, helpers
        assert rings_of(parent.pid)
        parent.kill()
        parent.wait()
        wait_for(lambda: all(gone(p) for p in helpers), "the orphaned child and the resource tracker exit")
        assert not rings_of(parent.pid)
    finally:
        kill_leftovers(parent, helpers)


def test_a_sigkilled_daemon_takes_its_recorder_helpers_and_rings_with_it(bus_config, tmp_path: Path) -> None:
    """SIGKILL of the daemon alone (not its group): the recorder finishes its clips and exits, the resource tracker
    follows, and no ring or semaphore of theirs is left in /dev/shm."""
    config = recorder_config(bus_config, post_roll_s=30)  # clips stay open: the kill lands mid-clip
    daemon = start_daemon(config, tmp_path / "daemon.log")
    helpers: list[psutil.Process] = []
    clips = var_of(config) / "clips"
    try:
        wait_for(
            lambda: len(rings_of(daemon.pid)) == 4 and list(clips.rglob(".*.partial.*")),
            "the recorder is up, with a ring per camera and a clip being written",
        )
        helpers = psutil.Process(daemon.pid).children()
        kinds = sorted("tracker" if is_tracker(p) else "recorder" for p in helpers)
        assert kinds == ["recorder", "tracker"], [p.cmdline() for p in helpers]
        shm = shm_mapped_by(daemon.pid) | {path for p in helpers for path in shm_mapped_by(p.pid)}
        assert set(rings_of(daemon.pid)) <= shm and any(p.name.startswith("sem.") for p in shm), shm

        daemon.send_signal(signal.SIGKILL)
        daemon.wait()

        wait_for(lambda: all(gone(p) for p in helpers), "the recorder and the resource tracker exit")
        wait_for(lambda: not [p for p in shm if p.exists()], "their rings and semaphores are unlinked")
        assert not list(clips.rglob(".*.partial.*")), "the recorder did not finish its clips"
        for video in clips.rglob("*.mp4"):
            assert video.with_name(f"{video.stem}.frames.parquet").exists()
    finally:
        kill_leftovers(daemon, helpers)
