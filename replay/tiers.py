"""The two tiers of an event store, and which one each bus-day is read from.

Raw: what the buses uploaded, `<store>/events/date=…/bus=…/part-*.parquet`, one small file per flush (the evidence,
covered by the uploader's manifests; never rewritten). Curated: what `vigie replay compact` made of it, one sorted
file per bus-day under `<store>/curated/events/date=…/bus=…/events-<digest>.parquet` (for analysis).

How a reader knows a bus-day is compacted and complete: `<digest>` is a hash of the names and sizes of the raw files
the curated file was built from. A reader lists both tiers (it lists raw anyway), computes the same hash over the raw
files it sees now, and reads the curated file only if one carries that hash; otherwise it reads that bus-day's raw
files. So the choice needs two listings and no file opened: pyarrow and DuckDB still prune by date and bus, a bus-day
is never read from both tiers, and a late upload (a new raw file changes the hash) sends its bus-day back to raw until
`compact` runs again, instead of being missed. The hash covers every difference, not only additions: a reader cannot
tell a raw file deliberately removed from one lost, and reading raw is always right, only slower. Raw files are
immutable (the uploader never overwrites a key), so name and size identify one.

Listing only, no Parquet read: fleet health and fleet reruns can plan their reads with `plan_read` too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from replay.errors import ReplayError, first_line

if TYPE_CHECKING:
    from replay.query import EventQuery
    from replay.source import OpenedSource

CURATED_DIR = "curated/events"
_CURATED_NAME = re.compile(r"^events-([0-9a-f]{16})\.parquet$")


@dataclass(frozen=True, slots=True, order=True)
class BusDay:
    date: str  # YYYY-MM-DD, UTC
    bus: str

    def folder(self, root: str) -> str:
        return f"{root}/date={self.date}/bus={self.bus}"


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: str  # inside the source's filesystem
    size: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The files that hold a query's events, each bus-day in exactly one tier."""

    raw_root: str
    curated_root: str | None  # None: the store has no place for a curated tier (events at the bucket's root)
    raw: tuple[str, ...] = ()  # bus-days never compacted, or changed since
    curated: tuple[str, ...] = ()  # one file per compacted bus-day
    stale: tuple[BusDay, ...] = ()  # curated, but the raw files changed since: read raw


def curated_root(raw_root: str) -> str | None:
    """`…/events` → `…/curated/events`, beside it (as `operating/` is); None when the events have no parent folder."""
    parent = posixpath.dirname(raw_root.rstrip("/"))
    if not parent or parent == raw_root:
        return None
    return f"{parent}/{CURATED_DIR}"


def curated_name(digest: str) -> str:
    return f"events-{digest}.parquet"


