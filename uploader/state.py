"""The uploader's small local records, all under `state_dir`, all crash-safe.

- `journal.jsonl`: append-only, one JSON line per stored (then deleted) or evicted file, fsynced *before* the
  file is unlinked. It is the bus's own account of what left it; `verify` compares it with the bucket and the
  manifests.
- `multipart/<id>.json`: the UploadId and finished parts of an upload in progress, so a restart resumes it.
- `status.json`: last failure, last success, evictions: what `vigie upload status` shows.
- `lock`: one uploader per state folder (flock; released by the kernel even on SIGKILL).

A SIGKILL at any point leaves each of them readable (tests/test_crash_journals.py kills a real uploader at random
points): the journal may end in one torn record, cut off before the next append; a status or multipart record is
the old one or the new one, and the temporary file a kill left behind is removed by the next uploader.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from core.atomic import open_append, private_dir, remove_temps, write_text_atomic


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: object) -> None:
    """The one atomic write (core.atomic): readers see the old or the new file, never half; 0600 from the start."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a record we cannot read is treated as absent; the server is checked anyway


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object the server confirmed: what the journal and the manifests record."""

    key: str
    size: int
    sha256: str  # hex of the whole file
    checksum: str  # the server's x-amz-checksum-sha256 (base64; composite "…-N" for multipart)
    date: str
    bus: str
    stored_at: str


class Journal:
    """Append-only JSON lines; `op` is "stored" (confirmed by the server, local copy deleted next) or
    "evicted"."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / "journal.jsonl"
        self._lock = threading.Lock()
        self._tail_checked = False
        self._stored: dict[str, StoredObject] = {}
        for rec in self.records():
            if rec.get("op") == "stored":
                self._stored[rec["key"]] = StoredObject(**{k: rec[k] for k in StoredObject.__slots__})

    def records(self) -> Iterator[dict]:
        try:
            fh = open(self.path, encoding="utf-8")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                # A crash can leave a torn last line; everything before it was fsynced and stays valid.
                with contextlib.suppress(ValueError):
                    yield json.loads(line)

    def _cut_torn_tail(self) -> None:
        """A kill inside write(2) (or a power cut) can leave a last record without its newline. Appending after it
        would fuse the next record onto it — one unreadable line, and a stored file missing from the journal. The
        torn record was never acknowledged (its fsync never returned, so its file is still in the spool and is
        journaled again), so it is cut off. Only the uploader appends, under the state lock, so nobody is writing."""
        try:
            fh = open(self.path, "rb+")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with fh:
            end = fh.seek(0, os.SEEK_END)
            keep = end
            while keep > 0:
                start = max(keep - 64 * 1024, 0)
                fh.seek(start)
                block = fh.read(keep - start)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    keep = start + newline + 1
                    break
                keep = start
            if keep < end:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def _append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock:
            private_dir(self.path.parent)
            if not self._tail_checked:
                self._cut_torn_tail()
                self._tail_checked = True
            # One write(2) of the whole line on an O_APPEND descriptor created 0600 (core.atomic.open_append).
            fd = open_append(self.path)
            try:
                data, size = line.encode("utf-8"), os.fstat(fd).st_size
                if os.write(fd, data) < len(data):
                    os.ftruncate(fd, size)  # half a record would have the next one glued to it
                    raise OSError(errno.ENOSPC, f"{self.path}: {os.strerror(errno.ENOSPC)}")
                os.fsync(fd)
            finally:
                os.close(fd)

    def stored(self, obj: StoredObject, local_path: Path) -> None:
        self._append({"op": "stored", "path": str(local_path), **asdict(obj)})
        with self._lock:
            self._stored[obj.key] = obj

    def evicted(self, key: str, local_path: Path, size: int) -> None:
        self._append({"op": "evicted", "key": key, "path": str(local_path), "size": size, "at": now_iso()})

    def lookup(self, key: str) -> StoredObject | None:
        with self._lock:
            return self._stored.get(key)

    def for_day(self, date: str, bus: str | None = None) -> list[StoredObject]:
        with self._lock:
            return [o for o in self._stored.values() if o.date == date and (bus is None or o.bus == bus)]


class StatusFile:
    """What `status` prints; rewritten atomically, so a crash never leaves it unreadable."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / "status.json"
        self._lock = threading.Lock()

    def read(self) -> dict:
        return read_json(self.path) or {}

    def update(self, **fields: object) -> None:
        with self._lock:
            data = self.read()
            data.update(fields)
            write_json_atomic(self.path, data)

    def failure(self, item: str, error: str) -> None:
        self.update(last_failure={"at": now_iso(), "item": item, "error": error})

    def evicted(self, count: int, size: int) -> None:
        with self._lock:
            data = self.read()
            ev = data.get("evicted", {"count": 0, "bytes": 0})
            data["evicted"] = {
                "count": ev["count"] + count,
                "bytes": ev["bytes"] + size,
                "last_at": now_iso(),
            }
            write_json_atomic(self.path, data)


class MultipartStore:
    """One JSON file per upload in progress: key, sha256, size, part_size, upload_id, parts done."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.dir = state_dir / "multipart"
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.dir / (hashlib.sha1(key.encode()).hexdigest() + ".json")

    def load(self, key: str) -> dict | None:
        data = read_json(self._path(key))
        return data if data and data.get("key") == key else None

    def save(self, record: dict) -> None:
        with self._lock:
            private_dir(self.state_dir, "multipart")
            write_json_atomic(self._path(record["key"]), record)

    def drop(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def pending(self) -> list[dict]:
        return [d for d in (read_json(p) for p in sorted(self.dir.glob("*.json"))) if d]


def remove_stale_temps(state_dir: Path) -> int:
    """Temporary files of `write_json_atomic` that a kill left behind (never renamed, so never read). Only under the
    state lock: a running uploader's temp file must not vanish before its rename."""
    return sum(remove_temps(folder) for folder in (state_dir, state_dir / "multipart") if folder.is_dir())


class StateLockedError(RuntimeError):
    pass


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Hold the state folder's lock: two uploaders on one spool would race on the same files."""
    private_dir(state_dir)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateLockedError(f"another uploader is running on {state_dir}") from None
        remove_stale_temps(state_dir)
        yield
    finally:
        os.close(fd)
