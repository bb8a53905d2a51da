"""``meshpolicy build``: compile a policy and write (or, with --check, compare) an output folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .. import pipeline
from ..backends import TARGETS
from ..cache import folder_option, open_cache
from ..diagnostics import Diagnostic, MeshError, Severity
from ..graph.model import Mode
from ..output import crds, folder, writer
from .common import (
    EXIT_FINDINGS,
    ISTIO_ROOT_HELP,
    NAMESPACES_HELP,
    CacheDirOption,
    ClusterOption,
    NoCacheOption,
    boundary,
    choose,
    read_policy,
    target_options,
)
from .formatters import FORMATS, emit_diagnostics

#: the namespaces a build's summary line names; more are counted
SHOWN_NAMESPACES = 6


def build(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Policy files or folders (every *.mesh below).")],
    target: Annotated[str, typer.Option("--target", "-t", metavar="TARGET", help="Backend: istio or linkerd.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Output folder.")],
    mode: Annotated[Mode, typer.Option(metavar="MODE", help="enforce, or audit (each target's dry-run form).")] = \
        Mode.ENFORCE,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 with a diff if OUT is stale.")] = False,
    crd_dir: Annotated[Path | None, typer.Option("--crds", help="Validate every manifest against the CRDs in DIR.",
                                                 metavar="DIR")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="Diagnostics as human, json, github or sarif.")] = "human",
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip proving the output equal to the source "
                                            "(translation validation, docs/verify.md).")] = False,
    linkerd_routes: Annotated[str | None, typer.Option(
        "--linkerd-routes", help="linkerd only: HTTPRoute API, gateway (gateway.networking.k8s.io/v1, the "
        "default) or policy (policy.linkerd.io/v1beta3).")] = None,
    istio_root_namespace: Annotated[str | None, typer.Option("--istio-root-namespace", metavar="NAME",
                                                             help=ISTIO_ROOT_HELP)] = None,
    namespaces: Annotated[str | None, typer.Option("--namespaces", metavar="emit|skip", help=NAMESPACES_HELP)] = None,
    cluster: ClusterOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Compile PATHS for one target into OUT/NAMESPACE/KIND-NAME.yaml and OUT/kustomization.yaml."""
    sources: dict = {}
    with boundary(lambda: sources, fmt):
        choose(fmt, FORMATS, "--format")
        choose(target, sorted(TARGETS), "--target")
        options = target_options(target, linkerd_routes=linkerd_routes, istio_root_namespace=istio_root_namespace,
                                 namespaces=namespaces)
        schemas = crds.load(crd_dir) if crd_dir is not None else None
        store, cache_notes = open_cache(folder_option(cache_dir, no_cache))
        try:
            analysis = read_policy(paths, sources, cluster, target, store)
            result = pipeline.lower(analysis, target, mode, verify=False, **options)
            started = time.perf_counter()
            if not no_verify:
                pipeline.check(result, target, mode)  # before the notes: its MP501 errors carry them
            seconds = time.perf_counter() - started
        finally:
            cache_notes += store.notes() if store is not None else []
        emit_diagnostics(result.diagnostics + cache_notes, sources, fmt)
        if schemas is not None:
            problems = crds.validate(schemas, result.files)
            if problems:
                emit_diagnostics([Diagnostic("MP402", Severity.ERROR, p) for p in problems], sources, fmt)
                raise typer.Exit(EXIT_FINDINGS)
        if check:
            current = writer.check_writable(out, result.files)  # a folder a build could not write is not "stale"
            emit_diagnostics(current.notes, sources, fmt)
            delta = writer.diff(current, result.files)
            if delta:
                typer.echo(delta, nl=False)
                raise MeshError([Diagnostic("MP403", Severity.ERROR, f"{out} is out of date",
                                            hint="run 'meshpolicy build' without --check")])
            _verified(target, None if no_verify else seconds)
            typer.echo(f"{out} is up to date: {_contents(result.files)}{_settings(target, mode, no_verify)}")
            return
        try:
            notes = writer.write(out, result.files)
        except OSError as exc:
            raise writer.OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
        emit_diagnostics(notes, sources, fmt)
        _verified(target, None if no_verify else seconds)
        typer.echo(f"wrote {_contents(result.files)} to {out}{_settings(target, mode, no_verify)}")


def _verified(target: str, seconds: float | None) -> None:
    """Where the time went: verification is most of a build's (docs/verify.md)."""
    if seconds is not None:
        typer.echo(f"verified in {seconds:.2f} s: read as {target} reads it, the output decides every request "
                   "as the policy does (--no-verify skips this)")


def _contents(files: dict[str, str]) -> str:
    """``12 manifests in 2 namespaces (payments, shop), 1 values file and kustomization.yaml``."""
    manifests = [path for path in files if path != writer.KUSTOMIZATION and not folder.is_values(path)]
    values = [path for path in files if folder.is_values(path)]
    namespaces = sorted({path.split("/", 1)[0] for path in manifests})
    shown = ", ".join(namespaces[:SHOWN_NAMESPACES])
    if len(namespaces) > SHOWN_NAMESPACES:
        shown += f" and {len(namespaces) - SHOWN_NAMESPACES} more"
    where = f" in {_count(len(namespaces), 'namespace')} ({shown})" if namespaces else ""
    extra = f", {_count(len(values), 'values file')} ({folder.VALUES}/)" if values else ""
    return f"{_count(len(manifests), 'manifest')}{where}{extra} and {writer.KUSTOMIZATION}"


def _settings(target: str, mode: str, no_verify: bool) -> str:
    return f" (target {target}, mode {mode})" + ("; not verified (--no-verify)" if no_verify else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
