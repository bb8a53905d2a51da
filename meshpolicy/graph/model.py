"""The access graph: the frozen, sorted intermediate representation.

It knows nothing of any backend and nothing of the grammar: it says which
services exist, who they are, which ports they serve and which rules govern
them. Every object keeps the spans it came from, for diagnostics and for the
provenance annotation on emitted resources.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from ..source import Span

DEFAULT_TRUST_DOMAIN = "cluster.local"
DEFAULT_NAMESPACE = "default"
#: the service part of a rule's destination that means every workload of its namespace, declared or not
#: (``NS/**``, LANGUAGE §2.3); never a service name, which is a DNS-1123 label
EVERY_WORKLOAD = "**"


class Mode(StrEnum):
    """How a build is meant to act (LANGUAGE §5): enforced, or audit (each target's dry-run form)."""

    ENFORCE = "enforce"
    AUDIT = "audit"


class Mtls(str, Enum):
    STRICT = "strict"
    PERMISSIVE = "permissive"


class Protocol(str, Enum):
    HTTP = "http"
    HTTP2 = "http2"
    GRPC = "grpc"
    TCP = "tcp"

    @property
    def is_http(self) -> bool:
        return self is not Protocol.TCP


class Action(str, Enum):
    ALLOW = "allow"
    DENY = "deny"
    NEVER = "never"


@dataclass(frozen=True, slots=True, order=True)
class Port:
    number: int
    protocol: Protocol


@dataclass(frozen=True, slots=True, order=True)
class Identity:
    """A mesh identity: a service account in a namespace."""

    namespace: str
    account: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.account}"


@dataclass(frozen=True, slots=True, order=True)
class Namespace:
    name: str
    external: bool
    mtls: Mtls | None = None
    mtls_origin: Span | None = None
    origins: tuple[Span, ...] = ()
    #: a rule names it as ``NS/**`` (or ``**`` in its block): managed even where it declares no service
    wide: bool = False


@dataclass(frozen=True, slots=True, order=True)
class Service:
    namespace: str
    name: str
    account: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[Port, ...] = ()
    probes: tuple[str, ...] = ()
    mtls: Mtls | None = None
    port_mtls: tuple[tuple[int, Mtls], ...] = ()
    origins: tuple[Span, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def identity(self) -> Identity:
        return Identity(self.namespace, self.account)

    def port(self, number: int) -> Port | None:
        for port in self.ports:
            if port.number == number:
                return port
        return None

    @property
    def http_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.protocol.is_http)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class SourceKind(str, Enum):
    IDENTITY = "identity"    # one service account
    NAMESPACE = "namespace"  # NS/*: any authenticated workload of NS
    MESH = "mesh"            # *: any authenticated workload
    ANY = "any"              # any client at all
    CIDR = "cidr"            # any client whose address is in the network


@dataclass(frozen=True, slots=True, order=True)
class Source:
    kind: SourceKind
    namespace: str = ""
    account: str = ""
    cidr: str = ""

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)

    def __str__(self) -> str:
        if self.kind is SourceKind.IDENTITY:
            return f"{self.namespace}/{self.account}"
        if self.kind is SourceKind.NAMESPACE:
            return f"{self.namespace}/*"
        if self.kind is SourceKind.MESH:
            return "*"
        if self.kind is SourceKind.ANY:
            return "any"
        return self.cidr


class PathKind(StrEnum):
    EXACT = "exact"    # that path
    PREFIX = "prefix"  # the path and every path under it (``/api/*``)
    STARTS = "starts"  # every path that starts with the characters (``/static*``: also ``/staticx``)
    SUFFIX = "suffix"  # every path that ends with the characters (``*.png``)


def path_only(path: str) -> str:
    """The path of a request target without its query string: a query never takes part in matching
    (LANGUAGE §2.4)."""
    return path.partition("?")[0]


@dataclass(frozen=True, slots=True, order=True)
class PathMatch:
    """``exact``: that path; ``prefix``: the path and every path under ``value + '/'``; ``starts``: every
    path that starts with ``value``; ``suffix``: every path that ends with ``value``."""

    kind: PathKind
    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", PathKind(self.kind))

    def matches(self, path: str) -> bool:
        path = path_only(path)
        if self.kind is PathKind.EXACT:
            return path == self.value
        if self.kind is PathKind.STARTS:
            return path.startswith(self.value)
        if self.kind is PathKind.SUFFIX:
            return path.endswith(self.value)
        return path == self.value or path.startswith(self.value + "/")

    def __str__(self) -> str:
        if self.kind is PathKind.STARTS:
            return f"{self.value}*"
        if self.kind is PathKind.SUFFIX:
            return f"*{self.value}"
        return self.value if self.kind is PathKind.EXACT else f"{self.value}/*"


