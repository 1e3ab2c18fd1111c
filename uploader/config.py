"""The `[upload]` table of a bus config: where the spool is, which bucket it goes to, and how hard to push.

Validated like the rest of the bus config (frozen models, unknown keys rejected, errors as `upload.key:
message`). Credentials are deliberately not fields: they come from the environment or a credentials file,
never this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from core.config_base import (
    MAX_MB,
    ConfigError,
    ConfigPath,
    Finite,
    Int,
    LongText,
    StrictModel,
    Text,
    check_url_host,
    problem_line,
    read_toml,
)

MIB = 1024 * 1024
# S3 refuses parts under 5 MiB (except the last) and allows at most 10 000 of them; an object is at most 5 TiB.
MIN_PART_MB = 5
MAX_OBJECT_MB = 5 * 1024 * 1024


class SpoolRoot(StrictModel):
    """One local folder the uploader drains. Its `name` is the first key segment under the prefix."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    dir: ConfigPath
    # Lower goes first: event metadata (0) before clips (10); manifests are sent between the two.
    priority: Annotated[Int, Field(ge=0, le=100)] = 0
    # Only "clip" roots may be deleted unsent when the spool is over its quota; metadata is never dropped.
    kind: Literal["metadata", "clip"] = "metadata"


def _default_spool() -> tuple[SpoolRoot, ...]:
    return (
        SpoolRoot(name="events", dir=Path("var/events"), priority=0, kind="metadata"),
        SpoolRoot(name="operating", dir=Path("var/operating"), priority=0, kind="metadata"),
        SpoolRoot(name="health", dir=Path("var/health"), priority=0, kind="metadata"),
        SpoolRoot(name="clips", dir=Path("var/clips"), priority=10, kind="clip"),
    )


class UploadConfig(StrictModel):
    endpoint_url: LongText | None = None  # None: AWS itself (https)
    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")] | None = None
    prefix: Text = ""
    region: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = "us-east-1"
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    ca_bundle: ConfigPath | None = None  # a city CA for a private endpoint; TLS is never switched off
    state_dir: ConfigPath = Path("var/upload")
    spool: tuple[SpoolRoot, ...] = Field(default_factory=_default_spool, min_length=1, max_length=16)
    spool_quota_mb: Annotated[Finite, Field(gt=0, le=MAX_MB)] = 20_000.0
    # Megabits per second; None: no cap.
    bandwidth_mbps: Annotated[Finite, Field(gt=0, le=1_000_000)] | None = None
    multipart_threshold_mb: Annotated[Finite, Field(ge=MIN_PART_MB, le=MAX_OBJECT_MB)] = 8.0
    part_size_mb: Annotated[Finite, Field(ge=MIN_PART_MB, le=512)] = 8.0
    # Parallel requests (whole small files, or parts of a large one); 8 parts of 8 MiB in flight = 64 MiB of
    # memory.
    workers: Annotated[Int, Field(ge=1, le=32)] = 8
    connect_timeout_s: Annotated[Finite, Field(gt=0, le=120)] = 5.0
    read_timeout_s: Annotated[Finite, Field(gt=0, le=600)] = 30.0
    backoff_base_s: Annotated[Finite, Field(gt=0, le=60)] = 1.0
    backoff_cap_s: Annotated[Finite, Field(gt=0, le=3600)] = 300.0
    poll_s: Annotated[Finite, Field(gt=0, le=3600)] = 10.0
    # With --once: passes tried (with backoff between) before giving up on what is left.
    once_attempts: Annotated[Int, Field(ge=1, le=100)] = 3

    @field_validator("endpoint_url")
    @classmethod
    def _explicit_scheme(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// to send in clear on purpose)")
        return check_url_host(v).rstrip("/")

    @field_validator("prefix")
    @classmethod
    def _clean_prefix(cls, v: str) -> str:
        v = v.strip("/")
        if any(part in ("", ".", "..") for part in v.split("/")) and v:
            raise ValueError("must not contain empty, '.' or '..' segments")
        return v

    @model_validator(mode="after")
    def _unique_roots(self) -> UploadConfig:
        names = [r.name for r in self.spool]
        if len(set(names)) != len(names):
            raise ValueError("spool: root names must be unique (they become object key segments)")
        return self

    @property
    def part_size(self) -> int:
        return int(self.part_size_mb * MIB)

    @property
    def multipart_threshold(self) -> int:
        return int(self.multipart_threshold_mb * MIB)

    @property
    def spool_quota(self) -> int:
        return int(self.spool_quota_mb * MIB)

    @property
    def bandwidth_bytes_s(self) -> float | None:
        return None if self.bandwidth_mbps is None else self.bandwidth_mbps * 1e6 / 8

    def key_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""


def parse_upload(
    table: dict, source: str = "<config>", overrides: dict | None = None, need_bucket: bool = True
) -> UploadConfig:
    """Validate an `[upload]` table, with command-line overrides (None values ignored) applied on top."""
    data = dict(table)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        cfg = UploadConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [f"upload.{problem_line(e)}" for e in exc.errors()]) from None
    if need_bucket and cfg.bucket is None:
        raise ConfigError(source, ["upload.bucket: required (set it in [upload] or pass --bucket)"])
    return cfg


def load_upload_config(path: Path | None, overrides: dict | None = None, need_bucket: bool = True) -> UploadConfig:
    """Read `[upload]` from a bus config file (None: defaults only).

    Without `[upload].spool`, the events root follows `[events].dir`, the operating and health roots
    `[events].operating_dir` and `[events].health_dir` (default: beside the events) and the clips root
    `[recorder].dir`, so the uploader drains the folders the daemon writes to without saying them twice.
    """
    if path is None:
        return parse_upload({}, "<options>", overrides, need_bucket)
    data = read_toml(Path(path))
    table = data.get("upload", {})
    if not isinstance(table, dict):
        raise ConfigError(str(path), ["upload: must be a table"])
    if "spool" not in table:
        roots = [r.model_dump() for r in _default_spool()]
        events_dir = _folder(data, "events", "dir", path)

        def beside(name: str) -> str | None:
            return str(Path(events_dir).parent / name) if events_dir else None

        folders = (
            events_dir,
            _folder(data, "events", "operating_dir", path) or beside("operating"),
            _folder(data, "events", "health_dir", path) or beside("health"),
            _folder(data, "recorder", "dir", path),
        )
        for root, folder in zip(roots, folders, strict=True):
            root["dir"] = folder or root["dir"]
        table = {**table, "spool": roots}
    return parse_upload(table, str(path), overrides, need_bucket)


def _folder(data: dict, table: str, key: str, path: Path) -> str | None:
    """`[table].key` of the bus config, a folder the daemon writes to: a string, or None when it is not set.

    Only read here to find the spool, so it is checked only as far as building the spool needs; `vigie check-config`
    checks the rest (a number there crashed `vigie upload` before).
    """
    section = data.get(table)
    value = section.get(key) if isinstance(section, dict) else None
    if value is not None and not isinstance(value, str):
        raise ConfigError(str(path), [f"{table}.{key}: must be a path (a string)"])
    return value
