"""Scenarios with known truth: real people cut from the bundled footage, walked along scripted paths.

A scenario script (TOML, see tests/scenarios/) places people on the empty walkway of the bundled footage
(footage/people/, made by make_people.py): where their feet are at given times, how tall they look, and posts that
hide them. The generator writes, next to each other:

- `NAME.mp4`: the footage, one camera, at the script's frame rate;
- `NAME.labels.csv`: the truth per person-stay (`camera,zone,person,start_frame,end_frame`), for `rerun --labels`;
- `NAME.boxes.csv`: the truth per frame (`frame,person,x1,y1,x2,y2,visible`), for tracking metrics;
- `NAME.bus.toml`: a bus config with that camera and zone, ready for `vigie replay rerun`.

The truth comes from where the people are pasted, never from a detector: a person hidden behind a post is still in
the zone, and a person whose feet are in the zone is there however small they look.
"""

from __future__ import annotations

import csv
import itertools
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.atomic import write_atomic, write_text_atomic
from edge.config import REPO_ROOT, problem_line
from edge.zones import Polygon
from replay.errors import ReplayError

PEOPLE_DIR = REPO_ROOT / "footage" / "people"
CAMERA = "cam"
STRIDE = 0.08  # a new sprite of the walking sequence every this many body heights walked

