"""Recorder faults with real processes: a daemon that dies takes its recorder, helpers and rings with it; a failure
of the daemon's end of the link is reported and the recorder restarted, again and again, with backoff."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil
import pyarrow.parquet as pq
import pytest

from edge.recorder_link import RestartBackoff
from recorder.ring import SHM_DIR, ring_name

from .conftest import FOOTAGE, free_port, temp_files
from .services.mjpeg_http import MjpegCamera
from .test_daemon import Listener, endpoint_of
from .test_recorder import recorder_config, var_of

T = TypeVar("T")
DEADLINE_S = 90.0  # generous: these tests must pass on a machine busy with other work


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = DEADLINE_S) -> T:
    """The condition's first true value, polled until the deadline."""
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


# -- backoff (pure logic) -----------------------------------------------------------------------------------------


def test_restarts_back_off_to_a_cap_and_a_recorder_that_ran_long_starts_again_from_the_shortest_delay() -> None:
    backoff = RestartBackoff(delays_s=(1.0, 2.0, 5.0), stable_s=60.0)
    failures, delays = 0, []
    for _ in range(5):
        failures = backoff.failures_after(failures, uptime_s=3.0)
        delays.append(backoff.delay(failures))
    assert delays == [1.0, 2.0, 5.0, 5.0, 5.0]
    assert backoff.failures_after(failures, uptime_s=60.0) == 1


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
    time.sleep(3600)  # alive until the test kills it: the kill is the event under test, not this pause
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
            lambda: len(rings_of(daemon.pid)) == 4 and temp_files(clips, ".mp4"),
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
        assert not temp_files(clips), "the recorder did not finish its clips"
        for video in clips.rglob("*.mp4"):
            assert video.with_name(f"{video.stem}.frames.parquet").exists()
    finally:
        kill_leftovers(daemon, helpers)


# -- the daemon's end of the link fails -----------------------------------------------------------------------------


def recorder_health(listener: Listener) -> list[dict]:
    return [m for m in listener.of("health") if m["camera"] == "recorder"]


def failures(listener: Listener, at_least: int) -> list[dict] | None:
    failed = [m for m in recorder_health(listener) if m["status"] == "failed"]
    return failed if len(failed) >= at_least else None


def clips_written_since(clips: Path, ts: float) -> list[Path]:
    """Clips being written that got frames after `ts` (one may be finished, and renamed, while we look)."""
    written = []
    for path in temp_files(clips, ".mp4"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime > ts:
                written.append(path)
    return written


def test_a_failing_link_is_reported_and_the_recorder_restarted_each_time_until_it_works(
    bus_config, tmp_path: Path
) -> None:
    """The rear camera comes online only once a file squats the name of its ring: creating the ring (in `submit`)
    raises. Each failure is reported and the recorder restarted after a backoff; once the squatter is gone, the
    restarted recorder writes clips again. Alerts never stop."""
    port = free_port()

    def with_late_rear_camera(edit: Callable[[dict], None]) -> Path:
        def both(data: dict) -> None:
            edit(data)
            (rear,) = [c for c in data["cameras"] if c["name"] == "rear"]
            rear["source"] = f"http://127.0.0.1:{port}/stream.mjpg"  # served only when the test says so

        return bus_config(both)

    config = recorder_config(with_late_rear_camera)
    listener = Listener(endpoint_of(config))  # nothing below depends on its first messages
    daemon = start_daemon(config, tmp_path / "daemon.log", "--duration", "600")
    squatter = SHM_DIR / ring_name(daemon.pid, "rear")
    camera: MjpegCamera | None = None
    try:
        wait_for(
            lambda: listener.of("alert") and SHM_DIR.joinpath(ring_name(daemon.pid, "front")).exists(),
            "the daemon alerts and sends frames to the recorder",
        )
        fd = os.open(squatter, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)  # fails if the rear ring existed
        os.close(fd)
        camera = MjpegCamera(FOOTAGE / "cam_rear.mp4", port=port)

        first, second = wait_for(
            lambda: failures(listener, 2), "two failures reported: the restarted recorder is watched again"
        )[:2]
        assert "FileExistsError" in first["detail"], first
        assert second["sent_ts"] - first["sent_ts"] >= RestartBackoff().delays_s[0], "no backoff between restarts"
        squatter.unlink()

        def ok_after_failures() -> dict | None:
            health = recorder_health(listener)
            last_failure = max(i for i, m in enumerate(health) if m["status"] == "failed")
            return next((m for m in health[last_failure + 1 :] if m["status"] == "ok"), None)

        ok = wait_for(ok_after_failures, "the recorder reported running again")
        last_failure = wait_for(lambda: failures(listener, 1), "a failure reported")[-1]
        clips = var_of(config) / "clips"
        # People keep walking by: clips stay open until the daemon stops. Stop it once the restarted recorder has
        # written into one.
        wait_for(lambda: clips_written_since(clips, ok["sent_ts"]), "the restarted recorder writes a clip")
        assert SHM_DIR.joinpath(ring_name(daemon.pid, "rear")).exists(), "the rear ring was never created"
        assert [m for m in listener.of("alert") if m["sent_ts"] > first["sent_ts"]], "alerts stopped"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, (tmp_path / "daemon.log").read_text()[-3000:]
        # From a failure to the restart the link sends nothing, so a frame captured after the last failure was
        # reported can only have been written by the recorder started after it.
        sidecars = clips.rglob("*.frames.parquet")
        newest = max((max(pq.read_table(s, columns=["ts"]).column("ts").to_pylist()) for s in sidecars), default=0.0)
        assert newest > last_failure["sent_ts"], f"no clip frame after the last failure: {newest} {last_failure} {ok}"
    finally:
        listener.close()
        if camera is not None:
            camera.stop()
        squatter.unlink(missing_ok=True)
        kill_leftovers(daemon, [])


WRITE_SYSCALL = {"x86_64": 1, "aarch64": 64}.get(platform.machine())


def blocked_writing_a_pipe(pid: int) -> bool:
    """Whether a thread of the process waits in write(2) on a pipe (/proc/PID/task/TID/syscall: number, fd, ...)."""
    pipes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith("pipe:"):
                pipes.add(int(fd.name))
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "syscall").read_text().split()
            if fields[0] == str(WRITE_SYSCALL) and int(fields[1], 16) in pipes:
                return True
    return False


