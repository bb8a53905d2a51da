"""Words for the picture, shared by every format: what a grant allows, what a node is."""

from __future__ import annotations

from pathlib import PurePosixPath

from ..graph.model import Rule, Source, SourceKind
from .model import ANY, CIDR, EXTERNAL, IDENTITY, MESH, NAMESPACE, SERVICE, Edge, Grant, NamespaceInfo, Node

KIND_TEXT = {
    SERVICE: "service",
    EXTERNAL: "service of an external namespace",
    IDENTITY: "service account no service declares",
    NAMESPACE: "every workload of the namespace",
    MESH: "every authenticated workload of the mesh",
    ANY: "any client, with or without mTLS",
    CIDR: "any client from this network",
}


def conditions(rule: Rule, skip_ports: tuple[int, ...] = ()) -> str:
    """``:8080 GET,POST /api/* if header x-tenant=acme``: the ports, methods, paths, gRPC calls and request
    conditions a rule matches."""
    parts = []
    if not rule.ports:
        parts.append("any port")
    elif set(skip_ports) != set(rule.ports) or not skip_ports:
        parts.append(":" + ",".join(map(str, rule.ports)))
    if rule.methods:
        parts.append(",".join(rule.methods))
    if rule.paths:
        parts.append(", ".join(map(str, rule.paths)))
    if rule.grpc:
        parts.append("grpc " + ", ".join(map(str, rule.grpc)))
    if rule.conditions:
        parts.append("if " + ", ".join(map(str, rule.conditions)))
    return " ".join(parts)


def covers(sources: tuple[Source, ...], source: Source) -> bool:
    """Whether every caller of ``source`` is a caller of one of ``sources`` (display only)."""
    for s in sources:
        if s.kind is SourceKind.ANY:
            return True
        if s.kind is SourceKind.MESH and source.kind in (SourceKind.IDENTITY, SourceKind.NAMESPACE, SourceKind.MESH):
            return True
        if s.kind is SourceKind.NAMESPACE and source.kind in (SourceKind.IDENTITY, SourceKind.NAMESPACE) \
                and s.namespace == source.namespace:
            return True
        if s.kind is SourceKind.IDENTITY and s == source:
            return True
        if s.kind is SourceKind.CIDR and source.kind is SourceKind.CIDR and \
                s.network.version == source.network.version and source.network.subnet_of(s.network):  # type: ignore[arg-type]
            return True
    return False


def except_text(deny: Rule, grant: Grant) -> str:
    """What a deny rule takes back from a grant: ``except DELETE``, ``except from 10.1.0.0/16``."""
    who = "" if covers(deny.sources, grant.source) else "from " + ", ".join(map(str, deny.sources))
    what = conditions(deny, grant.rule.ports)
    return "except " + " ".join(p for p in (who, what) if p)


def grant_text(grant: Grant) -> str:
    """One line per grant: its conditions, what deny rules take back, and plaintext when allowed."""
    text = conditions(grant.rule)
    for deny in grant.excepts:
        text += f"; {except_text(deny, grant)}"
    if grant.plaintext:
        text += " (plaintext too)"
    return text


def edge_lines(edge: Edge) -> list[str]:
    """The label of an edge: one line per grant, in rule order, ending with the rule's place
    (``:8080 GET,POST · shop.mesh:22``; the file's name only, the full path is in json and html)."""
    return list(dict.fromkeys(f"{grant_text(g)} · {PurePosixPath(g.rule.origin.file).name}:{g.rule.origin.line}"
                              for g in edge.grants))


def node_lines(node: Node) -> list[str]:
    """The label of a node: its name, its ports, its mTLS mode."""
    if node.kind == SERVICE:
        lines = [node.label]
        if node.ports:
            lines.append(" ".join(f":{p.number}/{p.protocol}" for p in node.ports))
        lines.append(mtls_line(node))
        return lines
    if node.kind == EXTERNAL:
        return [node.label, "external"]
    if node.kind == IDENTITY:
        return [f"{node.namespace}/{node.account}", "account, no service"]
    if node.kind == NAMESPACE:
        return [node.label, "any workload of " + node.namespace]
    if node.kind == MESH:
        return ["*", "any authenticated workload"]
    if node.kind == ANY:
        return ["any", "any client, also plaintext"]
    return [node.label, "network"]


def mtls_line(node: Node) -> str:
    """``mTLS strict``, or the ports that differ: ``mTLS strict, permissive on :7000``."""
    mode = node.mtls.value if node.mtls else "strict"
    other = [p.number for p in node.ports if p.mtls and p.mtls != mode]
    if not other:
        return f"mTLS {mode}"
    if len(other) == len(node.ports):
        return f"mTLS {node.ports[0].mtls}"
    return f"mTLS {mode}, {'permissive' if mode == 'strict' else 'strict'} on :{','.join(map(str, other))}"


def permissive(node: Node) -> bool:
    """A managed service that takes plaintext on some port."""
    return node.kind == SERVICE and any(p.mtls == "permissive" for p in node.ports) or (
        node.kind == SERVICE and not node.ports and node.mtls is not None and node.mtls.value == "permissive")


def namespace_title(ns: NamespaceInfo) -> str:
    if ns.external:
        return f"namespace {ns.name} (external: not managed)"
    if not ns.declared:
        return f"namespace {ns.name} (named by rules only)"
    return f"namespace {ns.name}" + (f" · mTLS {ns.mtls.value}" if ns.mtls else "")


def rule_ref(rule: Rule) -> str:
    """``shop.mesh:22  allow frontend -> orders GET,POST :8080``"""
    return f"{rule.origin.short}  {rule.text}"