def sources_digest(files: Iterable[StoredFile]) -> str:
    """The hash a curated file's name carries: names and sizes of the raw files of its bus-day, in name order."""
    listing = "".join(f"{f.name}\t{f.size}\n" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def bus_day_of(path: str, root: str) -> BusDay | None:
    """The bus-day of a file directly in `root/date=…/bus=…/`, None for a file anywhere else."""
    parts = path[len(root) :].strip("/").split("/")
    if len(parts) != 3 or not parts[0].startswith("date=") or not parts[1].startswith("bus="):
        return None
    return BusDay(parts[0][len("date=") :], parts[1][len("bus=") :])


def partition_dirs(src: OpenedSource, path: str, key: str) -> list[tuple[str, str]]:
    """(value, path) of the `key=value` folders directly under path (hive layout: date=…, bus=…)."""
    infos = src.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
    out = []
    for info in infos:
        name = info.base_name
        if info.type == pafs.FileType.Directory and name.startswith(f"{key}="):
            out.append((name[len(key) + 1 :], info.path))
    return sorted(out)


def day_range(query: EventQuery) -> tuple[str | None, str | None]:
    first = query.start.strftime("%Y-%m-%d") if query.start else None
    # `end` is exclusive: an end at midnight does not need that day's folder.
    last = (query.end - dt.timedelta(microseconds=1)).strftime("%Y-%m-%d") if query.end else None
    return first, last


def list_files(src: OpenedSource, root: str, query: EventQuery) -> list[StoredFile]:
    """Parquet files under `root` that can hold events of the query's days and bus, listing only folders in range
    (a fleet-year is tens of thousands of files; on S3 every listing is a request)."""
    first, last = day_range(query)
    bus_part = None if query.bus is None else f"/bus={query.bus}/"
    try:
        if first is None and last is None:
            # No date bound: one recursive listing (on S3, a request per 1000 files) beats one per day.
            folders = [root]
        else:
            days = partition_dirs(src, root, "date")
            folders = [path for day, path in days if not ((first and day < first) or (last and day > last))]
            if query.bus is not None:
                folders = [f"{path}/bus={query.bus}" for path in folders]
        files = []
        for folder in folders:
            selector = pafs.FileSelector(folder, allow_not_found=True, recursive=True)
            for info in src.fs.get_file_info(selector):
                # Hidden and underscore names are temporary files being written, or rerun notes, never events.
                name = info.base_name
                if info.type != pafs.FileType.File or not name.endswith(".parquet") or name.startswith((".", "_")):
                    continue
                if bus_part is None or bus_part in info.path:
                    files.append(StoredFile(info.path, int(info.size or 0)))
    except OSError as exc:
        raise ReplayError(f"{src.label}: cannot be listed: {first_line(exc)}") from None
    return sorted(files, key=lambda f: f.path)


def raw_by_day(files: Iterable[StoredFile], root: str) -> tuple[dict[BusDay, list[StoredFile]], list[StoredFile]]:
    """Raw files grouped by bus-day, and those outside any bus-day folder (read raw, never compacted)."""
    days: dict[BusDay, list[StoredFile]] = {}
    loose = []
    for f in files:
        day = bus_day_of(f.path, root)
        if day is None:
            loose.append(f)
        else:
            days.setdefault(day, []).append(f)
    return days, loose


def curated_by_day(src: OpenedSource, query: EventQuery) -> dict[BusDay, list[StoredFile]]:
    """The curated files of the query's bus-days (usually one each; two for a moment while `compact` replaces one).
    Anything else in the curated folders is not ours and is not read."""
    root = curated_root(src.root)
    days: dict[BusDay, list[StoredFile]] = {}
    if root is None:
        return days
    for f in list_files(src, root, query):
        day = bus_day_of(f.path, root)
        if day is not None and _CURATED_NAME.match(f.name):
            days.setdefault(day, []).append(f)
    return days


def digest_of(curated: StoredFile) -> str:
    match = _CURATED_NAME.match(curated.name)
    return match.group(1) if match else ""


def plan_read(src: OpenedSource, query: EventQuery) -> ReadPlan:
    """Which files hold the query's events: the curated file of each bus-day whose raw files are still those it was
    built from, the raw files of every other bus-day."""
    raw_days, loose = raw_by_day(list_files(src, src.root, query), src.root)
    curated: list[str] = []
    stale: list[BusDay] = []
    for day, files in sorted(curated_by_day(src, query).items()):
        raw = raw_days.get(day)
        wanted = sources_digest(raw) if raw else None
        match = next((f for f in files if digest_of(f) == wanted), None)
        if match is None:
            stale.append(day)
        else:
            curated.append(match.path)
            del raw_days[day]
    raw_paths = sorted([f.path for files in raw_days.values() for f in files] + [f.path for f in loose])
    return ReadPlan(src.root, curated_root(src.root), tuple(raw_paths), tuple(curated), tuple(stale))


def stale_note(plan: ReadPlan) -> str | None:
    """One line for the analyst when some compacted bus-days changed since (a late upload): they were read raw."""
    if not plan.stale:
        return None
    days = ", ".join(f"{d.date}/{d.bus}" for d in plan.stale[:3]) + (" …" if len(plan.stale) > 3 else "")
    return (
        f"note: {len(plan.stale)} bus-day(s) changed since they were compacted ({days}): read from the raw files; "
        "run `vigie replay compact` to rebuild them"
    )


def no_events_error(label: str, query: EventQuery) -> ReplayError:
    first, last = day_range(query)
    return ReplayError(f"{label}: no raw events from {first or 'the first day'} to {last or 'the last day'}")
