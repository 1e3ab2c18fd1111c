"""While a camera cannot see, its quiet zones say `unknown`, never `clear`; a person still seen keeps their level; when
the view is back each zone returns to its real level at once. The driver's alert count is unchanged by all this."""

from __future__ import annotations

import numpy as np
import pytest

from core.types import Alert, Frame, Level, Side, VehicleState, ViewReason
from edge.budget import AlertTally
from edge.bus import alert_message
from edge.config import load_config
from edge.detector import PersonDetector
from edge.pipeline import CameraPipeline
from edge.policy import StepResult, ZoneKey
from edge.view import VIEW_GOOD, ViewState, ZoneView

from .view_footage import FPS, darkened, read_clip

KEY = ZoneKey("left", Side.LEFT, "blind-spot")
BLIND = ViewState(frozenset({ViewReason.DARK}), "dark: mean grey level 4 (dark below 12)")
QUIET = StepResult(None, False, (), ())


def person(level: Level, changed: bool) -> StepResult:
    return StepResult(Alert(KEY.camera, KEY.side, KEY.zone, level, (3,), 1.2, 0.0), changed, (), ())


def cleared() -> StepResult:
    return StepResult(Alert(KEY.camera, KEY.side, KEY.zone, Level.NONE, (), None, 0.0), True, (), ())


def shown(res: StepResult | None) -> tuple[str, bool] | None:
    """(wire level, changed) of what the zone shows, None when it says nothing."""
    if res is None or res.alert is None:
        return None
    return alert_message(res.alert, "bus", 0.0)["level"], res.changed


# Each step: what the policy decided, the camera's view, and what the display must be told.
STORY = [
    ("nobody, view good", QUIET, VIEW_GOOD, None),
    ("nobody, camera goes blind", QUIET, BLIND, ("unknown", True)),
    ("nobody, still blind: repeated, not a change", QUIET, BLIND, ("unknown", False)),
    ("a person seen anyway: their real level", person(Level.INFO, True), BLIND, ("info", True)),
    ("still there", person(Level.INFO, False), BLIND, ("info", False)),
    ("gone while blind", cleared(), BLIND, ("unknown", True)),
    ("view back, nobody: clear, as a change", QUIET, VIEW_GOOD, ("clear", True)),
    ("nobody, view good: quiet again", QUIET, VIEW_GOOD, None),
    ("blind again", QUIET, BLIND, ("unknown", True)),
    ("view back as a person arrives", person(Level.WARNING, True), VIEW_GOOD, ("warning", True)),
]


def test_a_zone_through_a_blind_spell() -> None:
    zone = ZoneView(KEY)
    for what, res, view, expected in STORY:
        assert shown(zone.apply(res, view, 1.0)) == expected, what


def test_unknown_is_not_an_alert_for_the_driver() -> None:
    """The false-alert budget counts rises of a zone's level; unknown is none of them."""
    zone, tally = ZoneView(KEY), AlertTally()
    for _, res, view, _ in STORY:
        out = zone.apply(res, view, 1.0)
        if out.changed and out.alert is not None:
            tally.add(out.alert)
    assert tally.budget(1.0).as_dict()["info"] == 1 and tally.budget(1.0).as_dict()["warning"] == 1


@pytest.fixture(scope="module")
def detector() -> PersonDetector:
    return PersonDetector(load_config(None).detector)


def test_the_real_pipeline_keeps_a_person_seen_and_says_unknown_when_nobody_is(detector) -> None:
    """The rear camera of the demo bus, standing: a person walks in its zone. The camera freezes on a frame with
    them in it (they are still seen: `info` goes on), then goes dark (nobody seen: `unknown`), then comes back."""
    config = load_config(None)
    index = [c.name for c in config.cameras].index("rear")
    camera = CameraPipeline(config, index)
    clip = read_clip("rear", limit=60)
    frames = clip[:25] + [clip[24]] * 30 + [darkened(f, seed=i) for i, f in enumerate(clip[25:55])] + clip * 3
    standing = VehicleState()
    told: list[tuple[float, str, bool]] = []  # (time, wire level, changed) of the rear zone
    views: list[ViewState] = []
    for i, image in enumerate(frames):
        t = i / FPS
        result = camera.step(Frame("rear", i, t, image), detector.detect([image])[0], standing)
        views.append(camera.view)
        told += [(t, alert_message(a, "b", t)["level"], a in result.changed) for a in result.alerts]
    frozen_at = next(i for i, v in enumerate(views) if ViewReason.FROZEN in v.reasons) / FPS
    dark_at = next(i for i, v in enumerate(views) if ViewReason.DARK in v.reasons) / FPS
    raise_s = config.view.raise_s
    assert 2.4 + raise_s <= frozen_at <= 2.4 + 3.0 and 5.5 + raise_s <= dark_at <= 5.5 + 3.0
    # Frozen with a person in the zone: still `info`, never `unknown` or `clear`.
    assert {level for t, level, _ in told if frozen_at <= t < 5.5} == {"info"}
    # Dark: the person is lost; once the zone's own debounce lets go, it says `unknown`, not `clear`.
    during_dark = [level for t, level, _ in told if dark_at <= t < 8.5]
    assert "unknown" in during_dark and "clear" not in during_dark
    # Back: good from 8.5 s, so the view is trusted again clear_s later. Until then a quiet zone is never `clear`
    # (a person walking in is `info`); from then on it is never `unknown`.
    good_at = 8.5 + config.view.clear_s
    assert not any(level == "clear" for t, level, _ in told if frozen_at <= t < good_at - 0.15)
    assert not any(level == "unknown" for t, level, _ in told if t >= good_at + 0.15)
    assert any(changed and level in ("clear", "info") for t, level, changed in told if t >= 8.5)
    assert views[-1] == VIEW_GOOD


def test_the_wire_says_unknown_with_the_same_fields() -> None:
    unknown = Alert("rear", Side.REAR, "behind", Level.NONE, (), None, 5.0, unknown=True)
    message = alert_message(unknown, "bus-1", 5.01)
    assert message["level"] == "unknown"
    assert set(message) == set(alert_message(Alert("rear", Side.REAR, "behind", Level.NONE, (), None, 5.0), "b", 5.0))
    assert np.isclose(message["frame_ts"], 5.0)
