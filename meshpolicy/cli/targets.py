"""``meshpolicy targets``: list the backends."""

from __future__ import annotations

import typer

from ..backends import TARGETS, get_backend


def targets() -> None:
    """List the available targets."""
    for name in sorted(TARGETS):
        typer.echo(f"{name:10} {get_backend(name).summary}")
