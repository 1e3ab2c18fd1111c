"""Which frames belong to which clip: pure bookkeeping that runs in the daemon, next to the policy.

A camera's clip opens when its first event opens and reaches back `pre_roll_s` before that event's first sighting;
it stays open while any event on that camera is open and for `post_roll_s` after the last one closes. An event that
opens during the post-roll joins the same clip, so overlapping events share one clip. Clip ids come from the bus,
the camera and the clip's start time (no randomness: a replay names its clips the same way).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.types import ClipState, Event


@dataclass(frozen=True, slots=True)
class ClipStart:
    camera: str
    clip_id: str
    from_ts: float  # the recorder writes buffered frames captured at or after this time first


@dataclass(frozen=True, slots=True)
class EventSpan:
    """One event's moments, which its clip must show (the recorder measures how much of them it kept)."""

    event_id: str
    start_ts: float
    end_ts: float


@dataclass(frozen=True, slots=True)
class ClipEnd:
    camera: str
    clip_id: str
    events: tuple[EventSpan, ...] = ()  # every event that names this clip, closed by now


COVER_HALF_S = 0.5  # a moment is shown if a clip frame lies within this much of it (1 s gaps at most)
COMPLETE = 0.95  # an event whose clip shows less than this fraction of its moments is reported incomplete


def coverage(span: EventSpan, frame_ts: list[float]) -> float:
    """The fraction of an event's span within COVER_HALF_S of a clip frame (1.0: every moment shown)."""
    s, e = span.start_ts, span.end_ts
    near = sorted((max(t - COVER_HALF_S, s), min(t + COVER_HALF_S, e)) for t in frame_ts)
    near = [(lo, hi) for lo, hi in near if hi > lo]  # frames too far outside the span show none of it
    if e <= s:
        return 1.0 if any(abs(t - s) <= COVER_HALF_S for t in frame_ts) else 0.0
    covered, reach = 0.0, s
    for lo, hi in near:
        if hi > reach:
            covered += hi - max(lo, reach)
            reach = hi
    return min(covered / (e - s), 1.0)


@dataclass(frozen=True, slots=True)
class ClipCover:
    """How much of one event its clip shows, in the event's own seconds."""

    state: ClipState
    event_s: float
    fraction: float | None = None  # of the event's span within COVER_HALF_S of a clip frame; None: no clip to look at

    @property
    def shown_s(self) -> float | None:
        return None if self.fraction is None else self.fraction * self.event_s


def judge(span: EventSpan, frame_ts: list[float]) -> ClipCover:
    """What a finished clip with frames at `frame_ts` shows of an event."""
    shown = coverage(span, frame_ts)
    state = ClipState.COMPLETE if shown >= COMPLETE else ClipState.INCOMPLETE
    return ClipCover(state, max(span.end_ts - span.start_ts, 0.0), shown)


@dataclass(slots=True)
class _Open:
    clip_id: str
    events: set[str] = field(default_factory=set)
    quiet_since: float | None = None
    spans: dict[str, EventSpan] = field(default_factory=dict)  # closed events, sent with the clip's end


def clip_id_for(bus_id: str, camera: str, ts: float) -> str:
    stamp = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
    return f"{bus_id}_{camera}_{stamp}"


class ClipPlanner:
    def __init__(self, bus_id: str, pre_roll_s: float, post_roll_s: float):
        self._bus = bus_id
        self._pre = pre_roll_s
        self._post = post_roll_s
        self._open: dict[str, _Open] = {}
        self._clip_of_event: dict[str, str] = {}

    def current(self, camera: str) -> str | None:
        clip = self._open.get(camera)
        return clip.clip_id if clip else None

    def step(self, camera: str, ts: float, opened: tuple[Event, ...], closed: tuple[Event, ...]) -> list:
        """Clip starts and ends caused by this frame of this camera (in the order the recorder must apply them)."""
        commands: list[ClipStart | ClipEnd] = []
        clip = self._open.get(camera)
        for ev in opened:
            if clip is None:
                clip = self._open[camera] = _Open(clip_id_for(self._bus, camera, ev.start_ts - self._pre))
                commands.append(ClipStart(camera, clip.clip_id, ev.start_ts - self._pre))
            clip.events.add(ev.event_id)
            clip.quiet_since = None
            self._clip_of_event[ev.event_id] = clip.clip_id
        if clip is None:
            return commands
        for ev in closed:
            clip.events.discard(ev.event_id)
            clip.spans[ev.event_id] = EventSpan(ev.event_id, ev.start_ts, ev.end_ts)
        if not clip.events:
            clip.quiet_since = ts if clip.quiet_since is None else clip.quiet_since
            if ts - clip.quiet_since >= self._post:
                commands.append(ClipEnd(camera, clip.clip_id, tuple(clip.spans.values())))
                del self._open[camera]
        return commands

    def clip_of(self, event: Event) -> str | None:
        """The clip an event belongs to (asked once, when the event closes). An event closed outside `step` (the
        daemon stopping) is added to its clip's spans here."""
        clip_id = self._clip_of_event.pop(event.event_id, None)
        clip = self._open.get(event.camera)
        if clip is not None and clip.clip_id == clip_id:
            clip.events.discard(event.event_id)
            clip.spans.setdefault(event.event_id, EventSpan(event.event_id, event.start_ts, event.end_ts))
        return clip_id

    def end_all(self) -> list[ClipEnd]:
        """Ends for every clip still open (the daemon is stopping), each with the spans of its events."""
        ends = [ClipEnd(camera, clip.clip_id, tuple(clip.spans.values())) for camera, clip in self._open.items()]
        self._open.clear()
        return ends

    def open_clips(self) -> list[tuple[str, str]]:
        """(camera, clip id) of every clip now open (for a recorder that restarts mid-clip)."""
        return [(camera, clip.clip_id) for camera, clip in self._open.items()]
