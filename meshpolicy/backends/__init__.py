"""The registry of targets. A target is one module here plus one folder in ``templates/``."""

from __future__ import annotations

import importlib

from ..errors import UsageError
from .base import Backend, Resource

__all__ = ["SUMMARIES", "TARGETS", "Backend", "Resource", "get_backend"]

#: target name -> ``module:class`` of its :class:`Backend` subclass (imported lazily)
TARGETS: dict[str, str] = {
    "istio": "meshpolicy.backends.istio:IstioBackend",
    "linkerd": "meshpolicy.backends.linkerd:LinkerdBackend",
}

#: target name -> one line on what it emits (``meshpolicy targets``), here so that listing imports no backend
SUMMARIES: dict[str, str] = {
    "istio": "Istio 1.30+ (sidecars): PeerAuthentication, AuthorizationPolicy ALLOW/DENY, namespace allow-nothing",
    "linkerd": ("Linkerd 2.20: Namespace default-deny, Server per port, HTTPRoute/GRPCRoute, "
                "MeshTLS/NetworkAuthentication, AuthorizationPolicy"),
}


def get_backend(name: str) -> type[Backend]:
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r} (one of: {', '.join(sorted(TARGETS))})")
    module, cls = TARGETS[name].split(":")
    backend: type[Backend] = getattr(importlib.import_module(module), cls)
    return backend
