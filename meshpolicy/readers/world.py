"""The cluster a reader evaluates requests in: workloads with labels, ports, protocols and probes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import InternalError
from ..graph.evaluate import Request
from ..graph.model import AccessGraph

#: labels of the pod that stands for "a workload the policy does not declare"
UNDECLARED_LABELS = (("app", "meshpolicy-undeclared-workload"),)

R = TypeVar("R")


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


class _Labels:
    """The workloads of one namespace indexed by their labels, so that no question about a selector scans
    every workload of the namespace: a reader asks one per Server or policy, and the scan made verification
    quadratic in the services of a namespace (``labels:8000`` did not finish, issue 12, docs/performance.md).

    Two indexes, each with the meaning of the pairwise comparison it replaces (tests/test_world.py checks
    them against it):

    - **by pair**: the positions of the workloads carrying each (key, value); the workloads a selector
      picks are those of its rarest pair that carry the others (:meth:`picked`);
    - **by key set**: the declared workloads grouped by their set of label keys, each group indexed, on
      demand, by the values of the keys it shares with a selector (:meth:`first_projection`): one lookup
      per group and not per workload, as the resolver's MP118 index does (``resolve/services.py``).
    """

    def __init__(self, workloads: tuple[Workload, ...]):
        self.workloads = workloads
        self.by_pair: dict[tuple[str, str], list[int]] = {}
        #: key set -> (positions of its declared workloads, (shared keys -> values -> first position))
        self.groups: dict[frozenset[str], tuple[list[int], dict[tuple[str, ...], dict[tuple[str, ...], int]]]] = {}
        #: a declared workload's whole label set -> whether one exists
        self.exact: set[frozenset[tuple[str, str]]] = set()
        self.declared = 0
        for i, w in enumerate(workloads):
            for pair in w.labels:
                self.by_pair.setdefault(pair, []).append(i)
            if w.name is not None:
                self.declared += 1
                self.groups.setdefault(frozenset(k for k, _ in w.labels), ([], {}))[0].append(i)
                self.exact.add(frozenset(w.labels))

    def picked(self, selector: tuple[tuple[str, str], ...]) -> list[Workload]:
        """The workloads whose labels hold every pair of a non-empty ``selector``, in the world's order."""
        buckets = [self.by_pair.get(pair, []) for pair in selector]
        rarest = min(buckets, key=len)
        wanted = set(selector)
        return [self.workloads[i] for i in rarest if wanted <= set(self.workloads[i].labels)]

    def first_projection(self, selector: dict[str, str]) -> tuple[int | None, int | None]:
        """Among the declared workloads that give every key they share with ``selector`` its value there:
        the first whose keys are all in ``selector`` (its labels are a part of the selector), and the first
        that lacks a key of ``selector`` (its pods may or may not carry it). Positions, None for none."""
        inside = partial = None
        for key_set, (members, projections) in self.groups.items():
            keys = tuple(sorted(key_set & selector.keys()))
            index = projections.get(keys)
            if index is None:
                index = projections[keys] = {}
                for i in members:
                    labels = dict(self.workloads[i].labels)
                    index.setdefault(tuple(labels[k] for k in keys), i)
            hit = index.get(tuple(selector[k] for k in keys))
            if hit is None:
                continue
            if key_set <= selector.keys() and (inside is None or hit < inside):
                inside = hit
            if not selector.keys() <= key_set and (partial is None or hit < partial):
                partial = hit
        return inside, partial


