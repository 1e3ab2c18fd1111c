"""Which people stand in which blind-spot zone, and how far from the bus body they are.

A person is anchored at the bottom-centre of their box (their feet). Zones are polygons either in normalised image
coordinates or, for a calibrated camera, in metres on the ground in the bus frame (x forward from the front face,
y to the left of the centre line). All tests run on whole arrays of anchors at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.types import Detections, Tracks, ZoneHits
from edge.config import BusConfig, CalibrationConfig, CameraConfig
from edge.geometry import fit_homography


class Polygon:
    """A simple polygon with its edges precomputed, answering point-in-polygon for many points at once."""

    def __init__(self, points: np.ndarray):
        pts = np.asarray(points, dtype=np.float64)
        self.points = pts
        self._x0, self._y0 = pts[:, 0], pts[:, 1]
        nxt = np.roll(pts, -1, axis=0)
        self._x1, self._y1 = nxt[:, 0], nxt[:, 1]
        dy = self._y1 - self._y0
        # Horizontal edges never cross a horizontal ray; give them an infinite slope so they drop out.
        with np.errstate(divide="ignore"):
            self._inv_slope = np.where(dy != 0, (self._x1 - self._x0) / np.where(dy != 0, dy, 1), np.inf)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Even-odd rule, vectorised over points (rows) and edges (columns)."""
        if xy.shape[0] == 0:
            return np.zeros(0, dtype=bool)
        px, py = xy[:, :1], xy[:, 1:2]
        straddles = (self._y0 > py) != (self._y1 > py)
        with np.errstate(invalid="ignore"):  # 0 * inf on horizontal edges; `straddles` already excludes them
            x_cross = self._x0 + (py - self._y0) * self._inv_slope
        crossings = straddles & (px < x_cross)
        return (np.count_nonzero(crossings, axis=1) % 2) == 1


class GroundMap:
    """Homography from normalised image coordinates to metres on the ground, fitted once from calibration pairs."""

    def __init__(self, cal: CalibrationConfig):
        # The fit the config check judged well conditioned (edge/geometry.py), not a second one that might differ.
        self._h = fit_homography(cal.image, cal.ground)

    def to_ground(self, xy_norm: np.ndarray) -> np.ndarray:
        if xy_norm.shape[0] == 0:
            return np.zeros((0, 2), dtype=np.float64)
        pts = cv2.perspectiveTransform(xy_norm.reshape(-1, 1, 2).astype(np.float64), self._h)
        return pts.reshape(-1, 2)


def distance_to_bus(ground: np.ndarray, bus: BusConfig) -> np.ndarray:
    """Shortest ground distance (m) from each point to the bus footprint, x in [-length, 0], |y| <= width/2."""
    x, y = ground[:, 0], ground[:, 1]
    dx = np.maximum(np.maximum(-bus.length_m - x, x), 0.0)
    dy = np.maximum(np.abs(y) - bus.width_m / 2, 0.0)
    return np.hypot(dx, dy)


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    polygon: Polygon
    on_ground: bool


class CameraZones:
    """Every zone of one camera; built once from the config, then asked once per frame."""

    def __init__(self, cam: CameraConfig, bus: BusConfig):
        self._bus = bus
        self._ground = GroundMap(cam.calibration) if cam.calibration is not None else None
        self.zones = [
            Zone(
                z.name,
                Polygon(np.array(z.ground_polygon if z.ground_polygon else z.polygon)),
                z.ground_polygon is not None,
            )
            for z in cam.zones
        ]

    def locate(self, dets: Detections, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised anchors (N,2), ground points (N,2, NaN if uncalibrated) and distance to the bus (N,)."""
        w, h = image_size
        anchors = dets.anchors() / np.array([w, h], dtype=np.float32)
        if self._ground is None:
            nan = np.full((len(dets), 2), np.nan)
            return anchors, nan, nan[:, 0]
        ground = self._ground.to_ground(anchors)
        return anchors, ground, distance_to_bus(ground, self._bus)

    def hits(self, tracks: Tracks, image_size: tuple[int, int]) -> list[ZoneHits]:
        """One ZoneHits per zone (possibly empty) for this frame's tracks."""
        anchors, ground, dist = self.locate(tracks.detections, image_size)
        hidden = frozenset(int(t) for t in np.setdiff1d(tracks.alive, tracks.track_id))
        out = []
        for zone in self.zones:
            inside = zone.polygon.contains(ground if zone.on_ground else anchors)
            out.append(
                ZoneHits(
                    zone=zone.name,
                    track_ids=tuple(int(t) for t in tracks.track_id[inside]),
                    confirmed=tuple(bool(c) for c in tracks.confirmed[inside]),
                    scores=tuple(float(s) for s in tracks.detections.score[inside]),
                    distances_m=tuple(float(d) for d in dist[inside]),
                    hidden=hidden,
                )
            )
        return out
