"""Faults of the event store (write-ahead log, event folder): how they are told and how soon they are retried.

A full or failing disk under the event metadata must never stop alerts. Every write there is tried; when one fails
the events wait in memory (bounded, see `EventWriter`), the fault is reported on `health` as camera "events", and the
write is retried with back-off until the disk takes it again, when "events" goes back to `ok`.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from pathlib import Path

from core.types import Health, Status

STORE_HEALTH = "events"  # the `camera` field of the event store's health messages
DROP_REPORT_S = 2.0  # new drops are reported at most this often: never silent, never a flood
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class StoreFault:
    """The last error of one part of the store."""

    what: str  # "write-ahead log" or "event folder"
    folder: Path
    errno: int | None
    error: str

    @classmethod
    def of(cls, what: str, folder: Path, exc: OSError) -> StoreFault:
        return cls(what, folder, exc.errno, exc.strerror or str(exc))

    @property
    def full(self) -> bool:
        return self.errno in FULL_ERRNOS

    def __str__(self) -> str:
        return f"{self.what} {self.folder}: {self.error}"


@dataclass(frozen=True, slots=True)
class StoreState:
    """A snapshot of the store for `health`: its faults and what waits in memory because of them."""

    wal: StoreFault | None
    folder: StoreFault | None
    waiting: int
    dropped: int
    bound: int

    @property
    def faults(self) -> tuple[StoreFault, ...]:
        return tuple(f for f in (self.wal, self.folder) if f is not None)

    @property
    def status(self) -> Status:
        if not self.faults:
            return Status.OK
        # A full disk has a remedy the crew can apply (free space); any other error needs a technician.
        return Status.DISK_FULL if any(f.full for f in self.faults) else Status.FAILED

    def detail(self) -> str:
        faults = "; ".join(str(f) for f in self.faults)
        memory = f"{self.waiting} event(s) wait in memory (at most {self.bound}), {self.dropped} dropped"
        return f"{faults}; {memory}" if faults else f"event metadata written again; {memory}"


class Backoff:
    """When to retry a failing write: 1 s after the first failure, then 2, 4, … at most 30 s apart.

    A full disk costs one failed system call per try, so trying often is cheap and space is used soon after it
    returns; the cap keeps a dying card (EIO, each try slow) from being hammered or flooding the log."""

    def __init__(self, first_s: float = 1.0, cap_s: float = 30.0):
        self._first = first_s
        self._cap = cap_s
        self._delay = first_s
        self.due_at = 0.0

    def failed(self) -> float:
        """Schedule the next try; returns the delay until it."""
        delay, self._delay = self._delay, min(self._delay * 2, self._cap)
        self.due_at = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self._delay = self._first
        self.due_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.due_at


class StoreWatch:
    """Turns store snapshots into `health` messages: each change of status or of the failing folders, and new drops
    at most every DROP_REPORT_S."""

    def __init__(self) -> None:
        self._failing: tuple[str, tuple[StoreFault, ...]] = ("ok", ())
        self._dropped = 0
        self._next_drop_report = 0.0

    def check(self, state: StoreState) -> list[Health]:
        now = time.monotonic()
        failing = (state.status, state.faults)
        new_drops = state.dropped != self._dropped and now >= self._next_drop_report
        if failing == self._failing and not new_drops:
            return []
        self._failing, self._dropped = failing, state.dropped
        self._next_drop_report = now + DROP_REPORT_S
        return [Health(STORE_HEALTH, state.status, state.detail(), time.time())]

    @staticmethod
    def current(state: StoreState) -> list[Health]:
        """For the daemon's heartbeat: a fault is repeated while it lasts, so a display that joined late (or lost the
        one message to ZeroMQ's slow joining) still learns it; `ok` is not, the cameras' heartbeat says enough."""
        if state.status == Status.OK:
            return []
        return [Health(STORE_HEALTH, state.status, state.detail(), time.time())]
