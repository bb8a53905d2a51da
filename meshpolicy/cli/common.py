"""What every command shares: exit codes and the error boundary (output formats: :mod:`.formatters`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..diagnostics import Diagnostic, MeshError, Severity
from ..errors import UsageError
from ..source import SourceFile, discover
from .formatters import FORMATS, emit_diagnostics

if TYPE_CHECKING:  # the pipeline, the cache and the cluster reader are imported late, when a command needs them
    from ..cache import BuildCache
    from ..cluster.reader import Manifests
    from ..pipeline import Analysis

#: the policy compiled (and, with --check, the output is up to date)
EXIT_OK = 0
#: the policy has errors, an invariant is violated, or --check found drift
EXIT_FINDINGS = 1
#: bad invocation: unknown option or target, unreadable path, unusable --crds or --out folder
EXIT_USAGE = 2


#: a bad invocation found by a command: ``raise Fail("--out needs --target")`` prints one line and exits 2
Fail = UsageError


@contextmanager
def boundary(sources: Callable[[], Mapping[str, SourceFile]] = dict, fmt: str = "human",
             err: bool = True) -> Iterator[None]:
    """The one place where failures become messages and exit codes; no traceback for bad input.

    It relies on the kinds of :mod:`meshpolicy.errors`: a ``MeshError`` (the policy) prints its
    diagnostics and exits 1; a ``UsageError`` (the invocation, a path, a folder) prints one line and
    exits 2 (an ``OutputError`` as MP401); an ``InternalError`` or any other exception is a bug and
    is left to end in a traceback. Diagnostics go to stderr (``err``), or to stdout for commands whose
    findings are their result (lint).
    """
    try:
        yield
    except MeshError as exc:
        emit_diagnostics(exc.diagnostics, sources(), fmt if fmt in FORMATS else "human", err)
        raise typer.Exit(EXIT_FINDINGS) from None
    except UsageError as exc:
        if _is_output_error(exc):
            emit_diagnostics([Diagnostic("MP401", Severity.ERROR, str(exc))], {},
                             fmt if fmt in FORMATS else "human", err)
            raise typer.Exit(EXIT_USAGE) from None
        typer.echo(f"meshpolicy: error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as exc:  # the file system refused (permissions, a name too long, a full disk): not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"meshpolicy: error: {where}{exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _is_output_error(exc: UsageError) -> bool:
    """An :class:`~meshpolicy.output.writer.OutputError` (MP401)? Only a command that loaded the writer can
    raise one, so the writer is not imported for the others (``check``, ``targets``: issue 12)."""
    writer = sys.modules.get("meshpolicy.output.writer")
    return writer is not None and isinstance(exc, writer.OutputError)


#: ``--cluster``, shared by check, build, lint and explain (repeatable: Click options take one value each)
ClusterOption = Annotated[list[str] | None, typer.Option(
    "--cluster", metavar="PATH",
    help="Kubernetes manifests (file, folder, or - for stdin; repeatable) to check the policy against "
         "(docs/cluster.md).")]


#: ``--cache-dir`` and ``--no-cache`` (docs/cache.md)
CacheDirOption = Annotated[Path | None, typer.Option(
    "--cache-dir", metavar="DIR",
    help="Build cache folder (default: $MESHPOLICY_CACHE_DIR/build, else ~/.cache/meshpolicy/build): unchanged "
         "files, resources and namespaces are reused, and the output is the same as without it (docs/cache.md).")]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Build without reading or writing the cache.")]


def read_manifests(cluster: list[str] | None, sources: dict[str, SourceFile]) -> Manifests | None:
    """The manifests of ``--cluster`` (None without it); their texts join ``sources`` for the excerpts."""
    if not cluster:
        return None
    from ..cluster import read

    manifests = read(cluster)
    sources.update(manifests.sources)
    return manifests


def read_policy(paths: Sequence[str | Path], sources: dict[str, SourceFile], cluster: list[str] | None = None,
                target: str | None = None, cache: BuildCache | None = None) -> Analysis:
    """Discover and analyze the policy (against ``--cluster`` manifests when given); ``sources`` is filled
    first, so that errors show their lines. ``cache``: the build cache (docs/cache.md)."""
    from .. import (
        pipeline,  # the CLI's one way in; imported late to keep this module light
    )

    files = discover(list(paths))
    sources.update({s.name: s for s in files})
    return pipeline.analyze(files, read_manifests(cluster, sources), target, cache)


def choose(value: str, allowed: list[str] | tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise Fail(f"{option} must be one of: {', '.join(allowed)} (got {value!r})")
    return value


#: ``--istio-root-namespace``, shared by every command that builds or reads Istio output
ISTIO_ROOT_HELP = ("istio only: the mesh's root namespace (meshConfig.rootNamespace), where a mesh-wide "
                   "PeerAuthentication goes; its services are refused. Default istio-system.")


def target_options(target: str | None, *, linkerd_routes: str | None = None,
                   istio_root_namespace: str | None = None, namespaces: str | None = None) -> dict[str, str]:
    """The build's target options as keyword arguments of the target's backend; refuses another target's."""
    from ..backends.namespaces import CHOICES
    from ..resolve.names import DNS_LABEL

    options: dict[str, str] = {}
    if namespaces is not None:
        options["namespaces"] = choose(namespaces, CHOICES, "--namespaces")
    if linkerd_routes is not None:
        if target != "linkerd":
            raise Fail(f"--linkerd-routes applies to --target linkerd only (got --target {target})")
        options["routes"] = choose(linkerd_routes, ("gateway", "policy"), "--linkerd-routes")
    if istio_root_namespace is not None:
        if target != "istio":
            raise Fail(f"--istio-root-namespace applies to --target istio only (got --target {target})")
        if not DNS_LABEL.match(istio_root_namespace) or len(istio_root_namespace) > 63:
            raise Fail(f"--istio-root-namespace must be a namespace name (a DNS-1123 label), "
                       f"got {istio_root_namespace!r}")
        options["root_namespace"] = istio_root_namespace
    return options


NAMESPACES_HELP = ("emit: write a Namespace per managed namespace (prune-protected; the default on linkerd); "
                   "skip: write none, and note the labels and annotations each must carry (the default on istio).")


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
