"""A ring of raw frames in shared memory: the daemon writes, the recorder process reads.

A transit buffer, in RAM only: the recorder copies each frame out (into its JPEG pre-roll) well within the ring's
depth. The daemon pays one memcpy per frame it sends (~0.2 ms at 768x576) and never waits for the recorder.
Each slot carries the sequence number written before and after the pixels (a seqlock), so a reader that raced a
writer sees the mismatch and treats the frame as lost instead of reading half of two frames.

Memory: slots x height x width x 3 bytes; at the demo's 768x576, 12 slots (2 s at the 5 fps clips are written at)
are 16 MB per camera.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

SHM_DIR = Path("/dev/shm")  # Linux: POSIX shared memory is RAM (tmpfs), never the disk
PREFIX = "vigie-"
HEADER_FIELDS = 3  # seq written before the pixels, seq written after, capture time (float64 bits)


@dataclass(frozen=True, slots=True)
class RingSpec:
    """Everything the other process needs to attach to a ring."""

    name: str
    slots: int
    height: int
    width: int

    @property
    def frame_bytes(self) -> int:
        return self.height * self.width * 3

    @property
    def total_bytes(self) -> int:
        return self.slots * (HEADER_FIELDS * 8 + self.frame_bytes)


class FrameRing:
    def __init__(self, spec: RingSpec, buf: memoryview, closer: Callable[[], None]):
        self.spec = spec
        self._close = closer
        self._next = 0
        header_bytes = spec.slots * HEADER_FIELDS * 8
        self._header = np.ndarray((spec.slots, HEADER_FIELDS), dtype=np.int64, buffer=buf[:header_bytes])
        self._frames = np.ndarray(
            (spec.slots, spec.height, spec.width, 3), dtype=np.uint8, buffer=buf[header_bytes : spec.total_bytes]
        )

    @classmethod
    def create(cls, name: str, slots: int, height: int, width: int) -> FrameRing:
        """The daemon's side. If the daemon dies, its recorder (or multiprocessing's resource tracker) unlinks the
        segment; if everything died at once, `remove_stale` does at the next start."""
        spec = RingSpec(name, slots, height, width)
        shm = shared_memory.SharedMemory(name=name, create=True, size=spec.total_bytes)
        # Reserve the pages now: on a full /dev/shm a sparse segment would SIGBUS the daemon mid-write later.
        fd = os.open(SHM_DIR / name, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, spec.total_bytes)
        except OSError:
            shm.close()
            shm.unlink()
            raise
        finally:
            os.close(fd)

        def close() -> None:
            shm.close()
            shm.unlink()

        assert shm.buf is not None  # a segment just created and mapped always has its buffer
        ring = cls(spec, shm.buf, close)
        ring._header[:] = -1
        return ring

    @classmethod
    def attach(cls, spec: RingSpec) -> FrameRing:
        """The recorder's side: a plain mapping of the segment, so that this process never registers (and so never
        unlinks) a segment it does not own — SharedMemory(create=False) would, on Python < 3.13."""
        fd = os.open(SHM_DIR / spec.name, os.O_RDWR)
        try:
            mapping = mmap.mmap(fd, spec.total_bytes)
        finally:
            os.close(fd)
        return cls(spec, memoryview(mapping), mapping.close)

    def write(self, seq: int, t_capture: float, image: np.ndarray) -> int | None:
        """Store a frame in the next slot and return that slot (None if the frame's size is not the ring's).

        Slots are used in turn, whatever the seq: frames are sent sparsely (at the clip rate), and seq % slots
        would make them collide early."""
        if image.shape != (self.spec.height, self.spec.width, 3):
            return None
        slot = self._next % self.spec.slots
        self._next += 1
        self._header[slot, 0] = seq
        self._frames[slot] = image
        self._header[slot, 2] = np.float64(t_capture).view(np.int64)
        self._header[slot, 1] = seq
        return slot

    def read(self, slot: int, seq: int) -> tuple[np.ndarray, float] | None:
        """A copy of frame `seq` from `slot` and its capture time, or None if it was overwritten (or is being)."""
        if self._header[slot, 1] != seq:
            return None
        image = self._frames[slot].copy()
        t_capture = float(self._header[slot, 2:3].view(np.float64)[0])
        if self._header[slot, 0] != seq or self._header[slot, 1] != seq:
            return None
        return image, t_capture

    def close(self) -> None:
        # Drop the numpy views first: a mapping cannot close while buffers are exported.
        del self._header, self._frames
        self._close()


def ring_name(owner_pid: int, camera: str) -> str:
    """The owner's pid is in the name so that whoever outlives the owner can tell its rings from a live daemon's."""
    return f"{PREFIX}{owner_pid}-{camera}"


def remove_stale(prefix: str = PREFIX) -> int:
    """Unlink rings whose daemon is gone (killed with its whole process group, nothing could clean up): they hold
    raw frames, in RAM, until the machine reboots. Called before this daemon creates any ring, so rings under its
    own pid are stale too: a dead daemon's whose pid came back (a container's daemon often gets the same pid at
    every start, and the container's /dev/shm outlives a crash); left there, they would make our own ring fail."""
    removed = 0
    for path in SHM_DIR.glob(f"{prefix}*-*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            if int(pid) != os.getpid():
                os.kill(int(pid), 0)
                continue  # a live daemon's
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # someone else's live process
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def destroy_rings_of(owner_pid: int) -> int:
    """Unlink every ring of a daemon that died, from a process that outlived it (its recorder).

    Through SharedMemory rather than a plain unlink: the daemon registered each ring with the resource tracker it
    shares with its recorder, and unlinking this way also unregisters it, so the tracker does not try again (and
    warn about "leaked" segments) when it exits after the recorder."""
    removed = 0
    for path in SHM_DIR.glob(f"{PREFIX}{owner_pid}-*"):
        with contextlib.suppress(FileNotFoundError):
            shm = shared_memory.SharedMemory(name=path.name)
            shm.close()
            shm.unlink()
            removed += 1
    return removed
