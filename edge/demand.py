"""Which frames the detector must see: every frame of a camera that could alert, a few of one that cannot.

A camera whose zones cannot raise anything at what the bus is doing (the front above `policy.front_max_kmh`, the rear
while driving forward, the sides above `policy.side_max_kmh`, every side while the doors hold the bus at a stop) is
detected at `detector.idle_fps` instead of its full rate: the tracker keeps following people, events are still
counted, and the first frame after the bus's state changes is detected again, so a zone goes live within one frame.
The question is asked of the policy itself (`edge.policy.level_for`), never of a second copy of its rules.

The recorder is only handed frames that were detected, because its blur of a head whose face was not found needs that
frame's person boxes; so with the recorder on, the idle rate is at least the clip rate (`recorder.clip_fps`), and the
frames the recorder keeps are exactly the idle frames (both take the first frame at least one period after the last).
"""

from __future__ import annotations

from core.types import Frame, Level, Side, VehicleState
from edge.config import Config
from edge.policy import level_for


def period_due(last_ts: float, ts: float, period_s: float) -> bool:
    """Has a frame at `ts` waited a full period since the one taken at `last_ts`? The recorder link takes its frames
    by the same rule, so at the idle rate the frames it keeps are the ones that were detected."""
    return ts - last_ts >= period_s


class DetectionDemand:
    def __init__(self, config: Config):
        self._policy = config.policy
        self._sides: dict[str, Side] = {cam.name: cam.side for cam in config.cameras}
        idle_fps = config.detector.idle_fps
        if idle_fps and config.recorder.enabled:
            idle_fps = max(idle_fps, config.recorder.clip_fps)
        self._idle_period_s = 1.0 / idle_fps if idle_fps else None
        self._last_detected: dict[str, float] = {}

    def live(self, camera: str, vehicle: VehicleState) -> bool:
        """Could a person in one of this camera's zones be told to the driver right now?"""
        return level_for(self._sides[camera], vehicle, self._policy) != Level.NONE

    def wants(self, frame: Frame, vehicle: VehicleState) -> bool:
        """Detect this frame? Called once per frame, in capture order for each camera."""
        due = (
            self._idle_period_s is None
            or self.live(frame.camera, vehicle)
            or period_due(self._last_detected.get(frame.camera, float("-inf")), frame.t_capture, self._idle_period_s)
        )
        if due:
            self._last_detected[frame.camera] = frame.t_capture
        return due
