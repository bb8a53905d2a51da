"""The picture of an access graph: nodes, and edges that say what each caller may do (docs/graph.md).

A :class:`View` is computed from the IR by :mod:`.access` and drawn by the
format modules (``dot``, ``mermaid``, ``record`` for json, ``page`` for html).
It is plain frozen data, sorted when built, so every format is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..graph.model import Mtls, Rule, Source, SourceKind
from ..source import Span

#: node kinds: a managed service, a service of an external namespace, an identity no service declares,
#: every workload of a namespace (NS/*), every authenticated workload (*), any client, a network
SERVICE, EXTERNAL, IDENTITY, NAMESPACE, MESH, ANY, CIDR = (
    "service", "external", "identity", "namespace", "mesh", "any", "cidr")
NODE_KINDS = (SERVICE, EXTERNAL, IDENTITY, NAMESPACE, MESH, ANY, CIDR)


@dataclass(frozen=True, slots=True, order=True)
class PortInfo:
    number: int
    protocol: str
    mtls: str


@dataclass(frozen=True, slots=True)
class Node:
    """One box of the picture. ``namespace`` is empty for ``*``, ``any`` and networks (they belong to none)."""

    id: str
    kind: str
    label: str
    namespace: str = ""
    name: str = ""           # service name
    account: str = ""        # service account (services and identities)
    cidr: str = ""
    mtls: Mtls | None = None  # a managed service's mode (its ports may differ: ``ports``)
    ports: tuple[PortInfo, ...] = ()
    probes: tuple[str, ...] = ()
    origin: Span | None = None

    @property
    def source(self) -> Source:
        """The callers this node stands for, as a rule source."""
        if self.kind in (SERVICE, EXTERNAL, IDENTITY):
            return Source(SourceKind.IDENTITY, self.namespace, self.account)
        if self.kind == NAMESPACE:
            return Source(SourceKind.NAMESPACE, self.namespace)
        if self.kind == MESH:
            return Source(SourceKind.MESH)
        if self.kind == ANY:
            return Source(SourceKind.ANY)
        return Source(SourceKind.CIDR, cidr=self.cidr)


Resource = tuple[str, str, str]   # (kind, namespace, name) of an emitted resource


@dataclass(frozen=True, slots=True)
class Grant:
    """What one allow rule lets one of its sources do, less what deny rules take back.

    A request is allowed through a grant when the rule's source ``source`` admits the caller, the
    rule's ports, methods, paths and gRPC calls match, no rule of ``excepts`` matches, and the
    caller has an identity or the port's mTLS mode is permissive. ``plaintext``: some request
    without an identity is allowed through it.
    """

    rule: Rule
    source: Source
    plaintext: bool
    excepts: tuple[Rule, ...] = ()
    resources: tuple[Resource, ...] = ()


@dataclass(frozen=True, slots=True)
class Edge:
    """Every grant from the callers of node ``source`` to service node ``target``."""

    source: str
    target: str
    grants: tuple[Grant, ...]
    #: ``never`` rules of the target that name some caller this edge stands for
    invariants: tuple[Rule, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"

    @property
    def plaintext(self) -> bool:
        return any(g.plaintext for g in self.grants)


@dataclass(frozen=True, slots=True, order=True)
class NamespaceInfo:
    name: str
    external: bool
    declared: bool           # False: only named by rules (NS/*, an identity of NS)
    mtls: Mtls | None = None


@dataclass(frozen=True, slots=True)
class View:
    trust_domain: str
    mesh_mtls: Mtls
    namespaces: tuple[NamespaceInfo, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    target: str | None = None
    #: what --namespace/--service kept, for the record
    focus: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


def service_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def source_node_id(source: Source) -> str:
    """The id of the node a rule source that is not a declared service's identity stands for:
    ``identity:NS/ACCOUNT``, ``NS/*``, ``*``, ``any``, ``cidr:NET``."""
    prefix = {SourceKind.IDENTITY: "identity:", SourceKind.CIDR: "cidr:"}.get(source.kind, "")
    return prefix + str(source)
