"""Evaluate a request against emitted Linkerd manifests, as the policy controller and proxy would.

Written from ../shared/targets/linkerd.md §0 (the decision procedure), with the
details it points to: default policies (§1), Server choice and accessPolicy
(§2), AuthorizationPolicy and authentications (§3), route attachment,
precedence and 404-before-403 (§4), probe routes (§5) and protocols (§6). It
shares no code with the Linkerd backend. Constructs the backend never emits
and whose meaning this reader does not model raise :class:`Unmodelled`, and a
choice Linkerd would make by creation time raises :class:`Ambiguous`, so that
a test can never pass by ignoring them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from ..errors import MeshpolicyError
from ..graph.evaluate import Request
from ..graph.model import Identity
from ..graph.space import Mentions
from .world import Workload, World

POLICY = "policy.linkerd.io"
GATEWAY = "gateway.networking.k8s.io"
CONTROL_PLANE = "linkerd"
KINDS = {"Namespace", "Server", "HTTPRoute", "GRPCRoute", "MeshTLSAuthentication", "NetworkAuthentication",
         "AuthorizationPolicy"}
EVERYWHERE = ("0.0.0.0/0", "::/0")
LOCALHOST = ("127.0.0.1/32", "::1/128")                                            # §0.2
PROBE_NETWORKS = EVERYWHERE                                                        # probeNetworks default (§5)
CLUSTER_NETWORKS = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")  # §1
CLUSTER_DEFAULT = "all-unauthenticated"                                            # proxy.defaultInboundPolicy (§1)
HTTP_PROTOCOLS = {"unknown", "HTTP/1", "HTTP/2", "gRPC"}
DEFAULT_POLICY = "config.linkerd.io/default-inbound-policy"


class Unmodelled(MeshpolicyError):
    """The manifests use something this reader does not evaluate."""


class Ambiguous(MeshpolicyError):
    """Linkerd would pick by creation time (two Servers for one port, or tied routes that decide differently)."""


@dataclass(frozen=True, slots=True)
class Authz:
    """One client authorization (§0.8): an authentication and the networks it holds for."""

    identities: tuple[str, ...] | None        # None: unauthenticated (anything, meshed or not)
    networks: tuple[tuple[str, tuple[str, ...]], ...]

    def admits(self, req: Request, trust_domain: str) -> bool:
        ip = ipaddress.ip_address(req.caller.ip)
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


def _contains(cidr: str, ip) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    return net.version == ip.version and ip in net


def _identity_match(pattern: str, name: str) -> bool:
    """§3.2: "*" any identity, "*.<suffix>" a suffix over whole labels, else exact."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    if "*" in pattern:
        raise Unmodelled(f"identity pattern {pattern!r} (the webhook rejects it)")
    return name == pattern


def _everywhere(authentication: tuple[str, ...] | None, networks=EVERYWHERE) -> Authz:
    return Authz(authentication, tuple((n, ()) for n in networks))


def _default_authz(policy: str) -> list[Authz]:
    """§1: the authorization a default policy (or accessPolicy, §2) synthesizes."""
    return {
        "deny": [],
        "audit": [_everywhere(None)],
        "all-unauthenticated": [_everywhere(None)],
        "all-authenticated": [_everywhere(("*",))],
        "cluster-authenticated": [_everywhere(("*",), CLUSTER_NETWORKS)],
        "cluster-unauthenticated": [_everywhere(None, CLUSTER_NETWORKS)],
    }[policy]


def _meta(doc: dict) -> dict:
    return doc.get("metadata") or {}


def _ci(a: str | None, b: str) -> bool:
    return (a or "").lower() == b.lower()


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    """§2: matchLabels (the reader refuses matchExpressions); an empty selector selects every pod."""
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


@dataclass(frozen=True, slots=True)
class _Route:
    doc: dict
    group: str
    kind: str

    @property
    def name(self) -> str:
        return _meta(self.doc)["name"]


