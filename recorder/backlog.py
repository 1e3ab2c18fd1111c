"""Frames of a clip waiting for the CPU to blur and write them, and what goes first when they do not fit.

A recorder short of CPU rescues each frame of an open clip from the shared-memory ring as JPEG (~2 ms) and blurs
and writes it later (~50 ms). The waiting frames of all clips share one memory budget, and one of time: no more than
the recorder can write in a few seconds at the rate it writes now (more would only delay the clips, and be lost all
the same when the daemon stops). Over either, the clip holding the most frames gives one up: its pre-roll first
(before the event it was opened for), then the frame whose neighbours are closest, so the clip's rate drops evenly
over the event instead of losing a stretch of it. Its first and last frames stay: they bound what the clip can show.
Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recorder.clipfile import FrameMeta


@dataclass(frozen=True, slots=True)
class Pending:
    meta: FrameMeta
    jpeg: bytes


@dataclass(slots=True)
class Backlog:
    event_from: float  # frames before this time are the clip's pre-roll
    frames: list[Pending] = field(default_factory=list)
    thinned: int = 0  # frames given up to stay within the budget (the clip's rate dropped)
    nbytes: int = 0

    def add(self, frame: Pending) -> None:
        self.frames.append(frame)
        self.nbytes += len(frame.jpeg)

    def take(self, n: int) -> list[Pending]:
        """The oldest `n` frames, to be written now."""
        out, self.frames = self.frames[:n], self.frames[n:]
        self.nbytes -= sum(len(f.jpeg) for f in out)
        return out

    def drop_one(self) -> None:
        ts = [f.meta.ts for f in self.frames]
        if len(ts) >= 2 and ts[1] <= self.event_from:
            drop = 0  # pre-roll, and not the last of it before the event (that one shows the approach)
        elif len(ts) >= 3:
            drop = 1 + int(np.argmin(np.subtract(ts[2:], ts[:-2])))
        else:
            drop = 0
        self.nbytes -= len(self.frames.pop(drop).jpeg)
        self.thinned += 1

    def thin_to(self, n: int) -> None:
        """Keep at most `n` frames: pre-roll first goes, then those farthest from an even grid over the rest (one
        drop at a time would leave uneven gaps where its choices tie)."""
        n = max(n, 0)
        while len(self.frames) > n and len(self.frames) >= 2 and self.frames[1].meta.ts <= self.event_from:
            self.drop_one()
        if len(self.frames) <= n:
            return
        ts = np.array([f.meta.ts for f in self.frames])
        grid = np.linspace(ts[0], ts[-1], n) if n > 1 else ts[:n]
        keep = set(np.abs(ts[None, :] - grid[:, None]).argmin(axis=1).tolist())
        gone = [f for i, f in enumerate(self.frames) if i not in keep]
        self.frames = [f for i, f in enumerate(self.frames) if i in keep]
        self.nbytes -= sum(len(f.jpeg) for f in gone)
        self.thinned += len(gone)


def bound(backlogs: list[Backlog], max_bytes: int, max_frames: int) -> None:
    """Keep the waiting frames of every clip within `max_bytes` and `max_frames`, taking from the clip that holds
    the most."""
    while sum(b.nbytes for b in backlogs) > max_bytes or sum(len(b.frames) for b in backlogs) > max_frames:
        biggest = max(backlogs, key=lambda b: len(b.frames))
        if not biggest.frames:
            return
        biggest.drop_one()


def share(backlogs: list[Backlog], frames: int) -> None:
    """Thin every backlog so that together they hold at most `frames`, each keeping its share (at shutdown: what the
    time left can write, spread evenly over every clip)."""
    waiting = sum(len(b.frames) for b in backlogs)
    if waiting <= frames:
        return
    for b in backlogs:
        b.thin_to(int(frames * len(b.frames) / waiting))
