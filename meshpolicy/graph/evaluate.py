"""The reference decider: LANGUAGE.md section 3, evaluated on the access graph.

This is the meaning every backend must implement. It is used by the
``never`` check, by ``explain`` and by the tests that compare it with
independent readers of the emitted YAML.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import TypeAlias

from ..source import Span
from .model import (
    AccessGraph,
    Action,
    HttpCondition,
    Identity,
    Mtls,
    PathKind,
    Rule,
    Service,
    Source,
    SourceKind,
    Token,
    path_only,
)


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
    #: the request's headers (names in lower case, each once) and the valid JWT it carries (LANGUAGE §3)
    headers: tuple[tuple[str, str], ...] = ()
    token: Token | None = None

    def __str__(self) -> str:
        dest = f"{self.namespace}/{self.service or '(undeclared workload)'}:{self.port}"
        http = f" {self.method} {self.path}" if self.method else ""
        extra = "".join(f" [{k}: {v}]" for k, v in self.headers) + (f" [{self.token}]" if self.token else "")
        return f"{self.caller} -> {dest}{http}{extra}"


@dataclass(frozen=True, slots=True)
class Seen:
    """What of the caller one side's decision of one operation looks at, beyond whether the caller has an
    identity and its address: whether its namespace is one of ``namespaces``, and whether its identity is
    one of ``identities``.

    So two callers with the same address, both with an identity or both without, whose namespaces are
    equal or both outside ``namespaces`` and whose identities are equal or both outside ``identities``,
    get the same decision of that operation (verification decides one of them for all: docs/verify.md).
    Where a side cannot say, it answers ``None`` (every caller is decided on its own).
    """

    namespaces: frozenset[str] = frozenset()
    identities: frozenset[Identity] = frozenset()

    @staticmethod
    def together(parts: Iterable[Seen | None]) -> Seen | None:
        """What all of ``parts`` look at (None when one of them cannot say)."""
        names: set[str] = set()
        idents: set[Identity] = set()
        for part in parts:
            if part is None:
                return None
            names |= part.namespaces
            idents |= part.identities
        return Seen(frozenset(names), frozenset(idents))


#: a decision that looks at nothing of the caller but its address and whether it has an identity
NOBODY = Seen()


#: (namespace, service, port) where a target opens the service's probe paths (LANGUAGE §3.5)
OpenProbes: TypeAlias = frozenset[tuple[str, str, int]]


class Reason(StrEnum):
    """Why a request is decided as it is."""

    MTLS = "mtls"              # a plaintext caller on a strict port
    DENY = "deny"              # a deny rule matches
    ALLOW = "allow"            # an allow rule matches, no deny does
    DEFAULT = "default"        # no rule matches: the managed namespace's default deny
    PROBE = "probe"            # a kubelet probe path the target keeps open
    UNMANAGED = "unmanaged"    # a namespace the policy does not manage


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason
    mtls: Mtls | None = None
    rules: tuple[Rule, ...] = field(default=())


@lru_cache(maxsize=4096)
def in_network(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)


def source_matches(src: Source, caller: Caller) -> bool:
    if src.kind is SourceKind.ANY:
        return True
    if src.kind is SourceKind.CIDR:
        return in_network(caller.ip, src.cidr)
    ident = caller.identity
    if ident is None:
        return False
    if src.kind is SourceKind.MESH:
        return True
    if src.kind is SourceKind.NAMESPACE:
        return ident.namespace == src.namespace
    return ident.namespace == src.namespace and ident.account == src.account


def http_matches(rule: Rule, req: Request) -> bool:
    """The rule's methods, paths and gRPC calls (those it gives) match the request (:meth:`Rule.http_matches`)."""
    return rule.http_matches(req.method, req.path)


def rule_matches(rule: Rule, req: Request) -> bool:
    """A source, the destination, a method, a path and a port all match (LANGUAGE §3)."""
    if not rule.covers(req.namespace, req.service):
        return False
    if rule.ports and req.port not in rule.ports:
        return False
    if not any(source_matches(s, req.caller) for s in rule.sources):
        return False
    return http_matches(rule, req) and rule.conditions_hold(req.headers, req.token)


