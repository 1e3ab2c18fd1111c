"""Writes health summaries and the saved day on a thread of their own: a slow or full disk must never hold the
daemon's alert loop, which only hands over what to write.

Summaries are written in the order they were handed over, each before the saved day that goes with it: a kill
between the two leaves a summary whose revision the next run writes again (readers break that tie by `written_ts`),
never a saved day that says a summary exists when it does not. A write that fails (full disk) is retried with the
event store's back-off; only the newest saved day is kept waiting, since it contains the older ones.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from recorder.health import DiskUse, HealthSummary, SavedDay, clean_leftovers, save_state, write_summary
from recorder.store import Backoff

log = logging.getLogger(__name__)
MB = 2**20


@dataclass(frozen=True, slots=True)
class HealthWrite:
    """What the daemon hands over: a summary to send (or None: a checkpoint), and the day as it now stands."""

    summary: HealthSummary | None
    state: SavedDay


@dataclass(frozen=True, slots=True)
class HealthPlaces:
    root: Path  # summaries: the uploader's `health` spool root
    state_path: Path
    events_dir: Path  # the folders whose disks the summary reports
    clips_dir: Path | None  # None with the recorder off


def disk_use(folder: Path) -> DiskUse | None:
    """Total and free space of the disk holding `folder` (or its nearest existing parent)."""
    for candidate in (folder, *folder.absolute().parents):
        try:
            usage = shutil.disk_usage(candidate)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("disk use of %s unknown: %s", folder, exc)
            return None
        return DiskUse(round(usage.total / MB, 1), round(usage.free / MB, 1))
    return None


class HealthStore:
    def __init__(self, places: HealthPlaces):
        self._places = places
        self._lock = threading.Lock()
        self._summaries: deque[HealthSummary] = deque()
        self._state: SavedDay | None = None
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._backoff = Backoff()
        self._failing = False
        self.written: list[Path] = []
        try:
            clean_leftovers(places.root)
        except OSError as exc:  # reported by the first write, which needs the same folder
            log.error("could not clean temporary files under %s: %s", places.root, exc)
        self._thread = threading.Thread(target=self._run, name="health-writer", daemon=True)
        self._thread.start()

    def submit(self, write: HealthWrite) -> None:
        with self._lock:
            if write.summary is not None:
                self._summaries.append(write.summary)
            self._state = write.state
        self._wake.set()

    def _run(self) -> None:
        delay: float | None = None
        while not self._closing.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            delay = None if self._drain() else self._backoff.failed()
        self._drain()

    def _drain(self) -> bool:
        """Write what waits, oldest summary first; True when nothing is left."""
        while True:
            with self._lock:
                summary = self._summaries[0] if self._summaries else None
                state = self._state
            if summary is None and state is None:
                break
            try:
                if summary is not None:
                    self.written.append(write_summary(self._measured(summary), self._places.root))
                    with self._lock:
                        self._summaries.popleft()
                    continue
                assert state is not None
                save_state(state, self._places.state_path)
                with self._lock:
                    if self._state is state:  # a newer one may have come meanwhile
                        self._state = None
            except OSError as exc:
                if not self._failing:
                    log.error("health summary not written yet (retrying): %s", exc)
                self._failing = True
                return False
        if self._failing:
            log.warning("health summaries written again to %s", self._places.root)
            self._failing = False
            self._backoff.succeeded()
        return True

    def _measured(self, summary: HealthSummary) -> HealthSummary:
        """The disks as they are when the summary is written, and the moment it is."""
        clips = None if self._places.clips_dir is None else disk_use(self._places.clips_dir)
        return replace(summary, written_ts=time.time(), events_disk=disk_use(self._places.events_dir), clips_disk=clips)

    def close(self, timeout_s: float = 10.0) -> int:
        """Write what waits (one last try) and stop; returns how many summaries could not be written."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        with self._lock:
            left = len(self._summaries)
        if left:
            log.error("%d health summary(ies) not written at exit", left)
        return left
