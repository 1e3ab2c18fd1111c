"""Rebuild models/centerface_int8.onnx: static int8 quantisation of models/centerface.onnx (the face model).

A build tool, not needed at run time. It needs `onnx` besides the runtime's onnxruntime (the `quantise` extra):

    .venv/bin/pip install "onnx==1.23.2"
    .venv/bin/python models/quantise_centerface.py            # writes models/centerface_int8.onnx
    .venv/bin/python models/quantise_centerface.py --out /tmp/q.onnx

Why: the face model is what the recorder spends its CPU on (benchmarks/profile_e2e.py: 70 % of a core of the
recorder's 82 % with four cameras recording), and `vigie anonymise` with it. Measured here: 35 ms of CPU per
768x576 frame in float, 17 ms in int8.

What it does, and why:
- the float model is exported at opset 9, whose QuantizeLinear has no per-channel axis: it is converted to opset 13
  first (onnx's version converter; no node changes meaning), and its nameless nodes are named `<op>_<index>` so
  that layers can be left out by name;
- static QDQ quantisation like the person model's (models/quantise_person_ssdlite.py): weights int8 per output
  channel, activations uint8, MinMax calibration; Conv, ConvTranspose (the neck's upsampling), Add and Relu
  quantised;
- the first three convolutions stay in float: quantised, they lose faces whose float score is just above the
  threshold (78 instead of 80 of 85 float faces matched at the same threshold, measured);
- calibrated on every 10th frame (offset 2) of footage/faces/pan.mp4 and every 40th (offset 2) of the four
  bundled camera files, converted exactly as recorder/faces.py feeds the model. The accuracy gate
  (tests/test_faces_int8.py) uses the other frames of pan.mp4 and every 5th camera frame, so the two never share
  a frame;
- int8 scores run a little lower than float ones near the threshold, so the int8 model is operated at 0.1
  where the float one is at 0.2 (its model card: every face the float model finds at 0.2 stays covered).
The same onnx/onnxruntime versions and footage give the same bytes (checked: sha256 in the model card).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

MODELS = Path(__file__).resolve().parent
sys.path.insert(0, str(MODELS.parent))

from recorder.faces import to_batch  # noqa: E402

FOOTAGE = MODELS.parent / "footage"
# (file, every, offset): which frames calibrate. The gate test reads this table to stay off these frames.
CALIBRATION = (
    (FOOTAGE / "faces" / "pan.mp4", 10, 2),
    *((FOOTAGE / f"cam_{cam}.mp4", 40, 2) for cam in ("front", "right", "rear", "left")),
)
FLOAT_CONVS = 3  # the first convolutions, in graph order, left in float (see above)
OPSET = 13  # the first with per-channel QuantizeLinear/DequantizeLinear


def every_nth(path: Path, every: int, offset: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames, index = [], 0
    ok, frame = cap.read()
    while ok:
        if index % every == offset:
            frames.append(frame)
        index += 1
        ok, frame = cap.read()
    cap.release()
    return frames


def prepared(source: Path, out: Path) -> list[str]:
    """The float model at opset 13 with named nodes, written to `out`; returns the names left in float."""
    import onnx
    from onnx import version_converter

    model = version_converter.convert_version(onnx.load(str(source)), OPSET)
    for index, node in enumerate(model.graph.node):
        node.name = f"{node.op_type.lower()}_{index}"
    onnx.save(model, str(out))
    convs = [node.name for node in model.graph.node if node.op_type == "Conv"]
    return convs[:FLOAT_CONVS]


def main() -> None:
    # Imported here, not at the top: the accuracy gate (tests/test_faces_int8.py) reads CALIBRATION from this file,
    # and the suite does not install onnx (the `quantise` extra), which onnxruntime.quantization needs.
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Frames(CalibrationDataReader):
        """One frame per calibration step, as the face detector feeds the model (frames of different sizes:
        MinMax only keeps each tensor's range)."""

        def __init__(self, frames: list[np.ndarray]):
            self._batches = iter([{"input.1": to_batch([f])} for f in frames])

        def get_next(self) -> dict | None:
            return next(self._batches, None)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=MODELS / "centerface.onnx")
    parser.add_argument("--out", type=Path, default=MODELS / "centerface_int8.onnx")
    args = parser.parse_args()
    frames = [f for path, every, offset in CALIBRATION for f in every_nth(path, every, offset)]
    print(f"calibrating on {len(frames)} frames")
    with tempfile.TemporaryDirectory() as tmp:
        opset13 = Path(tmp) / "centerface_opset13.onnx"
        stem = prepared(args.source, opset13)
        quantize_static(
            str(opset13),
            str(args.out),
            Frames(frames),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv", "ConvTranspose", "Add", "Relu"],
            calibrate_method=CalibrationMethod.MinMax,
            calibration_providers=["CPUExecutionProvider"],
            extra_options={"CalibTensorRangeSymmetric": False},
            use_external_data_format=False,
            nodes_to_exclude=stem,
        )
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{args.out}: {args.out.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
