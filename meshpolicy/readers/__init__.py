"""Independent readers of emitted manifests: each evaluates a request the way its mesh would.

A reader sees only the emitted YAML and a :class:`World` (the pods, their
labels, ports and probes: facts about the cluster, not about the policy). It
shares no code with the backend that wrote the YAML, so the two can be
compared with the reference decider (:mod:`meshpolicy.graph.evaluate`).
"""

from __future__ import annotations

import importlib

from .world import Workload, World

__all__ = ["READERS", "Workload", "World", "get_reader", "reader_errors"]

#: target name -> module that defines ``Reader``
READERS: dict[str, str] = {
    "istio": "meshpolicy.readers.istio",
    "linkerd": "meshpolicy.readers.linkerd",
}


def get_reader(target: str):
    return importlib.import_module(READERS[target]).Reader


def reader_errors(target: str) -> tuple[type[Exception], ...]:
    """The exceptions a target's reader raises for manifests it cannot evaluate exactly.

    By convention ``Unmodelled`` (a construct the reader does not model) and
    ``Ambiguous`` (the mesh would pick by creation time); a reader may define either.
    """
    module = importlib.import_module(READERS[target])
    return tuple(getattr(module, name) for name in ("Unmodelled", "Ambiguous") if hasattr(module, name))
