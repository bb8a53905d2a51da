"""Evaluate a request against emitted Linkerd manifests, as the policy controller and proxy would.

Written from ../shared/targets/linkerd.md §0 (the decision procedure), with the
details it points to: default policies (§1), Server choice and accessPolicy
(§2), AuthorizationPolicy and authentications (§3), route attachment,
precedence and 404-before-403 (§4), probe routes (§5) and protocols (§6). It
shares no code with the Linkerd backend. The manifests are parsed once into
the records below (:func:`parse`), which refuse every construct the reader
does not evaluate (:class:`Unmodelled`) or cannot read (:class:`Malformed`); a
choice Linkerd would make by creation time raises :class:`Ambiguous` while
deciding, so that a test can never pass by ignoring them.

The route matching here (PathPrefix, gRPC methods, scores) is Linkerd's (§4.3),
written from its source: the reader never reuses the IR's meaning of a match
(:mod:`meshpolicy.graph`), or comparing the two would prove nothing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, ClassVar

from ..graph.evaluate import Request, Seen
from ..graph.model import Identity
from ..graph.space import Mentions
from .base import Ambiguous, Fields, Malformed, ResourceRef, Unmodelled, api_group, deciding, header
from .world import Selections, Workload, World

__all__ = ["Ambiguous", "Malformed", "Reader", "Unmodelled", "parse"]

POLICY = "policy.linkerd.io"
GATEWAY = "gateway.networking.k8s.io"
CONTROL_PLANE = "linkerd"
EVERYWHERE = ("0.0.0.0/0", "::/0")
LOCALHOST = ("127.0.0.1/32", "::1/128")                                            # §0.2
PROBE_NETWORKS = EVERYWHERE                                                        # probeNetworks default (§5)
CLUSTER_NETWORKS = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")  # §1
CLUSTER_DEFAULT = "all-unauthenticated"                                            # proxy.defaultInboundPolicy (§1)
HTTP_PROTOCOLS = {"unknown", "HTTP/1", "HTTP/2", "gRPC"}
CONNECTION_PROTOCOLS = {"opaque", "TLS"}
DEFAULT_POLICY = "config.linkerd.io/default-inbound-policy"


def _ci(a: str | None, b: str) -> bool:
    return (a or "").lower() == b.lower()


@lru_cache(maxsize=8192)
def _contains(cidr: str, ip: str) -> bool:
    """Whether the address ``ip`` is in the block ``cidr`` (of its IP version): answered once per pair, as
    every request of the space asks it again (issue 12, docs/performance.md)."""
    net, address = ipaddress.ip_network(cidr, strict=False), ipaddress.ip_address(ip)
    return net.version == address.version and address in net


def _identity_match(pattern: str, name: str) -> bool:
    """§3.2: "*" any identity, "*.<suffix>" a suffix over whole labels, else exact."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


# -- the records: the manifests, parsed once ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Authz:
    """One client authorization (§0.8): an authentication and the networks it holds for."""

    identities: tuple[str, ...] | None        # None: unauthenticated (anything, meshed or not)
    networks: tuple[tuple[str, tuple[str, ...]], ...]

    def admits(self, req: Request, trust_domain: str) -> bool:
        ip = req.caller.ip
        in_net = any(_contains(cidr, ip) and not any(_contains(e, ip) for e in excepts)
                     for cidr, excepts in self.networks)
        if not in_net:
            return False
        if self.identities is None:
            return True
        ident = req.caller.identity
        if ident is None:
            return False
        name = f"{ident.account}.{ident.namespace}.serviceaccount.identity.{CONTROL_PLANE}.{trust_domain}"
        return any(_identity_match(p, name) for p in self.identities)


def _everywhere(authentication: tuple[str, ...] | None, networks: tuple[str, ...] = EVERYWHERE) -> Authz:
    return Authz(authentication, tuple((n, ()) for n in networks))


#: §1: the authorization a default policy (or accessPolicy, §2) synthesizes
DEFAULT_AUTHZ: dict[str, list[Authz]] = {
    "deny": [],
    "audit": [_everywhere(None)],
    "all-unauthenticated": [_everywhere(None)],
    "all-authenticated": [_everywhere(("*",))],
    "cluster-authenticated": [_everywhere(("*",), CLUSTER_NETWORKS)],
    "cluster-unauthenticated": [_everywhere(None, CLUSTER_NETWORKS)],
}


@dataclass(frozen=True, slots=True)
class Namespace:
    kind: ClassVar[str] = "Namespace"
    name: str
    meshed: bool                    # linkerd.io/inject: enabled (§0.1)
    default_policy: str | None      # config.linkerd.io/default-inbound-policy, as written

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.name, self.name)


@dataclass(frozen=True, slots=True)
class Server:
    kind: ClassVar[str] = "Server"
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...] | None  # podSelector matchLabels; None: an externalWorkloadSelector
    port: int
    protocol: str
    access_policy: str              # as written; "deny" when absent
    labels: tuple[tuple[str, str], ...] = ()   # its own metadata labels (a ServerAuthorization selector, §3.4)

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.namespace, self.name)

    def selects(self, pod: Workload) -> bool:
        """§2: matchLabels; an empty selector selects every pod, an externalWorkloadSelector none."""
        labels = dict(pod.labels)
        return self.selector is not None and all(labels.get(k) == v for k, v in self.selector)


@dataclass(frozen=True, slots=True)
class Ref:
    """A targetRef, an authentication ref or a route's parentRef."""

    group: str | None               # None: not written (each kind of ref has its own default)
    kind: str | None
    name: str
    namespace: str | None = None
    section: bool = False           # a parentRef with a port or sectionName

    def names(self, kind: str, group: str, name: str) -> bool:
        return _ci(self.kind, kind) and _ci(self.group, group) and self.name == name


#: what the Rust regex crate treats as a meta character (regex-syntax ``is_meta_character``): such a character
#: stands for itself only when escaped, and escaping any other character is refused by older versions
_RUST_META = frozenset("\\.+*?()|[]{}^$#&-~")


