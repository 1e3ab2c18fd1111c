"""A progress bar on stderr for the long replay commands (rerun, compact)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar


class Progress:
    """A progress bar on stderr that appears only once the work is sized (the footage open, the store listed), so
    an input error stays one line."""

    def __init__(self, label: str = "rerun") -> None:
        self.label = label
        self._bar: ProgressBar[int] | None = None

    def start(self, total: int) -> None:
        self._bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr, show_pos=True)
        self._bar.__enter__()

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
