"""Planning one Linkerd port: the request classes its rules tell apart, who may send each, and the routes for them.

Pure: :func:`plan_port` takes a :class:`PortPolicy` and returns a :class:`PortPlan`; nothing is reported
or emitted here. :mod:`.check` then replays Linkerd's route choice over the plan, and :mod:`.emit` writes it.

Linkerd only ever adds callers (linkerd.md §0: no DENY action; OR across policies). So for every HTTP port
the plan cuts the requests into classes, computes the callers LANGUAGE §3 admits for each class
(:mod:`.callers`), and chooses route matches whose best match (§4.3: longest path, then a method) puts every
request on a route authorized for exactly its class. Denied requests land on routes that carry no
authorization, or on no route at all (404).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ...graph.model import Action, PathKind, PathMatch, Port, Protocol, Rule, Service, path_only
from ...source import Span
from ..naming import join
from .callers import ANYBODY, Callers, Unwritable, callers
from .matching import EXACT, OTHER_METHOD, PATH_PREFIX, REGEX, ChosenRoutes, RouteMatch, route_choice

#: (method, path) of a request class; ``OTHER_METHOD``: any method no rule names; (None, None): a connection
RequestClass = tuple[str | None, str | None]

PROXY_PROTOCOL = {Protocol.HTTP: "HTTP/1", Protocol.HTTP2: "HTTP/2", Protocol.GRPC: "gRPC", Protocol.TCP: "opaque"}
#: gRPC Servers use GRPCRoutes only (§4.2): a gRPC port with HTTPRoutes is an HTTP/2 Server
HTTP_ROUTES_ON_GRPC = "HTTP/2"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A construct Linkerd cannot hold exactly (MP301): what, where, and how to get around it."""

    construct: str
    span: Span | None
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class PortPolicy:
    """One declared port of a service and everything that decides it: the input of planning."""

    service: Service
    port: Port
    rules: tuple[Rule, ...]      # the rules that reach this port
    strict: bool                 # mTLS strict: no caller may be unauthenticated
    probes: tuple[str, ...]      # probe paths the kubelet reaches on this port (LANGUAGE §3.5)

    @property
    def server(self) -> str:
        """The name of the port's Server (and the stem of its routes' and policies' names)."""
        return join(self.service.name, self.port.number)

    @property
    def label(self) -> str:
        """``ns/service:port``, as diagnostics name the port."""
        return f"{self.service}:{self.port.number}"


#: the name of the stand-in service whose ports are a namespace's ``NS/**`` ports: its Servers are named
#: ``every-workload-PORT`` and select every pod of the namespace (an empty selector, §2)
EVERY_WORKLOAD_NAME = "every-workload"


def every_workload(namespace: str, origins: tuple[Span, ...] = ()) -> Service:
    """The stand-in for every workload of ``namespace``, declared or not: no labels (every pod), no probes;
    ``origins``: the ``**`` rules it stands for, for the provenance of its Servers."""
    return Service(namespace, EVERY_WORKLOAD_NAME, "", (), origins=origins)


def is_every_workload(service: Service) -> bool:
    return service.name == EVERY_WORKLOAD_NAME and not service.labels and not service.account


