"""Pass 2: each declared service from its attributes (LANGUAGE §2.2), and the check that the services
of a namespace select different pods (MP118).

One method per attribute node; a new attribute is one ``visit_<Node>`` method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import Related
from ..graph.model import Mtls, PathKind, Port, Service
from ..parse import ast
from ..source import Span
from .base import Reported, Visitor
from .checks import PROTOCOLS, port_problem
from .names import label_problem
from .paths import parse_path


@dataclass
class _Draft:
    """A service while its attributes are read."""

    name: str
    account: str
    labels: list[tuple[str, str]] | None = None
    ports: dict[int, Port] = field(default_factory=dict)
    probes: list[str] = field(default_factory=list)
    mtls: Mtls | None = None
    port_mtls: dict[int, Mtls] = field(default_factory=dict)
    #: attribute kind -> where it was first set (each is set once)
    seen: dict[str, Span] = field(default_factory=dict)
    #: ``mtls MODE on PORT``: checked once every port is declared, since attributes come in any order
    pending_port_mtls: list[tuple[ast.Word, Mtls]] = field(default_factory=list)


class Services(Visitor):
    def services(self, selectors_by_pods: bool = False) -> None:
        """``selectors_by_pods``: the pods of ``--cluster`` decide whether selectors overlap (MP611/MP612 in
        meshpolicy/cluster/), not their labels alone (MP118)."""
        for key, node in sorted(self.tables.service_nodes.items()):
            try:
                self.tables.services[key] = self.service(key[0], node)
            except Reported:
                pass
        if not selectors_by_pods:
            self.check_selectors()

    def service(self, namespace: str, node: ast.Service) -> Service:
        name = node.name.value
        draft = _Draft(name, account=name)
        self.all_of(lambda: self.resolve_all(node.attrs, self.visit, draft),
                    lambda: self.resolve_all(draft.pending_port_mtls, self.port_mtls, draft))
        return Service(
            namespace=namespace,
            name=name,
            account=draft.account,
            labels=tuple(sorted(draft.labels if draft.labels is not None else [("app", name)])),
            ports=tuple(sorted(draft.ports.values())),
            probes=tuple(sorted(draft.probes)),
            mtls=draft.mtls,
            port_mtls=tuple(sorted(draft.port_mtls.items())),
            origins=(node.span,),
        )

    def once(self, kind: str, span: Span, draft: _Draft) -> None:
        if kind in draft.seen:
            self.fail("MP102", f"service '{draft.name}' sets {kind} twice", span,
                      related=(Related(draft.seen[kind], "first set here"),))
        draft.seen[kind] = span

    # -- one method per attribute ----------------------------------------------------------------------
    def visit_Account(self, attr: ast.Account, draft: _Draft) -> None:
        self.once("account", attr.span, draft)
        draft.account = self.check_name(attr.name)

    def visit_Labels(self, attr: ast.Labels, draft: _Draft) -> None:
        self.once("labels", attr.span, draft)
        keys: set[str] = set()
        draft.labels = self.resolve_all(attr.items, self.label, keys)

    def label(self, item: ast.Word, keys: set[str]) -> tuple[str, str]:
        key, _, value = item.value.partition("=")
        problem = label_problem(key, value)
        twice = key in keys
        keys.add(key)
        if problem:
            self.fail("MP111", problem, item.span, "labels follow Kubernetes syntax: [prefix/]name=value")
        if twice:
            self.fail("MP111", f"label '{key}' is given twice", item.span)
        return (key, value)

    def visit_PortDecl(self, attr: ast.PortDecl, draft: _Draft) -> None:
        problem = port_problem(attr.number.value)
        if problem:
            self.fail("MP107", problem, attr.number.span)
        proto = PROTOCOLS.get(attr.protocol.value if attr.protocol else "http")
        if proto is None:
            assert attr.protocol is not None
            self.fail("MP108", f"unknown protocol '{attr.protocol.value}'", attr.protocol.span,
                      "a port's protocol is http, http2, grpc or tcp")
        number = int(attr.number.value)
        if number in draft.ports:
            self.fail("MP102", f"service '{draft.name}' declares port {number} twice", attr.span)
        draft.ports[number] = Port(number, proto)

    def visit_Probes(self, attr: ast.Probes, draft: _Draft) -> None:
        self.resolve_all(attr.paths, self.probe, draft)

    def probe(self, word: ast.Word, draft: _Draft) -> None:
        match, problem = parse_path(word.value)
        if problem:
            self.fail("MP114", problem.message, problem.span_in(word.span), problem.hint)
        if match is None or match.kind is not PathKind.EXACT:
            self.fail("MP114", f"probe path '{word.value}' must be an exact path", word.span)
        if word.value not in draft.probes:
            draft.probes.append(word.value)

    def visit_Mtls(self, attr: ast.Mtls, draft: _Draft) -> None:
        mode = Mtls(attr.mode.value)
        if attr.ports:
            draft.pending_port_mtls.extend((word, mode) for word in attr.ports)
            return
        self.once("mtls", attr.span, draft)
        draft.mtls = mode

    def port_mtls(self, pending: tuple[ast.Word, Mtls], draft: _Draft) -> None:
        word, mode = pending
        problem = port_problem(word.value)
        if problem:
            self.fail("MP107", problem, word.span)
        number = int(word.value)
        if number not in draft.ports:
            self.fail("MP110", f"service '{draft.name}' does not declare port {word.value}", word.span,
                      f"declare it first, e.g. :{word.value}/tcp")
        if number in draft.port_mtls:
            self.fail("MP102", f"the mtls mode of port {word.value} is set twice", word.span)
        draft.port_mtls[number] = mode

    # -- selectors ---------------------------------------------------------------------------------------
    def check_selectors(self) -> None:
        """Two services of a namespace must select provably different pods.

        A pod carries at least its service's labels, so two selectors are disjoint only when they
        give one key different values; otherwise one pod can match both, and the policy (and
        Linkerd's one Server per pod port) of one service would also apply to the other.
        """
        by_ns: dict[str, list[Service]] = {}
        for svc in self.tables.services.values():
            if not self.tables.namespaces[svc.namespace].external:
                by_ns.setdefault(svc.namespace, []).append(svc)
        nodes = self.tables.service_nodes
        for services in by_ns.values():
            services.sort(key=lambda s: s.origins[0])
            earlier_ones = _Selectors()
            for later in services:
                earlier = earlier_ones.first_overlapping(later)
                earlier_ones.add(later)
                if earlier is None:
                    continue
                self.diag.error(
                    "MP118",
                    f"the labels of '{earlier.name}' and '{later.name}' can select the same pod",
                    nodes[later.key].name.span,
                    "give both services one label key with different values (e.g. app=NAME, the default)",
                    (Related(nodes[earlier.key].name.span, f"'{earlier.name}' is declared here"),))


class _Selectors:
    """The services of one namespace seen so far, to find the first whose labels can select a pod that
    another's labels select: no key they share has different values.

    Comparing every pair was quadratic (8,000 services: 161 s, issue 12). Here the services are grouped by
    their set of label keys, and each group indexed by the values of the keys it shares with a question:
    a lookup per group, not per service. The cost is linear for the usual handful of key sets; only
    a namespace where nearly every service has its own set of keys degrades towards the pairwise
    comparison, which no index avoids in general (docs/performance.md, "MP118").
    """

    def __init__(self) -> None:
        self._order: dict[str, int] = {}   # service name -> position (in the order of declaration)
        #: key set -> its services, and (keys shared with a question -> values -> the first such service)
        self._groups: dict[frozenset[str], tuple[list[Service], dict[tuple[str, ...], dict[tuple[str, ...], Service]]]] = {}

    def add(self, svc: Service) -> None:
        self._order[svc.name] = len(self._order)
        members, projections = self._groups.setdefault(frozenset(k for k, _ in svc.labels), ([], {}))
        members.append(svc)
        labels = dict(svc.labels)
        for keys, index in projections.items():
            index.setdefault(tuple(labels[k] for k in keys), svc)

    def first_overlapping(self, svc: Service) -> Service | None:
        """The first service added whose labels share no key with a different value with ``svc``'s."""
        labels = dict(svc.labels)
        found: Service | None = None
        for key_set, (members, projections) in self._groups.items():
            keys = tuple(sorted(key_set & labels.keys()))
            index = projections.get(keys)
            if index is None:
                index = projections[keys] = {}
                for member in members:
                    index.setdefault(tuple(dict(member.labels)[k] for k in keys), member)
            hit = index.get(tuple(labels[k] for k in keys))
            if hit is not None and (found is None or self._order[hit.name] < self._order[found.name]):
                found = hit
        return found
