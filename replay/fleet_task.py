"""What a Dask worker does for `vigie replay rerun-fleet`: replay one clip, return typed results, write nothing.

A worker needs vigie installed (the same version as the analyst's) and, for a bucket, S3 credentials in its own
environment (AWS_* variables or an instance role: the analyst's never travel in the task graph). It needs none of
the analyst's files: the config arrives as its TOML text and the detector model as its bytes (`Shipment`, the
result of one task that every clip's task depends on: workers copy it from each other, and the scheduler makes it
again if the last worker holding it dies). The worker keeps the model in a private cache folder under its own name
(so event rows carry the same model id as the analyst's) and checks its SHA-256 before loading it.

One task is one clip. It reads the clip straight from the store (a bucket object is copied to a private temporary
folder, read by OpenCV and deleted), builds a fresh pipeline from the config (trackers and zones start empty, as on
any clip), and replays it with the bus's recorded state (replay/clip_replay.py). The detector is loaded once per
worker and reused: it holds no state between calls. A clip that cannot be replayed (a broken video, a camera the
config lacks) comes back as `ClipOutcome.problem`; a store that stops answering raises `StoreUnavailable`, which
Dask retries.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.atomic import write_atomic
from core.models import ModelError, verify_model
from edge.config import REPO_ROOT, Config, ConfigError, parse_config
from edge.detector import PersonDetector
from replay.clip_replay import ClipRun, recorded_clip, replay_clip
from replay.errors import ReplayError, first_line
from replay.fleet_plan import ClipRef
from replay.query import SourceSpec
from replay.source import OpenedSource, open_source


class StoreUnavailable(RuntimeError):
    """The store did not answer while a clip was read: a runtime failure, worth a retry on another try."""


@dataclass(frozen=True, slots=True)
class Shipment:
    """What every task shares: the config as text and the detector model as bytes."""

    config_text: str
    config_name: str  # the analyst's file name, for messages
    model_name: str  # file name of the model (its stem starts the event rows' model id)
    model_sha256: str
    model: bytes
    threshold: float  # the config's detector threshold (a bundled model's own one depends on its name)
    store: SourceSpec  # the store the clips are in: a folder the workers can see, or s3://bucket/prefix


@dataclass(frozen=True, slots=True)
class ClipOutcome:
    """One clip's result: what replaying it gave, or why it could not be replayed (bad input, never retried)."""

    clip: ClipRef
    run: ClipRun | None
    problem: str | None = None
    worker_pid: int = 0


@dataclass(frozen=True, slots=True)
class _Ready:
    config: Config
    detector: PersonDetector


_READY: dict[tuple[str, str], _Ready] = {}
_SOURCES: dict[SourceSpec, OpenedSource] = {}
_LOCK = threading.Lock()  # a worker with several threads builds each shared piece once


def model_cache(sha256: str) -> Path:
    """The worker's private folder for one model: under the temporary folder, readable by its user only."""
    root = Path(tempfile.gettempdir()) / f"vigie-models-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    if root.stat().st_uid != os.getuid() or root.stat().st_mode & 0o077:
        raise ModelError(f"{root}: not a private folder of this user; the model is not kept there")
    folder = root / sha256
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def materialise(shipment: Shipment) -> Path:
    """The shipped model as a file on this worker, its digest checked (written once, then reused)."""
    if hashlib.sha256(shipment.model).hexdigest() != shipment.model_sha256:
        raise ModelError(f"detector.model: {shipment.model_name} arrived altered (sha256 differs)")
    path = model_cache(shipment.model_sha256) / shipment.model_name
    if not path.is_file():
        write_atomic(path, lambda tmp: tmp.write_bytes(shipment.model))
    verify_model(path, shipment.model_sha256)
    return path


def worker_config(shipment: Shipment, model: Path) -> Config:
    """The analyst's config, read from its text, with the model this worker holds. One onnxruntime thread: a
    worker runs one clip at a time on one core, and the cluster gets its speed from its workers."""
    try:
        config = parse_config(tomllib.loads(shipment.config_text), shipment.config_name, REPO_ROOT)
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise ReplayError(f"{shipment.config_name}: does not load on the worker: {first_line(exc)}") from None
    detector = config.detector.model_copy(
        update={"model": str(model), "score_threshold": shipment.threshold, "threads": 1}
    )
    return config.model_copy(update={"detector": detector})


def _ready(shipment: Shipment) -> _Ready:
    key = (shipment.model_sha256, hashlib.sha256(shipment.config_text.encode()).hexdigest())
    with _LOCK:
        if key not in _READY:
            import cv2

            cv2.setNumThreads(1)  # decoding and resizing on this worker's own core
            config = worker_config(shipment, materialise(shipment))
            _READY[key] = _Ready(config, PersonDetector(config.detector))
        return _READY[key]


def _source(spec: SourceSpec) -> OpenedSource:
    with _LOCK:
        if spec not in _SOURCES:
            _SOURCES[spec] = open_source(spec)
        return _SOURCES[spec]


def _fetch(src: OpenedSource, path: str) -> bytes:
    try:
        with src.fs.open_input_stream(path) as fh:
            return bytes(fh.read())
    except FileNotFoundError:
        raise ReplayError(f"{path}: gone from the store since it was listed") from None
    except OSError as exc:
        raise StoreUnavailable(f"{path}: {first_line(exc)}") from None


def _replay(shipment: Shipment, clip: ClipRef) -> ClipRun:
    ready = _ready(shipment)
    src = _source(shipment.store)
    try:
        table = pq.read_table(pa.BufferReader(_fetch(src, clip.sidecar)))
    except pa.ArrowException as exc:
        raise ReplayError(f"{clip.sidecar}: unreadable Parquet: {first_line(exc)}") from None
    recorded = recorded_clip(table, clip.clip_id, clip.sidecar)
    if isinstance(src.fs, pafs.LocalFileSystem):
        return replay_clip(ready.config, ready.detector, Path(clip.video), recorded)
    # OpenCV reads files, not buckets: a private copy for as long as the clip plays (anonymised pixels only).
    with tempfile.TemporaryDirectory(prefix="vigie-clip-") as folder:
        video = Path(folder) / Path(clip.video).name
        video.write_bytes(_fetch(src, clip.video))
        return replay_clip(ready.config, ready.detector, video, recorded)


def shipped(shipment: Shipment) -> Shipment:
    """The task every clip's task depends on: its result is the shipment, on whichever worker ran it."""
    return shipment


def run_clip(shipment: Shipment, clip: ClipRef) -> ClipOutcome:
    """The task: one clip replayed, or the reason it cannot be. StoreUnavailable propagates (Dask retries it)."""
    try:
        return ClipOutcome(clip, _replay(shipment, clip), worker_pid=os.getpid())
    except ReplayError as exc:
        return ClipOutcome(clip, None, exc.format_message(), os.getpid())
    except ModelError as exc:
        return ClipOutcome(clip, None, str(exc), os.getpid())
