"""`vigie replay render`: an event's anonymised clip with what the bus saw drawn on it.

Overlays come from the clip's sidecar (per-frame boxes, track ids, zone levels, speed, indicator) and the camera
description stored with it (zones, calibration), so a render needs neither the bus config nor the model. The clip
on disk is already anonymised; rendering reads it, so every render is written to the access log first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import write_atomic
from recorder.audit import AuditError, record_access
from replay.errors import ReplayError

LEVEL_COLOURS = {"warning": (0, 0, 255), "info": (0, 200, 255), "none": (200, 200, 200)}  # BGR
BOX_COLOUR = (255, 200, 0)
SHEET_TILES = 9  # a contact sheet: 3 x 3 frames spread over the clip


@dataclass(frozen=True, slots=True)
class RenderRequest:
    clip_id: str
    clips_root: Path
    output: Path
    audit_log: Path
    reason: str


@dataclass(frozen=True, slots=True)
class ClipOnDisk:
    video: Path
    frames: pa.Table
    camera: dict  # side, zones, calibration (as stored by the recorder)


def find_clip(clips_root: Path, clip_id: str) -> Path:
    if not clip_id or "/" in clip_id or clip_id.startswith("."):
        raise ReplayError(f"clip {clip_id!r}: not a clip id")
    for ext in ("mp4", "avi"):
        hits = sorted(clips_root.rglob(f"{clip_id}.{ext}"))
        if hits:
            return hits[0]
    raise ReplayError(f"clip {clip_id}: not found under {clips_root} (expired by retention, or never written)")


def open_clip(video: Path) -> ClipOnDisk:
    sidecar = video.with_name(f"{video.stem}.frames.parquet")
    try:
        frames = pq.read_table(sidecar)
        camera = json.loads((frames.schema.metadata or {}).get(b"vigie.clip", b"{}"))
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise ReplayError(f"{sidecar}: unreadable clip sidecar ({str(exc).splitlines()[0]})") from None
    return ClipOnDisk(video, frames, camera)


def zone_polygons(camera: dict, width: int, height: int) -> dict[str, np.ndarray]:
    """Each zone as an image polygon in pixels; ground zones are mapped back through the calibration."""
    out = {}
    homography = None
    cal = camera.get("calibration")
    if cal:
        h, _ = cv2.findHomography(np.array(cal["ground"], np.float64), np.array(cal["image"], np.float64), 0)
        homography = h
    for zone in camera.get("zones", []):
        pts: np.ndarray
        if zone.get("polygon"):
            pts = np.array(zone["polygon"], np.float64)
        elif zone.get("ground_polygon") and homography is not None:
            ground = np.array(zone["ground_polygon"], np.float64).reshape(-1, 1, 2)
            pts = cv2.perspectiveTransform(ground, homography).reshape(-1, 2)
        else:
            continue
        out[zone["name"]] = (pts * [width, height]).round().astype(np.int32)
    return out


def zone_rows(zones: str | list[dict]) -> list[dict]:
    """The sidecar's zones: a list of structs since vigie.clip-frames/3, a JSON string in clips recorded before."""
    return json.loads(zones) if isinstance(zones, str) else zones


