"""The cluster a reader evaluates requests in: workloads with labels, ports, protocols and probes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InternalError
from ..graph.evaluate import Request
from ..graph.model import AccessGraph

#: labels of the pod that stands for "a workload the policy does not declare"
UNDECLARED_LABELS = (("app", "meshpolicy-undeclared-workload"),)


@dataclass(frozen=True, slots=True)
class Workload:
    namespace: str
    name: str | None
    account: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[tuple[int, str], ...]  # (number, protocol): http, http2, grpc or tcp
    probes: tuple[str, ...] = ()
    #: ports it serves though it does not declare them (the HTTP ports of ``**`` rules): never probed
    undeclared_ports: tuple[int, ...] = ()

    def probe_ports(self) -> tuple[int, ...]:
        """Where the kubelet sends the probes: every declared http and http2 port (a ``.mesh`` file names paths
        only)."""
        if not self.probes:
            return ()
        return tuple(number for number, proto in self.ports
                     if proto in ("http", "http2") and number not in self.undeclared_ports)

    def protocol(self, port: int) -> str | None:
        for number, proto in self.ports:
            if number == port:
                return proto
        return None


@dataclass(frozen=True, slots=True)
class World:
    trust_domain: str
    workloads: tuple[Workload, ...]
    #: the pods of --cluster proved that no pod carries two services' labels (``AccessGraph``)
    selectors_proven: bool = False
    #: indexes built once (a lookup per request must not scan every workload: issue 12, docs/performance.md)
    _at: dict[tuple[str, str | None], Workload] = field(init=False, repr=False, compare=False, hash=False)
    _in: dict[str, tuple[Workload, ...]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        at: dict[tuple[str, str | None], Workload] = {}
        grouped: dict[str, list[Workload]] = {}
        for w in self.workloads:
            at.setdefault((w.namespace, w.name), w)
            grouped.setdefault(w.namespace, []).append(w)
        object.__setattr__(self, "_at", at)
        object.__setattr__(self, "_in", {ns: tuple(ws) for ns, ws in grouped.items()})

    def in_namespace(self, namespace: str) -> tuple[Workload, ...]:
        """The workloads of ``namespace``, in the world's order."""
        return self._in.get(namespace, ())

    @classmethod
    def from_graph(cls, graph: AccessGraph) -> World:
        """The pods a policy's services describe, plus one undeclared pod per managed namespace."""
        external = {ns.name for ns in graph.namespaces if ns.external}
        # the ports of a namespace's ``**`` rules with HTTP fields are HTTP on every workload there that does not
        # declare them (LANGUAGE §2.4): ``served_ports``
        pods = [Workload(s.namespace, s.name, s.account, s.labels,
                         tuple((p.number, p.protocol.value) for p in graph.served_ports(s, s.namespace)), s.probes,
                         tuple(p.number for p in graph.served_ports(s, s.namespace) if s.port(p.number) is None))
                for s in graph.services if s.namespace not in external]
        pods += [Workload(ns.name, None, "default", UNDECLARED_LABELS,
                          tuple((p.number, p.protocol.value) for p in graph.served_ports(None, ns.name)))
                 for ns in graph.managed_namespaces]
        return cls(graph.trust_domain, tuple(pods), graph.selectors_proven_by_pods)

    def selector_problem(self, namespace: str, selector: dict[str, str]) -> str | None:
        """Why the world cannot tell which of a namespace's pods a non-empty label selector picks (None: it can).

        A declared workload stands for every pod that carries its labels, the undeclared one for every
        pod that carries no declared service's labels. So a selector is read exactly only when it picks
        none of the undeclared pods (it holds some service's labels) and, for each service, all of its
        pods or none (it holds only labels the service has, or gives one of its keys another value).
        """
        declared = [w for w in self.in_namespace(namespace) if w.name is not None]
        if not selector or not self.in_namespace(namespace):
            return None  # every pod (the undeclared one included), or a namespace outside the policy
        if not any(all(selector.get(k) == v for k, v in w.labels) for w in declared):
            return f"the selector {selector} picks pods of no declared service in {namespace}"
        if self.selectors_proven and any(dict(w.labels) == selector for w in declared):
            return None  # exactly one service's labels, which (proven) no pod of another service carries
        for w in declared:
            labels = dict(w.labels)
            if not all(labels.get(k) == v for k, v in selector.items()) and \
                    not any(k in labels and labels[k] != v for k, v in selector.items()):
                return f"the selector {selector} picks some pods of {namespace}/{w.name} and not others"
        return None

    def workload(self, req: Request) -> Workload:
        return self.workload_at(req.namespace, req.service)

    def workload_at(self, namespace: str, service: str | None) -> Workload:
        """The declared workload, or (``service`` None) the namespace's undeclared one."""
        found = self._at.get((namespace, service))
        if found is not None:
            return found
        raise InternalError(f"the reader was asked about {namespace}/{service}, which its world does not hold")
