"""Linkerd manifests -> a :class:`~.draft.Draft`: Server, HTTPRoute, GRPCRoute, AuthorizationPolicy,
MeshTLSAuthentication, NetworkAuthentication and the older ServerAuthorization (§3.4).

Linkerd has no deny action (../shared/targets/linkerd.md §0): a request is allowed when one of the
authorizations of its Server (§0.4) or of the route it matches best (§4.3) admits it, else refused.
So every Server port becomes the allow rules of the callers its authorizations name: the
server-level ones for the whole port (§0.6), and, where routes are attached, the route's and the
server's callers for the requests each route match takes (§0.7). Where a more specific route takes
requests from a broader one, a rule of the broader one may allow more than Linkerd does: the proof
(:mod:`.prove`) finds it and leaves that rule out (MP803).

A Server port whose resources the import cannot read exactly (a route with hostnames or header
matches, a ServerAuthorization the reader cannot model, two Servers for one port...) is imported *closed*: its port is
declared and no rule allows anything on it, which is never wider (MP801 says which and why).
Namespaces the manifests do not hold are taken to be meshed with the cluster's default inbound
policy, ``all-unauthenticated`` (§1).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ..readers import ReaderError, World
from ..readers import linkerd as reader
from ..readers.world import UNDECLARED_LABELS, Workload
from ..resolve.names import GRPC_METHOD, GRPC_SERVICE
from . import draft as d
from .manifests import Document

KINDS = {"Server", "HTTPRoute", "GRPCRoute", "AuthorizationPolicy", "MeshTLSAuthentication",
         "NetworkAuthentication", "Namespace", "ServerAuthorization"}
PROTOCOLS = {"HTTP/1": "http", "HTTP/2": "http2", "gRPC": "grpc", "unknown": "http", "opaque": "tcp", "TLS": "tcp"}
#: the cluster's default inbound policy when the manifests hold no Namespace (§1)
ASSUMED = {"linkerd.io/inject": "enabled"}


def translate(docs: list[Document], out: d.Draft, cluster_networks: tuple[str, ...] = reader.CLUSTER_NETWORKS
              ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Fill ``out``; returns the documents the proof reads and the annotations assumed for missing Namespaces.
    ``cluster_networks``: the install's clusterNetworks, which a ServerAuthorization without networks admits."""
    kept: list[tuple[Document, dict[str, Any]]] = []
    closed: set[tuple[str, str]] = set()          # (namespace, server name) imported closed
    close_all: set[str] = set()                    # namespaces whose every Server is closed
    for doc in docs:
        if doc.kind not in KINDS or (doc.kind != "Namespace" and not str(doc.data.get("apiVersion", "")).startswith(
                ("policy.linkerd.io/", "gateway.networking.k8s.io/"))):
            out.note("MP805", doc.span(), f"{doc.title} ({doc.data.get('apiVersion')}) is not a Linkerd policy "
                     "resource: not read")
            continue
        if not d.namespace_ok(doc.namespace if doc.kind != "Namespace" else doc.name):
            out.narrowed(doc.span(), doc.title, "its namespace is not a name the language admits: not imported")
            continue
        data = doc.plain()
        if doc.kind in ("HTTPRoute", "GRPCRoute"):
            _narrow_route(doc, data, out, closed)
        kept.append((doc, data))
    _trust_domain([data for _, data in kept], out)
    namespaces = {doc.name: data for doc, data in kept if doc.kind == "Namespace"}
    servers = [(doc, data) for doc, data in kept if doc.kind == "Server"]
    _services(servers, namespaces, out)
    world = World(out.trust_domain, tuple(
        [Workload(s.namespace, s.name, s.account, s.labels, ()) for s in out.services.values()]
        + [Workload(ns, None, "default", UNDECLARED_LABELS, ()) for ns in sorted(out.namespaces)]))
    readable: list[dict[str, Any]] = []
    for doc, data in kept:
        if doc.kind == "Server" and (doc.namespace in close_all or (doc.namespace, doc.name) in closed):
            continue
        try:
            reader.parse([data], world, cluster_networks)
        except ReaderError as exc:
            if doc.kind == "ServerAuthorization":
                spec: Any = data.get("spec") if isinstance(data.get("spec"), dict) else {}
                server: Any = spec.get("server") if isinstance(spec.get("server"), dict) else {}
                if isinstance(server.get("name"), str):
                    closed.add((doc.namespace, server["name"]))
                    what = f"the Server {server['name']} is"
                else:
                    close_all.add(doc.namespace)
                    what = f"every Server of {doc.namespace} is"
                out.narrowed(doc.span(), doc.title, f"{exc}: {what} imported closed (nothing allowed)",
                             "migrate it to an AuthorizationPolicy")
                continue
            if doc.kind == "Server":
                out.narrowed(doc.span(), doc.title, f"{exc}: imported closed (nothing allowed on its port)")
                closed.add((doc.namespace, doc.name))
            elif doc.kind in ("HTTPRoute", "GRPCRoute"):
                out.narrowed(doc.span(), doc.title, f"{exc}: the Servers it attaches to are imported closed")
                spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
                parents = spec.get("parentRefs") if isinstance(spec.get("parentRefs"), list) else []
                for parent in parents:
                    if isinstance(parent, dict) and isinstance(parent.get("name"), str):
                        closed.add((doc.namespace, parent["name"]))
            else:
                out.narrowed(doc.span(), doc.title, f"{exc}: not imported (what it authorizes is not allowed)")
            continue
        readable.append(data)
    assumed = dict(ASSUMED)
    for ns in sorted(out.namespaces):
        if ns not in namespaces:
            out.note("MP805", None, f"the manifests hold no Namespace {ns}: it is taken to be meshed, with the "
                     "cluster's default inbound policy all-unauthenticated (linkerd.md section 1)")
    live = reader.Reader(readable, world, assumed_namespace_annotations=assumed, cluster_networks=cluster_networks)
    _rules(live, world, servers, closed | {(doc.namespace, doc.name) for doc, _ in servers
                                           if doc.namespace in close_all}, out)
    _findings(kept, live, world, out)
    for ns in out.namespaces:
        out.namespaces[ns] = "permissive"  # Linkerd has no mTLS mode: plaintext is refused by authorizations only
    d.drop_placeholders(out)
    return readable, assumed