class Reader:
    def __init__(self, docs: list[dict[str, Any]], world: World, *, dry_run_enforced: bool = False):
        self.world = world
        self.dry_run_enforced = dry_run_enforced
        self._trace: list[dict] | None = None  # set while explain() records the deciding resources
        self.by_kind: dict[str, list[dict]] = {k: [] for k in KINDS}
        for d in docs:
            kind = d.get("kind")
            if kind not in KINDS:
                raise Unmodelled(f"kind {kind}")
            if kind == "Server" and "podSelector" in (d.get("spec") or {}):
                selector = d["spec"]["podSelector"] or {}
                if selector.get("matchExpressions"):
                    raise Unmodelled("a Server podSelector with matchExpressions: the world has only the "
                                     "labels that select each service")
                problem = world.selector_problem(_meta(d).get("namespace"), selector.get("matchLabels") or {})
                if problem is not None:
                    raise Unmodelled(f"Server {_meta(d).get('namespace')}/{_meta(d).get('name')}: {problem}")
            self.by_kind[kind].append(d)

    def _named(self, kind: str, namespace: str, name: str) -> dict | None:
        for d in self.by_kind[kind]:
            if _meta(d).get("namespace") == namespace and _meta(d).get("name") == name:
                return d
        return None

    def _policy_value(self, value: str | None) -> str:
        if value is None:
            return CLUSTER_DEFAULT
        if value == "audit" and self.dry_run_enforced:
            return "deny"
        try:
            _default_authz(value)
        except KeyError:
            return CLUSTER_DEFAULT  # an invalid value is ignored with a warning (§1)
        return value

    # -- §0.1, §1: meshed pods and their default policy ----------------------
    def _namespace(self, pod: Workload) -> dict:
        for d in self.by_kind["Namespace"]:
            if _meta(d).get("name") == pod.namespace:
                return _meta(d).get("annotations") or {}
        return {}

    # -- §0.3, §2: which Server ---------------------------------------------------
    def _server(self, pod: Workload, port: int) -> dict | None:
        found = []
        for d in self.by_kind["Server"]:
            if _meta(d).get("namespace") != pod.namespace:
                continue
            spec = d.get("spec") or {}
            if "podSelector" not in spec:
                continue  # an externalWorkloadSelector never selects a pod
            if not _selects(spec["podSelector"] or {}, dict(pod.labels)):
                continue
            want = spec.get("port")
            if isinstance(want, str):
                raise Unmodelled("a port name: the world has no container port names")
            if want == port:
                found.append(d)
        if len(found) > 1:
            raise Ambiguous(f"{len(found)} Servers select {pod.namespace}/{pod.name}:{port}: the oldest would win")
        return found[0] if found else None

    # -- §3: authorizations ------------------------------------------------------------
    def _authz(self, policy: dict) -> Authz | None:
        """The authorization of one AuthorizationPolicy; ``None`` when a reference is missing (ignored, §3.1)."""
        ns = _meta(policy)["namespace"]
        meshtls, accounts, networks = [], [], []
        for ref in (policy.get("spec") or {}).get("requiredAuthenticationRefs") or []:
            kind, group = ref.get("kind", ""), ref.get("group", "")
            target_ns = ref.get("namespace") or ns
            if _ci(kind, "MeshTLSAuthentication") and _ci(group, POLICY):
                meshtls.append(self._named("MeshTLSAuthentication", target_ns, ref["name"]))
            elif _ci(kind, "NetworkAuthentication") and _ci(group, POLICY):
                networks.append(self._named("NetworkAuthentication", target_ns, ref["name"]))
            elif _ci(kind, "ServiceAccount") and not group:
                accounts.append(f"{ref['name']}.{target_ns}.serviceaccount.identity.{CONTROL_PLANE}."
                                f"{self.world.trust_domain}")
            else:
                raise Unmodelled(f"authentication ref {group}/{kind} (the webhook rejects it)")
        if len(meshtls) > 1 or len(accounts) > 1 or len(networks) > 1 or (meshtls and accounts):
            raise Unmodelled("refs the admission webhook rejects (§3.1)")
        if any(d is None for d in meshtls + networks):
            return None
        identities: tuple[str, ...] | None = None
        if accounts:
            identities = tuple(accounts)
        elif meshtls:
            identities = self._identities(meshtls[0])
        nets = tuple((n, ()) for n in EVERYWHERE)  # no NetworkAuthentication: every network (§3.1)
        if networks:
            nets = tuple((e["cidr"], tuple(e.get("except") or ())) for e in (networks[0].get("spec") or {})["networks"])
        return Authz(identities, nets)

    def _identities(self, doc: dict) -> tuple[str, ...]:
        spec = doc.get("spec") or {}
        if ("identities" in spec) == ("identityRefs" in spec):
            raise Unmodelled("MeshTLSAuthentication needs exactly one of identities and identityRefs")
        if "identities" in spec:
            return tuple(spec["identities"])
        out = []
        for ref in spec["identityRefs"]:
            suffix = f"serviceaccount.identity.{CONTROL_PLANE}.{self.world.trust_domain}"
            if ref.get("kind") == "ServiceAccount":
                out.append(f"{ref['name']}.{ref.get('namespace') or _meta(doc)['namespace']}.{suffix}")
            elif ref.get("kind") == "Namespace":
                out.append(f"*.{ref['name']}.{suffix}")
            else:
                raise Unmodelled(f"identityRef kind {ref.get('kind')}")
        return tuple(out)

    def _policies_for(self, namespace: str, target) -> list[Authz]:
        out = []
        for d in self.by_kind["AuthorizationPolicy"]:
            if _meta(d).get("namespace") != namespace:
                continue
            ref = (d.get("spec") or {}).get("targetRef") or {}
            if target(ref, namespace):
                authz = self._authz(d)
                if authz is not None:
                    out.append(authz)
        return out

    def _policy_docs(self, namespace: str, target) -> list[dict]:
        return [d for d in self.by_kind["AuthorizationPolicy"] if _meta(d).get("namespace") == namespace
                and target((d.get("spec") or {}).get("targetRef") or {}, namespace)]

    def _server_authzs(self, server: dict) -> list[Authz]:
        """§0.4: policies on the Server or its Namespace, plus accessPolicy unless deny."""
        access = self._policy_value((server.get("spec") or {}).get("accessPolicy", "deny"))
        return self._policies_for(_meta(server)["namespace"], self._server_target(server)) + _default_authz(access)

    @staticmethod
    def _server_target(server: dict):
        name = _meta(server)["name"]

        def targets(ref: dict, namespace: str) -> bool:
            kind, group = ref.get("kind", ""), ref.get("group", "")
            if _ci(kind, "Server"):
                if not _ci(group, POLICY):
                    raise Unmodelled("a Server targetRef without group policy.linkerd.io (the webhook rejects it)")
                return ref.get("name") == name
            if _ci(kind, "Namespace") and not group:
                if ref.get("name") != namespace:
                    raise Unmodelled("a Namespace targetRef naming another namespace (the webhook rejects it)")
                return True
            return False
        return targets

    # -- §4: routes ------------------------------------------------------------------------
    def _routes(self, server: dict, kind: str) -> list[_Route]:
        """Routes of ``kind`` attached to the Server (§4.1); a route with a bad Server parentRef is ignored."""
        name, ns = _meta(server)["name"], _meta(server)["namespace"]
        out = []
        for d in self.by_kind[kind]:
            if _meta(d).get("namespace") != ns:
                continue
            group = d["apiVersion"].split("/")[0]
            default_group = POLICY if group == POLICY else GATEWAY
            attached = False
            for parent in (d.get("spec") or {}).get("parentRefs") or []:
                if not (_ci(parent.get("kind", "Gateway"), "Server")
                        and _ci(parent.get("group", default_group), POLICY) and parent.get("name") == name):
                    continue
                if "port" in parent or "sectionName" in parent or parent.get("namespace", ns) != ns:
                    attached = False  # the whole route is ignored (§4.1)
                    break
                attached = True
            if attached:
                out.append(_Route(d, group, kind))
        return out

    def _route_authzs(self, route: _Route, namespace: str) -> list[Authz]:
        return self._policies_for(namespace, self._route_target(route))

    @staticmethod
    def _route_target(route: _Route):
        def targets(ref: dict, _ns: str) -> bool:
            return (_ci(ref.get("kind"), route.kind) and _ci(ref.get("group", ""), route.group)
                    and ref.get("name") == route.name)
        return targets

    @staticmethod
    def _http_score(match: dict, req: Request) -> tuple[int, bool] | None:
        """PX http/match.rs: the method must equal; the path's matched length; then whether a method was given."""
        if match.get("headers") or match.get("queryParams"):
            raise Unmodelled("header or query matches")
        if "method" in match and match["method"] != req.method:
            return None
        path = match.get("path") or {"type": "PathPrefix", "value": "/"}  # the CRD default
        kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
        if kind == "Exact":
            length = len(value) if req.path == value else None
        elif kind == "PathPrefix":
            if value == "/":
                length = 1
            else:
                prefix = value.rstrip("/")
                rest = req.path.rstrip("/")
                ok = rest.startswith(prefix) and (rest == prefix or rest[len(prefix)] == "/")
                length = len(prefix) if ok else None
        else:
            raise Unmodelled(f"path match {kind}")
        if length is None:
            return None
        return (length, "method" in match)

    @staticmethod
    def _grpc_score(match: dict, req: Request) -> tuple[int, int] | None:
        """PX grpc/match.rs: POST only; /service/method split on '/'; matched lengths."""
        if match.get("headers"):
            raise Unmodelled("header matches")
        if req.method != "POST":
            return None
        rpc = match.get("method") or {}
        if rpc.get("type", "Exact") != "Exact":
            raise Unmodelled("gRPC method match type (the webhook rejects it)")
        parts = req.path.split("/")
        if parts[0] != "" or len(parts) < 3:
            return None
        service, method = parts[1], parts[2]
        if rpc.get("service") and rpc["service"] != service:
            return None
        if rpc.get("method") and rpc["method"] != method:
            return None
        return (len(rpc.get("service") or ""), len(rpc.get("method") or ""))

    def _best_routes(self, routes: list[_Route], req: Request) -> list[_Route]:
        """The routes holding the best-scoring rule (§4.3); several only on a tie across routes."""
        scored = []
        for route in routes:
            spec = route.doc.get("spec") or {}
            if spec.get("hostnames"):
                raise Unmodelled("hostnames")
            best = None
            for rule in spec.get("rules") or []:
                if rule.get("filters"):
                    raise Unmodelled("route filters")
                matches = rule.get("matches")
                if route.kind == "HTTPRoute" and matches is None:
                    matches = [{"path": {"type": "PathPrefix", "value": "/"}}]  # the CRD default
                if not matches:
                    score = (1, False) if route.kind == "HTTPRoute" else (0, 0)  # an empty list matches all
                else:
                    scorer = self._http_score if route.kind == "HTTPRoute" else self._grpc_score
                    found = [s for s in (scorer(m, req) for m in matches) if s is not None]
                    score = max(found) if found else None
                if score is not None and (best is None or score > best):
                    best = score
            if best is not None:
                scored.append((best, route))
        if not scored:
            return []
        top = max(s for s, _ in scored)
        return [r for s, r in scored if s == top]

    # -- §0: the decision ----------------------------------------------------------------------
    def decide(self, req: Request) -> bool:
        return self._decide(req)

    def explain(self, req: Request) -> list[tuple[str, str, str]]:
        """The resources that decide ``req``: (kind, namespace, name) of the Namespace or Server, the
        chosen route, and the AuthorizationPolicies that apply there."""
        self._trace = []
        try:
            self._decide(req)
            return [(d["kind"], _meta(d).get("namespace") or _meta(d)["name"], _meta(d)["name"]) for d in self._trace]
        finally:
            self._trace = None

    def _note(self, *docs: dict) -> None:
        if self._trace is not None:
            for d in docs:
                if all(d is not seen for seen in self._trace):
                    self._trace.append(d)

    def _decide(self, req: Request) -> bool:
        pod = self.world.workload(req)
        ns_annotations = self._namespace(pod)
        if ns_annotations.get("linkerd.io/inject") != "enabled":
            return True  # unmeshed: no policy at all (§0.1)
        ip = ipaddress.ip_address(req.caller.ip)
        if any(_contains(n, ip) for n in LOCALHOST):
            return True  # §0.2
        default = self._policy_value(ns_annotations.get(DEFAULT_POLICY))
        server = self._server(pod, req.port)
        if server is None:
            self._note(*[d for d in self.by_kind["Namespace"] if _meta(d).get("name") == pod.namespace])
            return self._default_server(pod, default, req)
        self._note(server, *self._policy_docs(_meta(server)["namespace"], self._server_target(server)))
        protocol = (server.get("spec") or {}).get("proxyProtocol", "unknown")
        server_authzs = self._server_authzs(server)
        if protocol not in HTTP_PROTOCOLS:
            if protocol not in ("opaque", "TLS"):
                raise Unmodelled(f"proxyProtocol {protocol!r} (the webhook rejects it)")
            return self._any(server_authzs, req)  # §0.6: per connection, server level only
        if req.method is None:
            if protocol != "unknown":
                raise Unmodelled(f"non-HTTP traffic on a {protocol} Server")
            # §0.6: bytes that are not HTTP meet the server-level authorizations only. But the request space
            # has no HTTP request for this port (the source calls it tcp, or does not declare it) and a client
            # may send one: answer for the reading that admits most, any route's authorizations (and the
            # probe route) included, so that no widening hides here.
            routes = [] if self._routes(server, "GRPCRoute") else self._routes(server, "HTTPRoute")
            route_authzs = [a for r in routes for a in self._route_authzs(r, _meta(server)["namespace"])]
            probe = [_everywhere(None, PROBE_NETWORKS)] if not routes and req.port in pod.probe_ports() else []
            return self._any(server_authzs + route_authzs + probe, req)
        grpc_routes = self._routes(server, "GRPCRoute")
        if protocol == "gRPC":
            routes = grpc_routes
        else:
            # an HTTPRoute on a Server that also has GRPCRoutes is not accepted (§4.1, RouteReasonConflicted)
            routes = [] if grpc_routes else self._routes(server, "HTTPRoute")
        ns = _meta(server)["namespace"]
        if not routes:
            return self._implicit_routes(pod, req, server_authzs, probes=protocol != "gRPC")
        best = self._best_routes(routes, req)
        if not best:
            return False  # §4.3: no route, 404
        for r in best:
            self._note(r.doc, *self._policy_docs(ns, self._route_target(r)))
        decisions = {self._any(self._route_authzs(r, ns) + server_authzs, req) for r in best}
        if len(decisions) > 1:
            raise Ambiguous(f"routes {[r.name for r in best]} tie for {req} and decide differently")
        return decisions.pop()

    def _default_server(self, pod: Workload, default: str, req: Request) -> bool:
        """§0.3, §1: no Server, so the pod's default policy, with Detect (§0.5)."""
        authzs = _default_authz(default)
        if req.method is None:
            return self._any(authzs, req)
        return self._implicit_routes(pod, req, authzs, probes=True)

    def _implicit_routes(self, pod: Workload, req: Request, server_authzs: list[Authz], probes: bool) -> bool:
        """§0.7.1, §5: the default route (everything) and, for HTTP, the probe route (GET, exact probe paths)."""
        if probes and req.method == "GET" and req.port in pod.probe_ports() and req.path in pod.probes:
            # the probe route's score beats the default route's PathPrefix "/" (§4.3)
            return self._any([_everywhere(None, PROBE_NETWORKS)] + server_authzs, req)
        return self._any(server_authzs, req)

    def _any(self, authzs: list[Authz], req: Request) -> bool:
        return any(a.admits(req, self.world.trust_domain) for a in authzs)

    # -- what the manifests can tell apart for one workload ----------------------------------
    def mentions(self, namespace: str, service: str | None) -> Mentions:
        """Identities, namespaces, networks, methods, paths and ports the pod's Servers, routes and
        authentications name (each tested on its own: ``operations`` and ``identity_sets`` stay open)."""
        pod = self.world.workload_at(namespace, service)
        labels = dict(pod.labels)
        idents, spaces, networks, methods, paths, ports = set(), set(), set(), set(), set(), set()
        if self._policy_value(self._namespace(pod).get(DEFAULT_POLICY)).startswith("cluster-"):
            networks.update(CLUSTER_NETWORKS)  # the default server admits by clusterNetworks (§1)
        suffix = f".serviceaccount.identity.{CONTROL_PLANE}.{self.world.trust_domain}"
        for server in self.by_kind["Server"]:
            spec = server.get("spec") or {}
            if (_meta(server).get("namespace") != namespace or "podSelector" not in spec
                    or not _selects(spec["podSelector"] or {}, labels)):
                continue
            if isinstance(spec.get("port"), int):
                ports.add(spec["port"])
            policies = self._policy_docs(namespace, self._server_target(server))
            for kind in ("HTTPRoute", "GRPCRoute"):
                for route in self._routes(server, kind):
                    policies += self._policy_docs(namespace, self._route_target(route))
                    for rule in (route.doc.get("spec") or {}).get("rules") or []:
                        for match in rule.get("matches") or []:
                            if kind == "HTTPRoute":
                                if "method" in match:
                                    methods.add(match["method"])
                                path = match.get("path") or {}
                                value = path.get("value", "/")
                                paths.add(value if path.get("type") == "Exact" else value.rstrip("/") + "/*")
                            else:
                                methods.add("POST")
                                rpc = match.get("method") or {}
                                svc, name = rpc.get("service"), rpc.get("method")
                                if svc and name:  # the proxy also takes /svc/Method/more (§4.3)
                                    paths.update({f"/{svc}/{name}", f"/{svc}/{name}/*"})
                                elif svc:
                                    paths.add(f"/{svc}/*")
            if self._policy_value(spec.get("accessPolicy", "deny")).startswith("cluster-"):
                networks.update(CLUSTER_NETWORKS)
            for policy in policies:
                for ref in (policy.get("spec") or {}).get("requiredAuthenticationRefs") or []:
                    if _ci(ref.get("kind"), "ServiceAccount") and not ref.get("group"):
                        # exactly that account's identity (§3.1)
                        idents.add(Identity(ref.get("namespace") or _meta(policy)["namespace"], ref["name"]))
                        continue
                    doc = self._named(ref.get("kind", ""), ref.get("namespace") or namespace, ref.get("name", "")) \
                        if ref.get("kind") in ("MeshTLSAuthentication", "NetworkAuthentication") else None
                    if doc is None:
                        continue
                    if doc["kind"] == "NetworkAuthentication":
                        for net in (doc.get("spec") or {}).get("networks") or []:
                            networks.update([net["cidr"], *(net.get("except") or [])])
                        continue
                    for name in self._identities(doc):
                        m = re.fullmatch(r"([^.*]+)\.([^.*]+)" + re.escape(suffix), name)
                        n = re.fullmatch(r"\*\.([^.*]+)" + re.escape(suffix), name)
                        if m:
                            idents.add(Identity(m.group(2), m.group(1)))
                        elif n:
                            spaces.add(n.group(1))
                        elif name != "*":
                            raise Unmodelled(f"identity {name!r} outside the policy's trust domain")
        return Mentions(frozenset(idents), frozenset(spaces), frozenset(networks), frozenset(methods),
                        frozenset(paths), frozenset(ports))
