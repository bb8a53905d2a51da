"""``meshpolicy targets``: list the backends."""

from __future__ import annotations

import typer

from ..backends import SUMMARIES, TARGETS


def targets() -> None:
    """List the available targets."""
    for name in sorted(TARGETS):
        typer.echo(f"{name:10} {SUMMARIES[name]}")
