"""The registry of targets. A target is one module here plus one folder in ``templates/``."""

from __future__ import annotations

import importlib

from ..errors import UsageError
from .base import Backend, Resource

__all__ = ["TARGETS", "Backend", "Resource", "get_backend"]

#: target name -> module that defines ``Backend`` (imported lazily)
TARGETS: dict[str, str] = {
    "istio": "meshpolicy.backends.istio",
    "linkerd": "meshpolicy.backends.linkerd",
}


def get_backend(name: str) -> type[Backend]:
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r} (one of: {', '.join(sorted(TARGETS))})")
    return importlib.import_module(TARGETS[name]).Backend
