"""Emission: the resources of checked plans (Server, routes, authentications, AuthorizationPolicies) and the
managed namespaces. Every decision was taken by planning; this module only names and shapes resources
as Linkerd 2.20 reads them (../shared/targets/linkerd.md, sections as §N)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import InternalError
from ...graph.model import Namespace
from ...source import Span
from ..base import Resource
from ..namespaces import namespace_resource
from . import names
from .callers import EVERY_NETWORK, Callers, Identities, NetEntry
from .matching import OTHER_METHOD, REGEX, RouteMatch, regex
from .plan import GrpcRoutes, HttpRoutes, PortPlan, PortPolicy, ServerOnly, origins_of

POLICY_GROUP = "policy.linkerd.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"
SERVER_API = f"{POLICY_GROUP}/v1beta3"            # storage version; has accessPolicy (§2, §7)
AUTH_API = f"{POLICY_GROUP}/v1alpha1"             # the only version of the authorization kinds (§7)
ROUTE_APIS = {"gateway": f"{GATEWAY_GROUP}/v1", "policy": f"{POLICY_GROUP}/v1beta3"}  # --linkerd-routes (§7)
GRPC_ROUTE_API = f"{GATEWAY_GROUP}/v1"            # no policy.linkerd.io GRPCRoute exists (§3.1, §7)
CONTROL_PLANE_NAMESPACE = "linkerd"               # in every identity string (§3.2)
INJECT = "linkerd.io/inject"
DEFAULT_POLICY = "config.linkerd.io/default-inbound-policy"
MATCHES_PER_RULE, RULES_PER_ROUTE = 8, 16         # CRD maxItems of rules[].matches and rules
PARENTS_PER_ROUTE = 32                            # CRD maxItems of spec.parentRefs (both route groups)
REFUSES = "meshpolicy.io/refuses"                 # marks a route that exists to refuse (no authorization)
REFUSES_NOTE = "no AuthorizationPolicy targets this route: Linkerd answers what it matches with 403 (a deny rule)"


def namespace_annotations(access_policy: str) -> tuple[tuple[str, str], ...]:
    """What a managed namespace must carry. Policy exists only for meshed pods, and the default is read from
    the pod's annotation, which the injector copies from the namespace at pod creation (§1, §9)."""
    return ((INJECT, "enabled"), (DEFAULT_POLICY, access_policy))


@dataclass(slots=True)
class SharedRoute:
    """One route of a namespace and the Servers it is attached to (§4.1: a route may name several Servers,
    and a policy targeting it applies on each). Its content, and so its name, is the same on every one of
    them: the matches, the callers (exactly the same AuthorizationPolicies) and the annotations."""

    kind: str
    api: str
    namespace: str
    name: str
    matches: list[dict[str, Any]]
    callers: Callers
    annotations: tuple[tuple[str, str], ...]
    servers: set[str] = field(default_factory=set)
    origins: set[Span] = field(default_factory=set)

    @property
    def content(self) -> tuple[object, ...]:
        terms = tuple((term, term.by_network) for term in self.callers)  # by_network names the policy
        return (self.kind, self.api, self.matches, terms, self.annotations)


