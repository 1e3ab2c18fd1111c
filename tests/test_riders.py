"""People on bicycles (footage/riders/): the labels are sound, and the person detector finds riders at least as
often as the pedestrians around them, the measurement that kept a second, bicycle cue out (README "Riders")."""

from __future__ import annotations

import cv2
import pytest

from edge.config import DetectorConfig
from edge.detector import PersonDetector

from .riders import KINDS, RIDERS, found_by_kind, labels, person_boxes

MIN_HEIGHT_PX = 60  # the labelling rule: every person at least this tall


def test_every_label_is_a_person_of_the_labelled_size_inside_its_image() -> None:
    truth = labels()
    assert {t.kind for t in truth} == set(KINDS)
    for t in truth:
        image = cv2.imread(str(RIDERS / t.image))
        assert image is not None, t.image
        x1, y1, x2, y2 = t.box
        assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0], t
        assert y2 - y1 >= MIN_HEIGHT_PX, t


def test_every_image_has_a_rider() -> None:
    truth = labels()
    images = {p.name for p in RIDERS.glob("*.jpg")}
    assert images == {t.image for t in truth if t.kind == "rider"}


@pytest.mark.parametrize("model", ["int8", "fp32"])
def test_riders_are_found_no_less_often_than_pedestrians(model: str) -> None:
    result = found_by_kind(person_boxes(PersonDetector(DetectorConfig(model=model))), labels())
    (riders, n_riders, _), (pedestrians, n_pedestrians, _) = result["rider"], result["pedestrian"]
    assert n_riders >= 10 and n_pedestrians >= 20
    assert riders / n_riders >= pedestrians / n_pedestrians, result