def is_probe(svc: Service, req: Request) -> bool:
    return req.method == "GET" and req.path is not None and path_only(req.path) in svc.probes


class Decider:
    """The reference decider for one graph, indexed once so that deciding many requests stays cheap.

    ``open_probes`` lists (namespace, service, port) where a target opens the
    service's probe paths to unauthenticated GETs from anywhere (LANGUAGE §3.5).
    """

    def __init__(self, graph: AccessGraph, open_probes: OpenProbes = frozenset()):
        self.graph = graph
        self.open_probes = open_probes
        self.managed = {ns.name for ns in graph.managed_namespaces}
        self.services = {svc.key: svc for svc in graph.services}
        #: the rules of each workload, ``NS/**`` rules included, in the graph's order; (NS, None): an
        #: undeclared workload of NS, which only ``NS/**`` rules reach
        self.rules: dict[tuple[str, str | None], list[Rule]] = {}
        own: dict[tuple[str, str], list[tuple[int, Rule]]] = {}
        wide: dict[str, list[tuple[int, Rule]]] = {}
        for i, rule in enumerate(graph.rules):
            if rule.wide:
                wide.setdefault(rule.destination[0], []).append((i, rule))
            else:
                own.setdefault(rule.destination, []).append((i, rule))
        for key in set(own) | {(svc.namespace, svc.name) for svc in graph.services if svc.namespace in wide}:
            self.rules[key] = [r for _, r in sorted(own.get(key, []) + wide.get(key[0], []), key=lambda e: e[0])]
        for ns, found in wide.items():
            self.rules[(ns, None)] = [r for _, r in found]
        self._modes: dict[tuple, Mtls] = {}
        self._indexes: dict[tuple[str, str | None], _RuleIndex] = {}
        self._fitting: dict[tuple, tuple[int, ...]] = {}
        self._fitting_of: tuple[str, str | None] | None = None

    def decide(self, req: Request) -> Decision:
        if req.namespace not in self.managed:
            return Decision(True, Reason.UNMANAGED)
        svc = self.services.get((req.namespace, req.service)) if req.service is not None else None
        if svc is not None and (req.namespace, req.service, req.port) in self.open_probes and is_probe(svc, req):
            return Decision(True, Reason.PROBE)
        mode = self._mode(svc, req.namespace, req.port)
        if mode is Mtls.STRICT and req.caller.identity is None:
            return Decision(False, Reason.MTLS, mode)
        key = (req.namespace, svc.name if svc is not None else None)
        rules = self.rules.get(key, ())
        fitting = (rules[i] for i in self._operation(key, req))
        matched = [rule for rule in fitting if any(source_matches(s, req.caller) for s in rule.sources)
                   and rule.conditions_hold(req.headers, req.token)]
        denies = tuple(r for r in matched if r.action is Action.DENY)
        if denies:
            return Decision(False, Reason.DENY, mode, denies)
        allows = tuple(r for r in matched if r.action is Action.ALLOW)
        if allows:
            return Decision(True, Reason.ALLOW, mode, allows)
        return Decision(False, Reason.DEFAULT, mode)

    def seen(self, req: Request) -> Seen:
        """What of the caller :meth:`decide` looks at for ``req``'s destination and operation (``req.caller`` is
        not read): the namespaces and identities the sources of the rules that fit the operation name.

        Exact: ``decide`` reads the caller in the mTLS check (an identity or none) and in the sources of the
        rules whose port, methods, paths and conditions fit, and nowhere else; ``any``, ``*`` and a network
        depend on the identity's presence and the address alone (:func:`source_matches`).
        """
        if req.namespace not in self.managed:
            return NOBODY
        svc = self.services.get((req.namespace, req.service)) if req.service is not None else None
        if svc is not None and (req.namespace, req.service, req.port) in self.open_probes and is_probe(svc, req):
            return NOBODY
        key = (req.namespace, svc.name if svc is not None else None)
        rules = self.rules.get(key, ())
        names: set[str] = set()
        idents: set[Identity] = set()
        for i in self._operation(key, req):
            rule = rules[i]
            if not rule.conditions_hold(req.headers, req.token):
                continue
            for src in rule.sources:
                if src.kind is SourceKind.NAMESPACE:
                    names.add(src.namespace)
                elif src.kind is SourceKind.IDENTITY:
                    idents.add(Identity(src.namespace, src.account))
        return Seen(frozenset(names), frozenset(idents))

    def may_refuse(self, req: Request) -> bool:
        """Whether a target may refuse ``req`` before any rule: it carries a token of an issuer that none of its
        destination's rules name (LANGUAGE §3; the space holds only valid tokens, so no other kind arises)."""
        if req.token is None or req.service is None:
            return False
        return all(req.token.issuer not in r.issuers for r in self.rules.get((req.namespace, req.service), ()))

    def _mode(self, svc: Service | None, namespace: str, port: int) -> Mtls:
        key = (namespace, svc.name if svc else None, port)
        if key not in self._modes:
            self._modes[key] = self.graph.mtls_for(svc, namespace, port)
        return self._modes[key]

    def _operation(self, service: tuple[str, str | None], req: Request) -> tuple[int, ...]:
        """Indexes, in order, of the rules of ``service`` whose port, methods, paths and gRPC fit the request
        (whoever sends it), remembered per operation and found through :class:`_RuleIndex`."""
        key = (service, req.port, req.method, req.path)
        if service != self._fitting_of:  # verification asks about one workload at a time: remember only its own
            self._fitting.clear()
            self._indexes.clear()
            self._fitting_of = service
        found = self._fitting.get(key)
        if found is None:
            index = self._indexes.get(service)
            if index is None:
                index = self._indexes[service] = _RuleIndex(self.rules.get(service, []))
            rules = self.rules.get(service, ())
            found = self._fitting[key] = tuple(
                i for i in sorted(index.candidates(req.port, req.path))
                if (not rules[i].ports or req.port in rules[i].ports) and rules[i].http_matches(req.method, req.path))
        return found


