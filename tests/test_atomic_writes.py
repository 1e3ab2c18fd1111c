"""Every file vigie keeps is written the one core.atomic way, checked on the real writers rather than on the helper.

The test process runs under the usual umask 022, so a file or folder a writer leaves to its defaults comes out
0644 or 0755 and is caught: files must be 0600, the folders that hold events, clips, the write-ahead log, uploader
state and the access log 0700 where vigie creates them. A folder already there is left as it is, with a warning if
others may enter it. A write the disk refuses (a real full tmpfs) leaves neither its file nor a temporary one.

The open-data and shared-data packages are published a whole folder at a time (replay/opendata/folder.py: the same
guarantees, with the modes each package is meant to have) and are checked in tests/test_replay_opendata.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.types import Event, Level, Side, VehicleState
from recorder.audit import record_access
from recorder.clipfile import ClipFile, FrameMeta, clip_folder
from recorder.events import EventSink, write_events
from recorder.health import DayFigures, HealthSummary, Identity, SavedDay, save_state, write_summary
from recorder.wal import WAL_NAME, EventWal
from replay.writer import LocalWriter
from uploader.state import Journal, MultipartStore, StatusFile, exclusive

from .conftest import FullDisk, temp_files

BUS = "bus-7"
TS = 1_800_000_000.0
EVENT = Event("ev-1", "right", Side.RIGHT, "blind-spot", TS, TS + 2, Level.INFO, 1.5, 5, 0.8, VehicleState())


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the writers, each as the program calls it: `root` is the folder a config names ---------------------------------


def events(root: Path) -> list[Path]:
    return write_events([EVENT], EventSink(root, BUS, "model@1"))


def clip(root: Path) -> list[Path]:
    """What the recorder does: frames into a ClipFile, `finish`, and `abandon` when that fails."""
    writer = ClipFile(clip_folder(root, BUS, TS), "clip-1", "mp4", 5.0, (64, 48))
    try:
        for i in range(3):
            meta = FrameMeta("right", i, i, TS + i / 5, np.zeros((0, 4), np.float32), (), (), 0.0, "off")
            writer.add(np.full((48, 64, 3), 60 * i, np.uint8), meta)
        video = writer.finish({"camera": "right", "events": []})
    except OSError:
        writer.abandon()
        raise
    return [video, writer.sidecar]


def uploader_state(root: Path) -> list[Path]:
    with exclusive(root):
        StatusFile(root).update(last_success="2026-11-20T08:00:00+00:00")
        MultipartStore(root).save({"key": "fleet/clips/a.mp4", "upload_id": "u", "parts": []})
        Journal(root).evicted("fleet/clips/b.mp4", root / "b.mp4", 10)
    return [root / "status.json", *(root / "multipart").glob("*.json"), root / "journal.jsonl"]


def write_ahead_log(root: Path) -> list[Path]:
    wal = EventWal(root)
    wal.opened(EVENT)
    wal.close()
    return [root / WAL_NAME]


def access_log(root: Path) -> list[Path]:
    record_access(root / "audit.log", Path("clips/clip-1.mp4"), "render", "complaint 2026-113")
    return [root / "audit.log"]


def fleet_health(root: Path) -> list[Path]:
    """The day's health summary (events.health_dir) and the day so far (recorder.state_dir; here the same root)."""
    identity = Identity(BUS, "0.1.0", "model@1", "0" * 64, "1" * 64, "publish")
    day = dt.date(2027, 1, 15)
    summary = write_summary(HealthSummary(identity, day, 1, False, TS, DayFigures()), root)
    save_state(SavedDay(identity, day, 1, False, TS), root / "health.json")
    return [summary, root / "health.json"]


def store_writer(root: Path) -> list[Path]:
    """What `replay compact` and `rerun-fleet` write into a local event store: a whole file at a path under it."""
    dest = root / "curated" / "date=2027-01-15" / f"bus={BUS}" / "day.parquet"
    LocalWriter().put(str(dest), b"PAR1 not really, but bytes all the same PAR1")
    return [dest]


@dataclass(frozen=True)
class Writer:
    name: str
    write: Callable[[Path], list[Path]]
    warns: bool = True  # told the folder a config names; the store writer only knows a file's path, and says nothing


WRITERS = [
    Writer("event rows", events),
    Writer("clip and sidecar", clip),
    Writer("uploader state", uploader_state),
    Writer("write-ahead log", write_ahead_log),
    Writer("access log", access_log),
    Writer("fleet health", fleet_health),
    Writer("event store (compact, rerun-fleet)", store_writer, warns=False),
]
WARNING = [w for w in WRITERS if w.warns]
# Those that replace a whole file (the logs are appended to in place, and have no temporary file to leave).
RENAMING = [w for w in WRITERS if w.write not in (write_ahead_log, access_log)]


def ids(writers: list[Writer]) -> list[str]:
    return [w.name for w in writers]


# -- the guarantees ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS, ids=ids(WRITERS))
def test_every_file_is_0600_whatever_the_umask_and_no_temporary_file_is_left(writer: Writer, tmp_path: Path) -> None:
    files = writer.write(tmp_path / "data")
    assert files and all(f.is_file() and f.stat().st_size > 0 for f in files), files
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert not temp_files(tmp_path)


@pytest.mark.parametrize("writer", WRITERS, ids=ids(WRITERS))
def test_the_folders_it_creates_are_0700_parents_included(writer: Writer, tmp_path: Path) -> None:
    files = writer.write(tmp_path / "var" / "data")
    created = {folder for f in files for folder in f.parents if tmp_path in folder.parents}
    assert tmp_path / "var" in created and tmp_path / "var" / "data" in created
    assert {str(d): mode(d) for d in created} == {str(d): 0o700 for d in created}


@pytest.mark.parametrize("writer", WARNING, ids=ids(WARNING))
def test_a_looser_folder_already_there_is_warned_about_and_left_as_it_is(
    writer: Writer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It may be a mount point or a shared folder whose mode other software relies on: the operator decides."""
    root = tmp_path / "data"
    root.mkdir()
    os.chmod(root, 0o755)
    caplog.set_level(logging.WARNING, logger="core.atomic")
    files = writer.write(root)
    assert mode(root) == 0o755
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.atomic"]
    assert len(warnings) == 1 and str(root) in warnings[0] and "755" in warnings[0], warnings
    assert all(mode(f) == 0o600 for f in files)
    below = {folder for f in files for folder in f.parents if root in folder.parents}
    assert all(mode(d) == 0o700 for d in below), {str(d): oct(mode(d)) for d in below}


def test_the_store_writer_leaves_a_folder_already_there_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "events"
    root.mkdir()
    os.chmod(root, 0o755)
    (file,) = store_writer(root)
    assert mode(root) == 0o755 and mode(file) == 0o600
    assert all(mode(d) == 0o700 for d in file.parents if root in d.parents)


@pytest.mark.parametrize("writer", RENAMING, ids=ids(RENAMING))
def test_a_write_the_disk_refuses_leaves_neither_the_file_nor_a_temporary_one(
    writer: Writer, full_disk: FullDisk
) -> None:
    """On a full disk the temporary file is created (an inode, no block) and its first page refused: half a file
    would hold the very space a retry needs, and a file under its final name would be read as complete."""
    root = full_disk.root / "data"
    with pytest.raises(OSError):
        writer.write(root)
    assert not temp_files(full_disk.root)
    kept = [p for p in root.rglob("*") if p.is_file() and p.name != "lock"]  # the uploader's (empty) lock file
    assert not kept, kept
