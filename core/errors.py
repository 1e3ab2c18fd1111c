"""The error every vigie command shows as one line on stderr with exit code 2: bad usage, config or input."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """A one-line error about the user's input; exit code 2, no traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"vigie: {self.format_message()}", err=True)