@cache
def _path_regex(value: str) -> tuple[re.Pattern[str], str]:
    """A RegularExpression path the reader models: ``^LITERAL.*$`` or ``^.*LITERAL$``, the literal written in
    Rust regex syntax (§4.3: the policy controller and the proxy parse it with the ``regex`` crate). Returns
    the same regex in Python's syntax and the raw pattern it tests (``LITERAL*`` or ``*LITERAL``, as
    :class:`Mentions` names one); any other regex is :class:`Unmodelled`."""
    if value.startswith("^.*") and value.endswith("$") and not value.endswith("\\$"):
        literal, suffix = _rust_literal(value[3:-1], value), True
    elif value.startswith("^") and value.endswith(".*$") and not value.endswith("\\.*$"):
        literal, suffix = _rust_literal(value[1:-3], value), False
    else:
        raise Unmodelled(f"path regex {value!r}: only ^LITERAL.*$ and ^.*LITERAL$ are modelled")
    if suffix:
        return re.compile(r"\A.*" + re.escape(literal) + r"\Z"), "*" + literal
    return re.compile(r"\A" + re.escape(literal) + r".*\Z"), literal + "*"


def regex_pattern(value: str) -> str:
    """The raw pattern (``LITERAL*`` or ``*LITERAL``) a RegularExpression path the reader models stands for;
    :class:`Unmodelled` for any other regex."""
    return _path_regex(value)[1]


def regex_takes(value: str, path: str) -> bool:
    """Whether the proxy takes ``path`` with the RegularExpression path ``value`` (the whole path, §4.3)."""
    found = _path_regex(value)[0].search(path)
    return found is not None and found.start() == 0 and found.end() == len(path)


def _rust_literal(text: str, value: str) -> str:
    """The characters a run of Rust regex literals stands for: ``\\.`` is ``.``; an unescaped meta character
    or an escape of anything else is not a literal (Unmodelled)."""
    out, escaped = [], False
    for ch in text:
        if escaped:
            if ch not in _RUST_META:
                raise Unmodelled(f"path regex {value!r}: the escape \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in _RUST_META:
            raise Unmodelled(f"path regex {value!r}: the operator {ch!r} inside a literal")
        else:
            out.append(ch)
    if escaped:
        raise Unmodelled(f"path regex {value!r}: a trailing backslash")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class HttpMatch:
    """An HTTPRoute match (§4.3); the reader refuses headers, query params, and regex paths other than a
    literal prefix or suffix (:func:`_path_regex`)."""

    method: str | None
    path_type: str                  # Exact, PathPrefix or RegularExpression
    path: str

    def score(self, req: Request) -> tuple[int, bool] | None:
        """PX http/match.rs: the method must equal; the path's matched length; then whether a method was given."""
        if self.method is not None and self.method != req.method:
            return None
        path = (req.path or "").split("?", 1)[0]  # the proxy matches uri.path(), without the query (§4.3)
        if self.path_type == "RegularExpression":
            # PX http/match/path.rs: the regex's (leftmost-first) match must start at 0 and end at the end
            length = len(path) if regex_takes(self.path, path) else None
        elif self.path_type == "Exact":
            length = len(self.path) if path == self.path else None
        elif self.path == "/":
            length = 1
        else:
            prefix = self.path.rstrip("/")
            rest = path.rstrip("/")
            ok = rest.startswith(prefix) and (rest == prefix or rest[len(prefix)] == "/")
            length = len(prefix) if ok else None
        return None if length is None else (length, self.method is not None)

    def named(self) -> tuple[set[str], set[str]]:
        """The methods and path patterns it tests (the raw patterns of :class:`Mentions`)."""
        if self.path_type == "RegularExpression":
            path = _path_regex(self.path)[1]
        else:
            path = self.path if self.path_type == "Exact" else self.path.rstrip("/") + "/*"
        return ({self.method} if self.method is not None else set()), {path}


@dataclass(frozen=True, slots=True)
class GrpcMatch:
    """A GRPCRoute method match (§4.3): Exact only."""

    service: str | None
    method: str | None

    def score(self, req: Request) -> tuple[int, int] | None:
        """PX grpc/match.rs: POST only; /service/method split on '/'; matched lengths."""
        if req.method != "POST" or req.path is None:
            return None
        parts = req.path.split("?", 1)[0].split("/")  # uri.path(), without the query
        if parts[0] != "" or len(parts) < 3:
            return None
        if self.service and self.service != parts[1]:
            return None
        if self.method and self.method != parts[2]:
            return None
        return (len(self.service or ""), len(self.method or ""))

    def named(self) -> tuple[set[str], set[str]]:
        """POST, and the paths it takes: the proxy also takes /svc/Method/more (§4.3)."""
        if self.service and self.method:
            return {"POST"}, {f"/{self.service}/{self.method}", f"/{self.service}/{self.method}/*"}
        return {"POST"}, {f"/{self.service}/*"} if self.service else set()


#: the CRD's default for an HTTPRoute rule without matches
DEFAULT_HTTP_MATCH = HttpMatch(None, "PathPrefix", "/")


@dataclass(frozen=True, slots=True)
class Route:
    """An HTTPRoute (either API group) or a GRPCRoute."""

    kind: str
    group: str
    namespace: str
    name: str
    parents: tuple[Ref, ...]
    rules: tuple[tuple[HttpMatch | GrpcMatch, ...] | None, ...]  # per rule its matches; None: none written

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.namespace, self.name)

    def attached_to(self, server: Server) -> bool:
        """§4.1: a parentRef names the Server; a Server parentRef with a port, a section or another namespace
        voids the whole route, for every Server it names (L2 ``index/src/inbound/routes.rs``
        ``ParentRef::collect_from_http`` fails the route, which the index then ignores)."""
        default_group = POLICY if self.group == POLICY else GATEWAY
        attached = False
        for parent in self.parents:
            kind = "Gateway" if parent.kind is None else parent.kind
            group = default_group if parent.group is None else parent.group
            if not (_ci(kind, "Server") and _ci(group, POLICY) and parent.name):
                continue
            if parent.section or (parent.namespace or self.namespace) != self.namespace:
                return False  # the whole route is ignored (§4.1)
            attached = attached or parent.name == server.name
        return attached

    def best_score(self, req: Request) -> tuple[int, int] | None:
        """The score of its best-matching rule (§4.3), None when no rule matches."""
        best = None
        for matches in self.rules:
            if self.kind == "HTTPRoute" and matches is None:
                matches = (DEFAULT_HTTP_MATCH,)
            if not matches:
                score: tuple[int, int] | None = (1, False) if self.kind == "HTTPRoute" else (0, 0)  # matches all
            else:
                found = [s for s in (m.score(req) for m in matches) if s is not None]
                score = max(found) if found else None
            if score is not None and (best is None or score > best):
                best = score
        return best