@dataclass(frozen=True, slots=True)
class World:
    trust_domain: str
    workloads: tuple[Workload, ...]
    #: the pods of --cluster proved that no pod carries two services' labels (``AccessGraph``)
    selectors_proven: bool = False
    #: indexes built once (a lookup per request must not scan every workload: issue 12, docs/performance.md)
    _at: dict[tuple[str, str | None], Workload] = field(init=False, repr=False, compare=False, hash=False)
    _in: dict[str, tuple[Workload, ...]] = field(init=False, repr=False, compare=False, hash=False)
    #: per namespace, its workloads by label (:class:`_Labels`), built on the first question about it
    _labels: dict[str, _Labels] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        at: dict[tuple[str, str | None], Workload] = {}
        grouped: dict[str, list[Workload]] = {}
        for w in self.workloads:
            if len({k for k, _ in w.labels}) != len(w.labels):
                raise InternalError(f"the workload {w.namespace}/{w.name} names a label key twice: {w.labels}")
            at.setdefault((w.namespace, w.name), w)
            grouped.setdefault(w.namespace, []).append(w)
        object.__setattr__(self, "_at", at)
        object.__setattr__(self, "_in", {ns: tuple(ws) for ns, ws in grouped.items()})
        object.__setattr__(self, "_labels", {})

    def in_namespace(self, namespace: str) -> tuple[Workload, ...]:
        """The workloads of ``namespace``, in the world's order."""
        return self._in.get(namespace, ())

    def _indexed(self, namespace: str) -> _Labels:
        found = self._labels.get(namespace)
        if found is None:
            found = self._labels[namespace] = _Labels(self.in_namespace(namespace))
        return found

    def selecting(self, namespace: str, selector: tuple[tuple[str, str], ...]) -> list[Workload]:
        """The workloads of ``namespace`` (the undeclared one included) whose labels hold every pair of
        ``selector`` (matchLabels), in the world's order; an empty selector picks all of them."""
        if not selector:
            return list(self.in_namespace(namespace))
        return self._indexed(namespace).picked(selector)

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
        Answered by the namespace's label index (:class:`_Labels`), not by comparing every workload.
        """
        if not selector or not self.in_namespace(namespace):
            return None  # every pod (the undeclared one included), or a namespace outside the policy
        index = self._indexed(namespace)
        inside, partial = index.first_projection(selector) if index.declared else (None, None)
        if inside is None:
            return f"the selector {selector} picks pods of no declared service in {namespace}"
        if self.selectors_proven and frozenset(selector.items()) in index.exact:
            return None  # exactly one service's labels, which (proven) no pod of another service carries
        if partial is not None:
            return f"the selector {selector} picks some pods of {namespace}/{index.workloads[partial].name} and not others"
        return None

    def workload(self, req: Request) -> Workload:
        return self.workload_at(req.namespace, req.service)

    def workload_at(self, namespace: str, service: str | None) -> Workload:
        """The declared workload, or (``service`` None) the namespace's undeclared one."""
        found = self._at.get((namespace, service))
        if found is not None:
            return found
        raise InternalError(f"the reader was asked about {namespace}/{service}, which its world does not hold")


class Selections(Generic[R]):
    """Records that pick pods of their own namespace by matchLabels (Servers, policies), found per pod.

    ``scope(record)`` gives the record's namespace and selector: an empty selector picks every pod of the
    namespace, None picks none. Each record asks the world's label index once for its pods, instead of
    every pod testing every record of its namespace (quadratic, issue 12); :meth:`of` gives a pod's
    records in the records' order, the order of the scan it replaces.
    """

    def __init__(self, world: World, records: Sequence[R],
                 scope: Callable[[R], tuple[str, tuple[tuple[str, str], ...] | None]]):
        self.records = records
        self._by_pod: dict[Workload, list[int]] = {}
        for i, record in enumerate(records):
            namespace, selector = scope(record)
            if selector is None:
                continue
            for pod in dict.fromkeys(world.selecting(namespace, selector)):
                self._by_pod.setdefault(pod, []).append(i)

    def positions(self, pod: Workload) -> list[int]:
        """The positions (ascending) of the records that pick ``pod``."""
        return self._by_pod.get(pod, [])

    def of(self, pod: Workload) -> list[R]:
        """The records that pick ``pod``, in their order."""
        return [self.records[i] for i in self.positions(pod)]
