"""The command line: one module per command, joined here. Exit codes are in :mod:`.common`."""

from __future__ import annotations

import typer

from .build import build
from .check import check
from .common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from .diff import diff
from .explain import CONTEXT as _EXPLAIN_CONTEXT
from .explain import explain
from .fmt import fmt
from .graph import graph
from .lint import lint
from .targets import targets
from .verify import verify

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE", "app", "main"]

app = typer.Typer(
    name="meshpolicy",
    help="Compile .mesh policy files to Istio or Linkerd security policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(build)
app.command()(check)
app.command()(targets)
app.command()(diff)
app.command()(graph)
app.command()(lint)
app.command()(fmt)
app.command()(verify)
app.command(context_settings=_EXPLAIN_CONTEXT)(explain)


def main() -> None:
    app()
