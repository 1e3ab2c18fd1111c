"""A full disk under the event store: alerts go on, `health` says so, and every accepted event is written once space
returns. The disk is a real, full tmpfs mounted for each test; the daemon, the bus and the Parquet files are real."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from core.types import Event, Level, Side, StoreCounts, VehicleState
from recorder.events import EventSink, EventWriter
from recorder.wal import EventWal, pending_events

from .conftest import FullDisk, assert_every_alert_has_its_event, temp_files, wait_until
from .test_daemon import Listener, endpoint_of


def event(i: int, start: float = 1_800_000_000.0) -> Event:
    return Event(
        f"ev-{i}", "right", Side.RIGHT, "blind-spot", start + i, start + i, Level.INFO, 1.5, 5, 0.8, VehicleState()
    )


# -- the store's parts on a full disk -------------------------------------------------------------------------------


def test_the_log_keeps_only_whole_records_on_a_full_disk_and_catches_up_when_space_returns(full_disk: FullDisk) -> None:
    """A write cut short by the full disk is cut back: the next record must not be glued to half of one."""
    full_disk.free()
    wal = EventWal(full_disk.root / "state")
    wal.opened(event(0))
    full_disk.fill()
    for i in range(1, 40):  # ~18 KB of records: several cross a page the disk does not have
        wal.opened(event(i))
    fault = wal.fault()
    assert fault is not None and fault.full and fault.folder == full_disk.root / "state"
    text = (full_disk.root / "state" / "events.wal").read_text()
    assert text.endswith("\n") and all(json.loads(line) for line in text.splitlines())
    full_disk.free()

    def caught_up() -> bool:
        wal.sync()  # the syncer thread does the same each second; calling it here only saves the wait
        return wal.fault() is None

    wait_until(caught_up, "the log written again")
    wal.close()
    assert {ev.event_id for ev in pending_events(full_disk.root / "state" / "events.wal")} == {
        f"ev-{i}" for i in range(40)
    }


def test_beyond_the_bound_the_oldest_waiting_events_are_dropped_counted_and_told(full_disk: FullDisk) -> None:
    writer = EventWriter(EventSink(full_disk.root / "events", "bus-7", "model@1"), 0.1, max_waiting=3)
    for i in range(5):
        writer.add(event(i))
    wait_until(lambda: writer.state().folder is not None, "a failed write")
    state = writer.state()
    assert (state.status, state.waiting, state.dropped) == ("disk_full", 3, 2)
    (told,) = writer.health()
    assert told.camera == "events" and "2 dropped" in told.detail and str(full_disk.root / "events") in told.detail
    full_disk.free()
    wait_until(lambda: writer.state().status == "ok", "events written again")
    writer.close()
    assert writer.counts == StoreCounts(accepted=5, written=3, dropped=2)
    rows = ds.dataset(full_disk.root / "events", partitioning="hive").to_table().to_pylist()
    assert sorted(r["event_id"] for r in rows) == ["ev-2", "ev-3", "ev-4"]  # the newest were kept
    assert not temp_files(full_disk.root / "events"), "a failed write left its temporary file"


# -- the real daemon ------------------------------------------------------------------------------------------------


def disk_config(bus_config, state_dir: Path, events_dir: Path) -> Path:
    def edit(data: dict) -> None:
        data["vehicle"] = {"source": "none"}  # standing bus: every zone informs, events come fast
        data["events"].update(dir=str(events_dir), flush_s=1)
        data["recorder"].update(enabled=False, state_dir=str(state_dir))

    return bus_config(edit)


class Run:
    """The real daemon in the background, stopped with SIGINT like a driver's Ctrl-C, with a display listening."""

    def __init__(self, config: Path):
        self.stats_path = config.parent / "stats.json"
        self.stderr_path = config.parent / "daemon.stderr"
        # No wait for the subscription: a fault is repeated on the heartbeat and alerts every second while raised.
        self.listener = Listener(endpoint_of(config))
        # Output to files, not pipes: a pipe nobody reads fills up and would block the daemon mid-test.
        with open(config.parent / "daemon.stdout", "wb") as out, open(self.stderr_path, "wb") as err:
            args = ["--config", str(config), "--duration", "600", "--stats", str(self.stats_path)]
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge", "run", *args],
                stdout=out,
                stderr=err,
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, what: str, condition: Callable[[], object], timeout: float = 90.0) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode}) before {what}:\n{self.stderr()[-3000:]}")
            time.sleep(0.1)
        pytest.fail(f"no {what} within {timeout:.0f} s")

    def store_health(self, status: str, after: float = 0.0, naming: Sequence[str] = ()) -> dict | None:
        """The first `health` message of the event store with this status, sent after `after`, naming these folders."""
        for m in self.listener.of("health"):
            store = m["camera"] == "events" and m["status"] == status and m["sent_ts"] >= after
            if store and all(folder in m["detail"] for folder in naming):
                return m
        return None

    def alerts_after(self, ts: float) -> list[dict]:
        return [m for m in self.listener.of("alert") if m["level"] != "clear" and m["sent_ts"] > ts]

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=120)
        assert self.proc.returncode == 0, self.stderr()
        assert "Traceback" not in self.stderr()
        return json.loads(self.stats_path.read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.listener.close()


@pytest.fixture
def run_daemon() -> Iterator[Callable[[Path], Run]]:
    runs: list[Run] = []

    def start(config: Path) -> Run:
        runs.append(Run(config))
        return runs[-1]

    yield start
    for r in runs:
        r.close()


def rows_of(events_dir: Path) -> list[dict]:
    if not any(events_dir.rglob("*.parquet")):
        return []
    return ds.dataset(events_dir, partitioning="hive").to_table().to_pylist()


def assert_nothing_lost(stats: dict, rows: list[dict], alerts: list[dict]) -> None:
    """Every event the store accepted is in Parquet exactly once, and every alert the driver saw has its event."""
    store = stats["event_store"]
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)), "an event was written twice"
    assert store["accepted"] == stats["events"] + store["recovered"]
    assert store["written"] == store["accepted"] == len(ids), store
    assert store["dropped"] == store["unwritten"] == 0, store
    assert_every_alert_has_its_event(alerts, rows)


