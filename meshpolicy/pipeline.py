"""The pipeline, joined in one place: parse -> resolve -> check -> lower -> render. No logic of its own."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .diagnostics import Collector, Diagnostic, MeshError
from .errors import InternalError
from .graph import invariants
from .graph.evaluate import OpenProbes
from .graph.model import AccessGraph, Mode
from .parse import parse_files
from .resolve import resolve
from .source import SourceFile, discover

if TYPE_CHECKING:  # the cache, the cluster checks, backends, templates and verifier are imported when a step needs
    # them, so that ``meshpolicy check`` does not load jsonschema, Jinja or the readers (docs/performance.md)
    from .cache import BuildCache
    from .cache.lowering import Rendered
    from .cluster import Cluster, Manifests


@dataclass
class Analysis:
    sources: dict[str, SourceFile]
    graph: AccessGraph
    diagnostics: list[Diagnostic] = field(default_factory=list)  # warnings and notes
    cluster: Cluster | None = None  # the workloads of --cluster, when given
    cache: BuildCache | None = None  # what lowering and verification may reuse (docs/cache.md)


@dataclass
class Build:
    analysis: Analysis
    files: dict[str, str]  # relative path -> text, kustomization included
    open_probes: OpenProbes = frozenset()
    diagnostics: list[Diagnostic] = field(default_factory=list)  # the analysis' and the backend's notes
    reader_options: dict = field(default_factory=dict)  # what the reader must know of the mesh's installation
    parts: list[Rendered] = field(default_factory=list)  # a by-namespace lowering's parts (verification reuses keys)


def analyze(sources: list[SourceFile], manifests: Manifests | None = None, target: str | None = None,
            cache: BuildCache | None = None) -> Analysis:
    """Parse, resolve, check the ``never`` invariants and, with ``manifests``, the policy against the
    workloads (for ``target`` where a finding depends on the mesh); raises :class:`MeshError`.
    ``cache``: syntax trees of unchanged files are reused, and the analysis carries the cache on to
    :func:`lower` and :func:`check` (docs/cache.md)."""
    port_names = None
    if manifests is not None:
        from .cluster.ports import PortNames

        port_names = PortNames(manifests.cluster)
    parsed = parse_files(sources, cache.parse) if cache is not None else parse_files(sources)
    resolved = resolve(parsed, selectors_by_pods=manifests is not None, port_names=port_names)
    broken = invariants.check(resolved.graph)
    if broken:
        raise MeshError(broken + resolved.warnings)
    if manifests is None:
        return Analysis({s.name: s for s in sources}, resolved.graph, list(resolved.warnings), cache=cache)
    from . import cluster as manifest_checks

    collected = Collector()
    collected.items = (manifests.diagnostics + manifest_checks.check(resolved.graph, manifests.cluster, target)
                       + resolved.warnings)
    collected.raise_if_errors()
    graph = replace(resolved.graph, selectors_proven_by_pods=True)  # no MP611: no pod matches two services
    return Analysis({s.name: s for s in sources}, graph, collected.warnings(), manifests.cluster, cache)


def analyze_paths(paths: list[str | Path]) -> Analysis:
    return analyze(discover(paths))


def lower(analysis: Analysis, target: str, mode: Mode = Mode.ENFORCE, verify: bool = True, **options: Any) -> Build:
    """Lower and render for ``target``; with ``verify`` (the default) prove the output equal to the source.
    A backend that lowers by namespace does so part by part (cache/lowering.py, with or without a cache).
    With the analysis' cache, the parts of unchanged namespaces (or, for other backends, the texts of
    unchanged resources) and the verdicts of unchanged namespaces are reused."""
    from .backends import get_backend
    from .output import values
    from .output.templating import oversized, render
    from .output.writer import with_kustomization

    backend = get_backend(target)(mode=mode, **options)
    collected = Collector()
    if backend.by_namespace:  # namespace by namespace, the same with and without the cache (docs/cache.md)
        from .backends.base import joined_notes
        from .cache import lowering

        parts = lowering.lower(analysis.cache, backend, analysis.graph, target, options)
        collected.items = joined_notes(parts) + analysis.diagnostics
        collected.raise_if_errors()
        collected.items.extend(d for part in parts for d in part.oversized)
        collected.raise_if_errors()
        files = {path: text for part in parts for path, text in part.files}
        emitted = sum(len(part.files) for part in parts)
    else:
        parts = []
        resources = backend.lower(analysis.graph)
        collected.items = backend.diag.items + analysis.diagnostics
        collected.raise_if_errors()
        collected.items.extend(d for res in resources if (d := oversized(res)) is not None)
        collected.raise_if_errors()
        draw = analysis.cache.render if analysis.cache is not None else render
        files = {res.path: draw(target, res) for res in resources}
        emitted = len(resources)
    if len(files) != emitted:  # a backend bug, never the user's input
        raise InternalError(f"backend {target!r} emitted two resources with the same file name")
    files.update(values.files(backend.install_values(analysis.graph)))
    result = Build(analysis, with_kustomization(files), backend.open_probes(analysis.graph), collected.warnings(),
                   backend.reader_options(), parts)
    if verify:
        check(result, target, mode)
    return result


def check(result: Build, target: str, mode: Mode = Mode.ENFORCE) -> None:
    """Translation validation: raise MP501 errors when the emitted files differ from the source."""
    from . import verify as verifier

    graph = result.analysis.graph
    cache = result.analysis.cache
    if cache is not None:
        from .cache import verification

        found = verification.verify(cache, graph, result.files, target, result.open_probes, mode,
                                    result.reader_options, result.parts)
    else:
        found = verifier.verify(graph, result.files, target, result.open_probes, mode, result.reader_options)
    if found:
        raise MeshError(verifier.diagnostics(found, graph, target) + result.diagnostics)


def build(paths: list[str | Path], target: str, mode: Mode = Mode.ENFORCE, verify: bool = True,
          **options: Any) -> Build:
    return lower(analyze_paths(paths), target, mode, verify, **options)
