"""What every backend is: ``lower(graph) -> list[Resource]``; templates only lay out.

A backend may also lower **by namespace** (:attr:`Backend.by_namespace`): its output is then the *mesh
part* (what lies outside the managed namespaces, from :func:`slices`' mesh slice) followed by one part per
managed namespace, each lowered from that namespace's slice of the graph alone. The build cache reuses a
namespace's part while its slice is unchanged (docs/cache.md, "Lowering by namespace").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from ..diagnostics import Collector, Diagnostic
from ..graph.evaluate import OpenProbes
from ..graph.model import AccessGraph, Mode, Namespace, Rule, Service
from ..source import Span
from .limits import source_text


@dataclass(frozen=True, slots=True)
class Resource:
    """One Kubernetes resource, fully decided; ``template`` names the file that lays it out."""

    api_version: str
    kind: str
    namespace: str
    name: str
    spec: dict[str, Any] | None
    origins: tuple[Span, ...]
    annotations: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        """``NAMESPACE/KIND-NAME.yaml`` (LANGUAGE §5); cluster-scoped kinds use their own name as folder."""
        return f"{self.namespace}/{self.kind.lower()}-{self.name}.yaml"

    @property
    def template(self) -> str:
        return f"{self.kind.lower()}.yaml.j2"

    @property
    def source(self) -> str:
        """The lines the resource comes from, for the provenance annotation: bounded (``limits.SOURCE_LIMIT``)."""
        return source_text(sorted({(s.file, s.line) for s in self.origins}))


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a by-namespace lowering: the mesh part (``namespace`` None) or one managed namespace's.
    ``notes``: the diagnostics its lowering gave, in order; ``closing``: those of :meth:`Backend.close` on
    its resources, which come after every part's ``notes``."""

    namespace: str | None
    resources: tuple[Resource, ...]
    notes: tuple[Diagnostic, ...]
    closing: tuple[Diagnostic, ...]


def slices(graph: AccessGraph) -> list[tuple[Namespace | None, AccessGraph]]:
    """The graph as each part of a by-namespace lowering sees it: first the mesh slice (``None``: every field
    of the graph but its namespaces, services, rules and invariants, which are empty), then, for each managed
    namespace in the graph's order, the graph with only that namespace, its services, and the rules and
    invariants whose destination is in it. Everything else (trust domain, mesh mTLS, issuers, authority, their
    spans) is in every slice."""
    services: dict[str, list[Service]] = {}
    for svc in graph.services:
        services.setdefault(svc.namespace, []).append(svc)
    rules: dict[str, list[Rule]] = {}
    for rule in graph.rules:
        rules.setdefault(rule.destination[0], []).append(rule)
    invariants: dict[str, list[Rule]] = {}
    for rule in graph.invariants:
        invariants.setdefault(rule.destination[0], []).append(rule)
    out: list[tuple[Namespace | None, AccessGraph]] = [
        (None, replace(graph, namespaces=(), services=(), rules=(), invariants=()))]
    for ns in graph.managed_namespaces:
        out.append((ns, replace(graph, namespaces=(ns,), services=tuple(services.get(ns.name, ())),
                                rules=tuple(rules.get(ns.name, ())), invariants=tuple(invariants.get(ns.name, ())))))
    return out


class Noted(Protocol):
    """A part with its diagnostics: :class:`Part`, or a part rendered and kept by the cache."""

    @property
    def notes(self) -> tuple[Diagnostic, ...]: ...

    @property
    def closing(self) -> tuple[Diagnostic, ...]: ...


def joined_notes(parts: Sequence[Noted]) -> list[Diagnostic]:
    """The diagnostics of the parts, as one whole lowering gives them: every part's notes, then every part's
    closing notes, each diagnostic once (the first time), as :class:`Collector` keeps them."""
    seen: set[Diagnostic] = set()
    out: list[Diagnostic] = []
    for diag in [d for part in parts for d in part.notes] + [d for part in parts for d in part.closing]:
        if diag not in seen:
            seen.add(diag)
            out.append(diag)
    return out


class Backend:
    """Base class of a target. Subclasses set ``name`` and implement :meth:`lower`, or set
    :attr:`by_namespace` and implement :meth:`lower_mesh` and :meth:`lower_namespace` (and :meth:`close`)."""

    name: ClassVar[str] = ""
    #: one line for ``meshpolicy targets``
    summary: ClassVar[str] = ""
    #: the backend lowers by namespace: each part reads nothing of the graph beyond its slice (:func:`slices`)
    #: and gives its diagnostics in its own :attr:`diag`, so that its resources and diagnostics are a function
    #: of that slice, the mode and the constructor's options (the build cache's key for it)
    by_namespace: ClassVar[bool] = False

    def __init__(self, mode: Mode = Mode.ENFORCE) -> None:
        self.mode = Mode(mode)
        self.diag = Collector()

    def lower(self, graph: AccessGraph) -> list[Resource]:
        """The parts' resources in order, their notes in :attr:`diag` (a backend that lowers by namespace keeps
        this; the others replace it)."""
        parts = [self.lower_part(piece, ns) for ns, piece in slices(graph)]
        for diag in joined_notes(parts):
            self.diag.items.append(diag)
        return [res for part in parts for res in part.resources]

    def lower_part(self, piece: AccessGraph, ns: Namespace | None) -> Part:
        """One part, from its slice ``piece`` (:func:`slices`), with a collector of its own: a part's
        diagnostics do not depend on what another part reported."""
        saved, self.diag = self.diag, Collector()
        try:
            resources = self.lower_mesh(piece) if ns is None else self.lower_namespace(piece, ns)
            notes = tuple(self.diag.items)
            self.diag = Collector()
            self.close(resources)
            return Part(None if ns is None else ns.name, tuple(resources), notes, tuple(self.diag.items))
        finally:
            self.diag = saved

    def lower_mesh(self, graph: AccessGraph) -> list[Resource]:
        """By namespace: what lies outside the managed namespaces, from the mesh slice."""
        raise NotImplementedError

    def lower_namespace(self, graph: AccessGraph, ns: Namespace) -> list[Resource]:
        """By namespace: namespace ``ns``'s resources, from its slice."""
        raise NotImplementedError

    def close(self, resources: list[Resource]) -> None:
        """By namespace: notes about one part's whole output (its resources), reported after every part's."""

    def open_probes(self, graph: AccessGraph) -> OpenProbes:
        """(namespace, service, port) where this target opens probe paths (LANGUAGE §3.5)."""
        return frozenset()

    def install_values(self, graph: AccessGraph) -> dict[str, dict[str, Any]]:
        """Install values the policy decides (Helm values of the mesh's charts), by file name: not Kubernetes
        objects, so the output keeps them beside the manifests, outside the kustomization (docs/output.md)."""
        return {}

    def reader_options(self) -> dict[str, Any]:
        """What the target's reader must be told about the mesh's installation to read this output exactly
        (the facts this backend was given, e.g. Istio's root namespace), as keyword arguments of ``Reader``."""
        return {}

    def notes(self) -> list[Diagnostic]:
        return self.diag.warnings()

    def unsupported(self, construct: str, span: Span | None, hint: str | None = None) -> None:
        """A construct this target cannot express exactly: always an error (LANGUAGE §4)."""
        self.diag.error("MP301", f"{construct} cannot be expressed exactly on target '{self.name}'", span, hint)
