"""Sending one file: hash it, send it with that hash for the server to check, see what the server holds.

Every write carries the SHA-256 we computed *before* reading the bytes to send; if the file changed in
between, the server refuses it (BadDigest) and the engine hashes again — a mismatch is a retry, never a
silently wrong object. Writes are conditional (If-None-Match: *): a retry after a success we never heard of
gets 412, and 412 counts as "already there" only when the stored object's checksum is ours.

Files above the multipart threshold go in parts; the UploadId and each finished part are saved locally
(atomically) so a restarted uploader asks the server which parts it has and sends only the rest.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from uploader.config import UploadConfig
from uploader.s3 import ClientError, error_code, http_status
from uploader.spool import SpoolItem
from uploader.state import MultipartStore, StoredObject, now_iso

_CHUNK = 256 * 1024


class FileChanged(Exception):
    """The local bytes are not the ones we hashed (seen by us or refused by the server): hash again."""


class Conflict(Exception):
    """The key already holds a different object. Never overwritten; the file stays and is reported."""


class TokenBucket:
    """Caps the average read rate across worker threads; debt is allowed, so big reads are spread out."""

    def __init__(self, rate_bytes_s: float | None):
        self.rate = rate_bytes_s
        self._tokens = 0.0
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        if self.rate is None:
            return
        with self._lock:
            now = time.monotonic()
            # At most a quarter second of burst: a cap that lets a long-idle link blast is not a cap.
            self._tokens = min(self._tokens + (now - self._last) * self.rate, self.rate * 0.25)
            self._last = now
            self._tokens -= n
            wait_s = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait_s > 0:
            time.sleep(wait_s)


def read_range(path: Path, offset: int, length: int, bucket: TokenBucket) -> bytearray:
    """The bytes to send, read through the bandwidth cap into one buffer (parts are megabytes)."""
    buf = bytearray(length)
    view = memoryview(buf)
    got = 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        while got < length:
            n = fh.readinto(view[got : got + _CHUNK])
            if not n:
                raise FileChanged(f"{path}: shorter than when it was hashed")
            bucket.take(n)
            got += n
    return buf


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A file hashed for sending: whole-file SHA-256 and, for multipart, one SHA-256 per part."""

    item: SpoolItem
    size: int
    sha256: str
    digest: bytes
    part_size: int | None = None
    part_digests: tuple[bytes, ...] = ()

    @property
    def checksum(self) -> str:
        """What the server reports as x-amz-checksum-sha256 once the object is complete."""
        if self.part_size is None:
            return b64(self.digest)
        # S3 composite checksum: SHA-256 over the parts' raw digests, suffixed with the part count.
        return f"{b64(hashlib.sha256(b''.join(self.part_digests)).digest())}-{len(self.part_digests)}"

    def part_range(self, number: int) -> tuple[int, int]:
        assert self.part_size is not None
        start = (number - 1) * self.part_size
        return start, min(self.part_size, self.size - start)


