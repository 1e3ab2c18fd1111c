"""One anonymised clip on disk: the video and its per-frame sidecar, both appearing only when complete.

Layout: `<clips dir>/date=YYYY-MM-DD/bus=<id>/<clip id>.mp4` (or .avi) and `<clip id>.frames.parquet` beside it.
While a clip is written it lives under a hidden temporary name from core.atomic, 0600 from its creation and ending
in the clip's extension (cv2 picks the container from it); only blurred frames are ever passed to the writer. Both
files are published the one atomic way (fsync, rename, fsync of the folder), the sidecar first, the video last: a
visible video always has its overlays. Clip folders are created 0700.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import private_dir, publish, remove_temps, temp_sibling, write_atomic

FOURCC = {"mp4": "mp4v", "avi": "MJPG"}
ZONE_STATE = pa.struct(
    [
        pa.field("zone", pa.string(), nullable=False),
        pa.field("level", pa.string(), nullable=False),  # none / info / warning, as the driver was told
        pa.field("track_ids", pa.list_(pa.int64()), nullable=False),
        pa.field("nearest_m", pa.float32()),  # null without a ground calibration or with nobody in the zone
    ]
)
SIDECAR_SCHEMA = pa.schema(
    [
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("ts", pa.float64(), nullable=False),
        pa.field("boxes", pa.list_(pa.list_(pa.float32(), 4)), nullable=False),
        pa.field("track_ids", pa.list_(pa.int64()), nullable=False),
        pa.field("zones", pa.list_(ZONE_STATE), nullable=False),  # every zone of the camera on this frame
        pa.field("speed_kmh", pa.float32(), nullable=False),
        pa.field("indicator", pa.string(), nullable=False),
    ],
    # 2: the `vigie.clip` metadata gains `events` (each event's span and the fraction the clip shows), `complete`
    # and `frames_thinned`. 3: `zones` is a list of structs (it was a JSON string).
    metadata={"vigie.schema": "vigie.clip-frames/3"},
)


@dataclass(frozen=True, slots=True)
class ZoneState:
    """One zone on one frame, as the recorder keeps it beside the clip (a row of the `zones` column)."""

    zone: str
    level: str
    track_ids: tuple[int, ...]
    nearest_m: float | None


@dataclass(frozen=True, slots=True)
class FrameMeta:
    """What the daemon knows about one frame, sent to the recorder with it (no pixels: those are in the ring)."""

    camera: str
    slot: int  # where the pixels wait in the camera's shared-memory ring
    seq: int
    ts: float
    boxes: np.ndarray  # (N, 4) float32 pixels, every detected person (the anonymiser covers all of them)
    track_ids: tuple[int, ...]
    zones: tuple[ZoneState, ...]
    speed_kmh: float
    indicator: str


def clip_folder(root: Path, bus_id: str, ts: float) -> Path:
    """The clip's `date=…/bus=…` folder under `root`, created 0700 if missing."""
    day = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")
    return private_dir(root, f"date={day}", f"bus={bus_id}")


def clean_partials(root: Path) -> int:
    """Remove what a crash left half-written (blurred pixels only, but not a clip anyone should see); the
    `.partial.` names are those of earlier vigie versions."""
    if not root.is_dir():
        return 0
    old = list(root.rglob(".*.partial.*"))
    for path in old:
        path.unlink(missing_ok=True)
    return len(old) + remove_temps(root, recursive=True)


class ClipFile:
    def __init__(self, folder: Path, clip_id: str, fmt: str, fps: float, size: tuple[int, int]):
        self.clip_id = clip_id
        self.final = folder / f"{clip_id}.{fmt}"
        self.sidecar = folder / f"{clip_id}.frames.parquet"
        # cv2.VideoWriter writes to a path it opens itself, frame by frame, so write_atomic cannot wrap it: the
        # temporary file is made here (0600 from its first byte: FFmpeg truncates it, keeping the mode) and
        # published by `finish` the same way write_atomic would.
        self._partial = temp_sibling(self.final)
        self._writer = cv2.VideoWriter(str(self._partial), cv2.VideoWriter.fourcc(*FOURCC[fmt]), fps, size)
        if not self._writer.isOpened():
            self._partial.unlink(missing_ok=True)
            raise OSError(f"cannot open a video writer for {self._partial}")
        self.rows: list[dict] = []
        self.frames = 0

    def add(self, image: np.ndarray, meta: FrameMeta) -> None:
        self._writer.write(image)
        self.rows.append(
            {
                "frame": self.frames,
                "ts": meta.ts,
                "boxes": meta.boxes.tolist(),
                "track_ids": list(meta.track_ids),
                "zones": [dataclasses.asdict(z) for z in meta.zones],
                "speed_kmh": meta.speed_kmh,
                "indicator": meta.indicator,
            }
        )
        self.frames += 1

    def finish(self, clip_meta: dict) -> Path:
        """Close, fsync, and make the clip visible. Returns the video's final path. On an error the caller calls
        `abandon`, which removes the unpublished video; the sidecar's temporary file is already gone."""
        self._writer.release()
        table = pa.Table.from_pylist(self.rows, schema=SIDECAR_SCHEMA)
        table = table.replace_schema_metadata({**SIDECAR_SCHEMA.metadata, b"vigie.clip": json.dumps(clip_meta)})
        write_atomic(self.sidecar, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        publish(self._partial, self.final)
        return self.final

    def abandon(self) -> None:
        self._writer.release()
        self._partial.unlink(missing_ok=True)
