"""``meshpolicy verify``: prove an existing output folder equal to the source, request by request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import verify as verifier
from ..backends import TARGETS, get_backend
from ..graph.model import Mode
from ..output import folder, writer
from .common import (
    EXIT_FINDINGS,
    ISTIO_ROOT_HELP,
    NAMESPACES_HELP,
    ClusterOption,
    Fail,
    boundary,
    choose,
    emit_diagnostics,
    read_policy,
    target_options,
)


def verify(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Policy files or folders (every *.mesh below).")],
    target: Annotated[str, typer.Option("--target", "-t", metavar="TARGET", help="The target OUT was built for.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="The output folder to check.")],
    mode: Annotated[Mode, typer.Option(metavar="MODE", help="enforce, or audit (dry-run policies read as "
                                                            "enforced).")] = Mode.ENFORCE,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="Diagnostics as human or json.")] = "human",
    istio_root_namespace: Annotated[str | None, typer.Option("--istio-root-namespace", metavar="NAME",
                                                             help=ISTIO_ROOT_HELP)] = None,
    namespaces: Annotated[str | None, typer.Option("--namespaces", metavar="emit|skip", help=NAMESPACES_HELP)] = None,
    cluster: ClusterOption = None,
) -> None:
    """Check that the manifests in OUT allow exactly what PATHS say: exit 0 when they agree, 1 when not."""
    sources: dict = {}
    with boundary(lambda: sources, fmt):
        choose(fmt, ("human", "json"), "--format")
        choose(target, sorted(TARGETS), "--target")
        backend = get_backend(target)(mode=mode, **target_options(target, istio_root_namespace=istio_root_namespace,
                                                                  namespaces=namespaces))
        if not out.is_dir():
            raise Fail(f"{out} is not a folder")
        analysis = read_policy(paths, sources, cluster, target)
        emit_diagnostics(analysis.diagnostics, sources, fmt)
        # only what meshpolicy owns: files with the managed-by label (LANGUAGE §5), read within bounds
        # (docs/output.md), and the kustomization whoever wrote it, since it decides what GitOps applies
        current = folder.read(out)
        emit_diagnostics(current.notes, sources, fmt)
        files = verifier.read_folder(current)
        manifests = {p: t for p, t in files.items() if p != writer.KUSTOMIZATION}
        graph = analysis.graph
        found = verifier.verify(graph, files, target, backend.open_probes(graph), mode, backend.reader_options())
        if found:
            emit_diagnostics(verifier.diagnostics(found, graph, target), sources, fmt)
            raise typer.Exit(EXIT_FINDINGS)
        if fmt == "json":
            typer.echo(json.dumps({"verified": True, "target": target, "manifests": len(manifests)}))
        else:
            typer.echo(f"ok: the {len(manifests)} managed manifests in {out} allow exactly what the source says "
                       f"(target {target}, mode {mode})")
