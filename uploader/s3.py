"""The S3 client and what its errors mean to us.

boto3 does signing, checksums and multipart calls; we set timeouts short enough that a hung server (SIGSTOP, a
dead link that still accepts TCP) is a failure in seconds, and switch off botocore's own retries: the
uploader's backoff loop retries forever, and hidden inner retries would make a single call hang for minutes.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from uploader.config import UploadConfig

_REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_CHANGED = {"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest", "InvalidChecksum"}
# Only these credential sources: a bus must never wait on a cloud metadata service that is not there.
_KEPT_PROVIDERS = ("env", "shared-credentials-file", "config-file")


class NoCredentials(Exception):
    """No key pair in the environment or a credentials file."""


class Kind(enum.Enum):
    LINK = "link"  # network, timeout, 5xx: retry with backoff, stop the pass (the next file would fail too)
    REFUSED = "refused"  # the server rejected the credentials: retry later, say so clearly
    CHANGED = "changed"  # the server's checksum disagreed with the bytes: hash the file again and resend
    OTHER = "other"  # anything else (no such bucket, access denied, conflict): this file waits, others go on


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Kind
    message: str


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def http_status(exc: BaseException) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) if isinstance(exc, ClientError) else 0


def classify(exc: BaseException) -> Failure:
    """What the uploader should do about an exception from boto3; messages carry no secrets."""
    code = error_code(exc)
    if code in _REFUSED:
        return Failure(
            Kind.REFUSED,
            f"the server refused the credentials ({code}); check AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY or the credentials file; files stay queued",
        )
    if code in _CHANGED:
        return Failure(Kind.CHANGED, f"the server's checksum did not match the bytes sent ({code})")
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return Failure(Kind.LINK, f"timed out: {exc}")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ConnectionError):
        return Failure(Kind.LINK, f"cannot reach the server: {exc}")
    if isinstance(exc, ClientError):
        status = http_status(exc)
        text = exc.response.get("Error", {}).get("Message", "")
        kind = Kind.LINK if status >= 500 or status == 429 else Kind.OTHER
        return Failure(kind, f"{code or status}: {text}".strip())
    if isinstance(exc, BotoCoreError | OSError):
        return Failure(Kind.LINK, f"{type(exc).__name__}: {exc}")
    return Failure(Kind.OTHER, f"{type(exc).__name__}: {exc}")


def _session() -> boto3.Session:
    core = botocore.session.Session()
    resolver = core.get_component("credential_provider")
    for name in [p.METHOD for p in resolver.providers if p.METHOD not in _KEPT_PROVIDERS]:
        resolver.remove(name)
    return boto3.Session(botocore_session=core)


def _reuse_checksum_as_payload_hash(request, **_: object) -> None:
    """SigV4 over plain http hashes the whole body again; our x-amz-checksum-sha256 already is that hash.

    Declaring it as X-Amz-Content-SHA256 saves a pass over every byte; the server checks it like any other.
    """
    checksum = request.headers.get("x-amz-checksum-sha256")
    if checksum and "X-Amz-Content-SHA256" not in request.headers:
        request.headers["X-Amz-Content-SHA256"] = base64.b64decode(checksum).hex()


def make_client(cfg: UploadConfig, max_pool: int | None = None):
    """An S3 client for the configured endpoint. Raises NoCredentials before any request is made."""
    session = _session()
    if session.get_credentials() is None:
        raise NoCredentials(
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a credentials file "
            "(AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials)"
        )
    config = Config(
        region_name=cfg.region,
        connect_timeout=cfg.connect_timeout_s,
        read_timeout=cfg.read_timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": cfg.addressing_style},
        max_pool_connections=max_pool or max(cfg.workers * 2, 10),
        # We pass our own SHA-256 on every write; only validate what the server sends back when asked.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    verify: bool | str = str(cfg.ca_bundle) if cfg.ca_bundle else True
    client = session.client("s3", endpoint_url=cfg.endpoint_url, config=config, verify=verify)
    for op in ("PutObject", "UploadPart"):
        client.meta.events.register(f"before-sign.s3.{op}", _reuse_checksum_as_payload_hash)
    return client


__all__ = ["ClientError", "Failure", "Kind", "NoCredentials", "NoCredentialsError", "classify", "make_client"]
