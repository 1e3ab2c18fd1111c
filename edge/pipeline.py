"""From frames to alerts and events: the part shared by the live daemon and by replay.

`Pipeline.process` takes whatever new frames the cameras delivered (at most one per camera), runs the detector once
on all of them, then tracker → zones → policy per camera. It does no I/O and its decisions never read the clock
(time comes from each frame), so replaying recorded footage through it gives what the bus would have decided.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.types import Alert, Detections, Event, Frame, Tracks, VehicleState, ZoneHits
from edge.config import Config
from edge.demand import DetectionDemand
from edge.detector import PersonDetector
from edge.policy import ZoneKey, ZonePolicy
from edge.tracker import ByteTracker, TrackerConfig
from edge.vehicle import VehicleSource
from edge.view import VIEW_GOOD, ViewMonitor, ViewState, ZoneView
from edge.zones import CameraZones


@dataclass(frozen=True, slots=True)
class FrameResult:
    frame: Frame
    vehicle: VehicleState
    tracks: Tracks
    zone_hits: tuple[ZoneHits, ...]
    alerts: tuple[Alert, ...]  # current state of every non-quiet zone (and zones that just went quiet)
    changed: tuple[Alert, ...]  # the subset whose level changed on this frame
    opened: tuple[Event, ...]  # events confirmed on this frame (so far)
    closed: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Seen:
    """One frame the detector looked at, with the bus's state at its capture."""

    frame: Frame
    vehicle: VehicleState
    detections: Detections


@dataclass(frozen=True, slots=True)
class Detected:
    """A batch between the detector and the cameras' trackers (`Pipeline.detect` → `Pipeline.track`)."""

    seen: tuple[Seen, ...]
    inference_ms: float  # preprocessing + the one detector call for the whole batch
    skipped: int  # frames of cameras that could not alert, left undetected (edge/demand.py)


@dataclass(frozen=True, slots=True)
class BatchResult:
    results: tuple[FrameResult, ...]  # one per detected frame
    inference_ms: float  # preprocessing + the one detector call for the whole batch
    skipped: int = 0  # frames of cameras that could not alert, left undetected (edge/demand.py)


def tracker_config(config: Config) -> TrackerConfig:
    t = config.tracking
    return TrackerConfig(
        high_score=config.detector.threshold, low_score=t.low_score, confirm_s=t.confirm_s, lost_s=t.lost_s
    )


class CameraPipeline:
    """Tracker, zones and one policy per zone, for one camera; its view monitor turns quiet zones `unknown` while
    the camera cannot see."""

    def __init__(self, config: Config, camera_index: int):
        cam = config.cameras[camera_index]
        self.name = cam.name
        self._tracker = ByteTracker(tracker_config(config))
        self._zones = CameraZones(cam, config.bus)
        self._policies = [
            ZonePolicy(ZoneKey(cam.name, cam.side, z.name), config.alerts, config.policy, config.events)
            for z in cam.zones
        ]
        self._monitor = ViewMonitor(config.view_for(cam))
        self._zone_views = [ZoneView(p.key) for p in self._policies]
        self.view: ViewState = VIEW_GOOD

    def step(self, frame: Frame, dets: Detections, vehicle: VehicleState) -> FrameResult:
        self.view = self._monitor.update(frame.image, frame.t_capture)
        tracks = self._tracker.update(dets, frame.t_capture)
        hits = self._zones.hits(tracks, (frame.image.shape[1], frame.image.shape[0]))
        alerts: list[Alert] = []
        changed: list[Alert] = []
        opened: list[Event] = []
        closed: list[Event] = []
        for policy, zone_view, zone_hits in zip(self._policies, self._zone_views, hits, strict=True):
            res = zone_view.apply(policy.step(zone_hits, vehicle, frame.t_capture), self.view, frame.t_capture)
            if res.alert is not None:
                alerts.append(res.alert)
                if res.changed:
                    changed.append(res.alert)
            opened.extend(res.opened)
            closed.extend(res.closed)
        return FrameResult(
            frame, vehicle, tracks, tuple(hits), tuple(alerts), tuple(changed), tuple(opened), tuple(closed)
        )

    def flush(self, ts: float) -> list[Event]:
        return [ev for p in self._policies for ev in p.flush(ts)]


class Pipeline:
    def __init__(self, config: Config, detector: PersonDetector, vehicle: VehicleSource):
        self.config = config
        self.detector = detector
        self.vehicle = vehicle
        self.cameras = {cam.name: CameraPipeline(config, i) for i, cam in enumerate(config.cameras)}
        self.demand = DetectionDemand(config)

    def process(self, frames: list[Frame]) -> BatchResult:
        return self.track(self.detect(frames))

    def detect(self, frames: list[Frame]) -> Detected:
        """The detector's half: which frames to detect, and one detector call for all of them. It touches no
        camera's tracker, so the daemon runs it a batch ahead, on its own thread (edge/ahead.py)."""
        wanted = []
        for frame in frames:
            vehicle = self.vehicle.state_at(frame.t_capture)
            if self.demand.wants(frame, vehicle):
                wanted.append((frame, vehicle))
        t0 = time.perf_counter()
        detections = self.detector.detect([f.image for f, _ in wanted], self.config.tracking.low_score)
        inference_ms = (time.perf_counter() - t0) * 1000.0
        seen = tuple(Seen(f, v, d) for (f, v), d in zip(wanted, detections, strict=True))
        return Detected(seen, inference_ms, skipped=len(frames) - len(wanted))

    def track(self, detected: Detected) -> BatchResult:
        """The cameras' half: tracker, zones and policies, frame by frame in capture order."""
        results = [self.cameras[s.frame.camera].step(s.frame, s.detections, s.vehicle) for s in detected.seen]
        return BatchResult(tuple(results), detected.inference_ms, detected.skipped)

    def views(self) -> dict[str, ViewState]:
        """Each camera's view after its last frame."""
        return {name: cam.view for name, cam in self.cameras.items()}

    def flush(self, ts: float) -> list[Event]:
        """Close every open event (at shutdown or end of footage)."""
        return [ev for cam in self.cameras.values() for ev in cam.flush(ts)]
