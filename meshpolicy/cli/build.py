"""``meshpolicy build``: compile a policy and write (or, with --check, compare) an output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import pipeline
from ..backends import TARGETS
from ..diagnostics import Diagnostic, MeshError, Severity
from ..output import crds, writer
from .common import EXIT_FINDINGS, ISTIO_ROOT_HELP, ClusterOption, boundary, choose, read_policy, target_options
from .formatters import FORMATS, emit_diagnostics


def build(
    paths: Annotated[list[Path], typer.Argument(help="Policy files or folders (every *.mesh below).")],
    target: Annotated[str, typer.Option("--target", "-t", help="Backend: istio or linkerd.")] = ...,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = ...,
    mode: Annotated[str, typer.Option(help="enforce, or audit (each target's dry-run form).")] = "enforce",
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 with a diff if OUT is stale.")] = False,
    crd_dir: Annotated[Path | None, typer.Option("--crds", help="Validate every manifest against the CRDs in DIR.",
                                                 metavar="DIR")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Diagnostics as human, json, github or sarif.")] = "human",
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip proving the output equal to the source "
                                            "(translation validation, docs/verify.md).")] = False,
    linkerd_routes: Annotated[str | None, typer.Option(
        "--linkerd-routes", help="linkerd only: HTTPRoute API, gateway (gateway.networking.k8s.io/v1, the "
        "default) or policy (policy.linkerd.io/v1beta3).")] = None,
    istio_root_namespace: Annotated[str | None, typer.Option("--istio-root-namespace", metavar="NAME",
                                                             help=ISTIO_ROOT_HELP)] = None,
    cluster: ClusterOption = None,
) -> None:
    """Compile PATHS for one target into OUT/NAMESPACE/KIND-NAME.yaml and OUT/kustomization.yaml."""
    sources: dict = {}
    with boundary(lambda: sources, fmt):
        choose(fmt, FORMATS, "--format")
        choose(target, sorted(TARGETS), "--target")
        choose(mode, ("enforce", "audit"), "--mode")
        options = target_options(target, linkerd_routes=linkerd_routes, istio_root_namespace=istio_root_namespace)
        schemas = crds.load(crd_dir) if crd_dir is not None else None
        analysis = read_policy(paths, sources, cluster, target)
        result = pipeline.lower(analysis, target, mode, verify=not no_verify, **options)
        emit_diagnostics(result.diagnostics, sources, fmt)
        if schemas is not None:
            problems = crds.validate(schemas, result.files)
            if problems:
                emit_diagnostics([Diagnostic("MP402", Severity.ERROR, p) for p in problems], sources, fmt)
                raise typer.Exit(EXIT_FINDINGS)
        if check:
            writer.check_writable(out, result.files)  # a folder a build could not write is not "stale"
            delta = writer.diff(out, result.files)
            if delta:
                typer.echo(delta, nl=False)
                raise MeshError([Diagnostic("MP403", Severity.ERROR, f"{out} is out of date",
                                            hint="run 'meshpolicy build' without --check")])
            typer.echo(f"{out} is up to date ({len(result.files) - 1} resources, target {target})")
            return
        try:
            writer.write(out, result.files)
        except OSError as exc:
            raise writer.OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
        typer.echo(f"wrote {len(result.files) - 1} resources and kustomization.yaml to {out} "
                   f"(target {target}, mode {mode})")