@dataclass(frozen=True, slots=True)
class RequestClasses:
    """The requests of one port that no rule (or probe) can tell apart, each standing for a region.

    An exact path stands for itself; ``under_prefix[v]`` (``v/<fresh segment>``) for every path under the
    prefix ``v`` that no longer prefix takes; the same for ``/svc/...`` of a whole gRPC service.
    """

    exact_paths: frozenset[str]
    under_prefix: dict[str, str]        # prefix -> a path under it that no rule names
    grpc_services: tuple[str, ...]      # whole gRPC services
    methods: tuple[str, ...]            # the methods rules name, then OTHER_METHOD
    fresh_segment: str
    #: character prefixes and suffixes as written (``/a*``, ``*.png``) -> a path that only they take
    patterns: dict[str, str] = field(default_factory=dict)
    #: paths where the patterns meet each other and the exact paths and prefixes (``/a/x.png``, ``/a.png``)
    pattern_paths: frozenset[str] = frozenset()

    @classmethod
    def of(cls, policy: PortPolicy) -> RequestClasses:
        rules = policy.rules
        exact = {p.value for r in rules for p in r.paths if p.kind is PathKind.EXACT}
        exact |= {f"/{g.service}/{g.method}" for r in rules for g in r.grpc if g.method} | set(policy.probes)
        prefixes = {p.value for r in rules for p in r.paths if p.kind is PathKind.PREFIX} | {"/"}
        services = tuple(sorted({g.service for r in rules for g in r.grpc if not g.method}))
        methods = {m for r in rules for m in r.methods} | ({"POST"} if any(r.grpc for r in rules) else set())
        methods |= {"GET"} if policy.probes else set()
        patterns = sorted({p for r in rules for p in r.paths if p.kind in (PathKind.STARTS, PathKind.SUFFIX)})
        fresh = _fresh_segment(exact | prefixes | {f"/{s}" for s in services} | {p.value for p in patterns})
        under = {v: v.rstrip("/") + "/" + fresh for v in prefixes}
        own = {str(p): (p.value + fresh if p.kind is PathKind.STARTS else f"/{fresh}{p.value}") for p in patterns}
        return cls(frozenset(exact), under, services, (*sorted(methods), OTHER_METHOD), fresh, own,
                   _pattern_paths(patterns, exact | set(under) | set(under.values()), fresh))

    @property
    def all(self) -> list[tuple[str, str]]:
        paths = set(self.exact_paths) | set(self.under_prefix) | set(self.under_prefix.values())
        paths |= {f"/{s}" for s in self.grpc_services} | {f"/{s}/{self.fresh_segment}" for s in self.grpc_services}
        paths |= set(self.patterns.values()) | self.pattern_paths
        return [(m, p) for m in self.methods for p in sorted(paths)]

    def candidates(self) -> list[RouteMatch]:
        """Every route match that could tell these classes apart."""
        found = [RouteMatch(EXACT, p, m) for p in self.exact_paths for m in self.methods]
        found += [RouteMatch(REGEX, p, m) for p in self.patterns for m in self.methods]
        return found + [RouteMatch(PATH_PREFIX, p, m) for p in self.under_prefix for m in self.methods]

    def sample(self, match: RouteMatch) -> tuple[str, str]:
        """The request class a candidate match stands for: its path, a path under its prefix, or a path that
        only its pattern takes."""
        if match.path_type == REGEX:
            return (match.method, self.patterns[match.path])
        return (match.method, match.path if match.path_type == EXACT else self.under_prefix[match.path])


def _pattern_paths(patterns: Sequence[PathMatch], paths: set[str], fresh: str) -> frozenset[str]:
    """Paths around character prefixes and suffixes: each prefix itself, one character short of it and
    under it; each suffix on its own, right after and under every other path of the port (so that the
    replay of the route choice sees every way the patterns overlap the port's other paths and each other)."""
    out: set[str] = set()
    starts = [p.value for p in patterns if p.kind is PathKind.STARTS]
    for value in starts:
        out |= {value, value + "/" + fresh, value[:-1] or "/"}
    bases = paths | out | {v + fresh for v in starts}
    for p in patterns:
        if p.kind is PathKind.SUFFIX:
            out |= {"/" + p.value.lstrip("/"), f"/{fresh}{p.value}"}
            out |= {b + p.value for b in bases} | {b.rstrip("/") + f"/{fresh}{p.value}" for b in bases}
    return frozenset(out)


def _fresh_segment(paths: Iterable[str]) -> str:
    """A path segment that no rule names, so ``v/<it>`` stands for every other path under ``v``."""
    taken = {seg for p in paths for seg in p.split("/")}
    seg = "other"
    while seg in taken:
        seg += "-x"
    return seg


# -- plans ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One HTTPRoute to emit (split later at the CRD's limits): its matches and who may send what they match."""

    matches: tuple[RouteMatch, ...]          # sorted
    callers: Callers                         # NOBODY: a route that exists to refuse (403)
    rules: tuple[Rule, ...]                  # the rules whose requests it holds (none for the probe route)
    probe: bool = False                      # the probe route: GET on the probe paths, for anybody


@dataclass(frozen=True, slots=True)
class GrpcServiceRoute:
    """One GRPCRoute to emit: whole gRPC services with the same callers."""

    services: tuple[str, ...]
    callers: Callers
    rules: tuple[Rule, ...]                  # the rules whose requests it holds