@dataclass(frozen=True, slots=True, order=True)
class GrpcMatch:
    """A gRPC service, or one method of it (``method`` empty means every method)."""

    service: str
    method: str = ""

    def matches(self, path: str) -> bool:
        path = path_only(path)
        if self.method:
            return path == f"/{self.service}/{self.method}"
        return path.startswith(f"/{self.service}/")

    def __str__(self) -> str:
        return f"{self.service}/{self.method}" if self.method else self.service


class ConditionKind(StrEnum):
    """What a request condition of a rule tests (LANGUAGE 2.4, ``if ...``)."""

    HEADER = "header"  # the header ``name`` is present (value None) or has exactly ``value``
    JWT = "jwt"        # a valid token of the issuer ``name`` (``value``: its URL) with a ``sub`` claim
    CLAIM = "claim"    # the token's claim ``name`` is the string ``value``, or a list holding it


#: claims read as space-separated lists of strings (LANGUAGE 2.4)
SPACE_SEPARATED_CLAIMS = ("permission", "scope")


@dataclass(frozen=True, slots=True, order=True)
class Token:
    """A valid JWT a request carries (LANGUAGE §3): its ``iss`` (the issuer's URL), its ``sub`` ('' when the
    token has none) and its other claims, by type: strings, lists of strings, and names of claims of any
    other type (a number, an object...)."""

    issuer: str
    subject: str = ""
    strings: tuple[tuple[str, str], ...] = ()
    lists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    others: tuple[str, ...] = ()

    def claim_holds(self, name: str, value: str) -> bool:
        """The claim ``name`` is the string ``value`` or a list holding it; ``scope`` and ``permission``
        strings are read as space-separated lists; a claim of any other type never matches."""
        for key, text in self.strings:
            if key == name:
                return text == value or (name in SPACE_SEPARATED_CLAIMS and value in text.split(" "))
        return any(key == name and value in items for key, items in self.lists)

    def __str__(self) -> str:
        claims = [f"sub={self.subject}"] if self.subject else ["no sub"]
        claims += [f"{k}={v}" for k, v in self.strings] + [f"{k}=[{','.join(v)}]" for k, v in self.lists]
        claims += [f"{k}=(not a string)" for k in self.others]
        return f"token of {self.issuer} ({', '.join(claims)})"


@dataclass(frozen=True, slots=True, order=True)
class Condition:
    """One request condition. ``name``: the header (lower case), the issuer's name or the claim;
    ``value``: the header's value (None: the header is present), the issuer's URL, or the claim's value."""

    kind: ConditionKind
    name: str
    value: str | None = None

    def holds(self, headers: tuple[tuple[str, str], ...], token: Token | None) -> bool:
        """Whether the condition holds for a request with these headers (lower-case names) and token."""
        if self.kind is ConditionKind.HEADER:
            return any(k == self.name and (self.value is None or v == self.value) for k, v in headers)
        if token is None:
            return False
        if self.kind is ConditionKind.JWT:
            return token.issuer == self.value and token.subject != ""
        return token.claim_holds(self.name, self.value or "")

    def __str__(self) -> str:
        if self.kind is ConditionKind.JWT:
            return f"jwt {self.name}"
        return f"{self.kind.value} {self.name}" + (f"={self.value}" if self.value is not None else "")


@dataclass(frozen=True, slots=True, order=True)
class Issuer:
    """``issuer NAME ISSUER_URL [jwks JWKS_URL]`` (LANGUAGE 2.4); ``jwks`` empty: the target's discovery."""

    name: str
    url: str
    jwks: str = ""
    origin: Span | None = field(default=None, compare=False)


class HttpCondition(StrEnum):
    """The HTTP conditions of a rule: each holds when the rule gives none of its kind."""

    METHODS = "method"
    PATHS = "path"
    GRPC = "grpc"


#: a rule with more paths than this is matched through a :class:`PathIndex` (a lookup per request, not a scan)
_INDEXED_FROM = 8
_PATH_INDEXES: dict[int, tuple[tuple[PathMatch, ...], PathIndex]] = {}


