"""Which clips a fleet rerun replays, and where it reads and writes: listing only, no clip opened.

The store's layout, locally as the daemon writes it and in the bucket as the uploader mirrors it:

    <store>/events/date=…/bus=…/part-*.parquet        the events the buses recorded (`--source` names this folder)
    <store>/clips/date=…/bus=…/<clip id>.mp4|.avi       anonymised clips, each with <clip id>.frames.parquet beside it
    <store>/reruns/<name>/events/date=…/bus=…/          what `rerun-fleet --name <name>` writes

A clip id is `<bus>_<camera>_<YYYYmmddTHHMMSSmmm>` (recorder/clips.py): the listing alone says which camera and
when, so the range and the cameras are checked before any worker starts.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from dataclasses import dataclass

import pyarrow.fs as pafs

from replay.errors import ReplayError, first_line
from replay.query import EventQuery
from replay.source import OpenedSource
from replay.tiers import day_range, partition_dirs

SIDECAR = ".frames.parquet"
VIDEOS = (".mp4", ".avi")
_STAMP = re.compile(r"_(\d{8}T\d{9})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RERUNS_DIR = "reruns"
MANIFEST = "_rerun.json"


@dataclass(frozen=True, slots=True)
class ClipRef:
    """One clip to replay: its id, bus, camera, day, where its two files are, and when it started."""

    clip_id: str
    bus: str
    camera: str
    date: str
    video: str  # path inside the store's filesystem (`bucket/key` on S3)
    sidecar: str
    start: float  # epoch s, from the id: the first frame is at or after it


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a fleet rerun reads clips and old events, and where it writes."""

    events: str  # the old events (the --source root)
    clips: str
    rerun: str  # <store>/reruns/<name>

    @property
    def rerun_events(self) -> str:
        return f"{self.rerun}/events"


@dataclass(frozen=True, slots=True)
class ClipListing:
    clips: tuple[ClipRef, ...]
    unpaired: tuple[str, ...]  # a video without its sidecar or the reverse: not uploaded yet, or half removed


def shown(src: OpenedSource, path: str) -> str:
    """A path inside the store as the user names it: s3://bucket/key in the bucket."""
    return f"s3://{path}" if src.label.startswith("s3://") else path


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ReplayError(f"--name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def layout(src: OpenedSource, name: str, clips: str | None) -> Layout:
    """The clips beside the events (or at `clips`), and the rerun's folder beside both."""
    store = posixpath.dirname(src.root.rstrip("/"))
    if not store or store == src.root:
        raise ReplayError(f"{src.label}: events at the bucket's root; a rerun needs them under a prefix (…/events)")
    return Layout(src.root, clips or f"{store}/clips", f"{store}/{RERUNS_DIR}/{check_name(name)}")


def parse_clip_id(clip_id: str, bus: str) -> tuple[str, float] | None:
    """(camera, start) of a clip id of this bus, or None for a name the recorder never gives."""
    match = _STAMP.search(clip_id)
    if not match or not clip_id.startswith(f"{bus}_"):
        return None
    camera = clip_id[len(bus) + 1 : match.start()]
    if not camera:
        return None
    try:
        when = dt.datetime.strptime(match.group(1) + "000", "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return camera, when.timestamp()


def _split(name: str) -> tuple[str, str] | None:
    """(clip id, kind) of a clip file name: kind is 'sidecar' or the video's suffix; None for anything else."""
    if name.endswith(SIDECAR):
        return name[: -len(SIDECAR)], "sidecar"
    stem, dot, suffix = name.rpartition(".")
    return (stem, f".{suffix}") if dot and f".{suffix}" in VIDEOS else None


def _bus_folder(src: OpenedSource, folder: str, bus: str, date: str) -> tuple[list[ClipRef], list[str]]:
    files: dict[str, dict[str, str]] = {}
    for info in src.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True, recursive=False)):
        name = info.base_name
        if name.startswith("."):  # the recorder's partial files, never uploaded
            continue
        split = _split(name) if info.type == pafs.FileType.File else None
        parsed = parse_clip_id(split[0], bus) if split else None
        if split is None or parsed is None:
            expected = f"{bus}_<camera>_<time>.mp4 and its {SIDECAR}"
            raise ReplayError(f"{shown(src, info.path)}: not a clip (expected {expected})")
        files.setdefault(split[0], {})[split[1]] = info.path
    clips: list[ClipRef] = []
    unpaired: list[str] = []
    for clip_id, kinds in sorted(files.items()):
        videos = [kinds[s] for s in VIDEOS if s in kinds]
        if "sidecar" not in kinds or not videos:
            unpaired.extend(kinds.values())
            continue
        camera, start = parse_clip_id(clip_id, bus) or ("", 0.0)
        clips.append(ClipRef(clip_id, bus, camera, date, videos[0], kinds["sidecar"], start))
    return clips, unpaired


def list_clips(src: OpenedSource, root: str, query: EventQuery) -> ClipListing:
    """Every clip under `root` that started in the query's range (and is the query's bus's), oldest first."""
    first, last = day_range(query)
    clips: list[ClipRef] = []
    unpaired: list[str] = []
    try:
        for date, day_path in partition_dirs(src, root, "date"):
            if (first and date < first) or (last and date > last):
                continue
            for bus, bus_path in partition_dirs(src, day_path, "bus"):
                if query.bus is not None and bus != query.bus:
                    continue
                found, loose = _bus_folder(src, bus_path, bus, date)
                clips += found
                unpaired += loose
    except OSError as exc:
        raise ReplayError(f"{shown(src, root)}: cannot be listed: {first_line(exc)}") from None
    lo = query.start.timestamp() if query.start else float("-inf")
    hi = query.end.timestamp() if query.end else float("inf")
    kept = sorted((c for c in clips if lo <= c.start < hi), key=lambda c: (c.start, c.bus, c.camera))
    return ClipListing(tuple(kept), tuple(sorted(unpaired)))


def no_clips_error(label: str, query: EventQuery) -> ReplayError:
    first, last = day_range(query)
    bus = f" of bus {query.bus}" if query.bus else ""
    return ReplayError(f"{label}: no clips{bus} from {first or 'the first day'} to {last or 'the last day'}")


def check_free(src: OpenedSource, where: Layout, label: str) -> None:
    """A rerun's name is used once: its events would otherwise mix with an earlier rerun's."""
    try:
        info = src.fs.get_file_info(pafs.FileSelector(where.rerun, allow_not_found=True, recursive=True))
    except OSError as exc:
        raise ReplayError(f"{label}: cannot be listed: {first_line(exc)}") from None
    if any(i.type == pafs.FileType.File for i in info):
        done = any(i.base_name == MANIFEST for i in info)
        what = "holds an earlier rerun" if done else "holds files of a rerun that did not finish"
        raise ReplayError(f"{label}: {what}; choose another --name")


def check_baseline(src: OpenedSource, where: Layout) -> None:
    """An earlier rerun to compare with must be complete (its manifest is written last)."""
    try:
        done = src.fs.get_file_info(f"{where.rerun}/{MANIFEST}").type == pafs.FileType.File
    except OSError as exc:
        raise ReplayError(f"{shown(src, where.rerun)}: cannot be read: {first_line(exc)}") from None
    if not done:
        raise ReplayError(f"--baseline: no finished rerun at {shown(src, where.rerun)}")
