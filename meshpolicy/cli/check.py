"""``meshpolicy check``: parse, resolve and check the invariants, writing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import pipeline
from ..source import discover
from .common import boundary, choose
from .formatters import FORMATS, emit_diagnostics


def check(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Policy files or folders (every *.mesh below).")],
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="Diagnostics as human, json, github or sarif.")] = "human",
) -> None:
    """Check a policy without writing anything: exit 0 when it compiles, 1 when it has errors."""
    sources: dict = {}
    with boundary(lambda: sources, fmt):
        choose(fmt, FORMATS, "--format")
        files = discover(list(paths))
        sources.update({s.name: s for s in files})
        analysis = pipeline.analyze(files)
        emit_diagnostics(analysis.diagnostics, sources, fmt)
        graph = analysis.graph
        typer.echo(f"ok: {len(graph.services)} services, {len(graph.rules)} rules, "
                   f"{len(graph.invariants)} invariants hold")
