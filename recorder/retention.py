"""Clip retention: by age (at most 30 days, French practice for cameras in public space) and by a byte quota.

Only clips are ever evicted, oldest first, each with its sidecar. Event metadata is never touched to make room: it is
small, it is what the city analyses, and losing it would hide that something happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_age_s: float
    quota_bytes: int


@dataclass(frozen=True, slots=True)
class RetentionResult:
    expired: tuple[Path, ...]  # deleted for age
    evicted: tuple[Path, ...]  # deleted for the quota
    kept_bytes: int


def _clips(root: Path) -> list[tuple[float, Path, int]]:
    """(mtime, video path, bytes of video + sidecar) of every finished clip, oldest first."""
    out = []
    for video in root.rglob("*"):
        if video.suffix not in VIDEO_SUFFIXES or video.name.startswith("."):
            continue
        try:  # the uploader deletes clips it has sent: a file listed a moment ago may be gone
            st = video.stat()
            sidecar = video.with_name(f"{video.stem}.frames.parquet")
            side = sidecar.stat().st_size if sidecar.exists() else 0
        except FileNotFoundError:
            continue
        out.append((st.st_mtime, video, st.st_size + side))
    return sorted(out)


def _delete(video: Path) -> None:
    video.with_name(f"{video.stem}.frames.parquet").unlink(missing_ok=True)
    video.unlink(missing_ok=True)


def enforce(root: Path, policy: RetentionPolicy, now: float | None = None, reserve_bytes: int = 0) -> RetentionResult:
    """Delete expired clips, then the oldest until the rest (plus `reserve_bytes` about to be written) fit."""
    if not root.is_dir():
        return RetentionResult((), (), 0)
    now = time.time() if now is None else now
    clips = _clips(root)
    expired = [(m, v, s) for m, v, s in clips if now - m > policy.max_age_s]
    for _, video, _ in expired:
        _delete(video)
    kept = [c for c in clips if c not in expired]
    total = sum(s for _, _, s in kept)
    evicted = []
    while kept and total + reserve_bytes > policy.quota_bytes:
        _, video, size = kept.pop(0)
        _delete(video)
        evicted.append(video)
        total -= size
    if expired or evicted:
        log.info("retention: %d clips expired, %d evicted for the quota", len(expired), len(evicted))
    return RetentionResult(tuple(v for _, v, _ in expired), tuple(evicted), total)