def prepare(item: SpoolItem, cfg: UploadConfig) -> Prepared:
    """Hash the file as it is now (one read, not throttled: it is local disk, not the link)."""
    whole = hashlib.sha256()
    size_now = item.path.stat().st_size
    multipart = size_now > cfg.multipart_threshold
    # S3 allows 10 000 parts: a very large clip gets bigger parts rather than a refusal.
    part_size = max(cfg.part_size, -(-size_now // 10_000)) if multipart else None
    parts: list[bytes] = []
    size = 0
    with open(item.path, "rb") as fh:
        while True:
            block = fh.read(part_size or 8 * 1024 * 1024)
            if not block:
                break
            whole.update(block)
            size += len(block)
            if multipart:
                parts.append(hashlib.sha256(block).digest())
    return Prepared(item, size, whole.hexdigest(), whole.digest(), part_size, tuple(parts))


@dataclass
class Counters:
    """Per-pass figures (thread-safe), printed by --once and asserted on by the tests."""

    stored: int = 0
    already_there: int = 0
    bytes_sent: int = 0
    parts_sent: int = 0
    parts_resumed: int = 0
    rehashed: int = 0
    checksum_refused: int = 0  # writes the server refused because the bytes did not match our SHA-256
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)


class Sender:
    """Sends prepared files to one bucket; `after_hash` (tests only) runs between hash and send."""

    def __init__(
        self,
        client,
        cfg: UploadConfig,
        store: MultipartStore,
        bucket: TokenBucket,
        after_hash: Callable[[Prepared], None] | None = None,
    ):
        self.client = client
        self.cfg = cfg
        self.store = store
        self.bucket = bucket
        self.after_hash = after_hash
        self.counters = Counters()

    def send(self, prep: Prepared) -> StoredObject:
        """Store one file; returns what the server confirmed. Raises FileChanged, Conflict, boto3 errors."""
        if self.after_hash is not None:
            self.after_hash(prep)
        if prep.part_size is None:
            self._put(prep)
        else:
            self._multipart(prep)
        return StoredObject(
            key=prep.item.key,
            size=prep.size,
            sha256=prep.sha256,
            checksum=prep.checksum,
            date=prep.item.date,
            bus=prep.item.bus,
            stored_at=now_iso(),
        )

    # -- single request --------------------------------------------------------------------------------------

    def _put(self, prep: Prepared) -> None:
        body = read_range(prep.item.path, 0, prep.size, self.bucket)
        try:
            resp = self.client.put_object(
                Bucket=self.cfg.bucket,
                Key=prep.item.key,
                Body=body,
                ChecksumSHA256=prep.checksum,
                IfNoneMatch="*",
                Metadata={"sha256": prep.sha256},
                ContentType=_content_type(prep.item.path),
            )
        except ClientError as exc:
            if http_status(exc) == 412:
                self._already_there(prep)
                return
            raise
        self.counters.add(bytes_sent=prep.size)
        self._confirm(prep, resp.get("ChecksumSHA256"))

    def _confirm(self, prep: Prepared, echoed: str | None) -> None:
        """The server's checksum of what it stored must be ours; ask for it if the write did not echo it."""
        if echoed is None:
            head = self.client.head_object(Bucket=self.cfg.bucket, Key=prep.item.key, ChecksumMode="ENABLED")
            echoed = head.get("ChecksumSHA256")
            if head.get("ContentLength") != prep.size:
                raise Conflict(f"{prep.item.key}: stored size {head.get('ContentLength')} is not {prep.size}")
        if echoed != prep.checksum:
            raise Conflict(f"{prep.item.key}: server checksum {echoed} is not ours {prep.checksum}")
        self.counters.add(stored=1)

    def _already_there(self, prep: Prepared) -> None:
        """412: the key exists (usually our own unacknowledged try). Ours only if the checksums agree."""
        head = self.client.head_object(Bucket=self.cfg.bucket, Key=prep.item.key, ChecksumMode="ENABLED")
        stored = head.get("ChecksumSHA256")
        if stored != prep.checksum or head.get("ContentLength") != prep.size:
            raise Conflict(
                f"{prep.item.key}: already in the bucket with other content "
                f"(sha256 checksum {stored}, {head.get('ContentLength')} bytes); not overwritten"
            )
        self.counters.add(already_there=1)

    # -- multipart -------------------------------------------------------------------------------------------

    def _open_upload(self, prep: Prepared) -> dict:
        """The saved upload for these bytes if the server still has it, else a new one."""
        key = prep.item.key
        rec = self.store.load(key)
        if rec is not None and (rec["sha256"], rec["size"], rec["part_size"]) != (
            prep.sha256,
            prep.size,
            prep.part_size,
        ):
            self._abort(rec)
            rec = None
        if rec is not None:
            try:
                listed = self.client.list_parts(
                    Bucket=self.cfg.bucket, Key=key, UploadId=rec["upload_id"], MaxParts=10000
                )
            except ClientError as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise
                self.store.drop(key)
                rec = None
            else:
                # Keep only parts the server has with the ETag it gave us: anything else is sent again.
                on_server = {str(p["PartNumber"]): p["ETag"] for p in listed.get("Parts", [])}
                rec["parts"] = {n: p for n, p in rec["parts"].items() if on_server.get(n) == p["etag"]}
        if rec is None:
            resp = self.client.create_multipart_upload(
                Bucket=self.cfg.bucket,
                Key=key,
                ChecksumAlgorithm="SHA256",
                Metadata={"sha256": prep.sha256},
                ContentType=_content_type(prep.item.path),
            )
            rec = {
                "key": key,
                "path": str(prep.item.path),
                "sha256": prep.sha256,
                "size": prep.size,
                "part_size": prep.part_size,
                "upload_id": resp["UploadId"],
                "parts": {},
                "started": now_iso(),
            }
        self.store.save(rec)
        return rec

    def _abort(self, rec: dict) -> None:
        # Already gone is fine; the bucket's lifecycle rule cleans what we could not.
        with contextlib.suppress(ClientError):
            self.client.abort_multipart_upload(Bucket=self.cfg.bucket, Key=rec["key"], UploadId=rec["upload_id"])
        self.store.drop(rec["key"])

    def _send_part(self, prep: Prepared, rec: dict, number: int, lock: threading.Lock) -> None:
        start, length = prep.part_range(number)
        body = read_range(prep.item.path, start, length, self.bucket)
        checksum = b64(prep.part_digests[number - 1])
        resp = self.client.upload_part(
            Bucket=self.cfg.bucket,
            Key=prep.item.key,
            UploadId=rec["upload_id"],
            PartNumber=number,
            Body=body,
            ChecksumSHA256=checksum,
        )
        with lock:
            rec["parts"][str(number)] = {"etag": resp["ETag"], "checksum": checksum}
            self.store.save(rec)
        self.counters.add(parts_sent=1, bytes_sent=length)

    def _multipart(self, prep: Prepared) -> None:
        rec = self._open_upload(prep)
        total = len(prep.part_digests)
        todo = [n for n in range(1, total + 1) if str(n) not in rec["parts"]]
        self.counters.add(parts_resumed=total - len(todo))
        lock = threading.Lock()
        try:
            with ThreadPoolExecutor(self.cfg.workers, thread_name_prefix="upload-part") as pool:
                futures = [pool.submit(self._send_part, prep, rec, n, lock) for n in todo]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for fut in futures:
                    fut.cancel()
                for fut in done:
                    fut.result()
        except ClientError as exc:
            if error_code(exc) in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
                self._abort(rec)  # parts of the old bytes must not be stitched to parts of the new ones
            raise
        except FileChanged:
            self._abort(rec)
            raise
        self._complete(prep, rec)

    def _complete(self, prep: Prepared, rec: dict) -> None:
        parts = [
            {"PartNumber": int(n), "ETag": p["etag"], "ChecksumSHA256": p["checksum"]}
            for n, p in sorted(rec["parts"].items(), key=lambda kv: int(kv[0]))
        ]
        try:
            resp = self.client.complete_multipart_upload(
                Bucket=self.cfg.bucket,
                Key=prep.item.key,
                UploadId=rec["upload_id"],
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            # 412: the key exists. NoSuchUpload: maybe our own completion went through but its answer was
            # lost.
            if error_code(exc) == "NoSuchUpload":
                self.store.drop(prep.item.key)
            elif http_status(exc) == 412:
                self._abort(rec)
            else:
                raise
            self._already_there(prep)
            return
        self.store.drop(prep.item.key)
        self._confirm(prep, resp.get("ChecksumSHA256"))


def _content_type(path: Path) -> str:
    return {
        ".parquet": "application/vnd.apache.parquet",
        ".json": "application/json",
        ".mp4": "video/mp4",
    }.get(path.suffix, "application/octet-stream")