@dataclass(frozen=True, slots=True)
class PathIndex:
    """Many path patterns as lookups: whether any matches a path costs the path's length, not their number.

    The same meaning as :meth:`PathMatch.matches` of each (a test holds it to that): exact, the segment
    prefix (the path or a ``/`` after it), the character prefix and the suffix, on the path without its
    query string. A rule with a thousand paths was matched by a scan on every request the decider, the
    request space and the Linkerd backend ask about: quadratic (issue 12, docs/performance.md).
    """

    exact: frozenset[str]
    prefixes: frozenset[str]
    starts: frozenset[str]
    suffixes: frozenset[str]

    @classmethod
    def of(cls, matches: tuple[PathMatch, ...]) -> PathIndex:
        kinds: dict[PathKind, set[str]] = {kind: set() for kind in PathKind}
        for m in matches:
            kinds[m.kind].add(m.value)
        return cls(*(frozenset(kinds[k]) for k in (PathKind.EXACT, PathKind.PREFIX, PathKind.STARTS,
                                                    PathKind.SUFFIX)))

    def matches(self, path: str) -> bool:
        path = path_only(path)
        if path in self.exact or path in self.prefixes:
            return True
        if self.prefixes and any(path[:i] in self.prefixes for i, c in enumerate(path) if c == "/"):
            return True
        if self.starts and any(path[:i] in self.starts for i in range(len(path) + 1)):
            return True
        return bool(self.suffixes) and any(path[i:] in self.suffixes for i in range(len(path) + 1))


def _path_index(paths: tuple[PathMatch, ...]) -> PathIndex:
    """The index of a rule's paths, built once per tuple (kept alive beside it, so its id stays its own)."""
    found = _PATH_INDEXES.get(id(paths))
    if found is None or found[0] is not paths:
        if len(_PATH_INDEXES) >= 4096:
            _PATH_INDEXES.clear()
        found = _PATH_INDEXES[id(paths)] = (paths, PathIndex.of(paths))
    return found[1]


@dataclass(frozen=True, slots=True, order=True)
class Rule:
    """One DSL rule applied to one destination service, or (``destination`` ``(NS, EVERY_WORKLOAD)``, a
    ``NS/**`` rule) to every workload of namespace NS, declared or not.

    ``ports`` empty means every port (only when the destination declares none, or for a ``**`` rule
    without HTTP fields); ``methods``/``paths``/``grpc`` empty mean no constraint of that kind.
    """

    destination: tuple[str, str]
    action: Action
    origin: Span
    sources: tuple[Source, ...]
    ports: tuple[int, ...]
    methods: tuple[str, ...] = ()
    paths: tuple[PathMatch, ...] = ()
    grpc: tuple[GrpcMatch, ...] = ()
    text: str = field(default="", compare=False)
    #: request conditions (LANGUAGE 2.4): all of them must hold
    conditions: tuple[Condition, ...] = ()

    @property
    def is_http(self) -> bool:
        """Whether the rule looks inside HTTP requests (methods, paths, gRPC or request conditions)."""
        return bool(self.methods or self.paths or self.grpc or self.conditions)

    def conditions_hold(self, headers: tuple[tuple[str, str], ...], token: Token | None) -> bool:
        """Every request condition of the rule holds (LANGUAGE 2.4; none: true)."""
        return all(c.holds(headers, token) for c in self.conditions)

    def failed_conditions(self, headers: tuple[tuple[str, str], ...], token: Token | None) -> tuple[Condition, ...]:
        """The request conditions that do not hold (empty exactly when :meth:`conditions_hold`)."""
        return tuple(c for c in self.conditions if not c.holds(headers, token))

    @property
    def issuers(self) -> tuple[str, ...]:
        """The URLs of the issuers the rule's ``jwt`` conditions name."""
        return tuple(sorted({c.value or "" for c in self.conditions if c.kind is ConditionKind.JWT}))

    @property
    def wide(self) -> bool:
        """A ``NS/**`` rule: it covers every workload of its namespace, declared or not (LANGUAGE §2.3)."""
        return self.destination[1] == EVERY_WORKLOAD

    def covers(self, namespace: str, service: str | None) -> bool:
        """The rule applies to that workload (``service`` None: an undeclared workload of ``namespace``)."""
        if self.wide:
            return self.destination[0] == namespace
        return service is not None and self.destination == (namespace, service)

    @property
    def target(self) -> str:
        """The destination as written in a policy: ``NS/NAME``, or ``NS/**``."""
        return f"{self.destination[0]}/{self.destination[1]}"

    # -- the one meaning of an HTTP match (LANGUAGE §3) --------------------------------------------
    # The reference decider, the request space, explain and the backends all use these; the readers
    # never do: they model each mesh's own matching, so that comparing them with this proves something.

    def http_matches(self, method: str | None, path: str | None) -> bool:
        """The rule's methods, paths and gRPC calls (those it gives) all match the request's method and path."""
        return self.admits_method(method) and self.admits_path(path)

    def admits_method(self, method: str | None) -> bool:
        """The method side of :meth:`http_matches`: one of its methods, and POST for a gRPC call."""
        return self._in_methods(method) and (not self.grpc or method == "POST")

    def admits_path(self, path: str | None) -> bool:
        """The path side of :meth:`http_matches`: under one of its paths, and a call it names."""
        return self._under_paths(path) and (not self.grpc or self._calls(path))

    def http_mismatches(self, method: str | None, path: str | None) -> tuple[HttpCondition, ...]:
        """The HTTP conditions the method and path fail (empty exactly when :meth:`http_matches`)."""
        failed = []
        if not self._in_methods(method):
            failed.append(HttpCondition.METHODS)
        if not self._under_paths(path):
            failed.append(HttpCondition.PATHS)
        if self.grpc and (method != "POST" or not self._calls(path)):
            failed.append(HttpCondition.GRPC)
        return tuple(failed)

    def _in_methods(self, method: str | None) -> bool:
        return not self.methods or method in self.methods

    def _under_paths(self, path: str | None) -> bool:
        if not self.paths:
            return True
        if path is None:
            return False
        if len(self.paths) <= _INDEXED_FROM:
            return any(p.matches(path) for p in self.paths)
        return _path_index(self.paths).matches(path)

    def _calls(self, path: str | None) -> bool:
        return path is not None and any(g.matches(path) for g in self.grpc)

    def __str__(self) -> str:
        return f"{self.origin.short}: {self.text}"