@pytest.mark.skipif(WRITE_SYSCALL is None, reason="write(2)'s number is known here for x86_64 and aarch64 only")
def test_a_daemon_whose_stalled_recorder_was_replaced_still_exits_promptly(bus_config, tmp_path: Path) -> None:
    """A recorder that stops reading lets the daemon fill its queue's pipe, and the thread feeding that pipe then
    blocks for ever. Once that recorder is killed and replaced, the blocked thread must not hold the daemon's exit."""
    config = recorder_config(bus_config)
    listener = Listener(endpoint_of(config))  # nothing below depends on its first messages
    daemon = start_daemon(config, tmp_path / "daemon.log")
    helpers: list[psutil.Process] = []
    try:
        wait_for(lambda: len(rings_of(daemon.pid)) == 4, "the daemon sends frames to the recorder")
        helpers = psutil.Process(daemon.pid).children()
        (recorder,) = [p for p in helpers if not is_tracker(p)]
        recorder.suspend()

        wait_for(
            lambda: blocked_writing_a_pipe(daemon.pid),
            "the stopped recorder's queue fills its pipe (~170 frame messages)",
            timeout=2 * DEADLINE_S,
        )
        recorder.kill()
        wait_for(lambda: [m for m in recorder_health(listener) if m["status"] == "ok"], "a new recorder replaces it")
        daemon.send_signal(signal.SIGTERM)
        wait_for(lambda: daemon.poll() is not None, "the daemon exits on SIGTERM", timeout=60)
        assert daemon.returncode == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    finally:
        listener.close()
        kill_leftovers(daemon, helpers)


def test_rings_left_under_the_daemons_own_pid_are_stale_and_do_not_stop_its_recorder(bus_config, tmp_path) -> None:
    """A container's daemon often has the same pid at every start, and its /dev/shm outlives a crash: a ring left
    under that pid is a dead daemon's, not a reason to fail to create our own."""
    config = recorder_config(bus_config)
    listener = Listener(endpoint_of(config))  # nothing below depends on its first messages
    # `exec` keeps the shell's pid: the stale ring is there, under the daemon's pid, before the daemon starts.
    shell = 'touch "$0/vigie-$$-front" && exec "$1" -m edge run --config "$2"'
    daemon = subprocess.Popen(
        ["sh", "-c", shell, str(SHM_DIR), sys.executable, str(config)],
        stdout=(tmp_path / "daemon.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    clips = var_of(config) / "clips"
    try:
        wait_for(
            lambda: [p for p in temp_files(clips, ".mp4") + list(clips.rglob("*.mp4")) if "_front_" in p.name],
            "a clip from the front camera, whose ring had a stale namesake",
        )
        daemon.send_signal(signal.SIGINT)
        wait_for(lambda: daemon.poll() is not None, "the daemon exits on SIGINT", timeout=60)
        assert daemon.returncode == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    finally:
        listener.close()
        kill_leftovers(daemon, [])
    assert not failures(listener, 1), failures(listener, 1)
    assert list(clips.rglob("*_front_*.frames.parquet")), "no finished clip from the front camera"
