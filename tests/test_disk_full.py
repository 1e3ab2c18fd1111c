"""A full disk under the event store: alerts go on, `health` says so, and every accepted event is written once space
returns. The disk is a real, full tmpfs mounted for each test."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from edge.types import Event, Level, Side, StoreCounts, VehicleState
from recorder.events import EventSink, EventWriter
from recorder.wal import EventWal, pending_events


@dataclass(frozen=True)
class FullDisk:
    root: Path
    filler: Path

    def fill(self) -> None:
        with open(self.filler, "ab", buffering=0) as fh:
            try:
                while fh.write(b"\0" * 4096):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        assert os.statvfs(self.root).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    """A 2 MB tmpfs filled to the last page by one file. tmpfs keeps no blocks back for root, so full means full."""
    root = tmp_path / "full"
    root.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "vigie-test-full", str(root)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"a real full disk needs `mount -t tmpfs` (root): {mount.stderr.strip()}")
    try:
        disk = FullDisk(root, root / "filler")
        disk.fill()
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=False)


def event(i: int, start: float = 1_800_000_000.0) -> Event:
    return Event(
        f"ev-{i}", "right", Side.RIGHT, "blind-spot", start + i, start + i, Level.INFO, 1.5, 5, 0.8, VehicleState()
    )


def wait_until(what: str, condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.05)


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
    wait_until("log written again", lambda: wal.sync() or wal.fault() is None)
    wal.close()
    assert {ev.event_id for ev in pending_events(full_disk.root / "state" / "events.wal")} == {
        f"ev-{i}" for i in range(40)
    }


def test_beyond_the_bound_the_oldest_waiting_events_are_dropped_counted_and_told(full_disk: FullDisk) -> None:
    writer = EventWriter(EventSink(full_disk.root / "events", "bus-7", "model@1"), 0.1, max_waiting=3)
    for i in range(5):
        writer.add(event(i))
    wait_until("a failed write", lambda: writer.state().folder is not None)
    state = writer.state()
    assert (state.status, state.waiting, state.dropped) == ("disk_full", 3, 2)
    (told,) = writer.health()
    assert told.camera == "events" and "2 dropped" in told.detail and str(full_disk.root / "events") in told.detail
    full_disk.free()
    wait_until("events written again", lambda: writer.state().status == "ok")
    writer.close()
    assert writer.counts == StoreCounts(accepted=5, written=3, dropped=2)
    rows = ds.dataset(full_disk.root / "events", partitioning="hive").to_table().to_pylist()
    assert sorted(r["event_id"] for r in rows) == ["ev-2", "ev-3", "ev-4"]  # the newest were kept
    assert not list((full_disk.root / "events").rglob("*.tmp")), "a failed write left its temporary file"
