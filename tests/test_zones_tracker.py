"""Zone geometry, ground calibration and the tracker: pure array logic."""

from __future__ import annotations

import numpy as np
import pytest

from core.types import Detections, Tracks
from edge.config import BusConfig, CalibrationConfig, CameraConfig, ZoneConfig
from edge.kalman import BoxKalman
from edge.tracker import ByteTracker, TrackerConfig, iou_matrix
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
    tracks = Tracks(_dets((10, 10, 30, 90), (50, 10, 70, 40)), np.array([1, 2]), np.ones(2, bool), np.array([1, 2]))
    (hits,) = zones.hits(tracks, (100, 100))
    assert hits.track_ids == (1,)
    assert np.isnan(hits.distances_m[0])


def test_iou_of_identical_and_disjoint_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 0.0, 1 / 3]], rtol=1e-5)


def run(tracker: ByteTracker, frames: list[Detections], fps: float = 10.0, t0: float = 0.0) -> list[Tracks]:
    return [tracker.update(d, t0 + i / fps) for i, d in enumerate(frames)]


def test_tracker_keeps_ids_for_moving_people_and_gives_new_ones_to_newcomers() -> None:
    tracker = ByteTracker()
    run(tracker, [_dets((0, 0, 10, 20), (50, 0, 60, 20)), _dets((1, 0, 11, 20), (51, 0, 61, 20))])
    third = tracker.update(_dets((52, 1, 62, 21), (2, 0, 12, 20), (100, 0, 110, 20)), 0.2)
    assert third.track_id.tolist() == [2, 1, 3]
    assert third.confirmed.tolist() == [True, True, False]


def test_a_new_track_is_tentative_until_seen_for_confirm_s_and_one_blip_is_forgotten() -> None:
    tracker = ByteTracker(TrackerConfig(confirm_s=0.2))
    states = [t.confirmed.tolist() for t in run(tracker, [_dets((0, 0, 10, 20))] * 3)]
    assert states == [[False], [False], [True]]
    blip = ByteTracker()
    run(blip, [_dets((0, 0, 10, 20)), Detections.empty(), Detections.empty()])
    assert blip.update(Detections.empty(), 0.3).alive.tolist() == []


def test_tracker_follows_a_walker_through_missed_frames() -> None:
    """Walking 40 px/s, missed for 1.5 s: the damped prediction still lands on the person."""
    tracker = ByteTracker()
    seen = run(tracker, [_dets((4 * i, 0, 4 * i + 10, 20)) for i in range(10)])
    assert seen[-1].confirmed.tolist() == [True]
    for i in range(15):
        assert tracker.update(Detections.empty(), 1.0 + i * 0.1).alive.tolist() == [1]
    x = 4 * 25 - 8  # 25 frames of walking, a little behind: people slow down
    assert tracker.update(_dets((x, 0, x + 10, 20)), 2.5).track_id.tolist() == [1]


@pytest.mark.parametrize("fps", [10.0, 15.0, 30.0])
def test_the_lost_buffer_is_in_seconds_whatever_the_frame_rate(fps: float) -> None:
    cfg = TrackerConfig(lost_s=1.0)
    short, long_ = ByteTracker(cfg), ByteTracker(cfg)
    box = _dets((0, 0, 10, 20))
    for tracker, gap_s in ((short, 0.9), (long_, 1.2)):
        run(tracker, [box] * int(fps * 0.5), fps)
        t = 0.5 - 1 / fps
        for k in range(1, int(gap_s * fps)):
            tracker.update(Detections.empty(), t + k / fps)
        tracker.update(box, t + gap_s)
    assert short.update(box, 5.0).track_id.tolist() == [1]
    assert long_.update(box, 5.0).track_id.tolist() == [2]


def test_a_low_score_box_keeps_a_track_alive_but_never_starts_one() -> None:
    cfg = TrackerConfig(high_score=0.5, low_score=0.1)
    tracker = ByteTracker(cfg)
    run(tracker, [_dets((0, 0, 10, 20))] * 3)
    unsure = Detections(
        np.array([[0, 0, 10, 20], [80, 0, 90, 20]], np.float32), np.array([0.2, 0.2], np.float32), np.zeros(2, np.int32)
    )
    out = tracker.update(unsure, 0.3)
    assert out.track_id.tolist() == [1]
    assert out.detections.score.tolist() == pytest.approx([0.2])


def test_two_people_crossing_keep_their_ids() -> None:
    """Walking towards each other and overlapping in the middle; global assignment keeps them apart."""
    tracker = ByteTracker()
    frames = [_dets((10 * i, 0, 10 * i + 30, 60), (200 - 10 * i, 5, 230 - 10 * i, 65)) for i in range(21)]
    for t in run(tracker, frames):
        walker_a = t.detections.xyxy[:, 1] == 0  # A's boxes start at y = 0, B's at y = 5
        assert t.track_id[walker_a].tolist() == [1] and t.track_id[~walker_a].tolist() == [2]


def test_a_predicted_box_does_not_grow_without_bound() -> None:
    """A box growing 80 px/s when last seen settles while predicted, instead of growing for seconds."""
    kf = BoxKalman()
    mean, cov = kf.initiate(np.array([[100, 100, 110, 120]], np.float32))
    for i in range(1, 9):
        mean, cov = kf.predict(mean, cov, 0.1)
        mean, cov = kf.update(mean, cov, np.array([[100 - 2 * i, 100 - 4 * i, 110 + 2 * i, 120 + 4 * i]], np.float32))
    height_seen = mean[0, 3]
    for _ in range(25):  # 2.5 s unseen
        mean, cov = kf.predict(mean, cov, 0.1)
    assert mean[0, 3] < height_seen * 1.5  # undamped: + 2.5 s * 80 px/s = 4x the height
    # The same 2.5 s predicted in one step or in 25 gives the same box: decay is exact over any dt.
    one_step, _ = kf.predict(*kf.initiate(np.array([[0, 0, 10, 20]], np.float32)), 2.5)
    assert np.isfinite(one_step).all()
