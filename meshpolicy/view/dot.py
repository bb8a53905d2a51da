"""The picture in Graphviz's DOT language: one cluster per namespace, plaintext-allowing edges in red."""

from __future__ import annotations

from .model import ANY, CIDR, EXTERNAL, IDENTITY, MESH, NAMESPACE, Node, View
from .text import edge_lines, namespace_title, node_lines, permissive, rule_ref

#: fill colours per node kind (a permissive service is orange, see ``permissive``)
FILL = {
    "service": "#e8f1fb", EXTERNAL: "#eeeeee", IDENTITY: "#f3f3f3", NAMESPACE: "#ede7f6",
    MESH: "#e0f2f1", ANY: "#fde2e2", CIDR: "#fff8e1",
}
SHAPE = {EXTERNAL: "box", IDENTITY: "box", NAMESPACE: "folder", MESH: "ellipse", ANY: "ellipse", CIDR: "hexagon"}
PERMISSIVE_FILL = "#ffe0b2"
PLAINTEXT = "#c62828"


def quote(text: str) -> str:
    """A DOT double-quoted string (``\\n`` stays a line break)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render(view: View) -> str:
    title = f"meshpolicy access graph · trust domain {view.trust_domain} · mesh mTLS {view.mesh_mtls.value}"
    lines = [
        "digraph access {",
        f"  graph [rankdir=LR, fontname=Helvetica, fontsize=12, labelloc=t, nodesep=0.3, ranksep=1.2, label={quote(title)}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        "  edge [fontname=Helvetica, fontsize=9, color=\"#546e7a\"];",
    ]
    by_ns: dict[str, list] = {}
    for node in view.nodes:
        by_ns.setdefault(node.namespace, []).append(node)
    for node in by_ns.pop("", []):
        lines.append("  " + _node(node))
    for ns in view.namespaces:
        members = by_ns.get(ns.name, [])
        if not members:
            continue
        style = "dashed,rounded" if ns.external or not ns.declared else "rounded"
        lines.append(f"  subgraph {quote('cluster_' + ns.name)} {{")
        lines.append(f"    label={quote(namespace_title(ns))}; style={quote(style)}; color=\"#90a4ae\";")
        lines += ["    " + _node(node) for node in members]
        lines.append("  }")
    for edge in view.edges:
        attrs = {"label": "\n".join(edge_lines(edge)),
                 "tooltip": "\n".join(rule_ref(g.rule) for g in edge.grants)}
        if edge.plaintext:
            attrs.update(color=PLAINTEXT, fontcolor=PLAINTEXT, penwidth="2", style="bold")
        lines.append(f"  {quote(edge.source)} -> {quote(edge.target)} [{_attrs(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(node: Node) -> str:
    attrs = {"label": "\n".join(node_lines(node)), "fillcolor": FILL[node.kind]}
    if node.kind in SHAPE:
        attrs["shape"] = SHAPE[node.kind]
    if permissive(node):
        attrs["fillcolor"] = PERMISSIVE_FILL
    if node.kind in (EXTERNAL, IDENTITY):
        attrs["style"] = "rounded,filled,dashed"
    return f"{quote(node.id)} [{_attrs(attrs)}];"


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{k}={quote(v)}" for k, v in attrs.items())
