"""Does an event's clip show the event? Read from what the recorder wrote, for `replay list` and `replay show`.

An event row names its clip when the event closes, which is before the clip exists: the clip goes on for the
post-roll, and a recorder short of CPU writes it later still, or not at all. So a row cannot say what its clip
shows, and is never rewritten to say it (rows are evidence, uploaded with their checksums). The clip's sidecar is
written when the clip is finished and lists the time of every frame the clip holds; the coverage of an event is
computed here from those times and the row's span, with the recorder's own function (recorder.clips.judge). A clip
that is not there is said to be missing, or being written while its hidden partial file exists.

Clips live in `<clips>/date=YYYY-MM-DD/bus=<id>/` by the date of their first frame (locally, or the bucket's
`PREFIX/clips`); only the folders of the days an event touches are listed, once each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.types import ClipState
from recorder.clips import ClipCover, EventSpan, judge
from replay.errors import ReplayError
from replay.query import SourceSpec
from replay.source import OpenedSource, open_source

REACH_S = 60.0  # a clip's first frame lies within its pre-roll (at most 30 s) before the event, or in its post-roll
SIDECAR = ".frames.parquet"


@dataclass(frozen=True, slots=True)
class _Folder:
    sidecars: dict[str, str]  # clip id -> sidecar path, for clips whose video is there too
    writing: frozenset[str]  # clip ids with a partial file: the recorder is writing them


@dataclass(slots=True)
class ClipShelf:
    """The clips of one clips root (None: not available here), read lazily and once per folder and clip."""

    src: OpenedSource | None
    _folders: dict[str, _Folder] = field(default_factory=dict)
    _frames: dict[str, list[float]] = field(default_factory=dict)

    def cover(self, row: dict) -> ClipCover:
        start, end = row["start_ts"], row["end_ts"]
        event_s = max((end - start).total_seconds(), 0.0)
        clip_id = row.get("clip")
        if not clip_id:
            return ClipCover(ClipState.NO_CLIP, event_s)
        if self.src is None:
            return ClipCover(ClipState.UNCHECKED, event_s)
        days = _days(start - dt.timedelta(seconds=REACH_S), end + dt.timedelta(seconds=REACH_S))
        folders = [self._folder(f"{self.src.root}/date={day}/bus={row['bus_id']}") for day in days]
        sidecar = next((f.sidecars[clip_id] for f in folders if clip_id in f.sidecars), None)
        if sidecar is None:
            writing = any(clip_id in f.writing for f in folders)
            return ClipCover(ClipState.WRITING if writing else ClipState.MISSING, event_s)
        span = EventSpan(row["event_id"], start.timestamp(), end.timestamp())
        return judge(span, self._frame_times(sidecar))

    def _folder(self, path: str) -> _Folder:
        if path not in self._folders:
            assert self.src is not None
            try:
                infos = self.src.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
            except OSError as exc:
                raise ReplayError(f"{self.src.label}: cannot be listed: {exc}") from None
            names = {i.base_name for i in infos if i.type == pafs.FileType.File}
            videos = {n.rsplit(".", 1)[0] for n in names if n.endswith((".mp4", ".avi")) and not n.startswith(".")}
            sidecars = {
                n.removesuffix(SIDECAR): f"{path}/{n}"
                for n in names
                if n.endswith(SIDECAR) and not n.startswith(".") and n.removesuffix(SIDECAR) in videos
            }
            writing = frozenset(n[1:].split(".partial.", 1)[0] for n in names if ".partial." in n)
            self._folders[path] = _Folder(sidecars, writing)
        return self._folders[path]

    def _frame_times(self, sidecar: str) -> list[float]:
        if sidecar not in self._frames:
            assert self.src is not None
            try:
                with self.src.fs.open_input_file(sidecar) as fh:
                    self._frames[sidecar] = pq.read_table(fh, columns=["ts"]).column("ts").to_pylist()
            except (OSError, pa.ArrowException) as exc:
                raise ReplayError(f"{sidecar}: unreadable clip sidecar ({str(exc).splitlines()[0]})") from None
        return self._frames[sidecar]


def open_shelf(spec: SourceSpec) -> ClipShelf:
    """The clips at `spec`; a local folder that does not exist (clips kept elsewhere, or none) is not an error: the
    analyst is told coverage was not checked."""
    if "://" not in spec.location and not Path(spec.location).expanduser().is_dir():
        return ClipShelf(None)
    return ClipShelf(open_source(spec))


def _days(first: dt.datetime, last: dt.datetime) -> list[str]:
    day, out = first.astimezone(dt.UTC).date(), []
    while day <= last.astimezone(dt.UTC).date():
        out.append(day.isoformat())
        day += dt.timedelta(days=1)
    return out


def cover_cell(cover: ClipCover) -> str:
    """A few characters for `replay list`."""
    if cover.fraction is not None:
        return f"{100 * cover.fraction:.0f}%"
    return {ClipState.NO_CLIP: "-", ClipState.UNCHECKED: "?"}.get(cover.state, cover.state.value)


def cover_line(cover: ClipCover, clip_id: str | None, where: str) -> str:
    """One sentence for `replay show`."""
    shown = cover.shown_s
    if cover.state == ClipState.COMPLETE and shown is not None:
        return f"complete: covers {shown:.1f} of {cover.event_s:.1f} s"
    if cover.state == ClipState.INCOMPLETE and shown is not None and cover.fraction is not None:
        return (
            f"incomplete: covers {shown:.1f} of {cover.event_s:.1f} s ({100 * cover.fraction:.0f} %; the recorder "
            "was short of CPU and kept fewer frames)"
        )
    return {
        ClipState.MISSING: f"missing: no finished clip {clip_id} under {where} (the recorder never finished it: "
        "starved of CPU, stopped, down or out of disk; or retention removed it)",
        ClipState.WRITING: f"being written: clip {clip_id} is not finished yet",
        ClipState.NO_CLIP: "none: recorded without the recorder",
        ClipState.UNCHECKED: f"not checked: no clips folder at {where} (--clips)",
    }[cover.state]
