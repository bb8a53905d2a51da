"""The access graph as a picture: computed from the IR and the reference decider, never from YAML.

For each managed service, every representative request of the request space
(:mod:`meshpolicy.graph.space`) is decided by the reference decider
(:mod:`meshpolicy.graph.evaluate`). An allow rule and one of its sources make a
*grant*; a grant is kept when some request it matches is allowed, and it
lists the deny rules that refuse some request it would otherwise allow
(``excepts``). Because the space stands for every request the rules can tell
apart, this is exact: a request is allowed exactly when some grant of an
edge to its destination admits it (the test suite checks it on the corpus).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from ..errors import UsageError
from ..graph.evaluate import Caller, Decider, Request, http_matches, rule_matches, source_matches
from ..graph.model import EVERY_WORKLOAD, AccessGraph, Action, Identity, Rule, Service, Source, SourceKind
from ..graph.space import Universe, requests_to, undeclared_workload
from .model import (
    ANY,
    CIDR,
    EXTERNAL,
    IDENTITY,
    MESH,
    NAMESPACE,
    SERVICE,
    Edge,
    Grant,
    NamespaceInfo,
    Node,
    PortInfo,
    Resource,
    View,
    service_id,
    source_node_id,
)

#: names the resources of the target that decide one request (``--target``)
Explainer = Callable[[Request], Iterable[Resource]]


class _Matcher:
    """Which rules of one destination match a request, memoized on (port, caller) and (method, path)."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self._callers: dict[tuple[int, Caller], frozenset[int]] = {}
        self._ops: dict[tuple, frozenset[int]] = {}

    def __call__(self, req: Request) -> list[int]:
        who = (req.port, req.caller)
        if who not in self._callers:
            self._callers[who] = frozenset(
                i for i, r in enumerate(self.rules) if (not r.ports or req.port in r.ports)
                and any(source_matches(s, req.caller) for s in r.sources))
        what = (req.method, req.path, req.headers, req.token)
        if what not in self._ops:
            self._ops[what] = frozenset(i for i, r in enumerate(self.rules)
                                        if http_matches(r, req) and r.conditions_hold(req.headers, req.token))
        return sorted(self._callers[who] & self._ops[what])


def build(graph: AccessGraph, explainer: Explainer | None = None, target: str | None = None) -> View:
    """The whole picture of ``graph``; with ``explainer``, each grant names the resources that decide it."""
    decider = Decider(graph)
    universe = Universe(graph)
    managed = {ns.name for ns in graph.managed_namespaces}
    nodes = _service_nodes(graph, managed)
    by_identity: dict[tuple[str, str], list[str]] = {}
    for svc in graph.services:
        by_identity.setdefault((svc.namespace, svc.account), []).append(service_id(svc.namespace, svc.name))
    edges: dict[tuple[str, str], tuple[list[Grant], set[Rule]]] = {}
    targets: list[tuple[Service, str | None]] = [(svc, svc.name) for svc in graph.services]
    for ns in sorted(managed):
        if graph.wide_rules(ns):  # the namespace's undeclared workloads, which only ``NS/**`` rules reach
            stand_in = undeclared_workload(ns)
            targets.append((stand_in, None))
            nodes[service_id(ns, EVERY_WORKLOAD)] = Node(
                service_id(ns, EVERY_WORKLOAD), SERVICE, EVERY_WORKLOAD, ns, EVERY_WORKLOAD, mtls=graph.namespace_mtls(ns),
                ports=tuple(PortInfo(p.number, p.protocol.value, graph.namespace_mtls(ns).value)
                            for p in graph.served_ports(None, ns)))
    for svc, name in targets:
        if svc.namespace not in managed:
            continue
        target_id = service_id(svc.namespace, svc.name)
        for grant, invariants in _grants(graph, svc, name, decider, universe, explainer):
            for source_id in _source_nodes(grant.source, by_identity, nodes):
                grants, touching = edges.setdefault((source_id, target_id), ([], set()))
                grants.append(grant)
                touching.update(invariants)
    out = [Edge(s, t, tuple(sorted(grants, key=lambda g: (g.rule.origin, g.source))),
                tuple(sorted(touching, key=lambda r: r.origin)))
           for (s, t), (grants, touching) in sorted(edges.items())]
    namespaces = _namespaces(graph, managed, nodes.values())
    return View(graph.trust_domain, graph.mesh_mtls, namespaces,
                tuple(sorted(nodes.values(), key=_node_order)), tuple(out), target)


