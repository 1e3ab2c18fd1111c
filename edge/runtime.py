"""What runs the person model: one interface, one module per inference runtime behind it.

The detector (edge/detector.py) hands a runtime a batch of preprocessed frames and gets a ModelOutput back; which
library computed it is decided once, here, when the detector is built. onnxruntime (edge/runtime_ort.py) is always
installed; OpenVINO (edge/runtime_openvino.py) is the optional `openvino` extra, imported only when a config asks for
it. Both read the same ONNX files. `benchmarks/bench_runtimes.py` measures them against each other.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from core.models import ModelError
from edge.config import RuntimeName

_HOW_TO_INSTALL = {
    "onnxruntime": "reinstall vigie, which depends on it",
    "openvino": "install the extra: pip install 'vigie[openvino]'",
}


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """The model's answer for a batch of N frames, before any threshold."""

    boxes: np.ndarray  # (N, K, 4) float32: ymin, xmin, ymax, xmax in 0..1 of the model's input
    scores: np.ndarray  # (N, K) float32, best first


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    path: Path
    threads: int  # intra-op threads: benchmarks/bench_runtimes.py measures what each costs per frame
    what: str  # the config key that names the model, for error messages


# The outputs vigie reads, by name: the bundled models' (models/person_ssdlite.md); another model must have them too.
OUTPUTS = ("detection_boxes", "detection_scores")


def check_outputs(names: set[str], settings: RuntimeSettings) -> None:
    missing = [name for name in OUTPUTS if name not in names]
    if missing:
        raise ModelError(f"{settings.what}: {settings.path} has no output named {', '.join(missing)}")


class Runtime(Protocol):
    def run(self, batch: np.ndarray) -> ModelOutput:
        """(N, H, W, 3) uint8 RGB frames → the model's boxes and scores. Releases the GIL while it computes."""
        ...


def runtime_problem(name: RuntimeName) -> str | None:
    """Why `name` cannot run here (its library is not installed or does not load), or None.

    `check-config` and `run` report it in one line (edge/config_check.py); `open_runtime` refuses the same way.
    """
    try:
        importlib.import_module(name)
    except ImportError as exc:
        return f"{name} cannot be imported here ({exc}); {_HOW_TO_INSTALL[name]}"
    return None


def open_runtime(name: RuntimeName, settings: RuntimeSettings) -> Runtime:
    problem = runtime_problem(name)
    if problem:
        raise ModelError(f"detector.runtime: {problem}")
    if name == "openvino":
        from edge.runtime_openvino import OpenVinoRuntime

        return OpenVinoRuntime(settings)
    from edge.runtime_ort import OrtRuntime

    return OrtRuntime(settings)
