"""OpenVINO on the CPU (the optional `openvino` extra): the same ONNX files, compiled once per batch size.

Choices, each measured by benchmarks/bench_runtimes.py on this project's 2-core machine:
- one compiled model per batch size (1 to MAX_BATCH) rather than one with a dynamic batch axis: with every shape
  known, OpenVINO plans its memory and kernels once, and a frame costs less CPU (a third less at batch 1, a tenth
  at batch 4, int8). The price is paid at start (about a second of CPU per size) and in memory (OpenVINO with four
  compiled sizes adds about 220 MB more to the daemon than onnxruntime does);
- the non-max-suppression Loop stays in the graph, and OpenVINO runs it as it is. It is about a tenth of an int8
  frame here; cutting the graph before it would need a second NMS of our own that matches the model's exactly;
- precision f32: on a CPU with bf16 instructions OpenVINO would otherwise run every float layer in bf16, so the same
  config would detect differently on different bus computers. The int8 layers are int8 either way;
- no thread pinning: the capture threads and the recorder share the same few cores, and the OS must be free to move
  inference off a busy one.
"""

from __future__ import annotations

import numpy as np
import openvino as ov

from core.models import ModelError
from edge.runtime import OUTPUTS, ModelOutput, RuntimeSettings, check_outputs

MAX_BATCH = 4  # one frame per camera of a four-camera bus; a larger batch runs in parts of this size


def _compile_settings(threads: int) -> dict[str, object]:
    return {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,  # one request at a time: the daemon makes one call per batch
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
        "ENABLE_CPU_PINNING": False,
    }


def _read_onnx(settings: RuntimeSettings) -> ov.Model:
    # The ONNX reader by name: given any file, OpenVINO would otherwise try every format it knows, noisily.
    frontend = ov.frontend.FrontEndManager().load_by_framework("onnx")
    try:
        return frontend.convert(frontend.load(str(settings.path)))
    except Exception as exc:  # OpenVINO raises RuntimeError and its own untyped errors
        raise ModelError(f"{settings.what}: {settings.path} cannot be loaded by openvino: {exc}") from None


class OpenVinoRuntime:
    def __init__(self, settings: RuntimeSettings):
        model = _read_onnx(settings)
        check_outputs({name for output in model.outputs for name in output.get_names()}, settings)
        core = ov.Core()
        self._requests = []
        for size in range(1, MAX_BATCH + 1):
            sized = model.clone()
            shape = sized.inputs[0].get_partial_shape()
            shape[0] = ov.Dimension(size)
            try:
                sized.reshape({sized.inputs[0]: shape})
                compiled = core.compile_model(sized, "CPU", _compile_settings(settings.threads))
            except Exception as exc:
                raise ModelError(
                    f"{settings.what}: {settings.path} cannot be compiled by openvino for a batch of {size}: {exc}"
                ) from None
            self._requests.append(compiled.create_infer_request())

    def run(self, batch: np.ndarray) -> ModelOutput:
        parts = [self._run(batch[start : start + MAX_BATCH]) for start in range(0, len(batch), MAX_BATCH)]
        if len(parts) == 1:
            return parts[0]
        return ModelOutput(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]))

    def _run(self, batch: np.ndarray) -> ModelOutput:
        request = self._requests[len(batch) - 1]
        request.infer({0: batch})  # releases the GIL while it computes
        # Copies: the request reuses its output memory on the next call.
        boxes, scores = (request.get_tensor(name).data.copy() for name in OUTPUTS)
        return ModelOutput(boxes, scores)