def _grants(graph: AccessGraph, svc: Service, name: str | None, decider: Decider, universe: Universe,
            explainer: Explainer | None) -> list[tuple[Grant, set[Rule]]]:
    """The live grants of the allow rules of ``svc`` (``name`` None: the stand-in of the namespace's undeclared
    workloads), ``NS/**`` rules included, and per grant the ``never`` rules its callers meet."""
    rules = decider.rules.get((svc.namespace, name), [])
    allows = [i for i, r in enumerate(rules) if r.action is Action.ALLOW]
    if not allows:
        return []
    invariants = [inv for inv in graph.invariants if inv.covers(svc.namespace, name)]
    match = _Matcher(rules)
    index = {id(r): i for i, r in enumerate(rules)}
    live: set[tuple[int, Source]] = set()
    plaintext: set[tuple[int, Source]] = set()
    excepts: dict[tuple[int, Source], set[int]] = {}
    resources: dict[tuple[int, Source], set[Resource]] = {}
    touched: dict[Source, set[Rule]] = {}
    sources = sorted({s for i in allows for s in rules[i].sources})
    for req in _requests(graph, svc, name, universe, rules + invariants):
        for inv in invariants:
            if rule_matches(inv, req):
                for src in sources:
                    if source_matches(src, req.caller):
                        touched.setdefault(src, set()).add(inv)
        decision = decider.decide(req)
        if decision.reason == "allow":  # the decision names every allow rule that matches
            for rule in decision.rules:
                for src in rule.sources:
                    if source_matches(src, req.caller):
                        key = (index[id(rule)], src)
                        live.add(key)
                        if req.caller.identity is None:
                            plaintext.add(key)
                        if explainer is not None:
                            resources.setdefault(key, set()).update(explainer(req))
        elif decision.reason == "deny":  # the decision names the denies; which allows did they beat?
            denies = {index[id(r)] for r in decision.rules}
            for i in match(req):
                if rules[i].action is Action.ALLOW:
                    for src in rules[i].sources:
                        if source_matches(src, req.caller):
                            excepts.setdefault((i, src), set()).update(denies)
    out = []
    for i, src in sorted(live, key=lambda key: (rules[key[0]].origin, key[1])):
        grant = Grant(rules[i], src, (i, src) in plaintext,
                      tuple(sorted((rules[d] for d in excepts.get((i, src), ())), key=lambda r: r.origin)),
                      tuple(sorted(resources.get((i, src), ()))))
        out.append((grant, touched.get(src, set())))
    return out


def _requests(graph: AccessGraph, svc: Service, name: str | None, universe: Universe,
              rules: list[Rule]) -> Iterator[Request]:
    """The space's requests to ``svc``, and the same from every identity its rules name.

    The space keeps one caller per class that no rule tells apart: ``allow a, b -> s`` makes ``a``
    and ``b`` one class. A grant is per source, so each named identity gets its own requests
    (at every address of the space), with every operation the space has for the port.
    """
    callers: dict[Caller, None] = {}
    operations: dict[int, dict[tuple, None]] = {}
    for req in requests_to(graph, (svc.namespace, name), universe):
        callers.setdefault(req.caller)
        operations.setdefault(req.port, {}).setdefault((req.method, req.path, req.headers, req.token))
    ips = sorted({c.ip for c in callers})
    for rule in rules:
        for src in rule.sources:
            if src.kind is SourceKind.IDENTITY:
                for ip in ips:
                    callers.setdefault(Caller(Identity(src.namespace, src.account), ip))
    for port, ops in operations.items():
        for caller in callers:
            for method, path, headers, token in ops:
                yield Request(caller, svc.namespace, name, port, method, path, headers, token)


def _service_nodes(graph: AccessGraph, managed: set[str]) -> dict[str, Node]:
    nodes = {}
    for svc in graph.services:
        node_id = service_id(svc.namespace, svc.name)
        if svc.namespace in managed:
            ports = tuple(PortInfo(p.number, p.protocol.value, graph.mtls_for(svc, svc.namespace, p.number).value)
                          for p in svc.ports)
            nodes[node_id] = Node(node_id, SERVICE, svc.name, svc.namespace, svc.name, svc.account,
                                  mtls=graph.service_mtls(svc), ports=ports, probes=svc.probes,
                                  origin=svc.origins[0] if svc.origins else None)
        else:
            nodes[node_id] = Node(node_id, EXTERNAL, svc.name, svc.namespace, svc.name, svc.account,
                                  ports=tuple(PortInfo(p.number, p.protocol.value, "") for p in svc.ports),
                                  origin=svc.origins[0] if svc.origins else None)
    return nodes


