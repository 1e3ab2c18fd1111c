"""The recorder's lifeline to the daemon: when the daemon is gone, however it died, the recorder goes too.

A SIGKILLed daemon cannot stop its recorder, and nothing else did: the recorder holds both ends of its own inbox pipe
(so it never reads an end of file there, only an empty queue) and the write end of multiprocessing's resource tracker
(so the tracker, which ignores SIGTERM and would unlink the rings once its last client is gone, waited for the
recorder). Both stayed, with 16 MB of raw frames per camera in /dev/shm.

multiprocessing gives every spawned child a sentinel: the read end of a pipe whose write end only the parent holds.
The kernel closes that end when the parent dies, by SIGKILL or anything else, so end of file there is the one signal
that covers every way of dying. PR_SET_PDEATHSIG is not used: it fires when the *thread* that spawned the recorder
ends, not the process (a restart from a short-lived thread would kill a healthy recorder), and as SIGKILL it would
leave no chance to unlink the rings.

The watch is a thread blocked in `select`: it costs nothing until the daemon dies. Then it unlinks the daemon's rings
at once (the recorder keeps its own mapping, so frames already sent can still be written), tells the main loop to
stop as on a normal stop (open clips are finished), and ends the process itself if that stop hangs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from multiprocessing.connection import wait

from recorder.ring import destroy_rings_of

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 30.0  # time to finish open clips once the daemon is gone; longer means the stop itself is stuck
EXIT_ORPHANED = 3


class Lifeline:
    def __init__(self, grace_s: float = ORPHAN_GRACE_S) -> None:
        parent = mp.parent_process()
        if parent is None or parent.pid is None:
            raise RuntimeError("the lifeline watches a parent: start it in a process spawned by multiprocessing")
        self._parent_pid: int = parent.pid
        self._sentinel = parent.sentinel
        self._grace_s = grace_s
        self._orphaned = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lifeline", daemon=True)

    def start(self) -> Lifeline:
        self._thread.start()
        return self

    @property
    def orphaned(self) -> bool:
        return self._orphaned.is_set()

    def _watch(self) -> None:
        wait([self._sentinel])
        self._orphaned.set()
        try:
            removed = destroy_rings_of(self._parent_pid)
            log.warning("daemon %d is gone: unlinked its %d frame rings; stopping", self._parent_pid, removed)
        except Exception:  # the stop below must happen whatever went wrong here
            log.exception("daemon %d is gone, and unlinking its frame rings failed", self._parent_pid)
        # A daemon thread: if the main loop stops in time, the process ends and this sleep with it.
        time.sleep(self._grace_s)
        log.error("recorder still running %.0f s after its daemon died; exiting now", self._grace_s)
        os._exit(EXIT_ORPHANED)