class _RuleIndex:
    """The rules of one workload found by port and path: a request's port and the prefixes and suffixes of its
    path are looked up, instead of every rule tested (quadratic for many rules on one workload: issue 12,
    docs/performance.md). The candidates are a superset of the rules that fit; the decider tests each."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.any_port: list[int] = []
        self.by_port: dict[int, list[int]] = {}
        for i, rule in enumerate(rules):
            for port in rule.ports:
                self.by_port.setdefault(port, []).append(i)
            if not rule.ports:
                self.any_port.append(i)
        self._at: dict[int, _ByPath] = {}

    def candidates(self, port: int, path: str | None) -> set[int]:
        found = self._at.get(port)
        if found is None:
            found = self._at[port] = _ByPath((i, self.rules[i]) for i in self.any_port + self.by_port.get(port, []))
        return found.candidates(path)


class _ByPath:
    """Rules by the paths they match: exact, segment prefix, character prefix, suffix (:class:`PathMatch`), a
    gRPC method as its exact path and a gRPC service as the prefix ``/SERVICE/``; a rule without either
    fits every path."""

    def __init__(self, rules: Iterable[tuple[int, Rule]]):
        self.always: list[int] = []
        self.tables: dict[PathKind, dict[str, list[int]]] = {kind: {} for kind in PathKind}
        for i, rule in rules:
            if rule.paths:
                for m in rule.paths:
                    self.tables[m.kind].setdefault(m.value, []).append(i)
            elif rule.grpc:
                for g in rule.grpc:
                    kind, value = (PathKind.EXACT, f"/{g.service}/{g.method}") if g.method else \
                        (PathKind.STARTS, f"/{g.service}/")
                    self.tables[kind].setdefault(value, []).append(i)
            else:
                self.always.append(i)

    def candidates(self, path: str | None) -> set[int]:
        found = set(self.always)
        if path is None:
            return found
        path = path_only(path)
        exact, segment, starts, suffix = (self.tables[k] for k in (PathKind.EXACT, PathKind.PREFIX, PathKind.STARTS,
                                                                      PathKind.SUFFIX))
        for table, key in ((exact, path), (segment, path)):
            found.update(table.get(key, ()))
        for i in range(len(path) + 1):
            head = path[:i]
            if segment and i < len(path) and path[i] == "/":
                found.update(segment.get(head, ()))
            if starts:
                found.update(starts.get(head, ()))
            if suffix:
                found.update(suffix.get(path[i:], ()))
        return found


def decide(graph: AccessGraph, req: Request, open_probes: OpenProbes = frozenset()) -> Decision:
    """Decide one request (for many, build one :class:`Decider`)."""
    return Decider(graph, open_probes).decide(req)


def mismatches(rule: Rule, req: Request) -> list[str]:
    """Why ``rule`` does not match ``req``: one phrase per condition that fails (empty when it matches)."""
    out: list[str] = []
    if not rule.covers(req.namespace, req.service):
        out.append(f"it protects {rule.target}, not "
                   f"{req.namespace}/{req.service or '(an undeclared workload)'}")
    if not any(source_matches(s, req.caller) for s in rule.sources):
        who = str(req.caller.identity) if req.caller.identity else f"a plaintext client at {req.caller.ip}"
        out.append(f"source: {who} is not {', '.join(str(s) for s in rule.sources)}")
    if rule.ports and req.port not in rule.ports:
        out.append(f"port: {req.port} is not {', '.join(str(p) for p in rule.ports)}")
    failed = rule.http_mismatches(req.method, req.path)
    if HttpCondition.METHODS in failed:
        out.append(f"method: {req.method or 'none (not HTTP)'} is not {', '.join(rule.methods)}")
    if HttpCondition.PATHS in failed:
        out.append(f"path: {req.path or 'none (not HTTP)'} is not {', '.join(str(p) for p in rule.paths)}")
    if HttpCondition.GRPC in failed:
        out.append(f"grpc: {req.method or '-'} {req.path or '-'} is not a call to "
                   f"{', '.join(str(g) for g in rule.grpc)}")
    for cond in rule.failed_conditions(req.headers, req.token):
        out.append(f"condition: {cond} does not hold")
    return out


def nearest_allow(graph: AccessGraph, req: Request) -> tuple[Rule, list[str]] | None:
    """The allow rule for the request's destination with the fewest failing conditions, and what failed.

    Ties go to the rule that comes first in the sorted graph (file, then line).
    A plaintext caller on a strict port also fails the mTLS condition of every rule.
    """
    svc = graph.service((req.namespace, req.service)) if req.service is not None else None
    mode = graph.mtls_for(svc, req.namespace, req.port)
    best: tuple[Rule, list[str]] | None = None
    for rule in graph.rules_covering(req.namespace, req.service, Action.ALLOW):
        failed = mismatches(rule, req)
        if mode is Mtls.STRICT and req.caller.identity is None:
            failed.append("mtls: the port is strict and the caller is plaintext")
        if best is None or len(failed) < len(best[1]):
            best = (rule, failed)
    return best


def mtls_origin(graph: AccessGraph, namespace: str, service: str | None, port: int) -> Span | None:
    """Where the mTLS mode of a port is set: the service, the namespace, the mesh, or None (the default)."""
    svc = graph.service((namespace, service)) if service is not None else None
    if svc is not None and (svc.mtls is not None or any(n == port for n, _ in svc.port_mtls)):
        return svc.origins[0] if svc.origins else None
    ns = graph.namespace(namespace)
    if ns is not None and ns.mtls is not None:
        return ns.mtls_origin
    return graph.mesh_mtls_origin