@dataclass(frozen=True, slots=True)
class MeshTLSAuthentication:
    kind: ClassVar[str] = "MeshTLSAuthentication"
    namespace: str
    name: str
    identities: tuple[str, ...]     # identityRefs resolved to identity names and patterns


@dataclass(frozen=True, slots=True)
class NetworkAuthentication:
    kind: ClassVar[str] = "NetworkAuthentication"
    namespace: str
    name: str
    networks: tuple[tuple[str, tuple[str, ...]], ...]  # (cidr, excepts)


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    kind: ClassVar[str] = "AuthorizationPolicy"
    namespace: str
    name: str
    target: Ref
    meshtls: Ref | None             # at most one of each (§3.1; the webhook rejects more)
    network: Ref | None
    account: Ref | None             # a ServiceAccount ref: exactly that account's identity

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.namespace, self.name)

    def targets_server(self, server: Server) -> bool:
        """§0.4: the Server by name, or the policy's own Namespace."""
        if _ci(self.target.kind, "Server"):
            return self.target.name == server.name
        return _ci(self.target.kind, "Namespace") and not self.target.group

    def targets_route(self, route: Route) -> bool:
        return self.target.names(route.kind, route.group, route.name)


@dataclass(frozen=True, slots=True)
class ServerAuthorization:
    """§3.4, the older API: one authorization for the Servers it names or selects in its namespace."""

    kind: ClassVar[str] = "ServerAuthorization"
    namespace: str
    name: str
    server: str | None                                  # server.name
    selector: tuple[tuple[str, str], ...] | None        # server.selector matchLabels
    authz: Authz
    networks_written: bool                              # False: client.networks omitted, the clusterNetworks

    @property
    def ref(self) -> ResourceRef:
        return (self.kind, self.namespace, self.name)

    def targets_server(self, server: Server) -> bool:
        if self.server is not None:
            return self.server == server.name
        labels = dict(server.labels)
        return self.selector is not None and all(labels.get(k) == v for k, v in self.selector)


@dataclass(frozen=True, slots=True)
class Manifests:
    namespaces: tuple[Namespace, ...]
    servers: tuple[Server, ...]
    routes: tuple[Route, ...]
    meshtls: tuple[MeshTLSAuthentication, ...]
    networks: tuple[NetworkAuthentication, ...]
    policies: tuple[AuthorizationPolicy, ...]
    authorizations: tuple[ServerAuthorization, ...] = ()


#: kind -> the API groups it may come from
GROUPS = {"Namespace": {""}, "Server": {POLICY}, "HTTPRoute": {POLICY, GATEWAY}, "GRPCRoute": {GATEWAY},
          "MeshTLSAuthentication": {POLICY}, "NetworkAuthentication": {POLICY}, "AuthorizationPolicy": {POLICY},
          "ServerAuthorization": {POLICY}}


def parse(docs: list[dict[str, Any]], world: World,
          cluster_networks: tuple[str, ...] = CLUSTER_NETWORKS) -> Manifests:
    """The records of ``docs``: the one place that refuses what the reader does not evaluate.
    ``cluster_networks``: the install's clusterNetworks, which a ServerAuthorization without networks admits."""
    found: dict[str, list[Any]] = {kind: [] for kind in GROUPS}
    suffix = f"serviceaccount.identity.{CONTROL_PLANE}.{world.trust_domain}"
    for doc in deciding(docs):
        kind = doc.get("kind")
        if not isinstance(kind, str) or kind not in GROUPS:
            raise Unmodelled(f"kind {kind}")
        if api_group(doc) not in GROUPS[kind]:
            raise Unmodelled(f"{kind} of API group {api_group(doc)!r}")
        meta, namespace, name, spec = header(doc, namespaced=kind != "Namespace")
        if kind == "Namespace":
            annotations = dict(meta.labels("annotations"))
            record: Any = Namespace(name, annotations.get("linkerd.io/inject") == "enabled",
                                    annotations.get(DEFAULT_POLICY))
        elif kind == "Server":
            record = _server(namespace, name, spec, world, meta.labels("labels"))
        elif kind == "ServerAuthorization":
            record = _server_authorization(namespace, name, spec, suffix, cluster_networks)
        elif kind in ("HTTPRoute", "GRPCRoute"):
            record = _route(kind, api_group(doc), namespace, name, spec)
        elif kind == "MeshTLSAuthentication":
            record = MeshTLSAuthentication(namespace, name, _identities(namespace, spec, suffix))
        elif kind == "NetworkAuthentication":
            record = NetworkAuthentication(namespace, name, _networks(spec))
        else:
            record = _policy(namespace, name, spec)
        found[kind].append(record)
    return Manifests(tuple(found["Namespace"]), tuple(found["Server"]), tuple(found["HTTPRoute"] + found["GRPCRoute"]),
                     tuple(found["MeshTLSAuthentication"]), tuple(found["NetworkAuthentication"]),
                     tuple(found["AuthorizationPolicy"]), tuple(found["ServerAuthorization"]))


def _server(namespace: str, name: str, spec: Fields, world: World,
            labels: tuple[tuple[str, str], ...] = ()) -> Server:
    spec.only({"podSelector", "externalWorkloadSelector", "port", "proxyProtocol", "accessPolicy"})
    selector = None
    if "podSelector" in spec:
        pods = spec.mapping("podSelector")
        pods.only({"matchLabels", "matchExpressions"})
        if pods.sequence("matchExpressions"):
            raise Unmodelled("a Server podSelector with matchExpressions: the world has only the "
                             "labels that select each service")
        selector = pods.labels("matchLabels")
        if (problem := world.selector_problem(namespace, dict(selector))) is not None:
            raise Unmodelled(f"Server {namespace}/{name}: {problem}")
    if isinstance(spec.data.get("port"), str):
        raise Unmodelled("a port name: the world has no container port names")
    protocol = spec.string("proxyProtocol", "unknown")
    if protocol not in HTTP_PROTOCOLS | CONNECTION_PROTOCOLS:
        raise Unmodelled(f"proxyProtocol {protocol!r} (the webhook rejects it)")
    return Server(namespace, name, selector, spec.integer("port"), protocol, spec.string("accessPolicy", "deny"),
                  labels)


def _ref(fields: Fields) -> Ref:
    fields.only({"group", "kind", "name", "namespace", "port", "sectionName"})
    return Ref(fields.optional_string("group"), fields.optional_string("kind"), fields.string("name"),
               fields.optional_string("namespace"), "port" in fields or "sectionName" in fields)