def _narrow_route(doc: Document, data: dict[str, Any], out: d.Draft, closed: set[tuple[str, str]]) -> None:
    """Filters, backends and timeouts never change who is authorized: they are left out (not a narrowing)."""
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return
    for rule in spec.get("rules") or []:
        if isinstance(rule, dict):
            for key in ("filters", "backendRefs", "timeouts", "name", "sessionPersistence", "retry"):
                rule.pop(key, None)


def _trust_domain(docs: list[dict[str, Any]], out: d.Draft) -> None:
    if out.trust_domain != "cluster.local":
        return
    found: dict[str, int] = {}
    for doc in docs:
        spec: Any = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
        if doc.get("kind") == "ServerAuthorization":  # §3.4: client.meshTLS.identities
            client: Any = spec.get("client") if isinstance(spec.get("client"), dict) else {}
            spec = client.get("meshTLS") if isinstance(client.get("meshTLS"), dict) else {}
        if doc.get("kind") in ("MeshTLSAuthentication", "ServerAuthorization"):
            identities: Any = spec.get("identities") if isinstance(spec.get("identities"), list) else []
            for ident in identities:
                m = re.search(r"\.serviceaccount\.identity\.linkerd\.(.+)$", str(ident))
                if m:
                    found[m.group(1)] = found.get(m.group(1), 0) + 1
    if found:
        out.trust_domain = min(found.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _services(servers: list[tuple[Document, dict[str, Any]]], namespaces: dict[str, dict[str, Any]],
              out: d.Draft) -> None:
    by_ns: dict[str, dict[tuple[tuple[str, str], ...], Document]] = {}
    for doc, data in servers:
        spec: Any = data.get("spec") if isinstance(data.get("spec"), dict) else {}
        pods = spec.get("podSelector")
        labels = pods.get("matchLabels") if isinstance(pods, dict) else None
        if isinstance(labels, dict) and labels and all(isinstance(v, str) for v in labels.values()):
            by_ns.setdefault(doc.namespace, {}).setdefault(tuple(sorted(labels.items())), doc)
        else:
            by_ns.setdefault(doc.namespace, {})
    for name, data in namespaces.items():
        annotations = ((data.get("metadata") or {}).get("annotations") or {})
        if annotations.get("linkerd.io/inject") == "enabled":
            by_ns.setdefault(name, {})
    for ns in sorted(by_ns):
        out.namespaces[ns] = "permissive"
        out.add_selected(ns, by_ns[ns], "podSelector", "Server")

def _authz_sources(authz: reader.Authz | None, what: str, span: Any, out: d.Draft,
                   strict: bool = False) -> list[d.Src]:
    """The callers one authorization admits (§0.8), exactly or narrower.

    ``strict``: the port admits no plaintext client at all (the import writes it ``mtls strict``), so "any
    identity from these networks" is the networks themselves (LANGUAGE §3: strict refuses plaintext first).
    """
    if authz is None:
        return []
    nets: list[d.Src] = []
    everywhere = set(reader.EVERYWHERE)
    covered = {c for c, excepts in authz.networks if not excepts}
    for block, excepts in authz.networks:
        net = ipaddress.ip_network(block, strict=False)
        parts: list[Any] = [net]
        for e in excepts:
            cut: Any = ipaddress.ip_network(e, strict=False)
            parts = [q for p in parts for q in (p.address_exclude(cut) if cut.version == p.version and cut.subnet_of(p)
                                               else [p] if cut.version != p.version or not p.subnet_of(cut) else [])]
        nets += [d.cidr(str(p)) for p in parts]
    if authz.identities is None:
        if everywhere <= covered:
            return [d.ANY]
        return list(d.minimal(nets))
    idents: list[d.Src] = []
    suffix = f".serviceaccount.identity.{reader.CONTROL_PLANE}.{out.trust_domain}"
    for name in authz.identities:
        if name == "*" or name == f"*{suffix}":
            idents.append(d.MESH)
        elif m := re.fullmatch(r"\*\.([^.*]+)" + re.escape(suffix), name):
            idents.append(d.every_in(m.group(1)) if d.namespace_ok(m.group(1)) else d.MESH)
        elif m := re.fullmatch(r"([^.*]+)\.([^.*]+)" + re.escape(suffix), name):
            if d.namespace_ok(m.group(1)) and d.namespace_ok(m.group(2)):
                idents.append(d.identity(m.group(2), m.group(1)))
            else:
                out.narrowed(span, what, f"the identity {name!r} names an account the language cannot write: left out")
        else:
            out.note("MP805", span, f"{what}: the identity {name!r} is not of the trust domain {out.trust_domain}: "
                     "no caller of the policy has it")
    if not everywhere <= covered:
        if strict and idents and all(i == d.MESH for i in idents):
            return list(d.minimal(nets))
        out.narrowed(span, what, "an authorization by identity AND network cannot be written in the language: "
                     "not imported")
        return []
    return idents


def _rules(live: reader.Reader, world: World, servers: list[tuple[Document, dict[str, Any]]],
           closed: set[tuple[str, str]], out: d.Draft) -> None:
    by_name = {(doc.namespace, doc.name): doc for doc, _ in servers}
    records = {(s.namespace, s.name): s for s in live.manifests.servers}
    for svc in sorted(out.services.values(), key=lambda s: (s.namespace, s.name)):
        pod = world.workload_at(svc.namespace, svc.name)
        probes: dict[int, tuple[set[str], list[d.Rule]]] = {}   # per port with routes: probe-like routes
        for (ns, name), doc in sorted(by_name.items()):
            if ns != svc.namespace:
                continue
            server = records.get((ns, name))
            spec = doc.data.get("spec") if isinstance(doc.data.get("spec"), dict) else {}
            port = spec.get("port") if isinstance(spec, dict) else None
            if server is None:
                if (ns, name) in closed and isinstance(port, int) and _selects(spec, svc):
                    svc.declare(port, "tcp")
                continue
            if not server.selects(pod) or server.selector == ():
                continue  # an empty podSelector: every workload, below
            svc.declare(server.port, PROTOCOLS[server.protocol])
            if (ns, name) in closed:
                continue
            _server_rules(live, server, svc, doc, out, probes)
        _probes(svc, probes, out)
    for (ns, name), doc in sorted(by_name.items()):
        server = records.get((ns, name))
        if server is None or server.selector != () or (ns, name) in closed:
            continue
        # a Server of every pod of the namespace: the language's '**' (LANGUAGE §2.3), which must give its port
        wide: dict[int, tuple[set[str], list[d.Rule]]] = {}
        _server_rules(live, server, d.Service(ns, d.WIDE, (), ""), doc, out, wide)
        out.rules.extend(r for _, rules in wide.values() for r in rules)


def _selects(spec: Any, svc: d.Service) -> bool:
    pods = spec.get("podSelector") if isinstance(spec, dict) else None
    labels = pods.get("matchLabels") if isinstance(pods, dict) else None
    return isinstance(labels, dict) and all(dict(svc.labels).get(k) == v for k, v in labels.items())


def _probes(svc: d.Service, probes: dict[int, tuple[set[str], list[d.Rule]]], out: d.Draft) -> None:
    """Routes that open exact paths to unauthenticated GETs from anywhere on every HTTP port with routes are the
    kubelet's probes (§5; the backend writes them so): they become the service's ``probes``, which every target
    keeps open (LANGUAGE §3.5), instead of rules."""
    with_routes = {p for p in svc.http_ports if svc.ports[p] in ("http", "http2")}
    sets = {frozenset(paths) for paths, _ in probes.values()}
    if probes and set(probes) == with_routes and len(sets) == 1 and next(iter(sets)):
        svc.probes = tuple(sorted(next(iter(sets))))
        return
    for _, rules in probes.values():
        out.rules.extend(rules)


def _server_rules(live: reader.Reader, server: reader.Server, svc: d.Service, doc: Document, out: d.Draft,
                  probes: dict[int, tuple[set[str], list[d.Rule]]]) -> None:
    span, title = doc.span(), doc.title
    port = server.port
    grpc_routes = live._routes(server, "GRPCRoute")
    routes = grpc_routes if server.protocol == "gRPC" else ([] if grpc_routes else live._routes(server, "HTTPRoute"))
    if server.protocol in reader.CONNECTION_PROTOCOLS:
        routes = []
    every = live._server_authzs(server) + [a for r in routes for a in live._authzs(live._targeting_route(r))]
    strict = bool(every) and all(a.identities is not None for a in every)
    if strict:
        svc.port_mtls[port] = "strict"  # no authorization admits plaintext: the same as strict (LANGUAGE §3.1)
    authzs: list[tuple[reader.Authz | None, str]] = [
        (live._authz[p], f"AuthorizationPolicy {p.namespace}/{p.name}") for p in live._targeting_server(server)]
    access = live._policy_value(server.access_policy)
    if access in ("audit",):
        out.finding("ML066", doc.span(doc.data.get("spec"), "accessPolicy"), f"{title} has accessPolicy: audit: "
                    "Linkerd admits every request to the port and only logs it; the import leaves the audit out",
                    "set accessPolicy: deny once the audit is over")
    else:
        authzs += [(a, f"{title} accessPolicy {access}") for a in live.defaults(access)]
    for sa in live._authorizing(server):  # §3.4: one more server-level authorization each
        networks = "client.networks" if sa.networks_written else "no client.networks: the clusterNetworks, linkerd.md section 3.4"
        client = "client.unauthenticated" if sa.authz.identities is None else "client.meshTLS"
        authzs.append((sa.authz, f"ServerAuthorization {sa.namespace}/{sa.name} ({client} with {networks})"))
    excepts = _common_excepts([a for a, _ in authzs]) if not routes else None
    if excepts:
        # every authorization of the port leaves out the same networks: allow without them, and deny them
        authzs = [(reader.Authz(a.identities, tuple((c, ()) for c, _ in a.networks)) if a else a, t)
                  for a, t in authzs]
        out.rules.append(d.Rule("deny", d.minimal([d.cidr(e) for e in excepts]), svc.namespace, svc.name, span,
                                title, ports=(port,)))
    server_srcs: list[d.Src] = []
    for authz, what in authzs:
        server_srcs += _authz_sources(authz, what, span, out, strict)
    if not routes:
        if server_srcs:
            out.rules.append(d.Rule("allow", d.minimal(server_srcs), svc.namespace, svc.name, span, title,
                                    ports=(port,)))
        return
    entries: list[tuple[reader.HttpMatch, tuple[d.Src, ...], str]] = []
    for route in routes:
        route_title = f"{route.kind} {route.namespace}/{route.name}"
        own: list[d.Src] = []
        for policy in live._targeting_route(route):
            own += _authz_sources(live._authz[policy], f"AuthorizationPolicy {policy.namespace}/{policy.name}",
                                  span, out, strict)
        srcs = d.minimal(server_srcs + own)
        made_here: list[d.Rule] = []
        for rule in route.rules:
            matches = rule if rule is not None else (reader.DEFAULT_HTTP_MATCH,) if route.kind == "HTTPRoute" else ()
            if not matches:
                matches = (reader.DEFAULT_HTTP_MATCH,) if route.kind == "HTTPRoute" else (reader.GrpcMatch(None, None),)
            for match in matches:
                if isinstance(match, reader.HttpMatch):
                    entries.append((match, srcs, route_title))
                if not srcs:
                    continue  # a route no one may use: requests it takes are refused, which no rule allows
                made = _match(match, route_title, span, out)
                if made is None:
                    continue
                methods, paths, grpc = made
                made_here.append(d.Rule("allow", srcs, svc.namespace, svc.name, span, route_title,
                                        methods, paths, grpc, (port,)))
        probe_like = (route.kind == "HTTPRoute" and d.minimal(own) == (d.ANY,) and made_here
                      and all(r.methods == ("GET",) and len(r.paths) == 1 and not r.paths[0].endswith("*")
                              for r in made_here))
        if probe_like:
            found, rules = probes.setdefault(port, (set(), []))
            found.update(r.paths[0] for r in made_here)
            rules.extend(made_here)
        else:
            out.rules.extend(made_here)
    _shadows(entries, svc, port, span, out)


def _common_excepts(authzs: list[reader.Authz | None]) -> tuple[str, ...] | None:
    """The ``except`` networks every network of every authorization leaves out, when they are the same."""
    every = sorted({e for a in authzs if a is not None for _, excepts in a.networks for e in excepts})
    if not every:
        return None
    for a in authzs:
        for block, excepts in a.networks if a is not None else ():
            net = ipaddress.ip_network(block, strict=False)
            inside = {e for e in every if ipaddress.ip_network(e, strict=False).version == net.version
                      and ipaddress.ip_network(e, strict=False).subnet_of(net)}  # type: ignore[arg-type]
            if set(excepts) != inside:
                return None
    return tuple(every)


def _overlap(a: reader.HttpMatch, b: reader.HttpMatch) -> bool:
    """Whether one request can match both (a method, then a path, §4.3)."""
    if a.method is not None and b.method is not None and a.method != b.method:
        return False

    def under(path: str, prefix: str) -> bool:
        p, q = path.rstrip("/"), prefix.rstrip("/")
        return q == "" or p == q or p.startswith(q + "/")

    if "RegularExpression" in (a.path_type, b.path_type):
        regex, other = (a, b) if a.path_type == "RegularExpression" else (b, a)
        # against an exact path the proxy's own test; against a prefix or another regex, they may overlap
        return other.path_type != "Exact" or reader.regex_takes(regex.path, other.path)
    if a.path_type == "Exact" and b.path_type == "Exact":
        return a.path == b.path
    if a.path_type == "Exact":
        return under(a.path, b.path)
    if b.path_type == "Exact":
        return under(b.path, a.path)
    return under(a.path, b.path) or under(b.path, a.path)


#: a regex scores the length of the whole path it takes (§4.3): more than any prefix of that path
REGEX_SCORE = 1 << 30


def _score(m: reader.HttpMatch) -> tuple[int, bool]:
    if m.path_type == "RegularExpression":
        return (REGEX_SCORE, m.method is not None)
    return (len(m.path) if m.path_type == "Exact" else max(len(m.path.rstrip("/")), 1), m.method is not None)


def _without(callers: tuple[d.Src, ...], taken: tuple[d.Src, ...]) -> tuple[d.Src, ...] | None:
    """The callers of ``callers`` that ``taken`` does not name; None when that cannot be written."""
    left = []
    for c in callers:
        if any(t.covers(c) for t in taken):
            continue
        if any(c.covers(t) for t in taken):
            return None  # a wildcard minus some of its callers: the language has no 'but'
        left.append(c)
    return d.minimal(left)


def _shadows(entries: list[tuple[reader.HttpMatch, tuple[d.Src, ...], str]], svc: d.Service, port: int, span: Any,
             out: d.Draft) -> None:
    """§4.3: the best-scoring route match takes a request, so a broader match's callers lose the requests a more
    specific one takes unless it names them too: a deny rule says so (where the language can name them)."""
    for match, srcs, title in entries:
        beaten = [o for m, o, _ in entries if m is not match and _score(match) > _score(m) and _overlap(match, m)]
        if not beaten:
            continue
        lost = _without(d.minimal([s for o in beaten for s in o]), srcs)
        if not lost:
            continue
        made = _match(match, title, span, out)
        if made is None:
            continue
        methods, paths, grpc = made
        out.rules.append(d.Rule("deny", lost, svc.namespace, svc.name, span, title, methods, paths, grpc, (port,)))


def _match(match: reader.HttpMatch | reader.GrpcMatch, title: str, span: Any,
           out: d.Draft) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None:
    """One route match as (methods, paths, grpc) of the language; None when it cannot be written (left out)."""
    if isinstance(match, reader.GrpcMatch):
        if not match.service or not GRPC_SERVICE.match(match.service) or (
                match.method and not GRPC_METHOD.match(match.method)):
            out.narrowed(span, title, f"a gRPC match of service {match.service!r}, method {match.method!r} cannot "
                         "be written in the language: left out")
            return None
        if match.method:
            out.note("MP805", span, f"{title}: gRPC {match.service}/{match.method} is imported as that method; "
                     "Linkerd also takes paths below it (/service/method/more), which the import does not allow")
        return (), (), (f"{match.service}/{match.method}" if match.method else match.service,)
    methods: tuple[str, ...] = ()
    if match.method is not None:
        if not d.method_ok(match.method):
            out.narrowed(span, title, f"the method {match.method!r} is not one the language admits: that match is "
                         "left out")
            return None
        methods = (match.method,)
    if match.path_type == "PathPrefix":
        prefix = match.path.rstrip("/")
        if not prefix:
            return methods, (), ()
        path = prefix + "/*"
    elif match.path_type == "RegularExpression":
        # ^LITERAL.*$ is the character prefix LITERAL*, ^.*LITERAL$ the suffix *LITERAL (the reader refuses any
        # other regex); a prefix ending in '/' would read as /a/* (also /a itself), which it does not take
        path = reader.regex_pattern(match.path)
        if path.endswith("/*"):
            out.narrowed(span, title, f"the path regex {match.path!r} takes what is under {path[:-1]!r} but not "
                         f"{path[:-2]!r} itself, which the language cannot write: that match is left out")
            return None
    else:
        path = match.path
    if not d.path_ok(path):
        out.narrowed(span, title, f"the path {match.path!r} is not one the language admits: that match is left out")
        return None
    return methods, (path,), ()


# -- findings ---------------------------------------------------------------------------------------------

def _findings(kept: list[tuple[Document, dict[str, Any]]], live: reader.Reader, world: World, out: d.Draft) -> None:
    for doc, data in kept:
        if doc.kind == "Namespace":
            annotations = ((data.get("metadata") or {}).get("annotations") or {})
            if annotations.get(reader.DEFAULT_POLICY) == "audit":
                meta = doc.data.get("metadata")
                ann = meta.get("annotations") if isinstance(meta, dict) else None
                out.finding("ML066", doc.span(ann, reader.DEFAULT_POLICY) if ann is not None else doc.span(),
                            f"{doc.title}: default-inbound-policy audit admits every request to ports without a "
                            "Server and only logs it", "set it to deny once the audit is over")
    # ML065: identity authorizations on a port that also admits unauthenticated clients
    for server in live.manifests.servers:
        authzs = live._server_authzs(server)
        if any(a.identities is not None for a in authzs) and any(a.identities is None for a in authzs):
            where = next((x for x, _ in kept if x.kind == "Server" and x.namespace == server.namespace
                          and x.name == server.name), None)
            out.finding("ML065", where.span() if where else None, f"Server {server.namespace}/{server.name}: its "
                        "authorizations name identities, and another admits unauthenticated clients: plaintext "
                        "callers reach the port whatever the identities say",
                        "drop the unauthenticated authorization (accessPolicy, a NetworkAuthentication alone)")