def draw(image: np.ndarray, row: dict, polygons: dict[str, np.ndarray]) -> np.ndarray:
    out = image.copy()
    zones = {z["zone"]: z for z in zone_rows(row["zones"])}
    for name, poly in polygons.items():
        level = zones.get(name, {}).get("level", "none")
        cv2.polylines(out, [poly], isClosed=True, color=LEVEL_COLOURS[level], thickness=2)
    for box, tid in zip(row["boxes"], row["track_ids"], strict=False):
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLOUR, 2)
        cv2.putText(out, f"#{tid}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, BOX_COLOUR, 1, cv2.LINE_AA)
    raised = [z for z in zones.values() if z["level"] != "none"]
    worst = max(raised, key=lambda z: z["level"] == "warning", default=None)
    status = f"{row['speed_kmh']:.0f} km/h  indicator {row['indicator']}"
    if worst is not None:
        dist = f"  {worst['nearest_m']:.1f} m" if worst.get("nearest_m") is not None else ""
        status += f"  {worst['level'].upper()} {worst['zone']}{dist}"
    colour = LEVEL_COLOURS[worst["level"]] if worst else (255, 255, 255)
    cv2.rectangle(out, (0, 0), (out.shape[1], 26), (0, 0, 0), -1)
    cv2.putText(out, status, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 1, cv2.LINE_AA)
    return out


def _frames(clip: ClipOnDisk):
    cap = cv2.VideoCapture(str(clip.video))
    if not cap.isOpened():
        raise ReplayError(f"{clip.video}: not a readable video")
    rows = clip.frames.to_pylist()
    try:
        for row in rows:
            ok, image = cap.read()
            if not ok:
                raise ReplayError(f"{clip.video}: ends after {row['frame']} of {len(rows)} frames (corrupt clip)")
            yield row, image
    finally:
        cap.release()


def render(request: RenderRequest) -> int:
    """Write the overlay video (.mp4/.avi) or contact sheet (.png); returns the number of frames drawn."""
    video = find_clip(request.clips_root, request.clip_id)
    clip = open_clip(video)
    try:
        record_access(request.audit_log, video, "render", request.reason)
    except AuditError as exc:
        raise ReplayError(str(exc)) from None
    suffix = request.output.suffix.lower()
    if suffix not in (".mp4", ".avi", ".png"):
        raise ReplayError(f"{request.output}: write .mp4, .avi or .png")
    request.output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        return _sheet(clip, request.output)
    return _video(clip, request.output)


def _video(clip: ClipOnDisk, output: Path) -> int:
    drawn = 0
    ts = clip.frames.column("ts").to_pylist()
    fps = float(np.clip(1.0 / np.median(np.diff(ts)), 1, 60)) if len(ts) > 2 else 10.0

    def write(tmp: Path) -> None:
        nonlocal drawn
        writer = None
        for row, image in _frames(clip):
            if writer is None:
                h, w = image.shape[:2]
                polygons = zone_polygons(clip.camera, w, h)
                fourcc = cv2.VideoWriter.fourcc(*("MJPG" if output.suffix.lower() == ".avi" else "mp4v"))
                writer = cv2.VideoWriter(str(tmp), fourcc, fps, (w, h))
                if not writer.isOpened():
                    raise OSError(f"cv2 cannot write {output.suffix} video here")
            writer.write(draw(image, row, polygons))
            drawn += 1
        if writer is None:
            raise ReplayError(f"{clip.video}: no frame to draw")
        writer.release()

    _write(output, write)
    return drawn


def _sheet(clip: ClipOnDisk, output: Path) -> int:
    n = clip.frames.num_rows
    wanted = set(np.linspace(0, n - 1, min(SHEET_TILES, n)).round().astype(int).tolist())
    tiles = []
    for row, image in _frames(clip):
        if row["frame"] in wanted:
            polygons = zone_polygons(clip.camera, image.shape[1], image.shape[0])
            tiles.append(cv2.resize(draw(image, row, polygons), (image.shape[1] // 2, image.shape[0] // 2)))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % 3)
    sheet = np.vstack([np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)])

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), sheet):  # False, not an exception, when it cannot write
            raise OSError(f"cv2 could not write {output.suffix}")

    _write(output, write)
    return len(wanted)


def _write(output: Path, write: Callable[[Path], None]) -> None:
    """The one atomic write (core.atomic): a failure leaves neither the output nor a temporary file, and is one
    line."""
    try:
        write_atomic(output, write)
    except OSError as exc:
        raise ReplayError(f"{output}: cannot write: {exc.strerror or exc}") from None
