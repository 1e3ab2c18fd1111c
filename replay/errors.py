"""The exceptions replay raises, each shown by the CLI as a single line: bad input exits 2, a runtime failure 1."""

from __future__ import annotations

import click

from core.errors import UserError


class ReplayError(UserError):
    """Bad input named in one line (a missing event id, an unreadable file, a wrong bucket); exit 2, no traceback."""


class ReplayFailure(click.ClickException):
    """The input was right but the work failed (the bucket stopped answering mid-way); exit 1, one line."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"vigie: {self.format_message()}", err=True)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (pyarrow's and DuckDB's run over several), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