@dataclass(frozen=True, slots=True, kw_only=True)
class PortPlan:
    """What one port becomes. A subclass says how."""

    port: PortPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused(PortPlan):
    """Nothing can be planned: a caller set Linkerd cannot write, or a match no route can hold."""

    refusals: tuple[Refusal, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOnly(PortPlan):
    """One caller set for every request: Server-level authorizations and no route.

    Linkerd then keeps its implicit default and probe routes (§4.2, §5). Every TCP port is one: opaque
    traffic is authorized per connection by Server-level authorizations only (§0.6, §6).
    """

    proxy_protocol: str
    callers: Callers


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRoutes(PortPlan):
    """HTTPRoutes on the Server, and no Server-level authorization (it would open every route, §4.4)."""

    proxy_protocol: str
    wanted: Mapping[RequestClass, Callers]   # the callers LANGUAGE §3 admits, per request class
    routes: tuple[HttpRoute, ...]

    def chosen(self) -> ChosenRoutes:
        """Every planned match and who its route admits: what Linkerd chooses from (§4.3)."""
        return ChosenRoutes({m: r.callers for r in self.routes for m in r.matches})


@dataclass(frozen=True, slots=True, kw_only=True)
class GrpcRoutes(PortPlan):
    """GRPCRoutes with Exact service matches on a gRPC Server; every other request gets 404."""

    proxy_protocol: str
    wanted: Mapping[RequestClass, Callers]
    inside: Mapping[str, tuple[tuple[str, str], ...]]   # whole service -> the request classes it takes
    routes: tuple[GrpcServiceRoute, ...]


def plan_port(policy: PortPolicy) -> PortPlan:
    """The plan of one port: Server-only, HTTPRoutes, GRPCRoutes, or refused."""
    if not policy.port.protocol.is_http:
        return _plan_connections(policy)
    whole_services = [r for r in policy.rules if any(not g.method for g in r.grpc)]
    if whole_services and policy.port.protocol is not Protocol.GRPC:
        # PathPrefix /svc would also take POST /svc, and Exact /svc ties with it (§4.3); only a
        # GRPCRoute on a gRPC Server holds "every method of svc" exactly.
        return Refused(port=policy, refusals=tuple(
            Refusal(f"the whole-service gRPC match of '{rule.text}' on {policy.port.protocol.value} port "
                    f"{policy.label}", rule.origin,
                    "give the rule the gRPC port (:N), or name single methods (Service/Method)")
            for rule in whole_services))
    classes = RequestClasses.of(policy)
    rules = MatchingRules(policy.rules)
    found = _callers_by_class(policy, classes.all, rules)
    if isinstance(found, Refused):
        return found
    if len(set(found.values())) == 1:
        return ServerOnly(port=policy, proxy_protocol=PROXY_PROTOCOL[policy.port.protocol],
                          callers=next(iter(found.values())))
    if whole_services:
        return _plan_grpc_routes(policy, classes, found, rules)
    return _plan_http_routes(policy, classes, found, rules)


def origins_of(rules: Iterable[Rule]) -> tuple[Span, ...]:
    return tuple(sorted({r.origin for r in rules}))


#: a port with more rules than this finds the rules of a request by lookups (:class:`MatchingRules`)
_INDEXED_FROM = 8


class MatchingRules:
    """The rules of a port indexed by what their HTTP matches can take: the rules a request class matches
    are found by looking up its path, its segment prefixes, its character prefixes and suffixes (and its
    method, for rules that name no path and no gRPC call), not by testing every rule.

    The same answer as ``[r for r in rules if r.http_matches(method, path)]``, in the rules' order (a
    property test holds it to that): the lookups only gather candidates, each of which is then tested
    with :meth:`Rule.http_matches` itself, so the index can only miss a rule, never add one, and it misses
    none (a rule with paths is filed under each of them, a rule with gRPC calls and no path under each
    call, any other rule under its methods or as open). Planning asks for every request class of a port
    and for the routes' rules; a scan of every rule there was quadratic in the rules of a port
    (``callers:N``, issue 12, docs/performance.md). A port of at most ``indexed_from`` rules is scanned
    (filing them costs more than it saves there: ``ports:1000``, ``paths:1000``).
    """

    def __init__(self, rules: Sequence[Rule], indexed_from: int = _INDEXED_FROM) -> None:
        self._rules = tuple(rules)
        self._scan = len(self._rules) <= indexed_from
        self._by_path: dict[PathKind, dict[str, list[int]]] = {kind: {} for kind in PathKind}
        self._calls: dict[str, list[int]] = {}          # "/svc/method" of a gRPC method call
        self._services: dict[str, list[int]] = {}       # "/svc" of a whole gRPC service: "/svc/" starts the path
        self._open: list[int] = []                      # no path, no gRPC call, no method: every request
        self._by_method: dict[str, list[int]] = {}      # no path, no gRPC call: by each of its methods
        self._memo: dict[RequestClass, tuple[int, ...]] = {}
        for at, rule in enumerate(() if self._scan else self._rules):
            if rule.paths:
                for p in rule.paths:
                    self._by_path[p.kind].setdefault(p.value, []).append(at)
            elif rule.grpc:
                for g in rule.grpc:
                    index = self._calls if g.method else self._services
                    index.setdefault(f"/{g.service}/{g.method}" if g.method else f"/{g.service}", []).append(at)
            elif rule.methods:
                for method in rule.methods:
                    self._by_method.setdefault(method, []).append(at)
            else:
                self._open.append(at)

    def matching(self, method: str | None, path: str | None) -> tuple[Rule, ...]:
        """The rules whose methods, paths and gRPC calls all match the request, in the rules' order."""
        if self._scan:
            return tuple(r for r in self._rules if r.http_matches(method, path))
        return tuple(self._rules[i] for i in self._positions(method, path))

    def holding(self, requests: Iterable[RequestClass]) -> tuple[Rule, ...]:
        """The rules that match any of ``requests``, in the rules' order."""
        if self._scan:
            asked = list(requests)
            return tuple(r for r in self._rules if any(r.http_matches(*request) for request in asked))
        return tuple(self._rules[i] for i in sorted({i for request in requests for i in self._positions(*request)}))

    def _positions(self, method: str | None, path: str | None) -> tuple[int, ...]:
        found = self._memo.get((method, path))
        if found is None:
            at = set(self._open) | set(self._by_method.get(method, ()) if method is not None else ())
            if path is not None:
                at |= self._filed_under(path_only(path))
            found = self._memo[(method, path)] = tuple(
                i for i in sorted(at) if self._rules[i].http_matches(method, path))
        return found

    def _filed_under(self, path: str) -> set[int]:
        """The rules filed under a pattern that can take ``path`` (candidates: each is tested after)."""
        exact, prefix = self._by_path[PathKind.EXACT], self._by_path[PathKind.PREFIX]
        starts, suffix = self._by_path[PathKind.STARTS], self._by_path[PathKind.SUFFIX]
        segments = [path] + [path[:i] for i, char in enumerate(path) if char == "/"]
        at = set(exact.get(path, ())) | set(self._calls.get(path, ()))
        for key in segments:
            at.update(prefix.get(key, ()), self._services.get(key, ()))
        if starts:
            for i in range(len(path) + 1):
                at.update(starts.get(path[:i], ()))
        if suffix:
            for i in range(len(path) + 1):
                at.update(suffix.get(path[i:], ()))
        return at


def _callers_by_class(policy: PortPolicy, classes: Sequence[RequestClass],
                      rules: MatchingRules | None = None) -> dict[RequestClass, Callers] | Refused:
    """The callers of every request class, or why one cannot be written (each deny rule once)."""
    rules = MatchingRules(policy.rules) if rules is None else rules
    found: dict[RequestClass, Callers] = {}
    refusals: dict[tuple[str, Span | None], Refusal] = {}
    for method, path in classes:
        matching = rules.matching(method, path)
        who = callers((r for r in matching if r.action is Action.ALLOW),
                      (r for r in matching if r.action is Action.DENY), policy.strict)
        if not isinstance(who, Unwritable):
            found[(method, path)] = who
            continue
        example = f" (for example {'a ' + method if method else 'a request'} to {path})" if path else ""
        for rule in who.rules:
            construct = f"the deny rule '{rule.text}' on {policy.label}"
            refusals.setdefault((construct, rule.origin), Refusal(
                construct, rule.origin, f"{who.reason}{example}; Linkerd has no deny action, its "
                "authorizations only add callers (linkerd.md §0)"))
    if refusals:
        return Refused(port=policy, refusals=tuple(refusals.values()))
    return found


def _plan_connections(policy: PortPolicy) -> PortPlan:
    found = _callers_by_class(policy, [(None, None)])
    if isinstance(found, Refused):
        return found
    return ServerOnly(port=policy, proxy_protocol=PROXY_PROTOCOL[policy.port.protocol], callers=found[(None, None)])


def _plan_http_routes(policy: PortPolicy, classes: RequestClasses,
                      found: Mapping[RequestClass, Callers], rules: MatchingRules) -> HttpRoutes:
    # a probe GET is open to anybody (LANGUAGE §3.5); Linkerd's own probe route is gone once routes exist (§5)
    wanted = {(m, p): ANYBODY if m == "GET" and p in policy.probes else who for (m, p), who in found.items()}
    chosen = ChosenRoutes()
    # least specific first; at one score PathPrefix first, so Exact is kept only where it differs
    # a regex scores the whole path (§4.3): it outranks every prefix, so it comes last; it takes more than its
    # sample (/api/x.png, /a.png), so it is also kept where it puts right a request it takes, with its callers
    for match in sorted(classes.candidates(),
                        key=lambda m: (m.path_type == REGEX, m.score, m.path_type == EXACT, m.path, m.method)):
        who = wanted[classes.sample(match)]
        if route_choice(chosen, *classes.sample(match)) != who or (match.path_type == REGEX and any(
                wanted[(m, p)] == who != route_choice(chosen, m, p)
                for m, p in wanted if m is not None and p is not None and match.matches(m, p))):
            chosen[match] = who
    groups: dict[tuple[bool, Callers], list[RouteMatch]] = {}
    for match, who in chosen.items():
        # a route for nobody is kept: it matches what a deny rule refuses, and refuses it (403)
        probe = match.path_type == EXACT and match.path in policy.probes and match.method == "GET" and who == ANYBODY
        groups.setdefault((probe, who), []).append(match)
    routes = []
    for (probe, who), group in sorted(groups.items()):
        holds = () if probe else rules.holding(classes.sample(m) for m in group)
        routes.append(HttpRoute(tuple(sorted(group)), who, holds, probe))
    protocol = PROXY_PROTOCOL[policy.port.protocol]
    if policy.port.protocol is Protocol.GRPC:
        protocol = HTTP_ROUTES_ON_GRPC  # POST + Exact path holds a single gRPC method exactly
    return HttpRoutes(port=policy, proxy_protocol=protocol, wanted=wanted, routes=tuple(routes))


def _plan_grpc_routes(policy: PortPolicy, classes: RequestClasses,
                      found: Mapping[RequestClass, Callers], rules: MatchingRules) -> GrpcRoutes:
    # A GRPCRoute service match takes every POST /svc/<anything> (PX grpc/match.rs) and nothing else matches:
    # other requests get 404 (§4.2, §4.3). The plan takes each service's callers from its first class;
    # the check proves them the same for the whole service, and nobody outside the services.
    inside = {s: tuple(r for r in classes.all if r[0] == "POST" and r[1].startswith(f"/{s}/"))
              for s in classes.grpc_services}
    groups: dict[Callers, list[str]] = {}
    for service, taken in inside.items():
        if found[taken[0]]:
            groups.setdefault(found[taken[0]], []).append(service)
    routes = []
    for who, names in sorted(groups.items()):
        holds = rules.holding(q for s in names for q in inside[s])
        routes.append(GrpcServiceRoute(tuple(names), who, holds))
    return GrpcRoutes(port=policy, proxy_protocol=PROXY_PROTOCOL[policy.port.protocol], wanted=found,
                      inside=inside, routes=tuple(routes))


#: the ports the kubelet is taken to probe: HTTP/1 and HTTP/2 (gRPC Servers never get a probe route, §5)
PROBED_PROTOCOLS = (Protocol.HTTP, Protocol.HTTP2)


def probe_ports(service: Service) -> tuple[int, ...]:
    """The ports where the service's probe paths are opened (LANGUAGE §3.5)."""
    if not service.probes:
        return ()
    return tuple(p.number for p in service.ports if p.protocol in PROBED_PROTOCOLS)
