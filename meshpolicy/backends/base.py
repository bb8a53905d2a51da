"""What every backend is: ``lower(graph) -> list[Resource]``; templates only lay out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..diagnostics import Collector, Diagnostic
from ..graph.evaluate import OpenProbes
from ..graph.model import AccessGraph, Mode
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


class Backend:
    """Base class of a target. Subclasses set ``name`` and implement :meth:`lower`."""

    name: ClassVar[str] = ""
    #: one line for ``meshpolicy targets``
    summary: ClassVar[str] = ""

    def __init__(self, mode: Mode = Mode.ENFORCE) -> None:
        self.mode = Mode(mode)
        self.diag = Collector()

    def lower(self, graph: AccessGraph) -> list[Resource]:
        raise NotImplementedError

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
