"""Lowering and rendering by namespace, through the cache when given one (docs/cache.md, "Lowering by namespace").

For a backend that lowers by namespace (``Backend.by_namespace``), the output is the mesh part followed by
one part per managed namespace, each lowered from its slice of the graph alone (``backends.base.slices``).
A part's rendered files and diagnostics are therefore a function of its slice, the target, the mode, the
backend's options and the code, and that is the key of its entry (``lowered``): a rebuild after an edit
lowers and renders again only the parts whose slice changed, and looks up one entry per namespace instead
of one per manifest.

The build without a cache runs the very same function with ``cache`` None, so that both lower from the
same slices and join the parts in the same order. A part whose diagnostics hold an error (or a resource
too large for the API server, MP404) is not stored: the build fails as it would without the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, Part, slices
from ..diagnostics import Diagnostic, Severity
from ..graph.model import AccessGraph, Namespace
from ..output.templating import oversized, render

if TYPE_CHECKING:
    from . import BuildCache


@dataclass(frozen=True, slots=True)
class Rendered:
    """One part, rendered: its files (path, text) in the backend's order, its diagnostics (``Part``), and
    MP404 for each resource too large to apply. ``key``: its entry's key (None: not kept), which verification
    reuses for the namespace's verdict (the slice holds the namespace's rules)."""

    namespace: str | None
    files: tuple[tuple[str, str], ...]
    notes: tuple[Diagnostic, ...]
    closing: tuple[Diagnostic, ...]
    oversized: tuple[Diagnostic, ...]
    key: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.oversized) or any(d.severity is Severity.ERROR for d in self.notes + self.closing)


def lower(cache: BuildCache | None, backend: Backend, graph: AccessGraph, target: str,
          options: dict[str, Any]) -> list[Rendered]:
    """Every part of ``backend``'s by-namespace lowering of ``graph``, rendered, in order; parts whose key
    is in ``cache`` are read, not lowered. ``options``: the backend's constructor options (part of the key)."""
    out = []
    for ns, piece in slices(graph):
        key = None
        if cache is not None:
            key = cache.key("lowered", target, str(backend.mode), sorted(options.items()), piece)
        out.append(_part(cache, key, backend, piece, ns, target))
    return out


def _part(cache: BuildCache | None, key: str | None, backend: Backend, piece: AccessGraph, ns: Namespace | None,
          target: str) -> Rendered:
    def compute() -> Rendered:
        part: Part = backend.lower_part(piece, ns)
        too_large = tuple(d for res in part.resources if (d := oversized(res)) is not None)
        # rendered without the per-resource entries: the part's entry keeps its texts already, and a part
        # lowered again is one namespace (keeping each text twice made a large mesh's cache evict its trees)
        files = tuple((res.path, render(target, res)) for res in part.resources) if not too_large else ()
        return Rendered(part.namespace, files, part.notes, part.closing, too_large)

    if cache is None:
        return compute()
    found = cache.cached("lowered", key, compute, keep=lambda value: not value.failed)
    return Rendered(found.namespace, found.files, found.notes, found.closing, found.oversized, key)