def _route(kind: str, group: str, namespace: str, name: str, spec: Fields) -> Route:
    spec.only({"parentRefs", "hostnames", "rules"})
    if spec.sequence("hostnames"):
        raise Unmodelled("hostnames")
    parents = []
    for parent in spec.mappings("parentRefs"):
        parents.append(_ref(parent))
    rules: list[tuple[HttpMatch | GrpcMatch, ...] | None] = []
    for rule in spec.mappings("rules"):
        rule.only({"matches", "filters", "backendRefs", "timeouts", "name"})
        if rule.sequence("filters"):
            raise Unmodelled("route filters")
        if rule.data.get("matches") is None:
            rules.append(None)
            continue
        matches: list[HttpMatch | GrpcMatch] = []
        for match in rule.mappings("matches"):
            if kind == "HTTPRoute":
                match.only({"path", "method", "headers", "queryParams"})
                if match.sequence("headers") or match.sequence("queryParams"):
                    raise Unmodelled("header or query matches")
                path = match.mapping("path")
                path.only({"type", "value"})
                path_type = path.string("type", "PathPrefix")
                if path_type not in ("Exact", "PathPrefix", "RegularExpression"):
                    raise Unmodelled(f"path match {path_type}")
                value = path.string("value", "/")
                if path_type == "RegularExpression":
                    _path_regex(value)  # Unmodelled unless a literal prefix or suffix
                matches.append(HttpMatch(match.optional_string("method"), path_type, value))
            else:
                match.only({"method", "headers"})
                if match.sequence("headers"):
                    raise Unmodelled("header matches")
                rpc = match.mapping("method")
                rpc.only({"type", "service", "method"})
                if rpc.string("type", "Exact") != "Exact":
                    raise Unmodelled("gRPC method match type (the webhook rejects it)")
                matches.append(GrpcMatch(rpc.optional_string("service"), rpc.optional_string("method")))
        rules.append(tuple(matches))
    return Route(kind, group, namespace, name, tuple(parents), tuple(rules))


def _identities(namespace: str, spec: Fields, suffix: str) -> tuple[str, ...]:
    """§3.2: the identities, or the identityRefs as identity names (a Namespace ref: a suffix)."""
    spec.only({"identities", "identityRefs"})
    if ("identities" in spec) == ("identityRefs" in spec):
        raise Unmodelled("MeshTLSAuthentication needs exactly one of identities and identityRefs")
    if "identities" in spec:
        out = list(spec.strings("identities"))
    else:
        out = []
        for ref in spec.mappings("identityRefs"):
            ref.only({"group", "kind", "name", "namespace"})
            kind = ref.string("kind", "")
            if kind == "ServiceAccount":
                out.append(f"{ref.string('name')}.{ref.optional_string('namespace') or namespace}.{suffix}")
            elif kind == "Namespace":
                out.append(f"*.{ref.string('name')}.{suffix}")
            else:
                raise Unmodelled(f"identityRef kind {kind}")
    _check_patterns(out, suffix)
    return tuple(out)


def _check_patterns(out: list[str], suffix: str) -> None:
    for pattern in out:
        if "*" in pattern and pattern != "*" and not (pattern.startswith("*.") and "*" not in pattern[1:]):
            raise Unmodelled(f"identity pattern {pattern!r} (the webhook rejects it)")
        if pattern not in ("*", f"*.{suffix}") and not (_ACCOUNT.fullmatch(pattern.removesuffix(suffix))
                                                         or _NAMESPACE.fullmatch(pattern.removesuffix(suffix))):
            raise Unmodelled(f"identity {pattern!r} outside the policy's trust domain")


def _server_authorization(namespace: str, name: str, spec: Fields, suffix: str,
                          cluster_networks: tuple[str, ...]) -> ServerAuthorization:
    """§3.4 (the CRD's v1beta1 fields): ``server`` by name or matchLabels, ``client`` unauthenticated or meshTLS
    identities and serviceAccounts, with networks (omitted or empty: the clusterNetworks)."""
    spec.only({"server", "client"})
    server = spec.mapping("server")
    server.only({"name", "selector"})
    if ("name" in server) == ("selector" in server):
        raise Malformed(f"{server.where} needs exactly one of name and selector")
    target = selector = None
    if "name" in server:
        target = server.string("name")
    else:
        pick = server.mapping("selector")
        pick.only({"matchLabels", "matchExpressions"})
        if pick.sequence("matchExpressions"):
            raise Unmodelled(f"{pick.where}.matchExpressions")
        selector = pick.labels("matchLabels")
    client = spec.mapping("client")
    client.only({"networks", "unauthenticated", "meshTLS"})
    unauthenticated = client.data.get("unauthenticated", False)
    if not isinstance(unauthenticated, bool):
        raise Malformed(f"{client.where}.unauthenticated is not a boolean")
    if unauthenticated == ("meshTLS" in client):
        raise Unmodelled(f"{client.where}: exactly one of unauthenticated: true and meshTLS is modelled")
    identities: tuple[str, ...] | None = None
    if "meshTLS" in client:
        mesh = client.mapping("meshTLS")
        mesh.only({"identities", "serviceAccounts"})  # unauthenticatedTLS: not modelled (no such caller)
        found = list(mesh.strings("identities"))
        for account in mesh.mappings("serviceAccounts"):
            account.only({"name", "namespace"})
            found.append(f"{account.string('name')}.{account.optional_string('namespace') or namespace}.{suffix}")
        if not found:
            raise Unmodelled(f"{mesh.where} with no identities or serviceAccounts")
        _check_patterns(found, suffix)
        identities = tuple(found)
    written = bool(client.sequence("networks"))
    if written:
        networks = _networks(Fields({"networks": client.data["networks"]}, client.where))
    else:
        networks = tuple((n, ()) for n in cluster_networks)  # inbound.rs to_authz: empty -> clusterNetworks
    return ServerAuthorization(namespace, name, target, selector, Authz(identities, networks), written)


_ACCOUNT = re.compile(r"([^.*]+)\.([^.*]+)\.")     # ACCOUNT.NAMESPACE. before the trust domain's suffix
_NAMESPACE = re.compile(r"\*\.([^.*]+)\.")          # *.NAMESPACE.: every account of a namespace


