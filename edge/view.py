"""View quality: can a camera that still sends frames actually see? (UN R151: failure, low light, dirty lens.)

A camera that sends black, covered, blurred, washed-out or frozen pictures looks healthy to the capture watchdog, and
its empty zones would say `clear` — which the driver reads as "nobody there". `ViewMonitor` judges each frame's
picture and raises a `ViewReason` once a condition has lasted `raise_s`; it drops it once the condition has been gone
for `clear_s`. `ZoneView` then shows a quiet zone of such a camera as `unknown`, never `clear`.

Pure and clock-free like the policy: each frame comes with its capture time, so replay judges a view as the bus did.

Cost: each frame is reduced once to a small grey picture and every measure is taken on it. The reduction is bilinear
(it samples the frame, 0.05 ms at 768x576) rather than INTER_AREA on the full frame (0.7 ms, more than the whole
budget): sampling keeps the fine detail a smeared lens loses, and sensor noise, which tells a live still scene from a
frozen one; benchmarks/test_view_cost.py measures the whole update.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.types import Alert, Level, ViewReason
from edge.policy import StepResult, ZoneKey
from edge.view_config import ViewConfig

SMALL = (192, 144)  # width, height of the grey picture every measure is taken on (any camera resolution)
GRID = (8, 6)  # the view is judged blind patch by patch: 48 patches of 24x24 small pixels
COARSE = (48, 36)  # the small picture averaged 4x4: each patch 6x6, sensor noise a quarter as strong
SATURATED = 250  # a grey level at or above this is washed out (sensors clip at 255; codecs wobble below it)


@dataclass(frozen=True, slots=True)
class ViewMeasures:
    """What one frame shows, on the small grey picture."""

    luma: float  # mean grey level, 0-255
    blind: float  # share of the view's patches without detail (covered, smeared, or flat)
    glare: float  # share of the view saturated
    change: float  # mean grey-level change from the camera's previous frame; inf for its first one


@dataclass(frozen=True, slots=True)
class ViewState:
    """A camera's view after a frame: `reasons` raised (empty: the view is good), and a one-line `detail` for
    `health` that starts with them (`dark, frozen: …`)."""

    reasons: frozenset[ViewReason]
    detail: str

    @property
    def degraded(self) -> bool:
        return bool(self.reasons)


VIEW_GOOD = ViewState(frozenset(), "view good")


def small_grey(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, SMALL, interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def measure(grey: np.ndarray, previous: np.ndarray | None, cfg: ViewConfig) -> ViewMeasures:
    """The measures of one small grey picture (`previous`: the camera's last one, for `change`)."""
    # A patch is blind when it has no fine detail (smeared, or flat) or no structure once noise is averaged out
    # (covered: a camera's gain turns a covered lens into noise, which has fine detail but no structure).
    # INTER_AREA by a whole factor is the exact mean of each block.
    detail = cv2.resize(np.abs(cv2.Laplacian(grey, cv2.CV_32F)), GRID, interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(grey, COARSE, interpolation=cv2.INTER_AREA).astype(np.float32)
    block = COARSE[0] // GRID[0]
    contrast = coarse.reshape(GRID[1], block, GRID[0], block).std(axis=(1, 3))
    blind = (detail < cfg.detail_min) | (contrast < cfg.contrast_min)
    return ViewMeasures(
        luma=float(cv2.mean(grey)[0]),
        blind=float(np.count_nonzero(blind)) / blind.size,
        glare=float(np.count_nonzero(grey >= SATURATED)) / grey.size,
        change=math.inf if previous is None else float(cv2.mean(cv2.absdiff(grey, previous))[0]),
    )


class _Condition:
    """One reason's hysteresis in frame time: raised after `raise_s` bad in a row, dropped after `clear_s` good."""

    __slots__ = ("_clear_s", "_raise_s", "bad_since", "good_since", "raised")

    def __init__(self, raise_s: float, clear_s: float):
        self._raise_s = raise_s
        self._clear_s = clear_s
        self.bad_since: float | None = None
        self.good_since: float | None = None
        self.raised = False

    def update(self, bad: bool, ts: float, bad_from: float) -> bool:
        """`bad_from`: when this frame's condition began, if it is the first bad one (for a frozen picture, when
        the unchanged picture was first captured)."""
        if bad:
            self.good_since = None
            self.bad_since = bad_from if self.bad_since is None else self.bad_since
            self.raised = self.raised or ts - self.bad_since >= self._raise_s
        else:
            self.bad_since = None
            self.good_since = ts if self.good_since is None else self.good_since
            self.raised = self.raised and ts - self.good_since < self._clear_s
        return self.raised


class ViewMonitor:
    """Judges one camera's view, frame by frame."""

    def __init__(self, cfg: ViewConfig):
        self._cfg = cfg
        self._conditions = {reason: _Condition(cfg.raise_s, cfg.clear_s) for reason in ViewReason}
        self._previous: np.ndarray | None = None
        self._previous_ts = 0.0
        self.state = VIEW_GOOD

    def update(self, image: np.ndarray, ts: float) -> ViewState:
        """The view after this frame (captured at `ts`, seconds)."""
        if not self._cfg.enabled:
            return self.state
        grey = small_grey(image)
        m = measure(grey, self._previous, self._cfg)
        bad = self._bad(m)
        reasons = frozenset(
            reason
            for reason, condition in self._conditions.items()
            if condition.update(bad[reason], ts, self._previous_ts if reason == ViewReason.FROZEN else ts)
        )
        self._previous, self._previous_ts = grey, ts
        if reasons or self.state.reasons:
            self.state = ViewState(reasons, self._describe(reasons, m, ts)) if reasons else VIEW_GOOD
        return self.state

    def _bad(self, m: ViewMeasures) -> dict[ViewReason, bool]:
        cfg = self._cfg
        dark = m.luma < cfg.dark_luma
        glare = m.glare >= cfg.glare_area
        return {
            ViewReason.DARK: dark,
            # A dark or washed-out picture has no detail either: it is reported as what it is.
            ViewReason.BLOCKED: not dark and not glare and m.blind >= cfg.blocked_area,
            ViewReason.GLARE: glare,
            ViewReason.FROZEN: m.change < cfg.frozen_change,
        }

    def _describe(self, reasons: frozenset[ViewReason], m: ViewMeasures, ts: float) -> str:
        cfg = self._cfg
        still_since = self._conditions[ViewReason.FROZEN].bad_since
        frozen_for = 0.0 if still_since is None else ts - still_since
        said = {
            ViewReason.DARK: f"mean grey level {m.luma:.0f} (dark below {cfg.dark_luma:g})",
            ViewReason.BLOCKED: f"{m.blind:.0%} of the view without detail (blocked from {cfg.blocked_area:.0%})",
            ViewReason.GLARE: f"{m.glare:.0%} of the view saturated (glare from {cfg.glare_area:.0%})",
            ViewReason.FROZEN: f"picture unchanged for {frozen_for:.1f} s",
        }
        ordered = [r for r in ViewReason if r in reasons]
        parts = []
        for reason in ordered:
            # A raised reason whose condition has passed is still reported until the view has been good for clear_s.
            good_since = self._conditions[reason].good_since
            if good_since is None:
                parts.append(said[reason])
            else:
                parts.append(f"{reason} gone {ts - good_since:.1f} s, clears at {cfg.clear_s:g} s")
        return ", ".join(ordered) + ": " + "; ".join(parts)


class ZoneView:
    """What one zone shows the driver given its camera's view: while the camera cannot see, a quiet zone is
    `unknown`, never `clear`. A person still seen keeps their real level (a detection is never hidden); when the
    view comes back the zone returns to its real level as a change, so the display hears of it at once."""

    def __init__(self, key: ZoneKey):
        self._key = key
        self._unknown = False

    def apply(self, res: StepResult, view: ViewState, ts: float) -> StepResult:
        unknown = view.degraded and (res.alert is None or res.alert.level == Level.NONE)
        if not unknown and not self._unknown:
            return res
        was_unknown, self._unknown = self._unknown, unknown
        alert = res.alert or Alert(self._key.camera, self._key.side, self._key.zone, Level.NONE, (), None, ts)
        return dataclasses.replace(
            res, alert=dataclasses.replace(alert, unknown=unknown), changed=res.changed or unknown != was_unknown
        )