_RULE_INDEXES: dict[int, tuple[tuple[Rule, ...], dict[tuple[str, str | None], tuple[Rule, ...]]]] = {}


def _by_destination(rules: tuple[Rule, ...]) -> dict[tuple[str, str | None], tuple[Rule, ...]]:
    """A graph's rules by destination, and by (namespace, None) every rule whose destination is in that
    namespace, each in the graph's order: built once per rules tuple (kept alive beside it, so its id stays
    its own). A scan of every rule per service or namespace made lowering quadratic (issue 12)."""
    found = _RULE_INDEXES.get(id(rules))
    if found is None or found[0] is not rules:
        if len(_RULE_INDEXES) >= 64:
            _RULE_INDEXES.clear()
        index: dict[tuple[str, str | None], list[Rule]] = {}
        for rule in rules:
            index.setdefault(rule.destination, []).append(rule)
            index.setdefault((rule.destination[0], None), []).append(rule)
        found = _RULE_INDEXES[id(rules)] = (rules, {k: tuple(v) for k, v in index.items()})
    return found[1]


@dataclass(frozen=True, slots=True)
class AccessGraph:
    trust_domain: str
    mesh_mtls: Mtls
    mesh_mtls_origin: Span | None
    namespaces: tuple[Namespace, ...]
    services: tuple[Service, ...]
    rules: tuple[Rule, ...]         # allow and deny rules, sorted
    invariants: tuple[Rule, ...]    # never rules, sorted
    trust_domain_origin: Span | None = None
    #: the mesh's certificate authority (``authority``), None where the policy declares none
    authority: Authority | None = None
    #: --cluster proved that no pod matches two services' labels, where the labels alone do not (MP612)
    selectors_proven_by_pods: bool = False
    #: the JWT issuers the policy declares (LANGUAGE 2.4), sorted by name
    issuers: tuple[Issuer, ...] = ()

    def issuer(self, name: str) -> Issuer | None:
        return next((i for i in self.issuers if i.name == name), None)

    def service(self, key: tuple[str, str]) -> Service | None:
        """The service of that (namespace, name): the first, by an index built once per graph (a scan per
        question made the request space quadratic in the services, issue 12)."""
        return _service_index(self)[0].get(key)

    def namespace(self, name: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        return None

    @property
    def managed_namespaces(self) -> tuple[Namespace, ...]:
        """Namespaces that declare services, or that a rule names as ``NS/**``, and are not external: the
        policy covers them whole (LANGUAGE §2.1)."""
        used = {svc.namespace for svc in self.services}
        return tuple(ns for ns in self.namespaces if not ns.external and (ns.name in used or ns.wide))

    def wide_rules(self, namespace: str, action: Action | None = None) -> tuple[Rule, ...]:
        """The ``NS/**`` rules of a namespace (of one action, when given)."""
        return tuple(r for r in _by_destination(self.rules).get((namespace, EVERY_WORKLOAD), ())
                     if action is None or r.action is action)

    def rules_covering(self, namespace: str, service: str | None, action: Action | None = None) -> tuple[Rule, ...]:
        """Every rule that applies to a workload (``service`` None: an undeclared one): its own rules and the
        ``NS/**`` rules of its namespace, in the graph's order."""
        return tuple(r for r in _by_destination(self.rules).get((namespace, None), ())
                     if r.covers(namespace, service) and (action is None or r.action is action))

    def wide_http_ports(self, namespace: str) -> tuple[int, ...]:
        """Ports that a ``NS/**`` rule (or ``never`` invariant) with HTTP fields names: HTTP on every workload
        of the namespace that does not declare them (LANGUAGE §2.4). Indexed once per graph: the request
        space and the readers' world ask for every workload."""
        return _wide_http_index(self).get(namespace, ())

    def served_ports(self, svc: Service | None, namespace: str) -> tuple[Port, ...]:
        """The ports a workload serves as the policy knows them: its declared ports, plus the HTTP ports of
        its namespace's ``**`` rules that it does not declare (``svc`` None: an undeclared workload)."""
        declared = svc.ports if svc is not None else ()
        numbers = {p.number for p in declared}
        extra = tuple(Port(n, Protocol.HTTP) for n in self.wide_http_ports(namespace) if n not in numbers)
        return tuple(sorted(declared + extra))

    def services_in(self, namespace: str) -> tuple[Service, ...]:
        return _service_index(self)[1].get(namespace, ())

    def rules_for(self, key: tuple[str, str], action: Action | None = None) -> tuple[Rule, ...]:
        return tuple(r for r in _by_destination(self.rules).get(key, ())
                     if action is None or r.action is action)

    def namespace_mtls(self, namespace: str) -> Mtls:
        ns = self.namespace(namespace)
        if ns is not None and ns.mtls is not None:
            return ns.mtls
        return self.mesh_mtls

    def service_mtls(self, svc: Service) -> Mtls:
        return svc.mtls if svc.mtls is not None else self.namespace_mtls(svc.namespace)

    def mtls_for(self, svc: Service | None, namespace: str, port: int) -> Mtls:
        """The mTLS mode of a port: port, then service, then namespace, then mesh (LANGUAGE §2.2)."""
        if svc is None:
            return self.namespace_mtls(namespace)
        for number, mode in svc.port_mtls:
            if number == port:
                return mode
        return self.service_mtls(svc)


# -- the certificate authority (issue 16, docs/certificates.md) --------------------------------------------

HOUR = 3600
DAY = 24 * HOUR


def duration_text(seconds: int) -> str:
    """A duration the way a policy writes it: ``90d``, ``24h``, ``45m``."""
    for unit, size in (("d", DAY), ("h", HOUR)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


class AuthoritySource(StrEnum):
    """Where the mesh's issuing certificate comes from."""

    BUILTIN = "builtin"            # the mesh is its own CA (istiod's self-signed root; Linkerd's installed issuer)
    CERT_MANAGER = "cert-manager"  # a cert-manager Issuer or ClusterIssuer signs the mesh's issuer certificate
    VAULT = "vault"                # Vault's PKI signs it, through a cert-manager Vault Issuer


class IssuerKind(StrEnum):
    ISSUER = "Issuer"
    CLUSTER_ISSUER = "ClusterIssuer"


@dataclass(frozen=True, slots=True)
class Lifetime:
    """A duration in seconds, and the span of the setting that declared it (None: the default)."""

    seconds: int
    origin: Span | None = None


@dataclass(frozen=True, slots=True)
class Authority:
    """The trust anchor, the issuer and the lifetimes of the mesh's certificates, whatever the target.

    ``issuer`` and ``renew_before`` are None for the built-in authority, which has no issuer certificate that
    meshpolicy manages. The alert margins are derived here, once, so that the alerts every backend emits and
    the lint findings agree (docs/certificates.md, "Alerts").
    """

    source: AuthoritySource
    origin: Span
    workload: Lifetime
    anchor: Lifetime
    issuer: Lifetime | None = None
    renew_before: Lifetime | None = None
    #: cert-manager: the Issuer or ClusterIssuer that signs the mesh's issuer certificate
    issuer_ref: str = ""
    issuer_kind: IssuerKind = IssuerKind.ISSUER
    #: the Secrets (in trust-manager's trust namespace) and keys holding the trust anchors: one, or two while
    #: an anchor is rotated (docs/certificates.md); empty where not given
    anchors: tuple[tuple[str, str], ...] = ()
    #: Vault: the server, the PKI signing path, the Kubernetes auth role, mount path and service account
    vault_server: str = ""
    vault_path: str = ""
    vault_role: str = ""
    vault_auth_path: str = "/v1/auth/kubernetes"
    vault_account: str = "vault-issuer"
    #: every setting as written, by keyword: a backend names the one it cannot express
    settings: tuple[tuple[str, Span], ...] = ()

    def setting(self, keyword: str) -> Span | None:
        """Where ``keyword`` was written, or None."""
        return next((span for key, span in self.settings if key == keyword), None)

    @property
    def workload_margin(self) -> int:
        """Alert when a workload certificate has less than a fifth of its lifetime left: both meshes renew
        well before (Istio at half its life, Linkerd at 70%), so that much left means rotation failed."""
        return self.workload.seconds // 5

    def issuer_margin(self, lifetime: int | None = None) -> int:
        """Alert when the issuer certificate has less than a sixth of ``lifetime`` (its own by default) left."""
        return (lifetime if lifetime is not None else self.issuer.seconds if self.issuer else 0) // 6

    def anchor_margin(self, issuer_lifetime: int | None = None) -> int:
        """Alert on the trust anchor a sixth of its lifetime before it expires, and never later than one issuer
        lifetime before: rotating an anchor takes a full issuer rotation (docs/certificates.md)."""
        issuer = issuer_lifetime if issuer_lifetime is not None else self.issuer.seconds if self.issuer else 0
        return max(self.anchor.seconds // 6, min(issuer, self.anchor.seconds // 2))


#: the last graphs' ``NS/**`` HTTP ports by namespace, keyed by identity (the graph kept, so the key stays its own):
#: a frozen graph's rules never change, and hashing a whole graph per lookup would cost more than the scan
_WIDE_HTTP: dict[int, tuple[AccessGraph, dict[str, tuple[int, ...]]]] = {}


def _wide_http_index(graph: AccessGraph) -> dict[str, tuple[int, ...]]:
    entry = _WIDE_HTTP.get(id(graph))
    if entry is None or entry[0] is not graph:
        found: dict[str, set[int]] = {}
        for rule in graph.rules + graph.invariants:
            if rule.wide and rule.is_http:
                found.setdefault(rule.destination[0], set()).update(rule.ports)
        if len(_WIDE_HTTP) >= 8:
            _WIDE_HTTP.clear()
        entry = _WIDE_HTTP[id(graph)] = (graph, {ns: tuple(sorted(ports)) for ns, ports in found.items()})
    return entry[1]


_SERVICES: dict[int, tuple[AccessGraph, tuple[dict[tuple[str, str], Service], dict[str, tuple[Service, ...]]]]] = {}


def _service_index(graph: AccessGraph) -> tuple[dict[tuple[str, str], Service], dict[str, tuple[Service, ...]]]:
    """A graph's services by key (the first of each key) and by namespace (in the graph's order), built once
    per graph (kept alive beside it, so that its id stays its own)."""
    entry = _SERVICES.get(id(graph))
    if entry is None or entry[0] is not graph:
        by_key: dict[tuple[str, str], Service] = {}
        by_namespace: dict[str, list[Service]] = {}
        for svc in graph.services:
            by_key.setdefault(svc.key, svc)
            by_namespace.setdefault(svc.namespace, []).append(svc)
        if len(_SERVICES) >= 8:
            _SERVICES.clear()
        entry = _SERVICES[id(graph)] = (graph, (by_key, {ns: tuple(found) for ns, found in by_namespace.items()}))
    return entry[1]