Norm = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonScript(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    walker: Annotated[int, Field(ge=0)] = 0  # which real person of footage/people to show
    height_px: Annotated[float, Field(gt=10, le=1000)] = 200.0
    # Key points [t_s, x, y] (or [t_s, x, y, height_px]): where the feet are, in 0..1 of the frame; straight lines
    # between them. The person is in the picture from the first key point's time to the last one's.
    path: list[list[float]] = Field(min_length=2)


class Occluder(_Strict):
    name: str = "post"
    box: tuple[Norm, Norm, Norm, Norm]  # x1, y1, x2, y2 in 0..1 of the frame, drawn in front of everyone


class ScenarioScript(_Strict):
    fps: Annotated[float, Field(gt=0, le=60)] = 10.0
    duration_s: Annotated[float, Field(gt=0, le=3600)]
    seed: int = 0
    noise: Annotated[float, Field(ge=0, le=50)] = 2.0  # sensor noise, grey levels (std)
    zone: list[tuple[Norm, Norm]] = Field(min_length=3)
    side: str = "right"
    # The truth joins a person's stays separated by less than this (a step back over the zone's line is not leaving).
    stay_gap_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    people: list[PersonScript] = Field(min_length=1)
    occluders: list[Occluder] = []

    @model_validator(mode="after")
    def _paths(self) -> ScenarioScript:
        for i, p in enumerate(self.people):
            where = f"people[{i}] ({p.name})"
            times = [pt[0] if pt else 0.0 for pt in p.path]
            for k, pt in enumerate(p.path):
                if len(pt) not in (3, 4):
                    raise ValueError(f"{where}.path[{k}]: needs [t_s, x, y] or [t_s, x, y, height_px]")
                t, x, y = pt[:3]
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(f"{where}.path[{k}]: feet at ({x}, {y}) are outside the frame (0..1)")
                if not 0.0 <= t <= self.duration_s:
                    raise ValueError(f"{where}.path[{k}]: time {t} s is outside 0..duration_s ({self.duration_s})")
                if len(pt) == 4 and not 10 < pt[3] <= 1000:
                    raise ValueError(f"{where}.path[{k}]: height_px {pt[3]} must be in 10..1000")
            if any(b < a for a, b in itertools.pairwise(times)):
                raise ValueError(f"{where}.path: times must not go backwards")
        names = [p.name for p in self.people]
        if len(set(names)) != len(names):
            raise ValueError("people: names must be unique")
        return self


@dataclass(frozen=True, slots=True)
class ScenarioFiles:
    video: Path
    labels: Path
    boxes: Path
    config: Path
    frames: int
    stays: int


def load_script(path: Path) -> ScenarioScript:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReplayError(f"{path}: scenario script not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReplayError(f"{path}: cannot read scenario script: {exc}") from None
    try:
        return ScenarioScript.model_validate(data)
    except ValidationError as exc:
        raise ReplayError(f"{path}: {problem_line(exc.errors()[0])}") from None


def load_walkers() -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """The empty walkway and, per real person, their RGBA sprites in walking order."""
    background = cv2.imread(str(PEOPLE_DIR / "background.jpg"))
    walkers: dict[int, list[np.ndarray]] = {}
    for f in sorted(PEOPLE_DIR.glob("walker_*.png")):
        sprite = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if sprite is None:
            raise ReplayError(f"{f}: not a readable image")
        walkers.setdefault(int(f.stem.split("_")[1]), []).append(sprite)
    if background is None or not walkers:
        raise ReplayError(f"{PEOPLE_DIR}: background.jpg or walker sprites missing (run make_people.py)")
    return background, [walkers[k] for k in sorted(walkers)]


@dataclass(frozen=True, slots=True)
class _Placed:
    """One person on one frame: where their sprite goes and how much of it ended up visible."""

    name: str
    feet: tuple[float, float]  # pixels
    box: tuple[int, int, int, int]  # unclipped sprite box, pixels
    sprite: np.ndarray  # RGBA, scaled


def _at(person: PersonScript, t: float) -> tuple[float, float, float, float] | None:
    """(x, y, height_px, metres walked in body heights) at time t, or None when the person is not in the picture."""
    pts = np.array([pt if len(pt) == 4 else [*pt, person.height_px] for pt in person.path], dtype=np.float64)
    if t < pts[0, 0] or t > pts[-1, 0]:
        return None
    x, y, h = (float(np.interp(t, pts[:, 0], pts[:, i])) for i in (1, 2, 3))
    # Distance walked so far, for the walking animation: standing still shows one sprite.
    ts = np.append(pts[pts[:, 0] < t, 0], t)
    xs, ys = np.interp(ts, pts[:, 0], pts[:, 1]), np.interp(ts, pts[:, 0], pts[:, 2])
    return x, y, h, float(np.hypot(np.diff(xs), np.diff(ys)).sum())


def _place(person: PersonScript, t: float, size: tuple[int, int], walkers: list[list[np.ndarray]]) -> _Placed | None:
    where = _at(person, t)
    if where is None:
        return None
    x, y, h, walked = where
    width, height = size
    seq = walkers[person.walker % len(walkers)]
    sprite = seq[int(walked * height / (STRIDE * h)) % len(seq)]
    scale = h / sprite.shape[0]
    w = max(round(sprite.shape[1] * scale), 2)
    hh = max(round(h), 2)
    sprite = cv2.resize(sprite, (w, hh), interpolation=cv2.INTER_LINEAR)
    fx, fy = x * width, y * height
    x1, y1 = round(fx - w / 2), round(fy - hh)
    return _Placed(person.name, (fx, fy), (x1, y1, x1 + w, y1 + hh), sprite)


def _paste(frame: np.ndarray, owner: np.ndarray, placed: _Placed, index: int) -> None:
    """Alpha-blend the sprite in; mark the pixels it covers (more than half opaque) as this person's."""
    x1, y1, x2, y2 = placed.box
    h, w = frame.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if cx1 >= cx2 or cy1 >= cy2:
        return
    part = placed.sprite[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
    alpha = part[:, :, 3:4].astype(np.float32) / 255.0
    region = frame[cy1:cy2, cx1:cx2]
    region[:] = (part[:, :, :3] * alpha + region * (1.0 - alpha)).astype(np.uint8)
    owner[cy1:cy2, cx1:cx2][alpha[:, :, 0] > 0.5] = index


def _draw_occluder(frame: np.ndarray, owner: np.ndarray, occ: Occluder) -> None:
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (round(v) for v in (occ.box[0] * w, occ.box[1] * h, occ.box[2] * w, occ.box[3] * h))
    # A grey column, lit from one side: solid enough to hide whoever walks behind it.
    shade = np.linspace(150, 90, max(x2 - x1, 1), dtype=np.float32)[None, :, None]
    frame[y1:y2, x1:x2] = np.broadcast_to(shade, (y2 - y1, x2 - x1, 1)).astype(np.uint8)
    owner[y1:y2, x1:x2] = -1


def _visible(placed: _Placed, owner: np.ndarray, index: int, size: tuple[int, int]) -> tuple[tuple[int, ...], float]:
    """The person's box clipped to the frame, and the share of their silhouette left visible."""
    x1, y1, x2, y2 = placed.box
    total = int((placed.sprite[:, :, 3] > 127).sum())
    shown = int((owner == index).sum())
    box = (max(x1, 0), max(y1, 0), min(x2, size[0]), min(y2, size[1]))
    return box, (shown / total if total else 0.0)


def generate(script: ScenarioScript, name: str, out: Path) -> ScenarioFiles:
    out.mkdir(parents=True, exist_ok=True)
    background, walkers = load_walkers()
    size = (background.shape[1], background.shape[0])
    rng = np.random.default_rng(script.seed)
    zone = Polygon(np.array(script.zone))
    n_frames = round(script.duration_s * script.fps)
    video = out / f"{name}.mp4"
    in_zone: dict[str, list[int]] = {p.name: [] for p in script.people}
    box_rows = []

    def write_video(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), script.fps, size)
        if not writer.isOpened():
            raise OSError(f"cannot open a video writer for {video}")
        try:
            for i in range(n_frames):
                t = i / script.fps
                frame = background.copy()
                owner = np.zeros(frame.shape[:2], dtype=np.int32)  # 0 ground, k person k, -1 occluder
                placed = [p for p in (_place(person, t, size, walkers) for person in script.people) if p is not None]
                placed.sort(key=lambda p: p.feet[1])  # farther (higher in the image) first: nearer people hide them
                for k, p in enumerate(placed, start=1):
                    _paste(frame, owner, p, k)
                for occ in script.occluders:
                    _draw_occluder(frame, owner, occ)
                for k, p in enumerate(placed, start=1):
                    box, visible = _visible(p, owner, k, size)
                    box_rows.append([i, p.name, *box, round(visible, 3)])
                    if zone.contains(np.array([[p.feet[0] / size[0], p.feet[1] / size[1]]]))[0]:
                        in_zone[p.name].append(i)
                if script.noise > 0:
                    noisy = frame + rng.normal(0.0, script.noise, frame.shape).astype(np.float32)
                    frame = np.clip(noisy, 0, 255).astype(np.uint8)
                writer.write(frame)
        finally:
            writer.release()

    write_atomic(video, write_video)
    stays = _stays(in_zone, round(script.stay_gap_s * script.fps))
    return ScenarioFiles(
        video=video,
        labels=_write_labels(out / f"{name}.labels.csv", stays),
        boxes=_write_boxes(out / f"{name}.boxes.csv", box_rows),
        config=_write_config(out / f"{name}.bus.toml", script, video),
        frames=n_frames,
        stays=len(stays),
    )


def _stays(in_zone: dict[str, list[int]], gap_frames: int) -> list[tuple[str, int, int]]:
    """Runs of frames each person's feet are in the zone, joined across gaps under `gap_frames`: (person, a, b)."""
    out = []
    for person, frames in in_zone.items():
        if not frames:
            continue
        start = prev = frames[0]
        for f in frames[1:]:
            if f - prev - 1 >= gap_frames and f != prev + 1:
                out.append((person, start, prev))
                start = f
            prev = f
        out.append((person, start, prev))
    return sorted(out, key=lambda s: (s[1], s[0]))


def _write_csv(path: Path, header: list[str], rows: Iterable[list]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)

    return write_atomic(path, write)


def _write_labels(path: Path, stays: list[tuple[str, int, int]]) -> Path:
    header = ["camera", "zone", "person", "start_frame", "end_frame"]
    return _write_csv(path, header, ([CAMERA, "zone", person, a, b] for person, a, b in stays))


def _write_boxes(path: Path, rows: list[list]) -> Path:
    return _write_csv(path, ["frame", "person", "x1", "y1", "x2", "y2", "visible"], rows)


def _write_config(path: Path, script: ScenarioScript, video: Path) -> Path:
    polygon = ", ".join(f"[{x}, {y}]" for x, y in script.zone)
    write_text_atomic(
        path,
        "# Written by `vigie replay scenario`: one camera showing the scenario, with its zone.\n"
        f'[bus]\nid = "scenario"\n\n[events]\ndir = "{path.parent / "events"}"\n\n'
        f'[[cameras]]\nname = "{CAMERA}"\nside = "{script.side}"\nsource = "{video.resolve()}"\n'
        f'fps = {script.fps}\n\n[[cameras.zones]]\nname = "zone"\npolygon = [{polygon}]\n',
    )
    return path
