"""`vigie anonymise`: blur faces (or whole persons) in images and videos with the recorder's own Anonymiser.

Person boxes come from the bundled person detector (no minimum height: a far-away person still has a face),
faces from CenterFace; both go through `recorder.anonymise.Anonymiser`, exactly as in the recorder.

Outputs are written under a hidden temporary name in the destination folder, created 0600 before any pixel is
written, fsynced and renamed when complete: an interrupted run leaves no half file under the final name.
Videos are re-encoded with what cv2 can write here (mp4v in .mp4, MJPG in .avi); audio is not copied.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import cv2
import numpy as np

from core.atomic import publish, temp_sibling
from core.errors import UserError
from core.models import ModelError
from edge.config import DetectorConfig
from edge.detector import PersonDetector
from recorder.anonymise import AnonymiseConfig, Anonymiser

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg"}
# Frames handed to the detectors per call: batching amortises the per-call cost (see edge/detector.py).
BATCH = 4


class InputError(Exception):
    """One input cannot be processed; reported on one line, the other inputs go on."""


@dataclass(frozen=True, slots=True)
class Outcome:
    frames: int
    faces: int
    heads: int
    boxes: int


class Pipeline:
    """Person detector + Anonymiser, built once for all inputs."""

    def __init__(self, config: AnonymiseConfig):
        # An analyst waits for this tool: it keeps its own thread count (two), where the bus's default saves CPU.
        self.persons = PersonDetector(DetectorConfig(min_height=0.0, threads=config.threads))
        self.anonymiser = Anonymiser(config)

    def frames(self, images: list[np.ndarray]) -> tuple[list[np.ndarray], Outcome]:
        boxes = [d.xyxy for d in self.persons.detect(images)]
        done = self.anonymiser.process(images, boxes)
        r = [a.regions for a in done]
        counts = Outcome(
            len(images),
            sum(len(x.faces) for x in r),
            sum(len(x.heads) for x in r),
            sum(len(x.boxes) for x in r),
        )
        return [a.image for a in done], counts


def _add(a: Outcome, b: Outcome) -> Outcome:
    return Outcome(a.frames + b.frames, a.faces + b.faces, a.heads + b.heads, a.boxes + b.boxes)


def do_image(pipe: Pipeline, src: Path, dest: Path) -> Outcome:
    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("not a readable image")
    [out], counts = pipe.frames([image])
    ok, data = cv2.imencode(dest.suffix, out)
    if not ok:
        raise InputError(f"cannot encode {dest.suffix} output")
    tmp = temp_sibling(dest)
    try:
        tmp.write_bytes(data.tobytes())
        publish(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return counts


def _batches(cap: cv2.VideoCapture) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        batch.append(frame)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def do_video(pipe: Pipeline, src: Path, dest: Path) -> Outcome:
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise InputError("not a readable video")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    fourcc = cv2.VideoWriter.fourcc(*("MJPG" if dest.suffix == ".avi" else "mp4v"))
    tmp = temp_sibling(dest)
    writer: cv2.VideoWriter | None = None
    done = Outcome(0, 0, 0, 0)
    try:
        progress: ProgressBar[int] = click.progressbar(length=total, label=src.name, file=sys.stderr)
        with progress as bar:
            for frames in _batches(cap):
                if writer is None:
                    h, w = frames[0].shape[:2]
                    writer = cv2.VideoWriter(str(tmp), fourcc, fps, (w, h))
                    if not writer.isOpened():
                        raise InputError(f"cv2 cannot write {dest.suffix} video here")
                outs, counts = pipe.frames(frames)
                for out in outs:
                    writer.write(out)
                done = _add(done, counts)
                bar.update(len(frames))
        if not sys.stderr.isatty():
            click.echo("", err=True)  # off a terminal click prints only the label, without ending the line
        if writer is None:
            raise InputError("not a readable video (no frame decoded)")
        writer.release()
        writer = None
        publish(tmp, dest)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return done


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXT


def output_name(src: Path) -> str:
    suffix = src.suffix.lower()
    if is_video(src) and suffix not in (".mp4", ".avi"):
        return src.stem + ".mp4"  # cv2 writes mp4v into .mp4 and MJPG into .avi only
    if not is_video(src) and suffix not in IMAGE_EXT:
        return src.stem + ".png"
    return src.name


def plan(inputs: tuple[Path, ...], out: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs. OUT is a folder when it is one, ends with '/', has no suffix, or there are
    several inputs; otherwise the output file of the single input."""
    as_dir = out.is_dir() or len(inputs) > 1 or str(out).endswith(os.sep) or not out.suffix
    if as_dir:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
        pairs = [(src, out / output_name(src)) for src in inputs]
    else:
        if not out.parent.is_dir():
            raise UserError(f"{out}: its folder does not exist")
        pairs = [(inputs[0], out)]
    seen: dict[Path, Path] = {}
    for src, dest in pairs:
        if dest.resolve() in seen:
            raise UserError(f"{src}: same output name as {seen[dest.resolve()]} ({dest})")
        if src.exists() and dest.resolve() == src.resolve():
            raise UserError(f"{src}: output would overwrite the input; choose another -o")
        seen[dest.resolve()] = src
    return pairs


def anonymise(inputs: tuple[Path, ...], out: Path, config: AnonymiseConfig) -> None:
    """`vigie anonymise` (declared in replay/anonymise_cli.py, which loads this module only when it runs)."""
    pairs = plan(inputs, out)
    try:
        pipe = Pipeline(config)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    failed = 0
    for src, dest in pairs:
        try:
            if not src.is_file():
                raise InputError("no such file")
            counts = do_video(pipe, src, dest) if is_video(src) else do_image(pipe, src, dest)
        except InputError as exc:
            failed += 1
            click.echo(f"vigie: {src}: {exc}", err=True)
            continue
        except OSError as exc:
            failed += 1
            click.echo(f"vigie: {src}: {exc.strerror or exc}", err=True)
            continue
        click.echo(
            f"{src} -> {dest}: {counts.frames} frame(s), {counts.faces} face(s), "
            f"{counts.heads} head(s) without a found face, {counts.boxes} region(s) blurred"
        )
    if failed:
        raise SystemExit(2)
