"""The recorder: clip planning and retention as logic; clips, crash safety and a full disk with the real daemon."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import psutil
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from core.types import Event, Level, Side, VehicleState
from edge.cli import main
from recorder.audit import AuditError, read_log, record_access
from recorder.clips import COMPLETE, ClipPlanner, ClipStart, EventSpan, coverage
from recorder.retention import RetentionPolicy, enforce
from recorder.wal import EventWal, pending_events

from .conftest import assert_every_alert_has_its_event, temp_files, wait_until
from .cpuhog import CpuHog, cpu_seconds
from .test_daemon import Listener, endpoint_of

PIXEL_SUFFIXES = {".mp4", ".avi", ".jpg", ".jpeg", ".png", ".bmp", ".raw", ".npy"}


def event(eid: str, start: float, end: float | None = None) -> Event:
    return Event(eid, "right", Side.RIGHT, "z", start, end or start, Level.INFO, 1.0, 3, 0.9, VehicleState())


# -- clip planning ------------------------------------------------------------------------------------------------


def test_a_clip_reaches_back_a_pre_roll_and_ends_a_post_roll_after_the_last_event() -> None:
    planner = ClipPlanner("bus", pre_roll_s=5, post_roll_s=2)
    (start,) = planner.step("right", 100.0, opened=(event("a", 99.5),), closed=())
    assert isinstance(start, ClipStart) and start.from_ts == 94.5
    assert planner.step("right", 101.0, (), closed=(event("a", 99.5),)) == []
    assert planner.step("right", 102.9, (), ()) == []
    (end,) = planner.step("right", 103.0, (), ())
    assert (end.camera, end.clip_id) == ("right", start.clip_id)
    assert [span.event_id for span in end.events] == ["a"]  # the recorder measures how much of it the clip shows


def test_coverage_is_the_share_of_an_event_within_half_a_second_of_a_clip_frame() -> None:
    span = EventSpan("a", 10.0, 14.0)
    assert coverage(span, [10.0, 10.9, 11.8, 12.7, 13.6]) == 1.0
    assert coverage(span, [9.0, 10.2, 15.0]) == pytest.approx(0.7 / 4)
    assert coverage(EventSpan("b", 10.0, 10.0), [10.4]) == 1.0
    assert coverage(EventSpan("b", 10.0, 10.0), [11.0]) == 0.0


def test_overlapping_events_share_one_clip_and_rows_name_it() -> None:
    planner = ClipPlanner("bus", pre_roll_s=5, post_roll_s=2)
    planner.step("right", 100.0, (event("a", 100.0),), ())
    planner.step("right", 101.0, (), (event("a", 100.0),))
    assert planner.step("right", 102.0, (event("b", 102.0),), ()) == []  # during the post-roll: same clip
    clip = planner.current("right")
    assert planner.clip_of(event("a", 100.0)) == clip == planner.clip_of(event("b", 102.0))


def test_cameras_have_separate_clips() -> None:
    planner = ClipPlanner("bus", pre_roll_s=5, post_roll_s=2)
    planner.step("right", 100.0, (event("a", 100.0),), ())
    planner.step(
        "left", 100.0, (Event("b", "left", Side.LEFT, "z", 100.0, 100.0, Level.INFO, None, 3, 0.9, VehicleState()),), ()
    )
    assert planner.current("right") != planner.current("left")


# -- retention ----------------------------------------------------------------------------------------------------


def make_clip(folder: Path, name: str, size: int, age_days: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    video, sidecar = folder / f"{name}.mp4", folder / f"{name}.frames.parquet"
    video.write_bytes(b"\0" * size)
    sidecar.write_bytes(b"\0" * 100)
    when = time.time() - age_days * 86400
    for p in (video, sidecar):
        os.utime(p, (when, when))
    return video


def test_clips_older_than_retention_are_deleted_with_their_sidecars(tmp_path: Path) -> None:
    old = make_clip(tmp_path / "date=2026-10-01", "old", 1000, age_days=31)
    new = make_clip(tmp_path / "date=2026-11-20", "new", 1000, age_days=2)
    result = enforce(tmp_path, RetentionPolicy(max_age_s=30 * 86400, quota_bytes=10**9))
    assert result.expired == (old,) and not old.exists() and not old.with_suffix(".frames.parquet").exists()
    assert new.exists()


def test_the_quota_evicts_oldest_first_and_never_touches_events(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    events = tmp_path / "events" / "date=2026-11-01" / "bus=b"
    events.mkdir(parents=True)
    (events / "part-1.parquet").write_bytes(b"\0" * 5000)
    a = make_clip(clips, "a", 1000, age_days=3)
    b = make_clip(clips, "b", 1000, age_days=2)
    c = make_clip(clips, "c", 1000, age_days=1)
    result = enforce(clips, RetentionPolicy(max_age_s=30 * 86400, quota_bytes=1500))  # 1100 bytes a clip: room for one
    assert result.evicted == (a, b)
    assert c.exists() and (events / "part-1.parquet").exists()


# -- write-ahead log and access log -------------------------------------------------------------------------------


def test_wal_returns_what_was_logged_and_not_done_and_survives_a_torn_line(tmp_path: Path) -> None:
    wal = EventWal(tmp_path)
    wal.opened(event("a", 1.0))
    wal.opened(event("b", 2.0))
    wal.closed(event("b", 2.0, 5.0))
    wal.opened(event("c", 3.0))
    wal.done(["c"])
    wal.close()
    with open(tmp_path / "events.wal", "a") as fh:
        fh.write('{"op":"open","event":{"event_id":"d"')  # killed mid-write
    pending = {e.event_id: e for e in pending_events(tmp_path / "events.wal")}
    assert set(pending) == {"a", "b"} and pending["b"].end_ts == 5.0


def test_two_daemons_cannot_share_a_state_dir(tmp_path: Path) -> None:
    first = EventWal(tmp_path)
    with pytest.raises(OSError, match="in use by another vigie daemon"):
        EventWal(tmp_path)
    first.close()


def test_access_log_records_who_what_why_and_requires_a_reason(tmp_path: Path) -> None:
    log_path = tmp_path / "audit.log"
    record_access(log_path, Path("clips/x.mp4"), "render", "complaint 2026-113")
    with pytest.raises(AuditError, match="reason is required"):
        record_access(log_path, Path("clips/x.mp4"), "render", " ")
    (line,) = read_log(log_path)
    assert line["action"] == "render" and line["reason"] == "complaint 2026-113" and line["user"]
    assert (log_path.stat().st_mode & 0o777) == 0o600


# -- with the real daemon -----------------------------------------------------------------------------------------


def recorder_config(bus_config, **recorder: object) -> Path:
    def edit(data: dict) -> None:
        data["vehicle"] = {"source": "none"}  # standing bus: every zone informs, events come fast
        data["events"]["flush_s"] = 2
        data["recorder"].update({"enabled": True, "pre_roll_s": 2, "post_roll_s": 1, **recorder})

    return bus_config(edit)


def var_of(config: Path) -> Path:
    return config.parent / "var"


DEADLINE_S = 90.0  # generous: the machine may be busy; no step below is a speed target


@dataclass
class Daemon:
    """The real daemon in the background, stopped like a driver's Ctrl-C once the test has seen what it needs."""

    proc: subprocess.Popen
    log: Path

    def wait_for(self, what: str, condition: Callable[[], object]) -> None:
        def holds() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode}) before {what}: {self.output()}")
            return bool(condition())

        wait_until(holds, what, timeout=DEADLINE_S)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def running(config: Path) -> Iterator[Daemon]:
    """No --duration that the test must fit in: the block says when to stop (SIGINT), and the exit is waited for."""
    log = config.parent / "daemon.log"
    with open(log, "w") as out:  # a file, not a pipe: nobody drains a pipe while the test runs
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], stdout=out, stderr=out)
    try:
        yield Daemon(proc, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def assert_clips_say_what_they_show(var: Path) -> None:
    """Every event names a clip, and the analyst is told the truth about it: `replay list` calls it complete only if
    its frames show 95 % of the event, gives the seconds shown, and says `missing` when it is not on disk. A machine
    busy with other work may starve the recorder: losing frames is allowed, hiding it is not."""
    rows = {r["event_id"]: r for r in ds.dataset(var / "events", partitioning="hive").to_table().to_pylist()}
    assert rows and None not in {r["clip"] for r in rows.values()}
    leftovers = [p.name for p in var.rglob(".*") if p.is_file()]
    assert not leftovers, f"temporary files left: {leftovers}"
    videos = {p.stem: p for p in (var / "clips").rglob("*.mp4")}
    for stem, video in videos.items():
        sidecar = pq.read_table(video.with_name(f"{stem}.frames.parquet"))
        cap = cv2.VideoCapture(str(video))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == sidecar.num_rows > 0
        meta = json.loads(sidecar.schema.metadata[b"vigie.clip"])
        assert meta["zones"] and (video.stat().st_mode & 0o777) == 0o600
        shown = sidecar.column("ts").to_pylist()
        for said in meta["events"]:  # the recorder's own figures, when its clip's end reached it
            span = EventSpan(said["event_id"], said["start_ts"], said["end_ts"])
            assert said["coverage"] == pytest.approx(coverage(span, shown), abs=0.01)
        if meta["complete"]:
            assert all(said["coverage"] >= COMPLETE for said in meta["events"])
    listed = CliRunner().invoke(
        main, ["replay", "list", "--json", "--source", str(var / "events"), "--clips", str(var / "clips")]
    )
    assert listed.exit_code == 0, listed.output
    told = {row["event_id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert set(told) == set(rows)
    for event_id, row in rows.items():
        video = videos.get(row["clip"])
        if video is None:
            assert told[event_id]["clip_state"] == "missing", f"{event_id}: clip {row['clip']} not on disk, not said"
            continue
        span = EventSpan(event_id, row["start_ts"].timestamp(), row["end_ts"].timestamp())
        shown = coverage(span, pq.read_table(video.with_name(f"{video.stem}.frames.parquet")).column("ts").to_pylist())
        assert told[event_id]["clip_state"] == ("complete" if shown >= COMPLETE else "incomplete"), event_id
        assert told[event_id]["clip_shown_s"] == pytest.approx(shown * (span.end_ts - span.start_ts), abs=0.02)
    pixel_files = [p for p in var.rglob("*") if p.suffix.lower() in PIXEL_SUFFIXES]
    assert sorted(pixel_files) == sorted(videos.values())
    # The daemon and its recorder made every folder they keep data in, and made each private (umask 022 here).
    folders = [var, *(p for p in var.rglob("*") if p.is_dir())]
    assert {str(p): p.stat().st_mode & 0o777 for p in folders} == {str(p): 0o700 for p in folders}


def run_demo(config: Path, until: Callable[[], object] = lambda: True, what: str = "") -> None:
    """The demo until a clip is being written (and `until` holds), then stopped: the stop ends every clip and event."""
    clips = var_of(config) / "clips"
    with running(config) as daemon:
        daemon.wait_for(f"a clip{what}", lambda: (temp_files(clips, ".mp4") or list(clips.rglob("*.mp4"))) and until())
    assert daemon.proc.returncode == 0, daemon.output()


def test_a_demo_run_leaves_clips_that_say_what_they_show_of_their_events_and_no_other_pixels(bus_config) -> None:
    config = recorder_config(bus_config)
    run_demo(config)
    assert_clips_say_what_they_show(var_of(config))


@pytest.fixture(params=["same session", "own session"])
def cpu_hog(request: pytest.FixtureRequest) -> Iterator[CpuHog]:
    """Three processes spinning beside the test, killed (by process group) and reaped whatever the test does. In the
    test's own session they leave the nice-19 recorder about 1 % of a core; in their own, what the daemon leaves."""
    hog = CpuHog(3, max_s=600, same_session=request.param == "same session")
    try:
        yield hog.start()
    finally:
        pids = hog.pids
        hog.stop()
        assert not [pid for pid in pids if psutil.pid_exists(pid)], "a hog outlived the test"


def test_under_a_cpu_hog_every_event_still_says_what_its_clip_shows(bus_config, cpu_hog: CpuHog) -> None:
    """Issue 14 item 5: a starved recorder wrote clips that ended before their events, and nothing said so."""
    config = recorder_config(bus_config)
    # The starvation is the stimulus: the run goes on until the hogs have had their CPU, not for a set time.
    run_demo(config, until=lambda: cpu_seconds(cpu_hog.pids) > 3.0, what=" and 3 CPU seconds of the hogs")
    assert cpu_hog.alive() == 3, "a hog died"
    assert_clips_say_what_they_show(var_of(config))


def test_sigkill_mid_clip_loses_no_alerted_event_and_leaves_no_partial_file(bus_config) -> None:
    config = recorder_config(bus_config, post_roll_s=30)  # clips stay open: the kill lands mid-write
    listener = Listener(endpoint_of(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    var = var_of(config)
    try:
        wait_until(
            lambda: (
                len([m for m in listener.of("alert") if m["level"] != "clear"]) >= 3
                and temp_files(var / "clips", ".mp4")
            ),
            "three alerts and a clip being written",
            timeout=DEADLINE_S,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the daemon and its recorder, at once
        proc.wait()
        listener.close()
    alerted = [m for m in listener.of("alert") if m["level"] != "clear"]
    logged = {
        json.loads(line)["event"]["event_id"]
        for line in (var / "state" / "events.wal").read_text().splitlines()
        if line.startswith('{"op":"open"') or line.startswith('{"op":"close"')
    }
    assert logged, "the write-ahead log was empty at the kill"
    assert list(Path("/dev/shm").glob(f"vigie-{proc.pid}-*")), "the killed daemon's rings should still be there"
    restart = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(config), "--duration", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restart.returncode == 0, restart.stderr
    rows = ds.dataset(var / "events", partitioning="hive").to_table().to_pylist()
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)), "an event was written twice"
    assert logged <= set(ids), f"events logged before the kill are missing: {logged - set(ids)}"
    assert not list(Path("/dev/shm").glob(f"vigie-{proc.pid}-*")), "raw frames of the killed daemon left in RAM"
    assert_every_alert_has_its_event(alerted, rows)
    assert not temp_files(var)
    for video in (var / "clips").rglob("*.mp4"):
        assert video.with_name(f"{video.stem}.frames.parquet").exists()


def test_a_full_disk_stops_clips_not_alerts_and_says_so_on_health(bus_config) -> None:
    config = recorder_config(bus_config, min_free_mb=10**9)  # more than any disk has: the disk counts as full
    listener = Listener(endpoint_of(config))
    try:
        with running(config) as daemon:
            # The first clip the recorder is asked for finds the disk full and says so (once: it is a change).
            daemon.wait_for(
                "disk_full from the recorder",
                lambda: [m for m in listener.of("health") if m["camera"] == "recorder" and m["status"] == "disk_full"],
            )
            daemon.wait_for("an info alert", lambda: [m for m in listener.of("alert") if m["level"] == "info"])
    finally:
        listener.close()
    assert daemon.proc.returncode == 0, daemon.output()
    assert not list((var_of(config) / "clips").rglob("*.mp4"))
    assert ds.dataset(var_of(config) / "events", partitioning="hive").count_rows() > 0


def test_wal_starts_afresh_once_nothing_is_pending(tmp_path: Path) -> None:
    """A daemon that runs for weeks must not keep weeks of events (and their times and places) in its log."""
    wal = EventWal(tmp_path)
    wal.opened(event("a", 1.0))
    wal.opened(event("b", 2.0))
    wal.closed(event("a", 1.0, 3.0))
    wal.done(["a"])
    assert (tmp_path / "events.wal").stat().st_size > 0  # b is still open
    wal.closed(event("b", 2.0, 4.0))
    wal.done(["b"])
    assert (tmp_path / "events.wal").stat().st_size == 0
    wal.close()


def test_a_killed_recorder_is_reported_and_restarted_while_alerts_go_on(bus_config) -> None:
    import psutil

    config = recorder_config(bus_config)
    clips = var_of(config) / "clips"
    listener = Listener(endpoint_of(config))

    def recorder_process() -> psutil.Process | None:
        kids = [p for p in psutil.Process(daemon.proc.pid).children() if "multiprocessing" in " ".join(p.cmdline())]
        return next((p for p in kids if "resource_tracker" not in " ".join(p.cmdline())), None)

    def recorder_health() -> list[dict]:
        return [m for m in listener.of("health") if m["camera"] == "recorder" and m["sent_ts"] >= killed_at]

    def restarted() -> dict | None:
        after = recorder_health()
        return after[1] if [m["status"] for m in after][:2] == ["offline", "ok"] else None

    try:
        with running(config) as daemon:
            daemon.wait_for("a recorder process and an alert", lambda: recorder_process() and listener.of("alert"))
            recorder = recorder_process()
            assert recorder is not None
            clip_files_at_the_kill = set(clip_files(clips))
            killed_at = time.time()
            recorder.kill()
            daemon.wait_for("the recorder reported offline, then ok again", restarted)
            ok = restarted()
            assert ok is not None, recorder_health()
            offline_at = recorder_health()[0]["sent_ts"]
            # Alerting never stopped: the daemon alerts on after it lost its recorder.
            daemon.wait_for("an alert after the recorder died", lambda: alerts_after(listener, offline_at))
            # The new recorder writes: a clip file that was not there at the kill is one it opened, with frames in it
            # (a clip file is created with its first frames), and it only ever received frames captured after the
            # kill. The stop finishes it.
            daemon.wait_for(
                "a clip opened by the new recorder", lambda: set(clip_files(clips)) - clip_files_at_the_kill
            )
    finally:
        listener.close()
    assert daemon.proc.returncode == 0, daemon.output()
    sidecars = list(clips.rglob("*.frames.parquet"))
    # Frames captured after the kill can only have been written by the new recorder: the old one was dead.
    assert any(max(pq.read_table(c, columns=["ts"]).column("ts").to_pylist()) > killed_at for c in sidecars), (
        "no clip frames written after the restart"
    )


def alerts_after(listener: Listener, ts: float) -> list[dict]:
    return [m for m in listener.of("alert") if m["sent_ts"] > ts]


def clip_files(clips: Path) -> list[Path]:
    """Clip videos being written (hidden temporary names) or done."""
    return [*temp_files(clips, ".mp4"), *clips.rglob("*.mp4")] if clips.is_dir() else []