def _source_nodes(source: Source, by_identity: dict[tuple[str, str], list[str]], nodes: dict[str, Node]) -> list[str]:
    """The nodes a grant's source is drawn from (adding the node when it is not a service)."""
    if source.kind is SourceKind.IDENTITY and (source.namespace, source.account) in by_identity:
        return by_identity[(source.namespace, source.account)]
    node_id = source_node_id(source)
    if node_id not in nodes:
        if source.kind is SourceKind.IDENTITY:
            node = Node(node_id, IDENTITY, source.account, source.namespace, account=source.account)
        elif source.kind is SourceKind.NAMESPACE:
            node = Node(node_id, NAMESPACE, f"{source.namespace}/*", source.namespace)
        elif source.kind is SourceKind.MESH:
            node = Node(node_id, MESH, "*")
        elif source.kind is SourceKind.ANY:
            node = Node(node_id, ANY, "any")
        else:
            node = Node(node_id, CIDR, source.cidr, cidr=source.cidr)
        nodes[node_id] = node
    return [node_id]


def _namespaces(graph: AccessGraph, managed: set[str], nodes: Iterable[Node]) -> tuple[NamespaceInfo, ...]:
    out = {ns.name: NamespaceInfo(ns.name, ns.external, True,
                                  None if ns.external or ns.name not in managed else graph.namespace_mtls(ns.name))
           for ns in graph.namespaces}
    for node in nodes:
        if node.namespace and node.namespace not in out:
            declared = node.kind in (SERVICE, EXTERNAL)
            out[node.namespace] = NamespaceInfo(node.namespace, node.kind == EXTERNAL, declared,
                                                graph.namespace_mtls(node.namespace) if node.kind == SERVICE else None)
    return tuple(sorted(out.values()))


_KIND_ORDER = {kind: i for i, kind in enumerate((ANY, MESH, CIDR, NAMESPACE, IDENTITY, EXTERNAL, SERVICE))}


def _node_order(node: Node) -> tuple:
    return (node.namespace, _KIND_ORDER[node.kind], node.label, node.id)


# -- focus ---------------------------------------------------------------------------

class FocusError(UsageError):
    """A --namespace or --service that names nothing in the picture."""


def focus(view: View, namespaces: Iterable[str] = (), services: Iterable[str] = ()) -> View:
    """Keep the edges with an end in one of ``namespaces`` and, with ``services``, those into a service
    or usable by it (from the service itself, its ``NS/*``, ``*`` or ``any``); both given, both must hold.

    Services are ``NS/NAME``, or ``NAME`` when one namespace declares it. The nodes kept are the
    ends of the kept edges, every service of ``namespaces`` and the focused services.
    """
    namespaces, services = list(namespaces), list(services)
    if not namespaces and not services:
        return view
    known = {ns.name for ns in view.namespaces}
    for name in namespaces:
        if name not in known:
            raise FocusError(f"--namespace {name}: no such namespace (known: {', '.join(sorted(known))})")
    chosen = [resolve_service(view, ref) for ref in services]
    by_id = {n.id: n for n in view.nodes}
    selected_ns = set(namespaces)

    def in_namespaces(edge: Edge) -> bool:
        return by_id[edge.source].namespace in selected_ns or by_id[edge.target].namespace in selected_ns

    def near(edge: Edge) -> bool:
        for svc in chosen:
            if edge.target == svc.id or edge.source == svc.id:
                return True
            src = by_id[edge.source]
            if src.kind in (MESH, ANY) or (src.kind == NAMESPACE and src.namespace == svc.namespace) or (
                    src.kind == IDENTITY and (src.namespace, src.account) == (svc.namespace, svc.account)):
                return True
        return False

    edges = tuple(e for e in view.edges if (not namespaces or in_namespaces(e)) and (not chosen or near(e)))
    keep = {e.source for e in edges} | {e.target for e in edges} | {s.id for s in chosen}
    if not services:
        keep |= {n.id for n in view.nodes if n.namespace in selected_ns and n.kind in (SERVICE, EXTERNAL)}
    nodes = tuple(n for n in view.nodes if n.id in keep)
    used = {n.namespace for n in nodes}
    return replace(view, nodes=nodes, edges=edges, namespaces=tuple(ns for ns in view.namespaces if ns.name in used),
                   focus={"namespaces": tuple(namespaces), "services": tuple(s.id for s in chosen)})


def resolve_service(view: View, ref: str) -> Node:
    services = [n for n in view.nodes if n.kind in (SERVICE, EXTERNAL)]
    if "/" in ref:
        found = [n for n in services if n.id == ref]
    else:
        found = [n for n in services if n.name == ref]
    if len(found) == 1:
        return found[0]
    if found:
        raise FocusError(f"--service {ref}: several namespaces declare it ({', '.join(n.id for n in found)}); "
                         "write NS/NAME")
    raise FocusError(f"--service {ref}: no such service (write NS/NAME or NAME)")
