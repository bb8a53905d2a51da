"""``meshpolicy lint``: findings (MLxxx) about a policy that compiles; rules in docs/lint.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..backends import TARGETS
from ..diagnostics import Severity
from ..lint import lint as run_lint
from ..lint import select
from ..source import discover
from .common import EXIT_FINDINGS, ClusterOption, boundary, choose, read_manifests
from .formatters import FORMATS, counts, render


def lint(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Policy files or folders (every *.mesh below): the whole policy.")],
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="human, json, github or sarif.")] = "human",
    disable: Annotated[list[str] | None, typer.Option("--disable", metavar="RULE",
                                                      help="Skip a rule, by code (ML007) or name; repeatable.")] = None,
    cluster: ClusterOption = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="With --cluster: the mesh, for the findings "
                                               "that depend on it (injection, probes).")] = None,
) -> None:
    """Report what a policy probably does not mean: exit 0 when clean, 1 on findings or errors."""
    sources: dict = {}
    with boundary(lambda: sources, fmt, err=False):
        choose(fmt, FORMATS, "--format")
        names = [item.strip() for entry in disable or [] for item in entry.split(",") if item.strip()]
        select(names)  # an unknown rule is a UsageError: one line, exit 2
        files = discover(list(paths))
        sources.update({s.name: s for s in files})
        if target is not None:
            choose(target, sorted(TARGETS), "--target")
        findings = run_lint(files, names, read_manifests(cluster, sources), target)
        typer.echo(render(findings, sources, fmt), nl=False)
        if fmt == "human":
            typer.echo(f"{len(findings)} finding(s): {counts(findings)}" if findings else "no findings")
        if any(d.severity is not Severity.NOTE for d in findings):
            raise typer.Exit(EXIT_FINDINGS)
