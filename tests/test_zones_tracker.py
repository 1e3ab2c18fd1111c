"""Zone geometry, ground calibration and the tracker: pure array logic."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import BusConfig, CalibrationConfig, CameraConfig, ZoneConfig
from edge.tracker import IouTracker, iou_matrix
from edge.types import Detections, Tracks
from edge.zones import CameraZones, GroundMap, Polygon, distance_to_bus

SQUARE = Polygon(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.5, 0.5), True),
        ((1.5, 0.5), False),
        ((-0.1, 0.5), False),
        ((0.5, 1.2), False),
        ((0.99, 0.01), True),
    ],
)
def test_point_in_square(point: tuple[float, float], inside: bool) -> None:
    assert SQUARE.contains(np.array([point])).tolist() == [inside]


def test_concave_polygon_excludes_its_notch() -> None:
    u_shape = Polygon(np.array([[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]], dtype=float))
    assert u_shape.contains(np.array([[0.5, 2.0], [1.5, 2.0], [2.5, 2.0]])).tolist() == [True, False, True]


def test_empty_input_gives_empty_mask() -> None:
    assert SQUARE.contains(np.zeros((0, 2))).shape == (0,)


def test_ground_map_reproduces_its_calibration_points() -> None:
    cal = CalibrationConfig(
        image=[(0, 1), (1, 1), (1, 0), (0, 0)], ground=[(-1, -1.4), (-9, -1.4), (-13, -7.5), (3, -7.5)]
    )
    ground = GroundMap(cal).to_ground(np.array(cal.image, dtype=float))
    np.testing.assert_allclose(ground, np.array(cal.ground), atol=1e-6)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ((-5.0, -2.275), 1.0),  # 1 m out from the right side
        ((-5.0, 3.275), 2.0),  # 2 m out from the left side
        ((3.0, 0.0), 3.0),  # 3 m ahead of the front face
        ((-14.0, 0.0), 2.0),  # 2 m behind a 12 m bus
        ((-5.0, 0.0), 0.0),  # under the bus
        ((3.0, -5.275), 5.0),  # ahead and to the side: the corner is nearest (3-4-5)
    ],
)
def test_distance_to_bus_footprint(point: tuple[float, float], expected: float) -> None:
    bus = BusConfig(id="b", length_m=12.0, width_m=2.55)
    assert distance_to_bus(np.array([point]), bus)[0] == pytest.approx(expected)


def _dets(*boxes: tuple[float, float, float, float]) -> Detections:
    xyxy = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    return Detections(xyxy, np.full(len(xyxy), 0.9, np.float32), np.zeros(len(xyxy), np.int32))


def test_camera_zones_use_the_feet_not_the_box() -> None:
    """A tall person whose head is in the zone but whose feet are not is outside."""
    cam = CameraConfig(
        name="c",
        side="right",
        source="x.mp4",
        zones=[ZoneConfig(name="low", polygon=[(0, 0.5), (1, 0.5), (1, 1), (0, 1)])],
    )
    zones = CameraZones(cam, BusConfig(id="b"))
    tracks = Tracks(_dets((10, 10, 30, 90), (50, 10, 70, 40)), np.array([1, 2]))
    (hits,) = zones.hits(tracks, (100, 100))
    assert hits.track_ids == (1,)
    assert np.isnan(hits.distances_m[0])


def test_iou_of_identical_and_disjoint_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 0.0, 1 / 3]], rtol=1e-5)


def test_tracker_keeps_ids_for_moving_people_and_gives_new_ones_to_newcomers() -> None:
    tracker = IouTracker()
    first = tracker.update(_dets((0, 0, 10, 20), (50, 0, 60, 20)))
    second = tracker.update(_dets((52, 1, 62, 21), (1, 0, 11, 20), (100, 0, 110, 20)))
    assert first.track_id.tolist() == [1, 2]
    assert second.track_id.tolist() == [2, 1, 3]


def test_tracker_follows_a_walker_through_missed_frames() -> None:
    """Moving 4 px a frame, missed for 3 frames: the prediction still lands on the person."""
    tracker = IouTracker()
    for i in range(5):
        tracker.update(_dets((4 * i, 0, 4 * i + 10, 20)))
    for _ in range(3):
        tracker.update(Detections.empty())
    assert tracker.update(_dets((32, 0, 42, 20))).track_id.tolist() == [1]


def test_tracker_bridges_a_short_gap_but_not_a_long_one() -> None:
    tracker = IouTracker()
    tracker.update(_dets((0, 0, 10, 20)))
    for _ in range(3):
        tracker.update(Detections.empty())
    assert tracker.update(_dets((0, 0, 10, 20))).track_id.tolist() == [1]
    for _ in range(11):
        tracker.update(Detections.empty())
    assert tracker.update(_dets((0, 0, 10, 20))).track_id.tolist() == [2]
