"""The `[view]` table: when a camera that still sends frames is judged unable to see (edge/view.py).

Its own module so the bus config (edge/config.py) only names it. Every threshold was measured on the bundled footage
with the bundled person model: `benchmarks/bench_view.py` prints the figures and the README says how they were chosen.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.config_base import Bool, Finite, StrictModel

# `health` must say `degraded` within 3 s of the view going bad; frames in transit and a turn of the daemon's loop take
# the rest, so a condition may be required to last at most 2.5 s.
RaiseSeconds = Annotated[Finite, Field(gt=0, le=2.5)]
# UN R151: the system re-enables itself within 60 s once the view is back.
ClearSeconds = Annotated[Finite, Field(gt=0, le=60)]
GreyLevel = Annotated[Finite, Field(ge=0, le=255)]
Share = Annotated[Finite, Field(gt=0, le=1)]


class ViewConfig(StrictModel):
    """Whether a camera's picture is good enough to trust a `clear` (UN R151: failure, low light, dirt)."""

    enabled: Bool = True
    raise_s: RaiseSeconds = 1.5  # a condition lasting this long raises `degraded`
    clear_s: ClearSeconds = 10.0  # and the view must be good this long before it clears
    dark_luma: GreyLevel = 12.0  # mean grey level (0-255) below which the view is too dark
    # The view is judged in 48 patches. One with less fine detail than `detail_min` (mean absolute Laplacian) is
    # smeared or flat; one whose grey levels vary less than `contrast_min` (standard deviation, noise averaged out)
    # is covered.
    detail_min: GreyLevel = 4.0
    contrast_min: GreyLevel = 1.5
    blocked_area: Share = 0.4  # `blocked` from this share of the view without detail
    glare_area: Share = 0.25  # `glare` from this share of the view saturated
    # Mean grey-level change between two frames below which they show the same picture (sensor noise alone is more).
    frozen_change: GreyLevel = 0.1


class ViewOverride(StrictModel):
    """A camera's own `view` table: any key of [view], replacing the bus-wide value for that camera only."""

    enabled: Bool | None = None
    raise_s: RaiseSeconds | None = None
    clear_s: ClearSeconds | None = None
    dark_luma: GreyLevel | None = None
    detail_min: GreyLevel | None = None
    contrast_min: GreyLevel | None = None
    blocked_area: Share | None = None
    glare_area: Share | None = None
    frozen_change: GreyLevel | None = None

    def over(self, base: ViewConfig) -> ViewConfig:
        """`base` with this camera's keys. Each key was checked on its own and no rule ties two keys together, so the
        merged settings need no further check."""
        return base.model_copy(update=self.model_dump(exclude_none=True))