def _networks(spec: Fields) -> tuple[tuple[str, tuple[str, ...]], ...]:
    spec.only({"networks"})
    out = []
    for net in spec.mappings("networks"):
        net.only({"cidr", "except"})
        cidr, excepts = net.string("cidr"), net.strings("except")
        for block in (cidr, *excepts):
            try:
                ipaddress.ip_network(block, strict=False)
            except ValueError:
                raise Malformed(f"{net.where}: {block!r} is not a CIDR block") from None
        out.append((cidr, excepts))
    if not out:
        raise Malformed(f"{spec.where}.networks is missing")
    return tuple(out)


def _policy(namespace: str, name: str, spec: Fields) -> AuthorizationPolicy:
    spec.only({"targetRef", "requiredAuthenticationRefs"})
    target = _ref(spec.mapping("targetRef"))
    if _ci(target.kind, "Server") and not _ci(target.group, POLICY):
        raise Unmodelled("a Server targetRef without group policy.linkerd.io (the webhook rejects it)")
    if _ci(target.kind, "Namespace") and not target.group and target.name != namespace:
        raise Unmodelled("a Namespace targetRef naming another namespace (the webhook rejects it)")
    meshtls, networks, accounts = [], [], []
    for fields in spec.mappings("requiredAuthenticationRefs"):
        ref = _ref(fields)
        if _ci(ref.kind, "MeshTLSAuthentication") and _ci(ref.group, POLICY):
            meshtls.append(ref)
        elif _ci(ref.kind, "NetworkAuthentication") and _ci(ref.group, POLICY):
            networks.append(ref)
        elif _ci(ref.kind, "ServiceAccount") and not ref.group:
            accounts.append(ref)
        else:
            raise Unmodelled(f"authentication ref {ref.group or ''}/{ref.kind or ''} (the webhook rejects it)")
    if len(meshtls) > 1 or len(accounts) > 1 or len(networks) > 1 or (meshtls and accounts):
        raise Unmodelled("refs the admission webhook rejects (§3.1)")
    return AuthorizationPolicy(namespace, name, target, meshtls[0] if meshtls else None,
                               networks[0] if networks else None, accounts[0] if accounts else None)


# -- deciding over the records --------------------------------------------------------------------

