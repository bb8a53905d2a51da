"""Independent readers of emitted manifests: each evaluates a request the way its mesh would.

A reader sees only the emitted YAML and a :class:`World` (the pods, their
labels, ports and probes: facts about the cluster, not about the policy). It
shares no code with the backend that wrote the YAML, so the two can be
compared with the reference decider (:mod:`meshpolicy.graph.evaluate`).
Every reader implements :class:`Reader` and raises only :class:`ReaderError`
(:mod:`.base`) for manifests it cannot evaluate exactly.
"""

from __future__ import annotations

import importlib

from .base import Ambiguous, Malformed, Reader, ReaderError, Unmodelled
from .world import Workload, World

__all__ = ["READERS", "Ambiguous", "Malformed", "Reader", "ReaderError", "Unmodelled", "Workload", "World",
           "get_reader"]

#: target name -> module that defines ``Reader``
READERS: dict[str, str] = {
    "istio": "meshpolicy.readers.istio",
    "linkerd": "meshpolicy.readers.linkerd",
}


def get_reader(target: str) -> type[Reader]:
    reader: type[Reader] = importlib.import_module(READERS[target]).Reader
    return reader