class Manifests:
    """The resources of one build by (kind, namespace, name); a name emitted twice must hold the same
    resource, and then keeps the provenance of both. Routes are collected per namespace first, each with
    every Server that has one of the same content (:class:`SharedRoute`), and written at the end."""

    def __init__(self, trust_domain: str, access_policy: str, route_api: str) -> None:
        self.trust_domain = trust_domain
        self.access_policy = access_policy   # "deny", or "audit" in audit mode
        self.route_api = route_api
        self._by_key: dict[tuple[str, str, str], Resource] = {}
        self._shared: dict[tuple[str, str, str], SharedRoute] = {}      # (kind, namespace, name)
        self._of_server: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (ns, server) -> (kind, name)
        self._done = False

    def resources(self) -> list[Resource]:
        self._finish()
        return sorted(self._by_key.values(), key=lambda r: (r.namespace, r.kind, r.name))

    def routes_of(self, namespace: str, server: str) -> list[tuple[str, str]]:
        """(kind, name) of every route attached to the Server, once every port is in."""
        self._finish()
        return sorted(self._of_server.get((namespace, server), ()))

    def _add(self, res: Resource) -> Resource:
        key = (res.kind, res.namespace, res.name)
        old = self._by_key.get(key)
        if old is not None:
            if old.spec != res.spec or old.api_version != res.api_version:
                raise InternalError(f"two different {res.kind} resources named {res.namespace}/{res.name}")
            res = Resource(res.api_version, res.kind, res.namespace, res.name, res.spec,
                           tuple(sorted(set(old.origins) | set(res.origins))), res.annotations, res.labels)
        self._by_key[key] = res
        return res

    # -- namespaces and ports ------------------------------------------------------------------------
    def namespace(self, ns: Namespace) -> None:
        self._add(namespace_resource(ns, annotations=namespace_annotations(self.access_policy)))

    def port(self, plan: PortPlan) -> bool:
        """The resources of a checked plan (a refused plan emits nothing); True when the port has routes."""
        policy = plan.port
        routes = False
        if isinstance(plan, ServerOnly):
            self._server(policy, plan.proxy_protocol)
            self._authorize(policy.service.namespace, self._server_ref(policy.server), plan.callers,
                            origins_of(policy.rules))
        elif isinstance(plan, HttpRoutes):
            self._server(policy, plan.proxy_protocol)
            for route in plan.routes:
                origins = policy.service.origins if route.probe else origins_of(route.rules)
                note = () if route.callers else ((REFUSES, REFUSES_NOTE),)
                self._share(policy, "HTTPRoute", self.route_api, names.http_route_name(route),
                            [_http_match(m) for m in route.matches], route.callers, origins, note)
                routes = True
        elif isinstance(plan, GrpcRoutes):
            self._server(policy, plan.proxy_protocol)
            for grpc in plan.routes:
                matches = [{"method": {"type": "Exact", "service": s}} for s in grpc.services]
                self._share(policy, "GRPCRoute", GRPC_ROUTE_API, names.grpc_route_name(grpc), matches,
                            grpc.callers, origins_of(grpc.rules))
                routes = True
        return routes

    def _server(self, policy: PortPolicy, proxy_protocol: str) -> None:
        spec = {
            "podSelector": {"matchLabels": dict(policy.service.labels)},
            "port": policy.port.number,            # an integer: a string would be a port name (§2)
            "proxyProtocol": proxy_protocol,
            "accessPolicy": self.access_policy,
        }
        self._add(Resource(SERVER_API, "Server", policy.service.namespace, policy.server, spec,
                           policy.service.origins))

    # -- routes and authorizations -------------------------------------------------------------------
    def _share(self, policy: PortPolicy, kind: str, api: str, name: str, matches: list[dict[str, Any]],
               callers: Callers, origins: tuple[Span, ...], annotations: tuple[tuple[str, str], ...] = ()) -> None:
        """Attach the Server to the namespace's route of this content (named by its content alone)."""
        if self._done:
            raise InternalError("a port added after the routes were written")
        ns = policy.service.namespace
        route = SharedRoute(kind, api, ns, name, matches, callers, annotations)
        found = self._shared.setdefault((kind, ns, name), route)
        if found.content != route.content:
            raise InternalError(f"two different {kind} resources named {ns}/{name}")
        found.servers.add(policy.server)
        found.origins.update(origins)

    def _finish(self) -> None:
        """Write every shared route: sorted parentRefs, at most 32 a route (``NAME``, ``NAME-servers-2``, ...),
        each split at the CRD's match limits, and the AuthorizationPolicies of each (one per term, §3.1)."""
        if self._done:
            return
        self._done = True
        per_route = MATCHES_PER_RULE * RULES_PER_ROUTE
        for key in sorted(self._shared):
            shared = self._shared[key]
            servers = sorted(shared.servers)
            origins = tuple(sorted(shared.origins))
            for group, first in enumerate(range(0, len(servers), PARENTS_PER_ROUTE), start=1):
                parents = servers[first:first + PARENTS_PER_ROUTE]
                for part, start in enumerate(range(0, len(shared.matches), per_route), start=1):
                    chunk = shared.matches[start:start + per_route]
                    rules = [{"matches": chunk[i:i + MATCHES_PER_RULE]} for i in range(0, len(chunk), MATCHES_PER_RULE)]
                    spec = {"parentRefs": [self._server_ref(s) for s in parents], "rules": rules}
                    name = names.route_part_name(names.route_servers_name(shared.name, group), part)
                    res = self._add(Resource(shared.api, shared.kind, shared.namespace, name, spec, origins,
                                             shared.annotations))
                    self._authorize(shared.namespace, _route_ref(res), shared.callers, origins)
                    for server in parents:
                        self._of_server.setdefault((shared.namespace, server), []).append((shared.kind, name))

    @staticmethod
    def _server_ref(server: str) -> dict[str, str]:
        """A parentRef or targetRef naming a Server (§4.1: group policy.linkerd.io, no port or sectionName)."""
        return {"group": POLICY_GROUP, "kind": "Server", "name": server}

    def _authorize(self, ns: str, target: dict[str, str], who: Callers, origins: tuple[Span, ...]) -> None:
        """One AuthorizationPolicy per term of ``who`` on ``target`` (OR across policies, AND across refs, §3.1)."""
        for term in who:
            refs: list[dict[str, str]] = []
            if not term.identities.everyone:
                refs.append({"group": POLICY_GROUP, "kind": "MeshTLSAuthentication",
                             "name": self._meshtls(ns, term.identities, origins)})
            if term.networks != EVERY_NETWORK or term.identities.everyone:
                # with no identity ref the policy is unauthenticated; an explicit network keeps the list non-empty
                refs.append({"group": POLICY_GROUP, "kind": "NetworkAuthentication",
                             "name": self._network(ns, term.networks, origins)})
            spec = {"targetRef": target, "requiredAuthenticationRefs": refs}
            self._add(Resource(AUTH_API, "AuthorizationPolicy", ns, names.authorization_name(target["name"], term),
                               spec, origins))

    def _identity(self, namespace: str, account: str) -> str:
        return f"{account}.{namespace}.serviceaccount.identity.{CONTROL_PLANE_NAMESPACE}.{self.trust_domain}"

    def _meshtls(self, ns: str, ids: Identities, origins: tuple[Span, ...]) -> str:
        # identities: "*" = any authenticated client, of any trust domain; "*.<suffix>" = every identity
        # ending in ".<suffix>" (§3.2): every account of the trust domain, or of a namespace
        if ids.mesh:
            identities = ["*"] if ids.foreign else [f"*.serviceaccount.identity.{CONTROL_PLANE_NAMESPACE}.{self.trust_domain}"]
        else:
            identities = ([self._identity(n, "*") for n in ids.namespaces]
                          + [self._identity(n, a) for n, a in ids.accounts])
        name = names.meshtls_name(ids, identities)
        self._add(Resource(AUTH_API, "MeshTLSAuthentication", ns, name, {"identities": identities}, origins))
        return name

    def _network(self, ns: str, networks: tuple[NetEntry, ...], origins: tuple[Span, ...]) -> str:
        entries = [{"cidr": cidr, **({"except": list(exc)} if exc else {})} for cidr, exc in networks]
        name = names.network_name(networks)
        self._add(Resource(AUTH_API, "NetworkAuthentication", ns, name, {"networks": entries}, origins))
        return name


def _route_ref(route: Resource) -> dict[str, str]:
    return {"group": route.api_version.split("/")[0], "kind": route.kind, "name": route.name}


def _http_match(match: RouteMatch) -> dict[str, Any]:
    value = regex(match.path) if match.path_type == REGEX else match.path
    found: dict[str, Any] = {"path": {"type": match.path_type, "value": value}}
    if match.method != OTHER_METHOD:
        found["method"] = match.method
    return found
