"""Per day and bus, a manifest object listing every uploaded object with its size and SHA-256; and `verify`.

Key: `PREFIX/manifests/date=YYYY-MM-DD/bus=ID/manifest.json` — outside the data folders, so a Parquet reader
of `PREFIX/events/` never trips over it. The manifest is merged, never replaced: entries already in the
bucket's manifest are kept even if this bus lost its local journal, so a manifest only grows.

`verify` trusts none of the three records alone: it lists the bucket, reads the server's own checksum of each
object (fetching and hashing the bytes when the server has none), and compares with the manifest and the
journal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from uploader.config import UploadConfig
from uploader.s3 import ClientError, error_code
from uploader.state import Journal, StoredObject, now_iso
from uploader.transfer import b64

SCHEMA = "vigie.manifest/1"


def manifest_key(cfg: UploadConfig, date: str, bus: str) -> str:
    return f"{cfg.key_prefix()}manifests/date={date}/bus={bus}/manifest.json"


def read_manifest(client, cfg: UploadConfig, date: str, bus: str) -> dict[str, StoredObject] | None:
    """The bucket's manifest for a day and bus, by key; None when there is none."""
    try:
        resp = client.get_object(Bucket=cfg.bucket, Key=manifest_key(cfg, date, bus))
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    doc = json.loads(resp["Body"].read())
    fields = StoredObject.__slots__
    return {o["key"]: StoredObject(**{k: o.get(k, "") for k in fields}) for o in doc.get("objects", [])}


def write_manifest(client, cfg: UploadConfig, journal: Journal, date: str, bus: str) -> int:
    """Merge the journal's objects for this day and bus into the bucket's manifest; returns its size."""
    entries = read_manifest(client, cfg, date, bus) or {}
    for obj in journal.for_day(date, bus):
        entries[obj.key] = obj
    doc = {
        "schema": SCHEMA,
        "date": date,
        "bus": bus,
        "updated": now_iso(),
        "objects": [asdict(entries[k]) for k in sorted(entries)],
    }
    body = json.dumps(doc, indent=1, sort_keys=True).encode()
    client.put_object(
        Bucket=cfg.bucket,
        Key=manifest_key(cfg, date, bus),
        Body=body,
        ChecksumSHA256=b64(hashlib.sha256(body).digest()),
        ContentType="application/json",
    )
    return len(entries)


@dataclass
class Report:
    """What verify found for one day and bus."""

    date: str
    bus: str
    ok: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return not (self.missing or self.extra or self.altered)


def buses_for_day(client, cfg: UploadConfig, date: str) -> list[str]:
    """Buses with data or a manifest for that day, found by listing the bucket."""
    found = set()
    roots = ["manifests", *(r.name for r in cfg.spool)]
    for root in roots:
        prefix = f"{cfg.key_prefix()}{root}/date={date}/"
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            for cp in page.get("CommonPrefixes", []):
                found.add(cp["Prefix"][len(prefix) :].strip("/").removeprefix("bus="))
    return sorted(found)


def _listed(client, cfg: UploadConfig, date: str, bus: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for root in cfg.spool:
        prefix = f"{cfg.key_prefix()}{root.name}/date={date}/bus={bus}/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = int(obj["Size"])
    return out


def _actual(client, cfg: UploadConfig, key: str, expected: StoredObject) -> tuple[int, str, str]:
    """(size, checksum as the server states it, sha256 hex if we had to hash the bytes else '')."""
    head = client.head_object(Bucket=cfg.bucket, Key=key, ChecksumMode="ENABLED")
    checksum = head.get("ChecksumSHA256") or ""
    sha = ""
    if not checksum or checksum != expected.checksum:
        # No server checksum, or a different one: hash the bytes so we report what is there, not a guess.
        h = hashlib.sha256()
        for chunk in client.get_object(Bucket=cfg.bucket, Key=key)["Body"].iter_chunks(1024 * 1024):
            h.update(chunk)
        sha = h.hexdigest()
    return int(head["ContentLength"]), checksum, sha


def verify_day(client, cfg: UploadConfig, journal: Journal, date: str, bus: str) -> Report:
    report = Report(date, bus)
    manifest = read_manifest(client, cfg, date, bus)
    local = {o.key: o for o in journal.for_day(date, bus)}
    if manifest is None:
        report.missing.append(manifest_key(cfg, date, bus) + " (the manifest itself)")
        manifest = {}
    if not local:
        report.notes.append("no local journal records for this day and bus (run on the bus to compare them)")
    for key in sorted(set(manifest) & set(local)):
        if manifest[key].sha256 != local[key].sha256:
            report.altered.append(f"{key}: manifest sha256 {manifest[key].sha256} but journal {local[key].sha256}")
    listed = _listed(client, cfg, date, bus)
    expected = {**local, **manifest}
    for key in sorted(set(expected) - set(listed)):
        where = " and ".join(n for n, d in (("manifest", manifest), ("journal", local)) if key in d)
        report.missing.append(f"{key} (in the {where})")
    for key in sorted(set(listed) - set(expected)):
        report.extra.append(f"{key} ({listed[key]} bytes, in neither the manifest nor the journal)")
    for key in sorted(set(listed) & set(expected)):
        want = expected[key]
        size, checksum, sha = _actual(client, cfg, key, want)
        if size != want.size or (sha and sha != want.sha256):
            got = f"sha256 {sha}" if sha else f"checksum {checksum}"
            report.altered.append(
                f"{key}: expected {want.size} bytes sha256 {want.sha256}, bucket has {size} bytes {got}"
            )
        else:
            report.ok += 1
    return report
