"""How many malloc arenas the daemon's threads share (glibc).

glibc gives a thread its own arena at its first allocation, a new one for every thread until there are eight per
core, and an arena keeps the memory it once held. The daemon has a score of threads that allocate (four camera
readers, inference, ZeroMQ's, the recorder link's): 36-45 MB of thread arenas at 4 x 15 fps. No more of them than
there are cores can allocate at the same moment, so as many arenas as cores lose no parallelism and hold less: 7 MB
less PSS on average over paired runs (benchmarks/profile_memory.py and e2e.py's sampler; -13 to +6 MB a pair), with
no change in the daemon's CPU that those runs could tell.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's <malloc.h>


def limit_arenas(arenas: int | None = None) -> bool:
    """Cap this process's malloc arenas at `arenas` (default: the cores it may run on); True if glibc took it.

    Call it before the threads start: an arena made before stays. An operator's MALLOC_ARENA_MAX is left as it is,
    and elsewhere than glibc (musl's mallopt does nothing, macOS has none) nothing is changed."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_ARENA_MAX, arenas or len(os.sched_getaffinity(0))) == 1
