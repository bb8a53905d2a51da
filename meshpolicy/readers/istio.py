"""Evaluate a request against emitted Istio manifests, as a sidecar would.

Written from ../shared/targets/istio.md, independently of the Istio backend:
PeerAuthentication precedence (§12), policy scope (§2), evaluation order
(§1), combination rules (§4), field and string matching (§5, §6), and HTTP-only
fields on TCP ports (§9). The manifests are parsed once into the records below
(:func:`parse`), which refuse every construct the reader does not evaluate
(:class:`Unmodelled`) or cannot read (:class:`Malformed`), so that a test can
never pass by ignoring them; the decision is then taken over the records.

The string, path and port matching here is Istio's (§5, §6), written from its
documentation: the reader never reuses the IR's meaning of a match
(:mod:`meshpolicy.graph`), or comparing the two would prove nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from functools import lru_cache
from typing import Any, ClassVar

from ..errors import InternalError
from ..graph.evaluate import Caller, Request, Seen
from ..graph.model import Identity
from ..graph.space import Mentions
from .base import Ambiguous, Fields, Malformed, ResourceRef, Unmodelled, api_group, deciding, header
from .world import Selections, Workload, World

__all__ = ["Ambiguous", "Malformed", "Reader", "Unmodelled", "match_string", "parse"]

ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace by default (§2); the build's --istio-root-namespace
GROUP = "security.istio.io"
_PRINCIPAL = re.compile(r"^[^/*]+/ns/([^/*]+)/sa/([^/*]+)$")
_NAMESPACE_PRINCIPAL = re.compile(r"^[^/*]+/ns/([^/*]+)/sa/\*$")  # every account of a namespace
_MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")


def match_string(pattern: str, value: str | None) -> bool:
    """§6: exact, ``prefix*``, ``*suffix``, or ``*`` = present."""
    if value is None:
        return False
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


@lru_cache(maxsize=4096)
def _namespace_match(pattern: str, value: str) -> bool:
    """§5: every ``*`` in a namespaces value becomes ``.*``."""
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(regex, value) is not None


@lru_cache(maxsize=4096)
def _ip_match(block: str, value: str) -> bool:
    return ipaddress.ip_address(value) in ipaddress.ip_network(block, strict=False)


def _port_match(pattern: str, value: str) -> bool:
    return pattern == value  # §5: ports are exact, no wildcards


# -- the records: the manifests, parsed once ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Values:
    """One field and its ``not`` form, e.g. ``principals``/``notPrincipals``."""

    values: tuple[str, ...] = ()
    nots: tuple[str, ...] = ()

    @property
    def named(self) -> tuple[str, ...]:
        return self.values + self.nots

    def admits(self, attr: str | None, match: Callable[[str, str], bool]) -> bool:
        """§4: an absent attribute fails the positive matchers and passes the negative ones."""
        pos = not self.values or (attr is not None and _any_match(self.values, attr, match))
        neg = not self.nots or attr is None or not _any_match(self.nots, attr, match)
        return pos and neg


#: a list of more patterns than this is matched through a :class:`_Patterns` (lookups, not a scan)
_INDEXED_FROM = 8
_PATTERNS: dict[tuple[int, bool], tuple[tuple[str, ...], _Patterns]] = {}


def _any_match(patterns: tuple[str, ...], value: str, match: Callable[[str, str], bool]) -> bool:
    """Whether one of ``patterns`` matches ``value``; for many patterns of §6 (``match_string``) or ports (§5, exact)
    by lookups of the value's prefixes and suffixes: a rule with a thousand paths or ports was scanned for
    every request (quadratic: issue 12, docs/performance.md)."""
    if len(patterns) <= _INDEXED_FROM or match not in (match_string, _port_match):
        return any(match(p, value) for p in patterns)
    key = (id(patterns), match is _port_match)
    found = _PATTERNS.get(key)
    if found is None or found[0] is not patterns:
        if len(_PATTERNS) >= 4096:
            _PATTERNS.clear()
        found = _PATTERNS[key] = (patterns, _Patterns.of(patterns, exact_only=match is _port_match))
    return found[1].matches(value)


@dataclass(frozen=True, slots=True)
class _Patterns:
    """§6 patterns as sets: exact values, ``prefix*``, ``*suffix`` and ``*`` (any non-empty value); the same
    meaning as :func:`match_string` of each (or, for ports, as equality)."""

    exact: frozenset[str]
    prefixes: frozenset[str]
    suffixes: frozenset[str]
    present: bool

    @classmethod
    def of(cls, patterns: tuple[str, ...], exact_only: bool = False) -> _Patterns:
        if exact_only:
            return cls(frozenset(patterns), frozenset(), frozenset(), False)
        exact = {p for p in patterns if p != "*" and not p.startswith("*") and not p.endswith("*")}
        prefixes = {p[:-1] for p in patterns if p != "*" and p.endswith("*")}
        suffixes = {p[1:] for p in patterns if p != "*" and p.startswith("*") and not p.endswith("*")}
        return cls(frozenset(exact), frozenset(prefixes), frozenset(suffixes), "*" in patterns)

    def matches(self, value: str) -> bool:
        if (self.present and value != "") or value in self.exact:
            return True
        if self.prefixes and any(value[:i] in self.prefixes for i in range(len(value) + 1)):
            return True
        return bool(self.suffixes) and any(value[i:] in self.suffixes for i in range(len(value) + 1))


@dataclass(frozen=True, slots=True)
class Payload:
    """What the sidecar's JWT filter puts in metadata for a token it validated (§13): ``iss``, ``sub`` (None when
    absent) and the claims, ``scope`` and ``permission`` strings split at spaces into lists (Envoy's
    ``space_delimited_claims``, which istiod always sets for those two: pilot/pkg/security/authn/policy_applier.go
    ``buildSpaceDelimitedClaims``)."""

    iss: str
    sub: str | None
    strings: tuple[tuple[str, str], ...]
    lists: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def of(cls, token: Any, split: frozenset[str]) -> Payload:
        strings = []
        lists = list(token.lists)
        for name, value in token.strings:
            if name in split:
                lists.append((name, tuple(v for v in value.split(" ") if v)))
            else:
                strings.append((name, value))
        return cls(token.issuer, token.subject or None, tuple(strings), tuple(lists))


def _check_request_principal(pattern: str) -> None:
    """The ``requestPrincipals`` the reader models: ``*``, ``ISS/*`` and ``ISS/SUB`` (no other wildcard)."""
    iss, slash, sub = pattern.rpartition("/")
    if pattern != "*" and (not slash or "*" in iss or (sub != "*" and "*" in sub)):
        raise Unmodelled(f"requestPrincipals pattern {pattern!r}")


def _request_principal_match(pattern: str, payload: Payload | None) -> bool:
    """``requestPrincipals`` as istiod compiles it (generator.go ``extendedPrincipal``): split at the last '/'
    into iss and sub, each matched against the payload's claim of that name; ``*`` is any non-empty value."""
    if payload is None or payload.sub is None:
        return False
    if pattern == "*":
        return payload.iss != "" and payload.sub != ""
    iss, _, sub = pattern.rpartition("/")
    return payload.iss == iss and (payload.sub != "" if sub == "*" else payload.sub == sub)


@dataclass(frozen=True, slots=True)
class Source:
    """``rules[].from[].source`` (§5): its fields are ANDed."""

    principals: Values
    namespaces: Values
    ip_blocks: Values
    request_principals: Values = Values()

    def admits(self, caller: Caller, trust_domain: str, payload: Payload | None = None) -> bool:
        ident = caller.identity
        principal = f"{trust_domain}/ns/{ident.namespace}/sa/{ident.account}" if ident else None
        return (self.principals.admits(principal, match_string)
                and self.namespaces.admits(ident.namespace if ident else None, _namespace_match)
                and self.ip_blocks.admits(caller.ip, _ip_match)
                and (not self.request_principals.values
                     or any(_request_principal_match(p, payload) for p in self.request_principals.values)))


@dataclass(frozen=True, slots=True)
class When:
    """``rules[].when[]`` (§5): ``request.headers[NAME]`` (``*``: present, §6) or ``request.auth.claims[NAME]``
    (a string claim matching a value, or a list claim with an element matching one: generator.go
    ``requestClaimGenerator``, ``MetadataListValueMatcherForJWTClaims``); values only, exact or ``*``."""

    kind: str            # "header" or "claim"
    name: str
    values: tuple[str, ...]

    def admits(self, headers: dict[str, str], payload: Payload | None) -> bool:
        if self.kind == "header":
            # Envoy keeps HTTP/1's Host as ':authority' (headers.h Host{":authority"}): a matcher on 'host'
            # finds no header at all (istio/istio#23083; docs/targets/istio.md "Headers Envoy sets")
            value = None if self.name == "host" else headers.get(self.name)
            return value is not None and any(v == "*" or v == value for v in self.values)
        if payload is None:
            return False
        strings, lists = dict(payload.strings), dict(payload.lists)
        if self.name in strings:
            return any(match_string(v, strings[self.name]) for v in self.values)
        return any(match_string(v, item) for v in self.values for item in lists.get(self.name, ()))


@dataclass(frozen=True, slots=True)
class Operation:
    """``rules[].to[].operation`` (§5): its fields are ANDed; methods and paths are HTTP-only (§9)."""

    ports: Values
    methods: Values = Values()
    paths: Values = Values()

    @property
    def uses_http(self) -> bool:
        return bool(self.methods.named or self.paths.named)

    def admits(self, port: int, method: str | None, path: str | None) -> bool:
        # §5: paths match the :path header without its query string
        url_path = None if path is None else path.split("?", 1)[0]
        return (self.ports.admits(str(port), _port_match) and self.methods.admits(method, match_string)
                and self.paths.admits(url_path, match_string))


class Action(str, Enum):
    ALLOW = "ALLOW"
    DENY = "DENY"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule (§4): any of its sources (none: any caller) and any of its operations (none: anything)."""

    sources: tuple[Source, ...]
    operations: tuple[Operation, ...]
    when: tuple[When, ...] = ()

    @property
    def uses_http(self) -> bool:
        """Whether the rule has an HTTP-only field: methods, paths, requestPrincipals or a ``when`` (§9)."""
        return (any(op.uses_http for op in self.operations) or bool(self.when)
                or any(src.request_principals.named for src in self.sources))

    def seen_on(self, action: Action, http: bool | None) -> Rule | None:
        """The rule as a port of that kind sees it (None: it never matches there).

        ``http`` None: a port the world does not declare, whose protocol Istio sniffs (§9). The request
        space holds no HTTP request there, so the reader answers for the reading that admits most: an
        ALLOW rule's HTTP fields match any request, a DENY rule with HTTP fields matches none. That way
        no widening hides on such a port (the backend never names one in a rule with HTTP fields).
        """
        if http:
            return self
        if self.uses_http and (action is Action.ALLOW) == (http is not None):
            return None  # §9: an ALLOW rule with HTTP fields is dropped on a TCP port
        return replace(self, operations=tuple(Operation(op.ports) for op in self.operations), when=(),
                       sources=tuple(replace(src, request_principals=Values()) for src in self.sources))


@dataclass(frozen=True, slots=True)
class Policy:
    """An AuthorizationPolicy (§2, §3)."""

    kind: ClassVar[str] = "AuthorizationPolicy"
    namespace: str
    name: str
    action: Action
    selector: tuple[tuple[str, str], ...]   # empty: every workload of the namespace
    targeted: bool                          # targetRef(s): sidecars ignore the policy (§2)
    dry_run: bool
    rules: tuple[Rule, ...]

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    """A PeerAuthentication (§12)."""

    kind: ClassVar[str] = "PeerAuthentication"
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...]   # empty: the namespace (or, in the root namespace, the mesh)
    mode: str                               # UNSET, DISABLE, PERMISSIVE or STRICT
    port_modes: tuple[tuple[int, str], ...] = ()

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class RequestAuthentication:
    """A RequestAuthentication (§13): the issuers whose tokens the selected workloads validate."""

    kind: ClassVar[str] = "RequestAuthentication"
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...]   # empty: the namespace (or, in the root namespace, the mesh)
    issuers: tuple[str, ...]
    #: claims split at spaces beyond scope and permission (``spaceDelimitedClaims``)
    split: tuple[str, ...] = ()

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Manifests:
    peer_authentications: tuple[PeerAuthentication, ...]
    policies: tuple[Policy, ...]
    request_authentications: tuple[RequestAuthentication, ...] = ()


def parse(docs: list[dict[str, Any]], world: World, root_namespace: str = ROOT_NAMESPACE) -> Manifests:
    """The records of ``docs``: the one place that refuses what the reader does not evaluate."""
    peers: list[PeerAuthentication] = []
    policies: list[Policy] = []
    jwts: list[RequestAuthentication] = []
    for doc in deciding(docs):
        kind = doc.get("kind")
        if kind == "Namespace" and doc.get("apiVersion") == "v1":
            # the reader takes every pod to have a sidecar (§1): a Namespace may only say the same
            namespace_labels = dict(Fields(doc.get("metadata"), "Namespace metadata").labels("labels"))
            if namespace_labels.get("istio-injection") != "enabled":
                raise Unmodelled("a Namespace without the label istio-injection: enabled (pods without sidecars)")
            continue
        if kind not in (Policy.kind, PeerAuthentication.kind, RequestAuthentication.kind):
            raise Unmodelled(f"kind {kind}")
        if api_group(doc) != GROUP:
            raise Unmodelled(f"{kind} of API group {api_group(doc)!r}")
        meta, namespace, name, spec = header(doc)
        selector = spec.mapping("selector")
        selector.only({"matchLabels"})
        labels = selector.labels("matchLabels")
        if namespace == root_namespace:
            if labels and kind in (Policy.kind, RequestAuthentication.kind):
                # §2: matched against the workloads of every namespace, undeclared ones included
                raise Unmodelled(f"an AuthorizationPolicy with a selector in the root namespace {root_namespace}")
        elif (problem := world.selector_problem(namespace, dict(labels))) is not None:
            raise Unmodelled(f"{kind} {namespace}/{name}: {problem}")
        if kind == PeerAuthentication.kind:
            peers.append(_peer_authentication(namespace, name, labels, spec))
        elif kind == RequestAuthentication.kind:
            jwts.append(_request_authentication(namespace, name, labels, spec))
        else:
            dry_run = dict(meta.labels("annotations")).get("istio.io/dry-run") == "true"
            policies.append(_policy(namespace, name, labels, spec, dry_run, world.trust_domain))
    return Manifests(tuple(peers), tuple(policies), tuple(jwts))


def _request_authentication(namespace: str, name: str, labels: tuple[tuple[str, str], ...],
                            spec: Fields) -> RequestAuthentication:
    """§13: ``jwtRules`` with an ``issuer`` and where to find its keys; every other field (audiences, token
    locations, claims to headers...) changes what a token means or where it comes from: Unmodelled."""
    spec.only({"selector", "jwtRules"})
    issuers = []
    split: set[str] = set()
    for rule in spec.mappings("jwtRules"):
        rule.only({"issuer", "jwksUri", "spaceDelimitedClaims"}, "jwtRules field")
        if "issuer" not in rule:
            raise Unmodelled(f"{rule.where}: a JWT rule without an issuer")
        issuers.append(rule.string("issuer"))
        split.update(rule.strings("spaceDelimitedClaims"))
    return RequestAuthentication(namespace, name, labels, tuple(issuers), tuple(sorted(split)))


def _peer_authentication(namespace: str, name: str, labels: tuple[tuple[str, str], ...],
                         spec: Fields) -> PeerAuthentication:
    spec.only({"selector", "mtls", "portLevelMtls"})
    port_modes = []
    for port, entry in spec.mapping("portLevelMtls").data.items():
        if not (isinstance(port, int) or (isinstance(port, str) and port.isdigit())):
            raise Malformed(f"{spec.where}.portLevelMtls: port {port!r} is not a number")
        port_modes.append((int(port), _mode(Fields(entry, f"{spec.where}.portLevelMtls.{port}"))))
    return PeerAuthentication(namespace, name, labels, _mode(spec.mapping("mtls")), tuple(sorted(port_modes)))


def _mode(mtls: Fields) -> str:
    mtls.only({"mode"})
    mode = mtls.string("mode", "UNSET")
    if mode not in _MODES:
        raise Malformed(f"{mtls.where}.mode {mode!r} is not one of {', '.join(_MODES)}")
    return mode


def _policy(namespace: str, name: str, labels: tuple[tuple[str, str], ...], spec: Fields, dry_run: bool,
            trust_domain: str) -> Policy:
    spec.only({"selector", "targetRef", "targetRefs", "action", "rules"})
    action = spec.string("action", "ALLOW")
    if action not in ("ALLOW", "DENY"):
        raise Unmodelled(f"action {action}")
    rules = []
    for rule in spec.mappings("rules"):
        rule.only({"from", "to", "when"})
        when = tuple(_when(entry) for entry in rule.mappings("when"))
        sources = []
        for entry in rule.mappings("from"):
            entry.only({"source"})
            if "source" not in entry:
                raise Malformed(f"{entry.where} has no source")
            sources.append(_source(entry.mapping("source"), trust_domain))
        operations = []
        for entry in rule.mappings("to"):
            entry.only({"operation"})
            if "operation" not in entry:
                raise Malformed(f"{entry.where} has no operation")
            operations.append(_operation(entry.mapping("operation")))
        rules.append(Rule(tuple(sources), tuple(operations), when))
    targeted = "targetRef" in spec or "targetRefs" in spec
    return Policy(namespace, name, Action(action), labels, targeted, dry_run, tuple(rules))


#: headers the inbound sidecar generates, replaces or (by Envoy's "HTTP header sanitizing", depending on settings
#: the manifests do not show) may change before authorization, and every ``x-envoy-`` header: what a condition on
#: one sees is not (always) what the client sent (docs/targets/istio.md "Headers Envoy sets")
_SET_BY_ENVOY = frozenset({"x-request-id", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-proto",
                           "referer"})
_HEADER_KEY = re.compile(r"^request\.headers\[([^\[\]]+)\]$")
_CLAIM_KEY = re.compile(r"^request\.auth\.claims\[([^\[\]]+)\]$")


def _when(entry: Fields) -> When:
    """A ``when`` condition the reader models: a header or a (not nested) claim, with ``values`` that are exact
    or, for a header, ``*`` (present). Every other key, ``notValues`` and partial wildcards: Unmodelled."""
    entry.only({"key", "values", "notValues"}, "when field")
    key = entry.string("key")
    if entry.strings("notValues"):
        raise Unmodelled(f"when {key}: notValues")
    values = entry.strings("values")
    if not values:
        raise Malformed(f"{entry.where}: when {key} has no values (the webhook rejects it)")
    header, claim = _HEADER_KEY.match(key), _CLAIM_KEY.match(key)
    if header is None and claim is None:
        raise Unmodelled(f"when key {key!r}")
    kind = "header" if header else "claim"
    for value in values:
        if value != "*" and (value.startswith("*") or value.endswith("*")) or (value == "*" and kind == "claim"):
            raise Unmodelled(f"when {key}: pattern {value!r}")
    name = (header or claim).group(1)  # type: ignore[union-attr]
    if header and (name.lower() in _SET_BY_ENVOY or name.lower().startswith("x-envoy-")):
        raise Unmodelled(f"when {key}: the sidecar sets this header before authorization")
    return When(kind, name.lower() if kind == "header" else name, values)


def _values(fields: Fields, key: str) -> Values:
    not_key = "not" + key[0].upper() + key[1:]
    return Values(fields.strings(key), fields.strings(not_key))


def _source(src: Fields, trust_domain: str) -> Source:
    src.only({"principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
              "requestPrincipals"}, "source field")
    principals = _values(src, "principals")
    for p in principals.named:
        if not (p in ("*", f"{trust_domain}/*") or _PRINCIPAL.match(p) or _NAMESPACE_PRINCIPAL.match(p)):
            raise Unmodelled(f"principal pattern {p!r}")  # a partial wildcard names a set the space cannot enumerate

    def local(pattern: str) -> str:  # §7: in a full principal (5 segments) cluster.local means the local mesh
        if pattern.startswith("cluster.local/") and pattern.count("/") == 4:
            return f"{trust_domain}/" + pattern[len("cluster.local/"):]
        return pattern

    principals = Values(tuple(map(local, principals.values)), tuple(map(local, principals.nots)))
    namespaces = _values(src, "namespaces")
    for n in namespaces.named:
        if "*" in n and n != "*":
            raise Unmodelled(f"namespace pattern {n!r}")
    blocks = _values(src, "ipBlocks")
    for block in blocks.named:
        try:
            ipaddress.ip_network(block, strict=False)
        except ValueError:
            raise Malformed(f"{src.where}: {block!r} is not an IP address or CIDR block") from None
    request_principals = Values(src.strings("requestPrincipals"))
    for p in request_principals.values:
        _check_request_principal(p)
    return Source(principals, namespaces, blocks, request_principals)


def _operation(op: Fields) -> Operation:
    op.only({"ports", "notPorts", "methods", "notMethods", "paths", "notPaths"}, "operation field")
    ports = _values(op, "ports")
    for port in ports.named:
        if not port.isdigit():
            raise Malformed(f"{op.where}: port {port!r} is not a decimal number (the webhook rejects it)")
    paths = _values(op, "paths")
    if any("{*}" in p or "{**}" in p for p in paths.named):
        raise Unmodelled("path templates")
    return Operation(ports, _values(op, "methods"), paths)


# -- deciding over the records --------------------------------------------------------------------

def _subset(selector: tuple[tuple[str, str], ...], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector)


def _source_seen(src: Source, trust_domain: str) -> Seen | None:
    """What of a caller :meth:`Source.admits` looks at beyond its address and whether it has an identity (§5):
    the namespaces and identities its principals and namespaces (and their ``not`` forms) name; None for a
    pattern this cannot say of (verification then decides every caller). ``*``, ``TD/*`` and ``*`` in
    namespaces hold for every identity; ipBlocks read the address, requestPrincipals the token."""
    names: set[str] = set()
    idents: set[Identity] = set()
    for p in src.principals.named:
        if p in ("*", f"{trust_domain}/*"):
            continue
        if m := _PRINCIPAL.match(p):
            idents.add(Identity(m.group(1), m.group(2)))
        elif every := _NAMESPACE_PRINCIPAL.match(p):
            names.add(every.group(1))
        else:
            return None
    for n in src.namespaces.named:
        if "*" in n:
            if n != "*":
                return None
            continue
        names.add(n)
    return Seen(frozenset(names), frozenset(idents))


class _EntryIndex:
    """Rules found by port and path (§5, §6): the request's port, and the prefixes and suffixes of its path
    without the query, are looked up instead of every rule tested (quadratic for many rules on one pod:
    issue 12, docs/performance.md). A superset of the rules whose ``to`` matches; each is then tested. A rule
    is indexed by port where every operation names ports (no ``notPorts``), and by path where every
    operation names paths (no ``notPaths``); else it is a candidate for every port or path."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.any_port: list[int] = []
        self.by_port: dict[str, list[int]] = {}
        for n, rule in enumerate(rules):
            ops = rule.operations
            if ops and all(op.ports.values and not op.ports.nots for op in ops):
                for port in sorted({p for op in ops for p in op.ports.values}):
                    self.by_port.setdefault(port, []).append(n)
            else:
                self.any_port.append(n)
        self._at: dict[int, tuple[list[int], dict[str, list[int]], dict[str, list[int]], dict[str, list[int]]]] = {}

    def candidates(self, port: int, path: str | None) -> list[int]:
        at = self._at.get(port)
        if at is None:
            always: list[int] = []
            exact: dict[str, list[int]] = {}
            prefix: dict[str, list[int]] = {}
            suffix: dict[str, list[int]] = {}
            for n in sorted(self.any_port + self.by_port.get(str(port), [])):
                ops = self.rules[n].operations
                if not ops or not all(op.paths.values and not op.paths.nots for op in ops) or \
                        any(p == "*" for op in ops for p in op.paths.values):
                    always.append(n)
                    continue
                for p in sorted({p for op in ops for p in op.paths.values}):
                    table, key = (prefix, p[:-1]) if p.endswith("*") else (suffix, p[1:]) if p.startswith("*") \
                        else (exact, p)
                    table.setdefault(key, []).append(n)
            at = self._at[port] = (always, exact, prefix, suffix)
        always, exact, prefix, suffix = at
        if path is None:
            return always
        url_path = path.split("?", 1)[0]
        found = set(always)
        found.update(exact.get(url_path, ()))
        for i in range(len(url_path) + 1):
            if prefix:
                found.update(prefix.get(url_path[:i], ()))
            if suffix:
                found.update(suffix.get(url_path[i:], ()))
        return sorted(found)


class _RuleSet:
    """The rules of one action that apply to one pod, as one kind of port sees them (§2, §9).

    A request is a caller and an operation: the two sides are evaluated apart and remembered,
    the sources per caller, the operations per (port, method, path).
    """

    def __init__(self, policies: list[Policy], action: Action, http: bool | None, trust_domain: str):
        self.policies = policies
        self.trust_domain = trust_domain
        self.entries = [(i, seen) for i, p in enumerate(policies) for r in p.rules
                        if (seen := r.seen_on(action, http)) is not None]
        self._index = _EntryIndex([rule for _, rule in self.entries])
        self._by_operation: dict[tuple[int, str | None, str | None], frozenset[int]] = {}
        self._by_context: dict[tuple[tuple[tuple[str, str], ...], Payload | None], frozenset[int]] = {}

    def matching(self, req: Request, payload: Payload | None = None) -> list[Policy]:
        """The policies with a rule whose ``from``, ``to`` and ``when`` all match (§4)."""
        found = {self.entries[n][0] for n in self.fitting(req, payload)
                 if not (rule := self.entries[n][1]).sources
                 or any(s.admits(req.caller, self.trust_domain, payload) for s in rule.sources)}
        return [self.policies[i] for i in sorted(found)]

    def fitting(self, req: Request, payload: Payload | None) -> frozenset[int]:
        """The entries whose ``to`` and ``when`` match the request (whatever its caller)."""
        context = (req.headers, payload)
        whens = self._by_context.get(context)
        if whens is None:
            headers = dict(req.headers)
            whens = self._by_context[context] = frozenset(
                n for n, (_, rule) in enumerate(self.entries) if all(w.admits(headers, payload) for w in rule.when))
        operation = (req.port, req.method, req.path)
        tos = self._by_operation.get(operation)
        if tos is None:
            tos = self._by_operation[operation] = frozenset(
                n for n in self._index.candidates(req.port, req.path) if not (rule := self.entries[n][1]).operations
                or any(op.admits(*operation) for op in rule.operations))
        return whens & tos

    def seen(self, req: Request, payload: Payload | None) -> Seen | None:
        """What of the caller :meth:`matching` looks at for the request's operation: what the ``from`` of the
        fitting entries name (:func:`_source_seen`)."""
        return Seen.together(_source_seen(src, self.trust_domain) for n in sorted(self.fitting(req, payload))
                             for src in self.entries[n][1].sources)


class Reader:
    def __init__(self, docs: list[dict[str, Any]], world: World, *, dry_run_enforced: bool = False,
                 root_namespace: str = ROOT_NAMESPACE):
        self.world = world
        self.dry_run_enforced = dry_run_enforced
        self.root_namespace = root_namespace
        manifests = parse(docs, world, root_namespace)
        self.peer_authentications = manifests.peer_authentications
        self.policies = manifests.policies
        self.request_authentications = manifests.request_authentications
        self._pods = {(w.namespace, w.name): w for w in world.workloads}
        self._modes: dict[tuple[str, str | None, int], tuple[str, PeerAuthentication | None]] = {}
        self._applicable: dict[tuple[str, str | None], tuple[list[Policy], list[Policy]]] = {}
        # which records apply to a pod, found through the world's label index: testing every record of the
        # namespace for every pod was quadratic in its services (issue 12, docs/performance.md "labels")
        scope = lambda r: (r.namespace, r.selector)
        self._picking = Selections(world, self.policies, scope)
        self._peers_picking = Selections(world, self.peer_authentications, scope)
        self._jwts_picking = Selections(world, self.request_authentications, scope)
        self._peers_in: dict[str, list[PeerAuthentication]] = {}
        self._peers_wide: dict[str, list[PeerAuthentication]] = {}  # without a selector: a namespace's (or the mesh's)
        for peer in self.peer_authentications:
            self._peers_in.setdefault(peer.namespace, []).append(peer)
            if not peer.selector:
                self._peers_wide.setdefault(peer.namespace, []).append(peer)
        self._jwts: dict[tuple[str, str | None], list[RequestAuthentication]] = {}
        self._root: list[Policy] | None = None
        self._rule_sets: dict[tuple[str, str | None, Action, bool | None], _RuleSet] = {}
        self._protocols: dict[tuple[str, str | None], dict[int, str | None]] = {}

    def _protocol(self, pod: Workload, port: int) -> str | None:
        """The pod's protocol on ``port`` (None: not declared), looked up (a pod may have a thousand ports)."""
        found = self._protocols.get((pod.namespace, pod.name))
        if found is None:
            found = self._protocols[(pod.namespace, pod.name)] = {}
            for number, protocol in pod.ports:
                found.setdefault(number, protocol)  # the first, as Workload.protocol answers
        return found.get(port)

    def _pod(self, namespace: str, name: str | None) -> Workload:
        pod = self._pods.get((namespace, name))
        if pod is None:
            raise InternalError(f"the reader was asked about {namespace}/{name}, which its world does not hold")
        return pod

    # -- §12 PeerAuthentication ---------------------------------------------
    def mtls_mode(self, pod: Workload, port: int) -> str:
        return self._mtls(pod, port)[0]

    def _mtls(self, pod: Workload, port: int) -> tuple[str, PeerAuthentication | None]:
        """The effective mode, and the PeerAuthentication that set it (None: Istio's default)."""
        key = (pod.namespace, pod.name, port)
        if key not in self._modes:
            self._modes[key] = self._compute_mtls(pod, port)
        return self._modes[key]

    def _compute_mtls(self, pod: Workload, port: int) -> tuple[str, PeerAuthentication | None]:
        labels = dict(pod.labels)

        def one(found: list[PeerAuthentication]) -> PeerAuthentication | None:
            if len(found) > 1:
                raise Ambiguous("several PeerAuthentications at one level: the oldest would win")
            return found[0] if found else None

        mesh = one(self._peers_wide.get(self.root_namespace, []))
        namespace = one(self._peers_wide.get(pod.namespace, []) if pod.namespace != self.root_namespace else [])
        # those of the pod's namespace whose selector picks it (the world's index): _subset(p.selector, labels)
        workload = one([p for p in self._peers_picking.of(pod) if p.selector and _subset(p.selector, labels)])
        mode, source = "PERMISSIVE", None
        for level in (mesh, namespace, workload):
            if level is not None and level.mode != "UNSET":
                mode, source = level.mode, level
        if workload is not None:
            port_mode = dict(workload.port_modes).get(port, "UNSET")
            if port_mode != "UNSET":
                mode, source = port_mode, workload
        return mode, source

    # -- §13 the token ---------------------------------------------------------------
    def _jwt(self, pod: Workload) -> list[RequestAuthentication]:
        """The RequestAuthentications that apply to the pod (§13: same scoping as policies, all merged)."""
        key = (pod.namespace, pod.name)
        found = self._jwts.get(key)
        if found is None:
            labels = dict(pod.labels)
            # the pod's namespace's through the world's index, the root namespace's (mesh-wide) tested here
            positions = set(self._jwts_picking.positions(pod)) | {
                i for i, ra in enumerate(self.request_authentications)
                if ra.namespace == self.root_namespace and _subset(ra.selector, labels)}
            found = self._jwts[key] = [self.request_authentications[i] for i in sorted(positions)]
        return found

    def _payload(self, pod: Workload, req: Request) -> tuple[Payload | None, list[RequestAuthentication]]:
        """What the JWT filter validated of the request's token, and the RequestAuthentications that did.

        A token of an issuer no RequestAuthentication of the pod names is read as no token: the filter either
        ignores it or refuses the request (401), the one refusal a target may add (LANGUAGE §3), so reading it
        as absent is the reading that admits most."""
        if req.token is None:
            return None, []
        found = [ra for ra in self._jwt(pod) if req.token.issuer in ra.issuers]
        if not found:
            return None, []
        split = frozenset({"scope", "permission"}).union(*(ra.split for ra in found))
        return Payload.of(req.token, split), found

    # -- §2 which policies apply ------------------------------------------------
    def applicable(self, pod: Workload) -> tuple[list[Policy], list[Policy]]:
        """The ALLOW and the DENY policies that apply to the pod."""
        key = (pod.namespace, pod.name)
        if key not in self._applicable:
            labels = dict(pod.labels)
            allow: list[Policy] = []
            deny: list[Policy] = []
            # §2: the root namespace's policies and those of the pod's own namespace that pick it (the world's
            # label index), each namespace's in the records' order
            found = {self.root_namespace: [p for p in self._root_policies() if _subset(p.selector, labels)]}
            if pod.namespace != self.root_namespace:
                found[pod.namespace] = self._picking.of(pod)
            for namespace in sorted(found):
                for p in found[namespace]:
                    if not p.targeted and (self.dry_run_enforced or not p.dry_run):
                        (allow if p.action is Action.ALLOW else deny).append(p)
            self._applicable[key] = (allow, deny)
        return self._applicable[key]

    def _root_policies(self) -> list[Policy]:
        if self._root is None:
            self._root = [p for p in self.policies if p.namespace == self.root_namespace]
        return self._root

    def _rule_set(self, pod: Workload, action: Action, http: bool | None) -> _RuleSet:
        key = (pod.namespace, pod.name, action, http)
        if key not in self._rule_sets:
            allow, deny = self.applicable(pod)
            self._rule_sets[key] = _RuleSet(allow if action is Action.ALLOW else deny, action, http,
                                            self.world.trust_domain)
        return self._rule_sets[key]

    # -- §1 the decision ---------------------------------------------------------
    def decide(self, request: Request) -> bool:
        return self._decide(request)[0]

    def explain(self, request: Request) -> list[ResourceRef]:
        """The resources that decide ``request``: (kind, namespace, name), the PeerAuthentication first."""
        return [r.ref for r in self._decide(request)[1]]

    def _decide(self, req: Request) -> tuple[bool, list[PeerAuthentication | RequestAuthentication | Policy]]:
        pod = self._pod(req.namespace, req.service)
        mode, mode_source = self._mtls(pod, req.port)
        peer: list[PeerAuthentication | RequestAuthentication | Policy] = \
            [mode_source] if mode_source is not None else []
        if mode == "STRICT" and req.caller.identity is None:
            return False, peer
        proto = self._protocol(pod, req.port)
        http = None if proto is None and req.method is None else (proto not in (None, "tcp") and req.method is not None)
        payload, validated = self._payload(pod, req) if http else (None, [])
        peer = peer + list(validated)
        denied = self._rule_set(pod, Action.DENY, http).matching(req, payload)
        if denied:
            return False, peer + denied
        allow = self.applicable(pod)[0]
        if not allow:
            return True, peer
        allowed = self._rule_set(pod, Action.ALLOW, http).matching(req, payload)
        return bool(allowed), peer + (allowed or allow)

    def seen(self, req: Request) -> Seen | None:
        """What of the caller :meth:`decide` looks at for ``req``'s destination and operation (``req.caller`` is
        not read): the mTLS check reads only whether it has an identity, the policies only the ``from`` of the
        rules whose ``to`` and ``when`` fit (§1, §4)."""
        pod = self._pod(req.namespace, req.service)
        proto = self._protocol(pod, req.port)
        http = None if proto is None and req.method is None else (proto not in (None, "tcp") and req.method is not None)
        payload = self._payload(pod, req)[0] if http else None
        return Seen.together(self._rule_set(pod, action, http).seen(req, payload) for action in Action)

    # -- what the manifests can tell apart for one workload ----------------------
    def mentions(self, namespace: str, service: str | None) -> Mentions:
        """Identities, namespaces, networks, methods, paths and ports that the policies of a pod name."""
        pod = self._pod(namespace, service)
        idents: set[Identity] = set()
        namespaces: set[str] = set()
        networks: set[str] = set()
        methods: set[str] = set()
        paths: set[str] = set()
        ports: set[int] = set()
        operations: set[tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]] = set()
        identity_sets: set[frozenset[Identity]] = set()
        headers: set[tuple[str, str | None]] = set()
        claims: set[tuple[str, str]] = set()
        issuers: set[str] = {i for ra in self._jwt(pod) for i in ra.issuers}
        allow, deny = self.applicable(pod)
        for rule in (r for p in allow + deny for r in p.rules):
            for when in rule.when:
                if when.kind == "header":
                    headers.update((when.name, None if v == "*" else v) for v in when.values)
                else:
                    claims.update((when.name, v) for v in when.values)
            for src in rule.sources:
                issuers.update(p.rpartition("/")[0] for p in src.request_principals.values if p != "*")
            for src in rule.sources:
                for field in (src.principals.values, src.principals.nots):
                    named = set()
                    for p in field:
                        if m := _PRINCIPAL.match(p):
                            named.add(Identity(m.group(1), m.group(2)))
                        elif every := _NAMESPACE_PRINCIPAL.match(p):
                            namespaces.add(every.group(1))
                    idents.update(named)
                    identity_sets.add(frozenset(named))
                namespaces.update(n for n in src.namespaces.named if n != "*")
                networks.update(src.ip_blocks.named)
            for op in rule.operations:
                methods.update(op.methods.named)
                paths.update(op.paths.named)
                ports.update(int(p) for p in op.ports.named)
                if op.methods.nots or op.paths.nots or op.ports.nots:
                    # negations: let every value be tested on its own (the space then takes their product)
                    operations.update(((), (m,), ()) for m in op.methods.named)
                    operations.update(((), (), (p,)) for p in op.paths.named)
                else:
                    operations.add((tuple(int(p) for p in op.ports.values), op.methods.values, op.paths.values))
        for peer in self._peers_in.get(namespace, []):
            ports.update(port for port, _ in peer.port_modes)
        return Mentions(frozenset(idents), frozenset(namespaces), frozenset(networks), frozenset(methods),
                        frozenset(paths), frozenset(ports), frozenset(operations), frozenset(identity_sets),
                        frozenset(headers), frozenset(issuers), frozenset(claims))
