"""The store-and-forward loop: scan the spool, send by priority, record, delete, update manifests, back off.

Order of a file's life, chosen so that a crash at any point loses nothing and duplicates nothing:
  hash → conditional write with that hash → server confirms the checksum → journal line (fsync) → unlink.
A crash before the journal line leaves the file in the spool; the next write gets 412, the stored checksum is
compared, and the file is journaled then. A crash after it leaves a file the journal already covers: it is
unlinked without being sent again.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from core.atomic import private_dir
from uploader.config import UploadConfig
from uploader.manifest import write_manifest
from uploader.s3 import Failure, Kind, classify, make_client
from uploader.spool import SpoolItem, by_priority, enforce_quota, scan
from uploader.state import Journal, MultipartStore, StatusFile, now_iso
from uploader.transfer import Conflict, Counters, FileChanged, Prepared, Sender, TokenBucket, prepare

log = logging.getLogger(__name__)

# A file that keeps changing between hash and send is being written by someone: leave it for the next pass.
_REHASH_LIMIT = 3
_COUNTED = (
    "stored",
    "already_there",
    "bytes_sent",
    "parts_sent",
    "parts_resumed",
    "rehashed",
    "checksum_refused",
)


@dataclass(frozen=True, slots=True)
class PassResult:
    """One pass over the spool."""

    waiting: int  # files found at the start
    stored: int  # of those, now safely in the bucket (and deleted locally)
    failures: tuple[Failure, ...]
    counters: Counters

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def refused(self) -> bool:
        return any(f.kind is Kind.REFUSED for f in self.failures)


def backoff_s(attempt: int, base: float, cap: float) -> float:
    """Full jitter, uniform in [0, min(cap, base·2^attempt)]: a fleet coming back online does not stampede."""
    return random.uniform(0.0, min(cap, base * 2 ** min(attempt, 30)))


class Uploader:
    """Drains the spool into the bucket. `after_hash` is a test-only hook passed to the Sender."""

    def __init__(self, cfg: UploadConfig, after_hash: Callable[[Prepared], None] | None = None, client=None):
        self.cfg = cfg
        private_dir(cfg.state_dir)
        self.journal = Journal(cfg.state_dir)
        self.status = StatusFile(cfg.state_dir)
        self.store = MultipartStore(cfg.state_dir)
        self.client = client or make_client(cfg)
        self.bucket = TokenBucket(cfg.bandwidth_bytes_s)
        self.after_hash = after_hash
        self._link_down = threading.Event()
        self._stop = threading.Event()
        # Days whose manifest is behind the journal; kept in status.json so a restart still writes them.
        self._pending_manifests = {tuple(g) for g in self.status.read().get("manifests_pending", [])}

    # -- one file --------------------------------------------------------------------------------------------

    def _handle(self, item: SpoolItem, sender: Sender) -> Failure | None:
        if self._link_down.is_set() or self._stop.is_set():
            return None  # not a new failure: the pass is being cut short (link down, or asked to stop)
        known = self.journal.lookup(item.key)
        try:
            for _ in range(_REHASH_LIMIT):
                prep = prepare(item, self.cfg)
                if known is not None and (known.sha256, known.size) == (prep.sha256, prep.size):
                    # Journaled before a crash that came before the unlink: already safe, do not send again.
                    item.path.unlink(missing_ok=True)
                    return None
                try:
                    obj = sender.send(prep)
                except FileChanged:
                    sender.counters.add(rehashed=1)
                    continue
                except Exception as exc:
                    failure = classify(exc)
                    if failure.kind is not Kind.CHANGED:
                        raise
                    sender.counters.add(rehashed=1, checksum_refused=1)
                    log.info("%s: %s; hashing it again", item.key, failure.message)
                    continue
                self.journal.stored(obj, item.path)  # fsynced before the unlink: see the module docstring
                item.path.unlink(missing_ok=True)
                return None
            return self._failed(item, Failure(Kind.OTHER, "the file kept changing while being sent; left for later"))
        except FileNotFoundError:
            return None  # removed under us (evicted, or cleaned up): nothing left to send
        except Conflict as exc:
            return self._failed(item, Failure(Kind.OTHER, f"conflict: {exc}"))
        except Exception as exc:
            failure = classify(exc)
            if failure.kind not in (Kind.LINK, Kind.REFUSED):
                return self._failed(item, failure)
            # Parallel workers hit a dead link together: one log line per pass says it.
            repeated = self._link_down.is_set()
            self._link_down.set()
            return self._failed(item, failure, quiet=repeated)

    def _failed(self, item: SpoolItem, failure: Failure, quiet: bool = False) -> Failure:
        if not quiet:
            log.warning("upload: %s: %s", item.key, failure.message)
        self.status.failure(item.key, failure.message)
        return failure

    # -- a pass ----------------------------------------------------------------------------------------------

    def run_pass(self) -> PassResult:
        """Send what waits, highest priority first; manifests of a tier go before the next tier starts."""
        self._link_down.clear()
        enforce_quota(self.cfg, self.journal, self.status)
        items = scan(self.cfg)
        # Marked before sending, so a crash after a file is journaled but before its manifest is written still
        # gets that manifest written on the next start.
        groups = {i.group for i in items} - self._pending_manifests
        if groups:
            self._pending_manifests |= groups
            self.status.update(manifests_pending=sorted(self._pending_manifests))
        sender = Sender(self.client, self.cfg, self.store, self.bucket, self.after_hash)
        failures: list[Failure] = []
        stored = 0
        # Small files go several at a time; a large one sends its own parts in parallel.
        with ThreadPoolExecutor(self.cfg.workers, thread_name_prefix="upload") as pool:
            for tier in by_priority(items):
                if self._link_down.is_set():
                    break
                results = list(pool.map(lambda i: (i, self._handle(i, sender)), tier))
                done = [i for i, f in results if f is None and not i.path.exists()]
                failures += [f for _, f in results if f is not None]
                stored += len(done)
                failures += self._update_manifests({i.group for i in done})
        result = PassResult(len(items), stored, tuple(failures), sender.counters)
        if items:
            self.status.update(
                last_pass={
                    "at": now_iso(),
                    "waiting": len(items),
                    "stored": stored,
                    "failures": len(failures),
                }
            )
        if stored:
            self.status.update(last_success={"at": now_iso(), "stored": stored})
        return result

    def _update_manifests(self, groups: set[tuple[str, str]]) -> list[Failure]:
        failures = []
        before = set(self._pending_manifests)
        for date, bus in sorted(groups):
            if self._link_down.is_set():
                # Not lost: the journal holds the entries and a later pass rewrites this manifest.
                self._pending_manifests.add((date, bus))
                continue
            try:
                write_manifest(self.client, self.cfg, self.journal, date, bus)
                self._pending_manifests.discard((date, bus))
            except Exception as exc:
                failure = classify(exc)
                self._pending_manifests.add((date, bus))
                if failure.kind in (Kind.LINK, Kind.REFUSED):
                    self._link_down.set()
                failures.append(self._failed_manifest(date, bus, failure))
        if self._pending_manifests != before:
            self.status.update(manifests_pending=sorted(self._pending_manifests))
        return failures

    def _failed_manifest(self, date: str, bus: str, failure: Failure) -> Failure:
        log.warning("upload: manifest date=%s bus=%s: %s", date, bus, failure.message)
        self.status.failure(f"manifest date={date} bus={bus}", failure.message)
        return failure

    def flush_manifests(self) -> list[Failure]:
        """Manifests a failed pass could not write (their files were stored, the manifest update was not)."""
        self._link_down.clear()
        return self._update_manifests(set(self._pending_manifests))

    # -- the loop --------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, once: bool = False) -> PassResult:
        """Loop until `stop`, backing off on failure; with `once`, until all is stored or tries run out."""
        self._stop = stop
        attempt = 0
        totals = Counters()
        waiting = stored = -1
        while True:
            result = self.run_pass()
            if waiting < 0:
                waiting, stored = result.waiting, 0
            stored += result.stored
            totals.add(**{k: getattr(result.counters, k) for k in _COUNTED})
            failures = result.failures
            if self._pending_manifests and not result.failures:
                failures = tuple(self.flush_manifests())
            summary = PassResult(waiting, stored, failures, totals)
            if not failures:
                attempt = 0
                if once:
                    return summary
                delay = self.cfg.poll_s
            else:
                attempt += 1
                refused = any(f.kind is Kind.REFUSED for f in failures)
                if once and (refused or attempt >= self.cfg.once_attempts):
                    return summary
                delay = backoff_s(attempt, self.cfg.backoff_base_s, self.cfg.backoff_cap_s)
                log.info("upload: %d failure(s); next try in %.1f s", len(failures), delay)
            if stop.wait(delay):
                return summary
