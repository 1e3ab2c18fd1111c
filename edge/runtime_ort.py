"""onnxruntime on the CPU, the default runtime: one session for every batch size (the batch axis is dynamic)."""

from __future__ import annotations

import numpy as np

from core.models import open_session
from edge.runtime import OUTPUTS, ModelOutput, RuntimeSettings, check_outputs


class OrtRuntime:
    def __init__(self, settings: RuntimeSettings):
        # Threads, no spin-waiting, full graph optimisation: core/models.py, shared with the recorder's face model.
        # Memory patterns on: the person model's many small tensors run 4-6 % faster from one planned block.
        self._session = open_session(settings.path, settings.threads, settings.what, plan_memory=True)
        check_outputs({o.name for o in self._session.get_outputs()}, settings)
        self._input = self._session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> ModelOutput:
        boxes, scores = self._session.run(list(OUTPUTS), {self._input: batch})
        return ModelOutput(boxes, scores)
