"""The reference decider: LANGUAGE.md section 3, evaluated on the access graph.

This is the meaning every backend must implement. It is used by the
``never`` check, by ``explain`` and by the tests that compare it with
independent readers of the emitted YAML.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .model import AccessGraph, Action, Identity, Mtls, Rule, Service, Source, SourceKind


@dataclass(frozen=True, slots=True, order=True)
class Caller:
    """Who calls: a mesh identity over mTLS, or a plaintext client; both have an address."""

    identity: Identity | None
    ip: str

    def __str__(self) -> str:
        if self.identity is None:
            return f"plaintext client {self.ip}"
        return f"{self.identity} (mTLS, from {self.ip})"


@dataclass(frozen=True, slots=True, order=True)
class Request:
    caller: Caller
    namespace: str
    service: str | None      # None: a workload the policy does not declare
    port: int
    method: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        dest = f"{self.namespace}/{self.service or '(undeclared workload)'}:{self.port}"
        http = f" {self.method} {self.path}" if self.method else ""
        return f"{self.caller} -> {dest}{http}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str                      # mtls | deny | allow | default | probe | unmanaged
    mtls: Mtls | None = None
    rules: tuple[Rule, ...] = field(default=())


def source_matches(src: Source, caller: Caller) -> bool:
    if src.kind is SourceKind.ANY:
        return True
    if src.kind is SourceKind.CIDR:
        return ipaddress.ip_address(caller.ip) in src.network
    ident = caller.identity
    if ident is None:
        return False
    if src.kind is SourceKind.MESH:
        return True
    if src.kind is SourceKind.NAMESPACE:
        return ident.namespace == src.namespace
    return ident.namespace == src.namespace and ident.account == src.account


def rule_matches(rule: Rule, req: Request) -> bool:
    """A source, the destination, a method, a path and a port all match (LANGUAGE §3)."""
    if req.service is None or rule.destination != (req.namespace, req.service):
        return False
    if rule.ports and req.port not in rule.ports:
        return False
    if not any(source_matches(s, req.caller) for s in rule.sources):
        return False
    if rule.methods and req.method not in rule.methods:
        return False
    if rule.paths and (req.path is None or not any(p.matches(req.path) for p in rule.paths)):
        return False
    if rule.grpc and (req.method != "POST" or req.path is None
                      or not any(g.matches(req.path) for g in rule.grpc)):
        return False
    return True


def is_probe(svc: Service, req: Request) -> bool:
    return req.method == "GET" and req.path is not None and req.path in svc.probes


def decide(graph: AccessGraph, req: Request,
           open_probes: frozenset[tuple[str, str, int]] = frozenset()) -> Decision:
    """Decide one request.

    ``open_probes`` lists (namespace, service, port) where a target opens the
    service's probe paths to unauthenticated GETs from anywhere (LANGUAGE §3.5).
    """
    ns = graph.namespace(req.namespace)
    managed = ns is not None and any(n.name == req.namespace for n in graph.managed_namespaces)
    if not managed:
        return Decision(True, "unmanaged")
    svc = None
    if req.service is not None:
        svc = graph.service((req.namespace, req.service))
        if svc is not None and (req.namespace, req.service, req.port) in open_probes and is_probe(svc, req):
            return Decision(True, "probe")
    mode = graph.mtls_for(svc, req.namespace, req.port)
    if mode is Mtls.STRICT and req.caller.identity is None:
        return Decision(False, "mtls", mode)
    if svc is None:
        return Decision(False, "default", mode)
    rules = graph.rules_for(svc.key)
    denies = tuple(r for r in rules if r.action is Action.DENY and rule_matches(r, req))
    if denies:
        return Decision(False, "deny", mode, denies)
    allows = tuple(r for r in rules if r.action is Action.ALLOW and rule_matches(r, req))
    if allows:
        return Decision(True, "allow", mode, allows)
    return Decision(False, "default", mode)
