"""Linkerd 2.20: Namespace defaults, a Server per port, routes, authentications and AuthorizationPolicies.

How each construct is lowered, and why, is in docs/targets/linkerd.md; the
facts about Linkerd it relies on are cited from ../shared/targets/linkerd.md
(sections as §N).

Linkerd only ever adds callers (§0: no DENY action; OR across policies). So
for every HTTP port the backend works out which classes of requests the
rules tell apart, the callers LANGUAGE §3 admits for each class
(:mod:`.linkerd_callers`), and a set of routes whose best match (§4.3: longest
path, then a method) puts every request on a route authorized for exactly
its class. Denied requests land on routes that carry no authorization, or on
no route at all (404). Before emitting, it replays Linkerd's route choice on
every class and refuses the port (MP301) if any request would be decided
otherwise, e.g. where Exact and PathPrefix of one path tie.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..graph.model import (
    AccessGraph,
    Action,
    Mtls,
    Namespace,
    Port,
    Protocol,
    Rule,
    Service,
)
from ..source import Span
from .base import Backend, Resource
from .linkerd_callers import (
    ANYBODY,
    EVERY_NETWORK,
    NOBODY,
    Callers,
    Ids,
    Unwritable,
    callers,
)
from .naming import digest, join

POLICY_GROUP = "policy.linkerd.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"
SERVER_API = f"{POLICY_GROUP}/v1beta3"            # storage version; has accessPolicy (§2, §7)
AUTH_API = f"{POLICY_GROUP}/v1alpha1"             # the only version of the authorization kinds (§7)
ROUTE_APIS = {"gateway": f"{GATEWAY_GROUP}/v1", "policy": f"{POLICY_GROUP}/v1beta3"}  # --linkerd-routes (§7)
GRPC_ROUTE_API = f"{GATEWAY_GROUP}/v1"            # no policy.linkerd.io GRPCRoute exists (§3.1, §7)
CONTROL_PLANE_NAMESPACE = "linkerd"               # in every identity string (§3.2)
INJECT = "linkerd.io/inject"
DEFAULT_POLICY = "config.linkerd.io/default-inbound-policy"
#: Gateway API's HTTPRouteMatch method enum (both HTTPRoute groups share it)
ROUTE_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
PROXY_PROTOCOL = {Protocol.HTTP: "HTTP/1", Protocol.HTTP2: "HTTP/2", Protocol.GRPC: "gRPC", Protocol.TCP: "opaque"}
MATCHES_PER_RULE, RULES_PER_ROUTE = 8, 16         # CRD maxItems of rules[].matches and rules
OTHER = ""                                        # a request class: any method that no rule names
REFUSES = "meshpolicy.io/refuses"                 # marks a route that exists to refuse (no authorization)


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """One route match: a path (Exact or PathPrefix) and a method (``OTHER``: none)."""

    kind: str
    path: str
    method: str = OTHER

    @property
    def score(self) -> tuple[int, bool]:
        """§4.3 precedence, PX http/match/path.rs: matched length (PathPrefix "/" counts 1), then a method."""
        length = len(self.path) if self.kind == "exact" or self.path == "/" else len(self.path.rstrip("/"))
        return (length, self.method != OTHER)

    def matches(self, method: str, path: str) -> bool:
        if self.method != OTHER and self.method != method:
            return False
        if self.kind == "exact":
            return path == self.path
        return self.path == "/" or path == self.path or path.startswith(self.path + "/")


@dataclass
class _Port:
    """What the backend knows about one port while lowering it."""

    svc: Service
    port: Port
    rules: list[Rule]
    strict: bool
    probes: tuple[str, ...]      # probe paths the kubelet reaches on this port (LANGUAGE §3.5)
    server: str
    cache: dict[tuple[str | None, str | None, bool], Callers | Unwritable] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.svc}:{self.port.number}"


@dataclass(frozen=True, slots=True)
class _Space:
    """Request classes of one port: every (method, path) the rules (and probes) can tell apart.

    A path stands for a region: an exact path for itself; ``child[v]`` (``v/<fresh>``) for every path
    under the prefix ``v`` that no longer key takes; the same for ``/svc/...`` of a whole gRPC service.
    """

    exact: frozenset[str]
    child: dict[str, str]             # prefix -> a representative path under it
    services: tuple[str, ...]         # whole gRPC services
    methods: tuple[str, ...]          # named methods, then OTHER
    fresh: str

    @classmethod
    def of(cls, ctx: _Port) -> _Space:
        rules = ctx.rules
        exact = {p.value for r in rules for p in r.paths if p.kind == "exact"}
        exact |= {f"/{g.service}/{g.method}" for r in rules for g in r.grpc if g.method} | set(ctx.probes)
        prefixes = {p.value for r in rules for p in r.paths if p.kind == "prefix"} | {"/"}
        services = tuple(sorted({g.service for r in rules for g in r.grpc if not g.method}))
        methods = {m for r in rules for m in r.methods} | ({"POST"} if any(r.grpc for r in rules) else set())
        methods |= {"GET"} if ctx.probes else set()
        fresh = _fresh_segment(exact | prefixes | {f"/{s}" for s in services})
        child = {v: v.rstrip("/") + "/" + fresh for v in prefixes}
        return cls(frozenset(exact), child, services, (*sorted(methods), OTHER), fresh)

    @property
    def requests(self) -> list[tuple[str, str]]:
        paths = set(self.exact) | set(self.child) | set(self.child.values())
        paths |= {f"/{s}" for s in self.services} | {f"/{s}/{self.fresh}" for s in self.services}
        return [(m, p) for m in self.methods for p in sorted(paths)]


def http_matches(rule: Rule, method: str | None, path: str | None) -> bool:
    """The HTTP part of LANGUAGE §3 for one request class (``OTHER``: a method no rule names)."""
    if rule.methods and method not in rule.methods:
        return False
    if rule.paths and (path is None or not any(p.matches(path) for p in rule.paths)):
        return False
    if rule.grpc and (method != "POST" or path is None or not any(g.matches(path) for g in rule.grpc)):
        return False
    return True


def _fresh_segment(paths: Iterable[str]) -> str:
    """A path segment that no rule names, so ``v/<it>`` stands for every other path under ``v``."""
    taken = {seg for p in paths for seg in p.split("/")}
    seg = "other"
    while seg in taken:
        seg += "-x"
    return seg


class LinkerdBackend(Backend):
    """Linkerd 2.20 (policy.linkerd.io v1beta3 Servers, Gateway API v1 routes)."""

    name = "linkerd"
    summary = ("Linkerd 2.20: Namespace default-deny, Server per port, HTTPRoute/GRPCRoute, "
               "MeshTLS/NetworkAuthentication, AuthorizationPolicy")

    def __init__(self, mode: str = "enforce", routes: str = "gateway", **options: Any) -> None:
        super().__init__(mode, **options)
        if routes not in ROUTE_APIS:
            raise ValueError(f"routes must be one of {sorted(ROUTE_APIS)}, not {routes!r}")
        self.route_api = ROUTE_APIS[routes]
        self.access = "audit" if mode == "audit" else "deny"
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.trust_domain = ""
        self._reported: set[tuple[str, Span | None]] = set()

    def unsupported(self, construct: str, span: Span | None, hint: str | None = None) -> None:
        """As the base class, once per construct and place (a rule can reach several ports and classes)."""
        if (construct, span) not in self._reported:
            self._reported.add((construct, span))
            super().unsupported(construct, span, hint)

    # -- entry points ------------------------------------------------------------
    def lower(self, graph: AccessGraph) -> list[Resource]:
        self.trust_domain = graph.trust_domain
        for ns in graph.managed_namespaces:
            if ns.name == CONTROL_PLANE_NAMESPACE:
                # the control plane's own namespace: a deny default and injection there would cut off the
                # policy controller and identity service every meshed pod depends on (§1, §3.2)
                self.unsupported(f"managing namespace '{CONTROL_PLANE_NAMESPACE}' (Linkerd's control plane)",
                                 ns.origins[0] if ns.origins else None,
                                 "declare its services in an external namespace if they only call")
                continue
            self._namespace(ns)
            for svc in graph.services_in(ns.name):
                rules = graph.rules_for(svc.key)
                if not svc.ports:
                    self._portless(svc, rules)
                    continue
                open_probes = self._probe_ports(svc)
                for port in svc.ports:
                    strict = graph.mtls_for(svc, svc.namespace, port.number) is Mtls.STRICT
                    ctx = _Port(svc, port, [r for r in rules if port.number in r.ports], strict,
                                svc.probes if port.number in open_probes else (), join(svc.name, port.number))
                    self._port(ctx)
        return sorted(self.resources.values(), key=lambda r: (r.namespace, r.kind, r.name))

    def open_probes(self, graph: AccessGraph) -> frozenset[tuple[str, str, int]]:
        """Every HTTP/1 and HTTP/2 port of a service with probes: by our probe route once the port has
        routes, and by Linkerd's own probe route (from 0.0.0.0/0 and ::/0 by default) before (§5)."""
        return frozenset((svc.namespace, svc.name, number)
                         for svc in graph.services if not graph.namespace(svc.namespace).external
                         for number in self._probe_ports(svc))

    @staticmethod
    def _probe_ports(svc: Service) -> tuple[int, ...]:
        # gRPC Servers never get a probe route (§5), so probes are taken to be served on HTTP/1 and HTTP/2 ports.
        if not svc.probes:
            return ()
        return tuple(p.number for p in svc.ports if p.protocol in (Protocol.HTTP, Protocol.HTTP2))

    # -- resources ---------------------------------------------------------------
    def _add(self, res: Resource) -> Resource:
        key = (res.kind, res.namespace, res.name)
        old = self.resources.get(key)
        if old is not None:
            if old.spec != res.spec or old.api_version != res.api_version:
                raise RuntimeError(f"two different {res.kind} resources named {res.namespace}/{res.name}")
            res = Resource(res.api_version, res.kind, res.namespace, res.name, res.spec,
                           tuple(sorted(set(old.origins) | set(res.origins))), res.annotations, res.labels)
        self.resources[key] = res
        return res

    def _namespace(self, ns: Namespace) -> None:
        # Policy exists only for meshed pods, and the default is read from the pod's annotation, which the
        # injector copies from the namespace at pod creation (§1, §9).
        annotations = ((INJECT, "enabled"), (DEFAULT_POLICY, self.access))
        self._add(Resource("v1", "Namespace", ns.name, ns.name, None, ns.origins, annotations))

    def _portless(self, svc: Service, rules: tuple[Rule, ...]) -> None:
        # A Server selects one port (§2); "every port" of a workload has no Server to hang on, and the
        # default policy is per pod, not per workload we could name (§1).
        for rule in rules:
            if rule.action is Action.ALLOW:
                self.unsupported(f"a rule for '{svc}', which declares no ports (every port)", rule.origin,
                                 "declare the ports it serves, e.g. service NAME :8080/http")

    def _server(self, ctx: _Port, protocol: str) -> None:
        spec = {
            "podSelector": {"matchLabels": dict(ctx.svc.labels)},
            "port": ctx.port.number,            # an integer: a string would be a port name (§2)
            "proxyProtocol": protocol,
            "accessPolicy": self.access,
        }
        self._add(Resource(SERVER_API, "Server", ctx.svc.namespace, ctx.server, spec, ctx.svc.origins))

    # -- one port ----------------------------------------------------------------
    def _port(self, ctx: _Port) -> None:
        self._check_methods(ctx)
        protocol = PROXY_PROTOCOL[ctx.port.protocol]
        if not ctx.port.protocol.is_http:
            # opaque: per connection, server-level authorizations only (§0.6, §6)
            found = self._classes(ctx, [(None, None)])
            if found is not None:
                self._server_only(ctx, protocol, found)
            return
        if ctx.port.protocol is Protocol.GRPC and any(g for r in ctx.rules for g in r.grpc if not g.method):
            self._grpc_port(ctx, protocol)
        else:
            self._http_port(ctx, protocol)

    def _check_methods(self, ctx: _Port) -> None:
        for rule in ctx.rules:
            for method in rule.methods:
                if method not in ROUTE_METHODS:
                    self.unsupported(f"HTTP method '{method}'", rule.origin,
                                     "HTTPRoute matches only GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, "
                                     "TRACE and PATCH (Gateway API method enum)")

    def _callers(self, ctx: _Port, method: str | None, path: str | None,
                 probes: bool = False) -> Callers | Unwritable:
        """The callers of one request class, cached; a probe GET is open to anybody (LANGUAGE §3.5)."""
        key = (method, path, probes)
        if key not in ctx.cache:
            if probes and method == "GET" and path in ctx.probes:
                ctx.cache[key] = ANYBODY
            else:
                matching = [r for r in ctx.rules if http_matches(r, method, path)]
                ctx.cache[key] = callers((r for r in matching if r.action is Action.ALLOW),
                                         (r for r in matching if r.action is Action.DENY), ctx.strict)
            found = ctx.cache[key]
            if isinstance(found, Unwritable):
                example = f" (for example {'a ' + method if method else 'a request'} to {path})" if path else ""
                for rule in found.rules:
                    self.unsupported(f"the deny rule '{rule.text}' on {ctx.label}", rule.origin,
                                     f"{found.reason}{example}; Linkerd has no deny action, its authorizations "
                                     "only add callers (linkerd.md §0)")
        return ctx.cache[key]

    def _classes(self, ctx: _Port, requests: list[tuple[str | None, str | None]],
                 probes: bool = False) -> dict | None:
        """Callers of every request class, or ``None`` when one cannot be written (errors reported)."""
        out = {req: self._callers(ctx, *req, probes=probes) for req in requests}
        return None if any(isinstance(c, Unwritable) for c in out.values()) else out

    def _server_only(self, ctx: _Port, protocol: str, classes: dict) -> bool:
        """One caller set for every request class: authorize the Server and emit no route.

        Linkerd then keeps its implicit default and probe routes (§4.2, §5), so probes keep working.
        """
        if len(set(classes.values())) != 1:
            return False
        self._server(ctx, protocol)
        self._authorize(ctx, self._server_ref(ctx), next(iter(classes.values())), _origins(ctx.rules))
        return True

    # -- HTTP ports: HTTPRoutes --------------------------------------------------
    def _http_port(self, ctx: _Port, protocol: str) -> None:
        whole = [r for r in ctx.rules if any(not g.method for g in r.grpc)]
        for rule in whole:
            # PathPrefix /svc would also take POST /svc, and Exact /svc ties with it (§4.3); only a
            # GRPCRoute on a gRPC Server holds "every method of svc" exactly.
            self.unsupported(f"the whole-service gRPC match of '{rule.text}' on {ctx.port.protocol.value} port "
                             f"{ctx.label}", rule.origin,
                             "give the rule the gRPC port (:N), or name single methods (Service/Method)")
        if whole:
            return
        space = _Space.of(ctx)
        exact, child, requests = space.exact, space.child, space.requests
        plain = self._classes(ctx, requests)
        if plain is None or self._server_only(ctx, protocol, plain):
            return
        full = self._classes(ctx, requests, probes=True)
        if full is None:
            return
        keys = [Key("exact", p, m) for p in exact for m in space.methods]
        keys += [Key("prefix", p, m) for p in child for m in space.methods]
        rep = {k: (k.method, k.path if k.kind == "exact" else child[k.path]) for k in keys}
        chosen: dict[Key, Callers] = {}
        # least specific first; at one score PathPrefix first, so Exact is kept only where it differs
        for key in sorted(keys, key=lambda k: (k.score, k.kind == "exact", k.path, k.method)):
            wanted = full[rep[key]]
            if _route_choice(chosen, *rep[key]) != wanted:
                chosen[key] = wanted
        if not self._verify(ctx, chosen, full):
            return
        if ctx.port.protocol is Protocol.GRPC:
            protocol = "HTTP/2"  # gRPC Servers use GRPCRoutes only (§4.2); POST + Exact path is exact here
        self._server(ctx, protocol)
        groups: dict[tuple[bool, Callers], list[Key]] = {}
        for key, who in chosen.items():
            # a route for nobody is kept: it matches what a deny rule refuses, and refuses it (403)
            probe = key.kind == "exact" and key.path in ctx.probes and key.method == "GET" and who == ANYBODY
            groups.setdefault((probe, who), []).append(key)
        for (probe, who), group in sorted(groups.items()):
            matches = [_http_match(k) for k in sorted(group)]
            rules = [r for r in ctx.rules if any(http_matches(r, *rep[k]) for k in group)]
            origins = ctx.svc.origins if probe else _origins(rules)
            slug = "probes" if probe else _slug(sorted(group)[0])
            note = () if who else ((REFUSES, "no AuthorizationPolicy targets this route: Linkerd answers what it "
                                               "matches with 403 (a deny rule)"),)
            for route in self._routes(ctx, "HTTPRoute", self.route_api, slug, matches, probe, origins, note):
                self._authorize(ctx, self._route_ref(route), who, origins)
        if ctx.probes:
            self.diag.note("MP302", f"probe paths {', '.join(ctx.probes)} of '{ctx.svc}' are open to "
                           f"unauthenticated GET requests from any address on port {ctx.port.number}",
                           ctx.svc.origins[0] if ctx.svc.origins else None,
                           "Linkerd drops its own probe route once a port has routes (linkerd.md §5), "
                           "so meshpolicy adds one")

    def _verify(self, ctx: _Port, chosen: dict[Key, Callers], full: dict) -> bool:
        """Replay Linkerd's route choice (§4.3) on every request class; MP301 where one would be decided otherwise."""
        ok = True
        for (method, path), wanted in full.items():
            got = _route_choice(chosen, method, path)
            if got == wanted:
                continue
            ok = False
            rivals = _winners(chosen, method, path)
            tied = {k.path for k in rivals if k.kind == "exact"} & {k.path for k in rivals if k.kind == "prefix"}
            value = next(iter(tied), path)
            culprits = [r for r in ctx.rules if any(p.value == value for p in r.paths)
                        or any(f"/{g.service}/{g.method}" == value for g in r.grpc)] or ctx.rules
            what = (f"the path '{value}' exactly and the prefix '{value}/*' with different callers"
                    if tied else f"the rules for {method or 'any other method'} {path}")
            for rule in culprits:
                self.unsupported(f"{what} ({ctx.label})", rule.origin,
                                 "Linkerd ranks Exact and PathPrefix of one path as equal and then picks the "
                                 "older route (linkerd.md §4.3); give both the same callers, or split the paths")
        return ok

    # -- gRPC ports with whole-service matches: GRPCRoutes -------------------------
    def _grpc_port(self, ctx: _Port, protocol: str) -> None:
        space = _Space.of(ctx)
        found = self._classes(ctx, space.requests)
        if found is None or self._server_only(ctx, protocol, found):
            return
        # A GRPCRoute service match takes every POST /svc/<anything> (PX grpc/match.rs), a method match also
        # /svc/Method/more, and nothing else matches: other requests get 404 (§4.2, §4.3). So GRPCRoutes are
        # exact when each whole service has one caller set and nothing outside them is allowed.
        inside = {s: [r for r in space.requests if r[0] == "POST" and r[1].startswith(f"/{s}/")]
                  for s in space.services}
        ok = True
        for svc_name, reqs in inside.items():
            if len({found[r] for r in reqs}) > 1:
                ok = False
                for rule in ctx.rules:
                    if (rule.methods or rule.paths or any(g.method for g in rule.grpc)) and \
                            any(http_matches(rule, *r) for r in reqs):
                        self.unsupported(f"'{rule.text}' inside the whole gRPC service '{svc_name}' on {ctx.label}",
                                         rule.origin, "a whole gRPC service is exact only as a GRPCRoute, whose "
                                         "method match would also take /Service/Method/more; put single methods "
                                         "and paths on another port, or name every method")
        taken = {r for reqs in inside.values() for r in reqs}
        for req in space.requests:
            if req not in taken and found[req]:
                ok = False
                for rule in ctx.rules:
                    if rule.action is Action.ALLOW and http_matches(rule, *req):
                        self.unsupported(f"'{rule.text}' on {ctx.label}, a gRPC port with whole-service matches",
                                         rule.origin, "once GRPCRoutes exist, a request that none matches gets 404 "
                                         "(linkerd.md §4.3), so only whole gRPC services can be allowed here; put "
                                         "single methods (HTTPRoutes on an HTTP/2 Server) on another port")
        if not ok:
            return
        self._server(ctx, protocol)
        groups: dict[Callers, list[str]] = {}
        for svc_name, reqs in inside.items():
            if found[reqs[0]]:
                groups.setdefault(found[reqs[0]], []).append(svc_name)
        for who, names in sorted(groups.items()):
            matches = [{"method": {"type": "Exact", "service": s}} for s in names]
            origins = _origins(r for r in ctx.rules if any(http_matches(r, *q) for s in names for q in inside[s]))
            for route in self._routes(ctx, "GRPCRoute", GRPC_ROUTE_API, join(names[0]), matches, False, origins):
                self._authorize(ctx, self._route_ref(route), who, origins)

    # -- routes and authorizations -----------------------------------------------
    def _routes(self, ctx: _Port, kind: str, api: str, slug: str, matches: list[dict], probe: bool,
                origins: tuple[Span, ...], annotations: tuple[tuple[str, str], ...] = ()) -> list[Resource]:
        """Routes attached to the Server (§4.1: group policy.linkerd.io, kind Server, no port or sectionName)."""
        per_route = MATCHES_PER_RULE * RULES_PER_ROUTE
        out = []
        for start in range(0, len(matches), per_route):
            chunk = matches[start:start + per_route]
            rules = [{"matches": chunk[i:i + MATCHES_PER_RULE]} for i in range(0, len(chunk), MATCHES_PER_RULE)]
            spec = {"parentRefs": [{"group": POLICY_GROUP, "kind": "Server", "name": ctx.server}], "rules": rules}
            name = join(ctx.server, slug) if probe else join(ctx.server, slug, digest(rules, 6))
            out.append(self._add(Resource(api, kind, ctx.svc.namespace, name, spec, origins, annotations)))
        return out

    def _server_ref(self, ctx: _Port) -> dict[str, str]:
        return {"group": POLICY_GROUP, "kind": "Server", "name": ctx.server}

    @staticmethod
    def _route_ref(route: Resource) -> dict[str, str]:
        return {"group": route.api_version.split("/")[0], "kind": route.kind, "name": route.name}

    def _authorize(self, ctx: _Port, target: dict[str, str], who: Callers, origins: tuple[Span, ...]) -> None:
        """One AuthorizationPolicy per term of ``who`` on ``target`` (OR across policies, AND across refs, §3.1)."""
        ns = ctx.svc.namespace
        for term in who:
            refs: list[dict[str, str]] = []
            parts: list[str] = []
            if not term.ids.everyone:
                authn = self._meshtls(ns, term.ids, origins)
                refs.append({"group": POLICY_GROUP, "kind": "MeshTLSAuthentication", "name": authn})
                parts.append(authn)
            else:
                parts.append("unauthenticated")
            if term.networks != EVERY_NETWORK or term.ids.everyone:
                # with no identity ref the policy is unauthenticated; an explicit network keeps the list non-empty
                authn = self._network(ns, term.networks, origins)
                refs.append({"group": POLICY_GROUP, "kind": "NetworkAuthentication", "name": authn})
                parts.append(authn)
            spec = {"targetRef": target, "requiredAuthenticationRefs": refs}
            name = join(target["name"], *parts)
            self._add(Resource(AUTH_API, "AuthorizationPolicy", ns, name, spec, origins))

    def _identity(self, namespace: str, account: str) -> str:
        return f"{account}.{namespace}.serviceaccount.identity.{CONTROL_PLANE_NAMESPACE}.{self.trust_domain}"

    def _meshtls(self, ns: str, ids: Ids, origins: tuple[Span, ...]) -> str:
        # identities: "*" = any authenticated client; "*.<suffix>" = every account of a namespace (§3.2)
        if ids.mesh:
            names, slug = ["*"], "any-identity"
        else:
            names = [self._identity(n, "*") for n in ids.namespaces] + [self._identity(n, a) for n, a in ids.accounts]
            first = f"{ids.namespaces[0]}-all" if ids.namespaces else "-".join(ids.accounts[0])
            slug = join(first, digest(names, 6))
        self._add(Resource(AUTH_API, "MeshTLSAuthentication", ns, slug, {"identities": names}, origins))
        return slug

    def _network(self, ns: str, networks: tuple, origins: tuple[Span, ...]) -> str:
        entries = [{"cidr": cidr, **({"except": list(exc)} if exc else {})} for cidr, exc in networks]
        slug = "any-network" if networks == EVERY_NETWORK else join(networks[0][0], digest(entries, 6))
        self._add(Resource(AUTH_API, "NetworkAuthentication", ns, slug, {"networks": entries}, origins))
        return slug


def _origins(rules: Iterable[Rule]) -> tuple[Span, ...]:
    return tuple(sorted({r.origin for r in rules}))


def _winners(chosen: dict[Key, Callers], method: str, path: str) -> list[Key]:
    matching = [k for k in chosen if k.matches(method, path)]
    if not matching:
        return []
    best = max(k.score for k in matching)
    return [k for k in matching if k.score == best]


def _route_choice(chosen: dict[Key, Callers], method: str, path: str) -> Callers | None:
    """Who the best-matching chosen route admits (no route: 404, nobody); ``None`` when tied routes differ."""
    found = {chosen[k] for k in _winners(chosen, method, path)}
    if not found:
        return NOBODY
    return found.pop() if len(found) == 1 else None


def _http_match(key: Key) -> dict[str, Any]:
    match: dict[str, Any] = {"path": {"type": "Exact" if key.kind == "exact" else "PathPrefix", "value": key.path}}
    if key.method != OTHER:
        match["method"] = key.method
    return match


def _slug(key: Key) -> str:
    method = key.method.lower() if key.method != OTHER else "all"
    return join(method, key.path.strip("/") or "root")


Backend = LinkerdBackend
