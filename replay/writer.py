"""Writing whole files into the store, a folder or the city's bucket, so that no reader ever sees half of one.

Locally a file is written under a hidden name, fsynced and renamed (core/atomic.py); on S3 it is one PUT of the
complete object (with its SHA-256 for the server to check), which S3 makes visible whole or not at all. The S3
client is the uploader's: same credential sources, timeouts and checksums. Used by `compact` (the curated tier)
and `rerun-fleet` (a rerun's events beside the old ones).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow.fs as pafs

from core.atomic import make_private_dirs, write_atomic
from replay.errors import ReplayError, ReplayFailure
from replay.parquet_io import S3_THREADS
from replay.query import SourceSpec
from replay.source import ENDPOINT_ENV, OpenedSource


class LocalWriter:
    def put(self, path: str, data: bytes) -> None:
        dest = Path(path)
        make_private_dirs(dest.parent)  # they hold events, like events.dir (core/atomic.py)
        write_atomic(dest, lambda tmp: tmp.write_bytes(data))

    def remove(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)


class S3Writer:
    """Writes with the uploader's client. Paths are `bucket/key`, as pyarrow's S3 paths are."""

    def __init__(self, root: str, endpoint_url: str | None) -> None:
        from pydantic import ValidationError

        from uploader.config import UploadConfig
        from uploader.s3 import NoCredentials, make_client

        self.bucket = root.split("/", 1)[0]
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        try:
            cfg = UploadConfig(endpoint_url=endpoint_url, region=region)
            self.client = make_client(cfg, max_pool=S3_THREADS)
        except NoCredentials as exc:
            raise ReplayError(str(exc)) from None
        except ValidationError:
            raise ReplayError(f"endpoint {endpoint_url!r}: expected http://host:port or https://host:port") from None

    def _key(self, path: str) -> str:
        return path.split("/", 1)[1]

    def put(self, path: str, data: bytes) -> None:
        from uploader.transfer import b64

        digest = b64(hashlib.sha256(data).digest())
        self._call(
            lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data, ChecksumSHA256=digest),
            path,
        )

    def remove(self, path: str) -> None:
        self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(path)), path)

    def _call(self, request: Callable[[], object], path: str) -> None:
        from uploader.s3 import Kind, classify

        try:
            request()
        except Exception as exc:
            failure = classify(exc)
            text = f"s3://{path}: {failure.message}"
            # Refused credentials are the user's to fix (exit 2); a link that fails mid-way is a runtime failure.
            raise (ReplayError(text) if failure.kind is Kind.REFUSED else ReplayFailure(text)) from None


def writer_for(src: OpenedSource, spec: SourceSpec, root: str) -> LocalWriter | S3Writer:
    """The writer for files under `root` of the store `src` was opened from."""
    if isinstance(src.fs, pafs.S3FileSystem):
        return S3Writer(root, spec.endpoint_url or os.environ.get(ENDPOINT_ENV))
    return LocalWriter()