@pytest.mark.parametrize("on_full_disk", [("state",), ("events",), ("state", "events")], ids="+".join)
def test_a_full_disk_under_the_event_store_keeps_alerts_and_loses_no_event(
    bus_config, full_disk: FullDisk, run_daemon, tmp_path: Path, on_full_disk: tuple[str, ...]
) -> None:
    """Alerts go on, `health` says disk_full naming the folder, and once space returns every event is written."""
    state_dir = (full_disk.root if "state" in on_full_disk else tmp_path) / "state"
    events_dir = (full_disk.root if "events" in on_full_disk else tmp_path) / "events"
    run = run_daemon(disk_config(bus_config, state_dir, events_dir))

    folders = [str(state_dir if name == "state" else events_dir) for name in on_full_disk]
    full = run.wait_for(
        f"disk_full on health naming {folders}",
        lambda: run.store_health("disk_full", naming=folders),
    )
    run.wait_for("alert after disk_full", lambda: run.alerts_after(full["sent_ts"]))
    if "events" in on_full_disk:
        assert not rows_of(events_dir)

    full_disk.free()
    freed_at = time.time()
    ok = run.wait_for("events ok on health after space returned", lambda: run.store_health("ok", after=freed_at))
    run.wait_for("events in Parquet", lambda: rows_of(events_dir))
    wal = state_dir / "events.wal"
    # Logging resumed: a person confirmed after the recovery is in the write-ahead log before their alert goes out.
    run.wait_for("write-ahead log records", lambda: wal.exists() and wal.stat().st_size > 0)
    run.wait_for("alert after recovery", lambda: run.alerts_after(ok["sent_ts"]))

    stats = run.stop()
    assert_nothing_lost(stats, rows_of(events_dir), run.alerts_after(0.0))
    assert stats["event_store"]["written"] > 0


def wal_of_an_interrupted_run(state_dir: Path, count: int) -> set[str]:
    """What a killed daemon leaves: events logged, some closed, none written. Written with the real log."""
    wal = EventWal(state_dir)
    start = time.time() - 600
    for i in range(count):
        ev = Event(
            f"interrupted-{i}",
            "right",
            Side.RIGHT,
            "blind-spot",
            start + i,
            start + i,
            Level.INFO,
            1.5,
            5,
            0.8,
            VehicleState(),
        )
        wal.opened(ev)
        if i % 2:
            wal.closed(replace(ev, end_ts=start + i + 3))
    wal.close()
    return {f"interrupted-{i}" for i in range(count)}


def test_a_daemon_with_logged_events_starts_on_a_full_disk_and_writes_them_when_space_returns(
    bus_config, full_disk: FullDisk, run_daemon, tmp_path: Path
) -> None:
    """The events of an interrupted run wait in memory (and stay in the log) until the disk takes them."""
    state_dir, events_dir = tmp_path / "state", full_disk.root / "events"
    interrupted = wal_of_an_interrupted_run(state_dir, 5)
    run = run_daemon(disk_config(bus_config, state_dir, events_dir))

    full = run.wait_for("disk_full on health", lambda: run.store_health("disk_full", naming=[str(events_dir)]))
    waiting = re.search(r"(\d+) event\(s\) wait in memory", full["detail"])
    assert waiting and int(waiting[1]) >= len(interrupted), full  # newer events may have joined them already
    run.wait_for("alert on a full disk", lambda: run.alerts_after(0.0))
    assert not rows_of(events_dir)
    # Still in the log meanwhile: a crash on the full disk would not lose them either.
    assert interrupted <= {ev.event_id for ev in pending_events(state_dir / "events.wal")}

    full_disk.free()
    freed_at = time.time()
    run.wait_for("events ok on health after space returned", lambda: run.store_health("ok", after=freed_at))
    run.wait_for(
        "the interrupted run's events in Parquet", lambda: interrupted <= {r["event_id"] for r in rows_of(events_dir)}
    )

    stats = run.stop()
    rows = rows_of(events_dir)
    assert stats["event_store"]["recovered"] == len(interrupted)
    assert_nothing_lost(stats, rows, run.alerts_after(0.0))
    durations = {r["event_id"]: r["duration_s"] for r in rows if r["event_id"] in interrupted}
    assert durations == {f"interrupted-{i}": pytest.approx(3.0 if i % 2 else 0.0) for i in range(5)}
    assert (state_dir / "events.wal").stat().st_size == 0, "the log did not start afresh once everything was written"
