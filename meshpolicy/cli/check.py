"""``meshpolicy check``: parse, resolve and check the invariants, writing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..backends import TARGETS
from .common import ClusterOption, boundary, choose, read_policy
from .formatters import FORMATS, emit_diagnostics


def check(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Policy files or folders (every *.mesh below).")],
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="Diagnostics as human, json, github or sarif.")] = "human",
    cluster: ClusterOption = None,
    target: Annotated[str | None, typer.Option("--target", "-t", metavar="TARGET", help="With --cluster: the mesh, "
                                               "for the findings that depend on it (injection, probes).")] = None,
) -> None:
    """Check a policy without writing anything: exit 0 when it compiles, 1 when it has errors."""
    sources: dict = {}
    with boundary(lambda: sources, fmt):
        choose(fmt, FORMATS, "--format")
        if target is not None:
            choose(target, sorted(TARGETS), "--target")
        analysis = read_policy(paths, sources, cluster, target)
        emit_diagnostics(analysis.diagnostics, sources, fmt)
        graph = analysis.graph
        against = ""
        if analysis.cluster is not None:
            against = f", against {len(analysis.cluster.workloads)} workloads"
        typer.echo(f"ok: {len(graph.services)} services, {len(graph.rules)} rules, "
                   f"{len(graph.invariants)} invariants hold{against}")
