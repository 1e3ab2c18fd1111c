"""The local spool: which closed files wait, in which order, under which key; and keeping it within quota.

A spool root holds a hive layout (`date=YYYY-MM-DD/bus=ID/…`); the object key mirrors it under `PREFIX/<root
name>/`, so the bucket is one dataset readers can prune by date and bus. Hidden names (`.part-….tmp`) are
files still being written by the recorder and are never touched.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from uploader.config import SpoolRoot, UploadConfig
from uploader.state import Journal, StatusFile

log = logging.getLogger(__name__)

_DATE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_BUS = re.compile(r"^bus=([A-Za-z0-9_.-]+)$")


@dataclass(frozen=True, slots=True)
class SpoolItem:
    """A closed local file waiting to be sent."""

    path: Path
    key: str
    size: int
    mtime_ns: int
    priority: int
    kind: str  # "metadata" | "clip"
    date: str
    bus: str

    @property
    def group(self) -> tuple[str, str]:
        """The (date, bus) manifest this file belongs in."""
        return (self.date, self.bus)


def _partition(rel: Path) -> tuple[str, str] | None:
    date = bus = None
    for part in rel.parts[:-1]:
        if m := _DATE.match(part):
            date = m[1]
        elif m := _BUS.match(part):
            bus = m[1]
    return (date, bus) if date and bus else None


def _scan_root(root: SpoolRoot, key_prefix: str) -> list[SpoolItem]:
    items: list[SpoolItem] = []
    if not root.dir.is_dir():
        return items
    for path in root.dir.rglob("*"):
        rel = path.relative_to(root.dir)
        if any(p.startswith(".") for p in rel.parts):
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # sent and deleted by another pass, or cleaned by the recorder
        if not path.is_file():
            continue
        part = _partition(rel)
        if part is None:
            log.warning("not in a date=…/bus=… folder, left in place: %s", path)
            continue
        items.append(
            SpoolItem(
                path=path,
                key=f"{key_prefix}{root.name}/{rel.as_posix()}",
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                priority=root.priority,
                kind=root.kind,
                date=part[0],
                bus=part[1],
            )
        )
    return items


def scan(cfg: UploadConfig) -> list[SpoolItem]:
    """Everything waiting, in sending order: priority, then oldest day first, then name."""
    items = [item for root in cfg.spool for item in _scan_root(root, cfg.key_prefix())]
    return sorted(items, key=lambda i: (i.priority, i.date, i.key))


def by_priority(items: list[SpoolItem]) -> list[list[SpoolItem]]:
    tiers: dict[int, list[SpoolItem]] = {}
    for item in items:
        tiers.setdefault(item.priority, []).append(item)
    return [tiers[p] for p in sorted(tiers)]


@dataclass(frozen=True, slots=True)
class Eviction:
    files: int
    size: int


def enforce_quota(cfg: UploadConfig, journal: Journal, status: StatusFile) -> Eviction:
    """Over quota: delete the oldest clips until under it. Metadata is never deleted unsent, even over quota.

    Each eviction is journaled before the unlink so `verify` can tell a dropped clip from a lost one.
    """
    items = scan(cfg)
    total = sum(i.size for i in items)
    if total <= cfg.spool_quota:
        return Eviction(0, 0)
    clips = sorted((i for i in items if i.kind == "clip"), key=lambda i: (i.mtime_ns, i.key))
    by_path = {i.path: i for i in clips}
    files = size = 0
    for clip in clips:
        if total <= cfg.spool_quota:
            break
        # A video's per-frame sidecar (`<id>.frames.parquet`) is worthless without it: they go together.
        stem = clip.path.name.split(".")[0]
        for victim in [
            clip,
            *(
                by_path.pop(p)
                for p in list(by_path)
                if p != clip.path and p.parent == clip.path.parent and p.name.split(".")[0] == stem
            ),
        ]:
            if not victim.path.exists():
                continue
            journal.evicted(victim.key, victim.path, victim.size)
            victim.path.unlink(missing_ok=True)
            total -= victim.size
            files += 1
            size += victim.size
    if files:
        log.warning(
            "spool over its %.0f MB quota: deleted %d unsent clip(s), %.1f MB",
            cfg.spool_quota_mb,
            files,
            size / 1e6,
        )
        status.evicted(files, size)
    if total > cfg.spool_quota:
        log.warning("spool still over quota with metadata only (%.1f MB); metadata is kept", total / 1e6)
    return Eviction(files, size)


@dataclass(frozen=True, slots=True)
class SpoolSummary:
    files: int
    size: int
    oldest: SpoolItem | None
    oldest_age_s: float | None


def summarize(cfg: UploadConfig) -> SpoolSummary:
    items = scan(cfg)
    oldest = min(items, key=lambda i: i.mtime_ns, default=None)
    age = None if oldest is None else max(time.time() - oldest.mtime_ns / 1e9, 0.0)
    return SpoolSummary(len(items), sum(i.size for i in items), oldest, age)