class _RouteIndex:
    """The routes of one Server found by the request's path (§4.3), instead of every route scored: an Exact
    match by the path, a PathPrefix by the path's segment prefixes, a GRPCRoute match by its service; a
    RegularExpression, a rule without matches and a match without a path or service are candidates for every
    request. A superset (in the routes' order) of the routes that can score; each is then scored."""

    def __init__(self, routes: list[Route]):
        self.routes = routes
        self.always: list[int] = []
        self.exact: dict[str, list[int]] = {}
        self.prefix: dict[str, list[int]] = {}
        self.service: dict[str, list[int]] = {}
        for n, route in enumerate(routes):
            keys = self._keys(route)
            if keys is None:
                self.always.append(n)
            for table, key in keys or ():
                table.setdefault(key, []).append(n)

    def _keys(self, route: Route) -> list[tuple[dict[str, list[int]], str]] | None:
        """Where the route is looked up; None: a candidate for every request."""
        keys: list[tuple[dict[str, list[int]], str]] = []
        for matches in route.rules:
            if route.kind == "HTTPRoute" and matches is None:
                matches = (DEFAULT_HTTP_MATCH,)
            if not matches:
                return None  # a rule that matches every request
            for m in matches:
                if isinstance(m, GrpcMatch) and m.service:
                    keys.append((self.service, m.service))
                elif isinstance(m, HttpMatch) and m.path_type == "Exact":
                    keys.append((self.exact, m.path))
                elif isinstance(m, HttpMatch) and m.path_type == "PathPrefix" and m.path.rstrip("/"):
                    keys.append((self.prefix, m.path.rstrip("/")))
                else:
                    return None  # PathPrefix "/", a regex, a gRPC match without a service: scored every time
        return keys

    def candidates(self, req: Request) -> list[Route]:
        path = (req.path or "").split("?", 1)[0]
        found = set(self.always)
        found.update(self.exact.get(path, ()))
        rest = path.rstrip("/")
        for i, c in enumerate(rest):
            if c == "/" and i:
                found.update(self.prefix.get(rest[:i], ()))
        found.update(self.prefix.get(rest, ()))
        parts = path.split("/")
        if len(parts) >= 3:
            found.update(self.service.get(parts[1], ()))
        return [self.routes[n] for n in sorted(found)]


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one operation is decided, whoever sends it: the caller must be admitted by one of ``authzs[i]``, the
    same answer for every ``i`` (several only when ``routes`` tie, §4.3: they must agree, else Ambiguous)."""

    authzs: tuple[list[Authz], ...]
    routes: tuple[str, ...] = ()


def _plain(label: str) -> bool:
    return bool(label) and not any(c in label for c in "./*")


class Reader:
    def __init__(self, docs: list[dict[str, Any]], world: World, *, dry_run_enforced: bool = False,
                 assumed_namespace_annotations: dict[str, str] | None = None,
                 cluster_networks: tuple[str, ...] = CLUSTER_NETWORKS):
        """``assumed_namespace_annotations``: what a namespace the manifests do not hold carries (a build with
        ``--namespaces skip`` names it in note MP303); ``None``: such a namespace is unmeshed (§0.1)."""
        self.world = world
        self.dry_run_enforced = dry_run_enforced
        self.assumed = assumed_namespace_annotations
        self.cluster_networks = cluster_networks
        self.manifests = parse(docs, world, cluster_networks)
        self._trace: list[Any] | None = None  # set while explain() records the deciding resources
        self._meshtls: dict[tuple[str, str], MeshTLSAuthentication] = {}
        for m in self.manifests.meshtls:
            self._meshtls.setdefault((m.namespace, m.name), m)
        self._networks: dict[tuple[str, str], NetworkAuthentication] = {}
        for n in self.manifests.networks:
            self._networks.setdefault((n.namespace, n.name), n)
        self._authz = {p: self._authorization(p) for p in self.manifests.policies}
        # indexes by namespace, and what each Server and route is tied to, found once: a scan of the whole
        # output per request made verification quadratic (issue 12, docs/performance.md)
        self._namespaces: dict[str, Namespace] = {}
        for space in self.manifests.namespaces:
            self._namespaces.setdefault(space.name, space)
        self._servers_in: dict[str, list[Server]] = {}
        for server in self.manifests.servers:
            self._servers_in.setdefault(server.namespace, []).append(server)
        self._routes_in: dict[tuple[str, str], list[Route]] = {}
        for route in self.manifests.routes:
            self._routes_in.setdefault((route.namespace, route.kind), []).append(route)
        self._policies_in: dict[str, list[AuthorizationPolicy]] = {}
        for policy in self.manifests.policies:
            self._policies_in.setdefault(policy.namespace, []).append(policy)
        # a pod's Servers through the world's label index, and per namespace the policies by the name they
        # target and the routes by the names of their parents: scanning the namespace for each pod, Server
        # or route was quadratic in its services (issue 12, docs/performance.md "labels")
        self._selecting = Selections(world, self.manifests.servers, lambda s: (s.namespace, s.selector))
        self._policies_named: dict[tuple[str, str], list[int]] = {}
        self._policies_wide: dict[str, list[int]] = {}
        for ns, policies in self._policies_in.items():
            for i, policy in enumerate(policies):
                if _ci(policy.target.kind, "Namespace"):
                    self._policies_wide.setdefault(ns, []).append(i)
                else:
                    self._policies_named.setdefault((ns, policy.target.name), []).append(i)
        self._routes_named: dict[tuple[str, str, str], list[int]] = {}
        for (ns, kind), routes in self._routes_in.items():
            for i, route in enumerate(routes):
                for name in dict.fromkeys(parent.name for parent in route.parents):
                    self._routes_named.setdefault((ns, kind, name), []).append(i)
        self._authorizations_in: dict[str, list[ServerAuthorization]] = {}
        self._authorizations_named: dict[tuple[str, str], list[int]] = {}   # by server.name
        self._authorizations_picking: dict[str, list[int]] = {}            # by server.selector
        self._on_authorized: dict[int, list[ServerAuthorization]] = {}
        for sa in self.manifests.authorizations:
            self._authorizations_in.setdefault(sa.namespace, []).append(sa)
        for ns, authorizations in self._authorizations_in.items():
            for i, sa in enumerate(authorizations):
                if sa.server is not None:
                    self._authorizations_named.setdefault((ns, sa.server), []).append(i)
                else:
                    self._authorizations_picking.setdefault(ns, []).append(i)
        # memos keyed by the record's id: the records live as long as the reader, and hashing a route
        # with many matches on every request would cost as much as the scan
        self._pod_servers: dict[Workload, list[Server]] = {}
        self._pod_ports: dict[tuple[str, str | None], dict[int, list[Server]]] = {}  # by (namespace, name): cheap to hash
        self._route_index: dict[tuple[int, str], _RouteIndex] = {}
        self._on_server: dict[int, list[AuthorizationPolicy]] = {}
        self._on_route: dict[int, list[AuthorizationPolicy]] = {}
        self._attached: dict[tuple[int, str], list[Route]] = {}
        self._plans: dict[tuple[str, str | None, int, str | None, str | None], bool | _Plan] = {}
        self._plans_of: tuple[str, str | None] | None = None

    def _policy_value(self, value: str | None) -> str:
        if value is None:
            return CLUSTER_DEFAULT
        if value == "audit" and self.dry_run_enforced:
            return "deny"
        return value if value in DEFAULT_AUTHZ else CLUSTER_DEFAULT  # an invalid value is ignored (§1)

    def defaults(self, value: str) -> list[Authz]:
        """§1: the authorizations of a default policy (or accessPolicy), on this install's clusterNetworks."""
        if value.startswith("cluster-"):
            return [Authz(a.identities, tuple((n, ()) for n in self.cluster_networks)) for a in DEFAULT_AUTHZ[value]]
        return DEFAULT_AUTHZ[value]

    # -- §0.1, §1: meshed pods and their default policy ----------------------
    def _namespace(self, pod: Workload) -> Namespace | None:
        found = self._namespaces.get(pod.namespace)
        if found is None and self.assumed is not None:
            return Namespace(pod.namespace, self.assumed.get("linkerd.io/inject") == "enabled",
                             self.assumed.get(DEFAULT_POLICY))
        return found

    # -- §0.3, §2: which Server ---------------------------------------------------
    def _servers(self, pod: Workload) -> list[Server]:
        found = self._pod_servers.get(pod)
        if found is None:
            found = [s for s in self._selecting.of(pod) if s.selects(pod)]
            self._pod_servers[pod] = found
        return found

    def _server(self, pod: Workload, port: int) -> Server | None:
        by_port = self._pod_ports.get((pod.namespace, pod.name))
        if by_port is None:
            by_port = self._pod_ports[(pod.namespace, pod.name)] = {}
            for server in self._servers(pod):
                by_port.setdefault(server.port, []).append(server)
        found = by_port.get(port, [])
        if len(found) > 1:
            raise Ambiguous(f"{len(found)} Servers select {pod.namespace}/{pod.name}:{port}: the oldest would win")
        return found[0] if found else None

    # -- §3: authorizations ------------------------------------------------------------
    def _authorization(self, policy: AuthorizationPolicy) -> Authz | None:
        """The authorization of one AuthorizationPolicy; ``None`` when a reference is missing (ignored, §3.1)."""
        meshtls = network = None
        if policy.meshtls is not None:
            meshtls = self._meshtls.get((policy.meshtls.namespace or policy.namespace, policy.meshtls.name))
            if meshtls is None:
                return None
        if policy.network is not None:
            network = self._networks.get((policy.network.namespace or policy.namespace, policy.network.name))
            if network is None:
                return None
        identities: tuple[str, ...] | None = None
        if policy.account is not None:
            account = policy.account.name, policy.account.namespace or policy.namespace
            identities = ("{}.{}.serviceaccount.identity.{}.{}".format(*account, CONTROL_PLANE,
                                                                       self.world.trust_domain),)
        elif meshtls is not None:
            identities = meshtls.identities
        nets = network.networks if network is not None else tuple((n, ()) for n in EVERYWHERE)  # §3.1
        return Authz(identities, nets)

    def _policies_about(self, namespace: str, name: str) -> list[AuthorizationPolicy]:
        """The policies of a namespace that target a resource named ``name`` or a Namespace, in their order
        (the only ones ``targets_server`` or ``targets_route`` can accept)."""
        policies = self._policies_in.get(namespace, [])
        positions = sorted(self._policies_named.get((namespace, name), []) + self._policies_wide.get(namespace, []))
        return [policies[i] for i in positions]

    def _targeting_server(self, server: Server) -> list[AuthorizationPolicy]:
        found = self._on_server.get(id(server))
        if found is None:
            found = [p for p in self._policies_about(server.namespace, server.name) if p.targets_server(server)]
            self._on_server[id(server)] = found
        return list(found)

    def _targeting_route(self, route: Route) -> list[AuthorizationPolicy]:
        found = self._on_route.get(id(route))
        if found is None:
            found = [p for p in self._policies_about(route.namespace, route.name) if p.targets_route(route)]
            self._on_route[id(route)] = found
        return list(found)

    def _authorizing(self, server: Server) -> list[ServerAuthorization]:
        """§0.4, §3.4: the ServerAuthorizations that name or select the Server: those naming it (an index by
        name) and those with a selector, tested; found once per Server (memo by record), not per request."""
        found = self._on_authorized.get(id(server))
        if found is None:
            authorizations = self._authorizations_in.get(server.namespace, [])
            positions = sorted(self._authorizations_named.get((server.namespace, server.name), [])
                               + self._authorizations_picking.get(server.namespace, []))
            found = [authorizations[i] for i in positions if authorizations[i].targets_server(server)]
            self._on_authorized[id(server)] = found
        return list(found)

    def _authzs(self, policies: list[AuthorizationPolicy]) -> list[Authz]:
        return [a for p in policies if (a := self._authz[p]) is not None]

    def _server_authzs(self, server: Server) -> list[Authz]:
        """§0.4: policies on the Server or its Namespace, its ServerAuthorizations, plus accessPolicy unless deny."""
        return (self._authzs(self._targeting_server(server)) + [a.authz for a in self._authorizing(server)]
                + self.defaults(self._policy_value(server.access_policy)))

    # -- §4: routes ------------------------------------------------------------------------
    def _routes(self, server: Server, kind: str) -> list[Route]:
        """Routes of ``kind`` attached to the Server (§4.1); a route with a bad Server parentRef is ignored."""
        found = self._attached.get((id(server), kind))
        if found is None:
            routes = self._routes_in.get((server.namespace, kind), [])
            found = [routes[i] for i in self._routes_named.get((server.namespace, kind, server.name), [])
                     if routes[i].attached_to(server)]
            self._attached[(id(server), kind)] = found
        return list(found)

    @staticmethod
    def _best_routes(routes: list[Route], req: Request) -> list[Route]:
        """The routes holding the best-scoring rule (§4.3); several only on a tie across routes."""
        scored = [(score, r) for r in routes if (score := r.best_score(req)) is not None]
        if not scored:
            return []
        top = max(s for s, _ in scored)
        return [r for s, r in scored if s == top]

    # -- §0: the decision ----------------------------------------------------------------------
    def decide(self, request: Request) -> bool:
        return self._decide(request)

    def explain(self, request: Request) -> list[ResourceRef]:
        """The resources that decide ``request``: (kind, namespace, name) of the Namespace or Server, the
        chosen route, and the AuthorizationPolicies that apply there."""
        self._trace = []
        try:
            self._decide(request)
            return [r.ref for r in self._trace]
        finally:
            self._trace = None

    def _note(self, *records: Any) -> None:
        if self._trace is not None:
            for r in records:
                if all(r is not seen for seen in self._trace):
                    self._trace.append(r)

    def _decide(self, req: Request) -> bool:
        pod = self.world.workload(req)
        namespace = self._namespace(pod)
        if namespace is None or not namespace.meshed:
            return True  # unmeshed: no policy at all (§0.1)
        if any(_contains(n, req.caller.ip) for n in LOCALHOST):
            return True  # §0.2
        plan = self._plan(pod, namespace, req)
        if isinstance(plan, bool):
            return plan
        decisions = {self._any(authzs, req) for authzs in plan.authzs}
        if len(decisions) > 1:
            raise Ambiguous(f"routes {list(plan.routes)} tie for {req} and decide differently")
        return decisions.pop()

    def _plan(self, pod: Workload, namespace: Namespace, req: Request) -> bool | _Plan:
        """How the request's operation is decided, whoever sends it: a decision, or the authorizations of which
        one must admit the caller. Remembered per operation, but while :meth:`explain` records."""
        key = (pod.namespace, pod.name, req.port, req.method, req.path)
        if key[:2] != self._plans_of:  # verification asks about one workload at a time: remember only its plans
            self._plans.clear()
            self._plans_of = key[:2]
        found = self._plans.get(key) if self._trace is None else None
        if found is None:
            found = self._plan_of(pod, namespace, req)
            if self._trace is None:
                self._plans[key] = found
        return found

    def _plan_of(self, pod: Workload, namespace: Namespace, req: Request) -> bool | _Plan:
        default = self._policy_value(namespace.default_policy)
        server = self._server(pod, req.port)
        if server is None:
            self._note(*[n for n in self.manifests.namespaces if n.name == pod.namespace])
            return self._default_server(pod, default, req)
        self._note(server, *self._targeting_server(server), *self._authorizing(server))
        server_authzs = self._server_authzs(server)
        if server.protocol in CONNECTION_PROTOCOLS:
            return _Plan((server_authzs,))  # §0.6: per connection, server level only
        if req.method is None:
            if server.protocol != "unknown":
                raise Unmodelled(f"non-HTTP traffic on a {server.protocol} Server")
            # §0.6: bytes that are not HTTP meet the server-level authorizations only. But the request space
            # has no HTTP request for this port (the source calls it tcp, or does not declare it) and a client
            # may send one: answer for the reading that admits most, any route's authorizations (and the
            # probe route) included, so that no widening hides here.
            routes = [] if self._routes(server, "GRPCRoute") else self._routes(server, "HTTPRoute")
            route_authzs = [a for r in routes for a in self._authzs(self._targeting_route(r))]
            probe = [_everywhere(None, PROBE_NETWORKS)] if not routes and req.port in pod.probe_ports() else []
            return _Plan((server_authzs + route_authzs + probe,))
        grpc_routes = self._routes(server, "GRPCRoute")
        if server.protocol == "gRPC":
            routes = grpc_routes
        else:
            # an HTTPRoute on a Server that also has GRPCRoutes is not accepted (§4.1, RouteReasonConflicted)
            routes = [] if grpc_routes else self._routes(server, "HTTPRoute")
        if not routes:
            return self._implicit_routes(pod, req, server_authzs, probes=server.protocol != "gRPC")
        index = self._route_index.get((id(server), routes[0].kind))
        if index is None:
            index = self._route_index[(id(server), routes[0].kind)] = _RouteIndex(routes)
        best = self._best_routes(index.candidates(req), req)
        if not best:
            return False  # §4.3: no route, 404
        for r in best:
            self._note(r, *self._targeting_route(r))
        return _Plan(tuple(self._authzs(self._targeting_route(r)) + server_authzs for r in best),
                     tuple(r.name for r in best))

    def _default_server(self, pod: Workload, default: str, req: Request) -> _Plan:
        """§0.3, §1: no Server, so the pod's default policy, with Detect (§0.5)."""
        authzs = self.defaults(default)
        if req.method is None:
            return _Plan((authzs,))
        return self._implicit_routes(pod, req, authzs, probes=True)

    def _implicit_routes(self, pod: Workload, req: Request, server_authzs: list[Authz], probes: bool) -> _Plan:
        """§0.7.1, §5: the default route (everything) and, for HTTP, the probe route (GET, exact probe paths)."""
        if probes and req.method == "GET" and req.port in pod.probe_ports() and req.path in pod.probes:
            # the probe route's score beats the default route's PathPrefix "/" (§4.3)
            return _Plan(([_everywhere(None, PROBE_NETWORKS)] + server_authzs,))
        return _Plan((server_authzs,))

    def seen(self, req: Request) -> Seen | None:
        """What of the caller :meth:`decide` looks at for ``req``'s destination and operation (``req.caller`` is
        not read): its address (§0.2, networks) and whether it has an identity, and the names the identities of
        the authorizations of the operation's plan test (:meth:`_authz_seen`)."""
        pod = self.world.workload(req)
        namespace = self._namespace(pod)
        if namespace is None or not namespace.meshed:
            return Seen()
        plan = self._plan(pod, namespace, req)
        if isinstance(plan, bool):
            return Seen()
        return Seen.together(self._authz_seen(a) for authzs in plan.authzs for a in authzs)

    def _authz_seen(self, authz: Authz) -> Seen | None:
        """What of a caller with an identity :meth:`Authz.admits` reads beyond the address (§3.2), for callers whose
        namespace and account hold no '.', '*' or '/' (verification decides every caller where one does): ``*``
        and a suffix of the identity tail (``*.identity.linkerd.TD``) hold for all, ``*.NS.serviceaccount...``
        names a namespace, ``ACCOUNT.NS.serviceaccount...`` an identity; None for any other name."""
        if authz.identities is None:
            return Seen()
        tail = f".serviceaccount.identity.{CONTROL_PLANE}.{self.world.trust_domain}"
        names: set[str] = set()
        idents: set[Identity] = set()
        for pattern in authz.identities:
            if pattern == "*" or (pattern.startswith("*.") and tail.endswith(pattern[1:])):
                continue
            head = pattern[:-len(tail)].split(".") if pattern.endswith(tail) else []
            if len(head) == 2 and head[0] == "*" and _plain(head[1]):
                names.add(head[1])
            elif len(head) == 2 and _plain(head[0]) and _plain(head[1]):
                idents.add(Identity(head[1], head[0]))
            else:
                return None
        return Seen(frozenset(names), frozenset(idents))

    def _any(self, authzs: list[Authz], req: Request) -> bool:
        return any(a.admits(req, self.world.trust_domain) for a in authzs)

    # -- what the manifests can tell apart for one workload ----------------------------------
    def mentions(self, namespace: str, service: str | None) -> Mentions:
        """Identities, namespaces, networks, methods, paths and ports the pod's Servers, routes and
        authentications name (each tested on its own: ``operations`` and ``identity_sets`` stay open)."""
        pod = self.world.workload_at(namespace, service)
        idents: set[Identity] = set()
        spaces: set[str] = set()
        networks: set[str] = set()
        methods: set[str] = set()
        paths: set[str] = set()
        ports: set[int] = set()
        ns = self._namespace(pod)
        if self._policy_value(ns.default_policy if ns else None).startswith("cluster-"):
            networks.update(self.cluster_networks)  # the default server admits by clusterNetworks (§1)
        for server in self._servers(pod):
            ports.add(server.port)
            if self._policy_value(server.access_policy).startswith("cluster-"):
                networks.update(self.cluster_networks)
            policies = self._targeting_server(server)
            for route in [r for kind in ("HTTPRoute", "GRPCRoute") for r in self._routes(server, kind)]:
                policies += self._targeting_route(route)
                for match in (m for rule in route.rules for m in rule or ()):
                    named_methods, named_paths = match.named()
                    methods |= named_methods
                    paths |= named_paths
            for policy in policies:
                self._authentications_named(policy, idents, spaces, networks)
            for sa in self._authorizing(server):
                networks.update(n for cidr, excepts in sa.authz.networks for n in (cidr, *excepts))
                self._identities_named(sa.authz.identities or (), idents, spaces)
        return Mentions(frozenset(idents), frozenset(spaces), frozenset(networks), frozenset(methods),
                        frozenset(paths), frozenset(ports))

    def _authentications_named(self, policy: AuthorizationPolicy, idents: set[Identity], spaces: set[str],
                               networks: set[str]) -> None:
        """Add the identities, namespaces and networks a policy's authentications name."""
        if policy.account is not None:  # exactly that account's identity (§3.1)
            idents.add(Identity(policy.account.namespace or policy.namespace, policy.account.name))
        if policy.network is not None:
            network = self._networks.get((policy.network.namespace or policy.namespace, policy.network.name))
            for cidr, excepts in network.networks if network is not None else ():
                networks.update([cidr, *excepts])
        if policy.meshtls is not None:
            meshtls = self._meshtls.get((policy.meshtls.namespace or policy.namespace, policy.meshtls.name))
            self._identities_named(meshtls.identities if meshtls is not None else (), idents, spaces)

    def _identities_named(self, names: tuple[str, ...], idents: set[Identity], spaces: set[str]) -> None:
        suffix = re.escape(f".serviceaccount.identity.{CONTROL_PLANE}.{self.world.trust_domain}")
        for name in names:
            if m := re.fullmatch(r"([^.*]+)\.([^.*]+)" + suffix, name):
                idents.add(Identity(m.group(2), m.group(1)))
            elif n := re.fullmatch(r"\*\.([^.*]+)" + suffix, name):
                spaces.add(n.group(1))
