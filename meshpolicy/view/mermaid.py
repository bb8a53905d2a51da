"""The picture as a Mermaid flowchart, which GitHub and GitLab render in Markdown (a pull-request comment).

One ``subgraph`` per namespace; callers that belong to none (``*``, ``any``,
networks) stand outside. Plaintext-allowing edges are dotted and red.
Node ids are ``n0``, ``n1``… in the view's (sorted) order, so the text is stable.
"""

from __future__ import annotations

from .model import ANY, CIDR, EXTERNAL, IDENTITY, MESH, NAMESPACE, Node, View
from .text import edge_lines, namespace_title, node_lines, permissive

CLASSES = {
    "service": "fill:#e8f1fb,stroke:#1e88e5,color:#0d2538",
    "permissive": "fill:#ffe0b2,stroke:#ef6c00,color:#3e2000",
    "external": "fill:#eeeeee,stroke:#757575,stroke-dasharray:4 3,color:#212121",
    "caller": "fill:#ede7f6,stroke:#5e35b1,color:#1a0f33",
    "anyone": "fill:#fde2e2,stroke:#c62828,color:#3b0000",
}
PLAINTEXT_LINK = "stroke:#c62828,stroke-width:2px"


def text(value: str) -> str:
    """A Mermaid quoted label: quotes and angle brackets as entity codes, lines joined with <br/>."""
    for raw, code in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;")):
        value = value.replace(raw, code)
    return value.replace("\n", "<br/>")


def node_class(node: Node) -> str:
    if permissive(node):
        return "permissive"
    if node.kind in (EXTERNAL, IDENTITY):
        return "external"
    if node.kind in (NAMESPACE, MESH, CIDR):
        return "caller"
    if node.kind == ANY:
        return "anyone"
    return "service"


def shape(node: Node, ident: str) -> str:
    label = f'"{text(chr(10).join(node_lines(node)))}"'
    if node.kind in (MESH, ANY, NAMESPACE):
        return f"{ident}([{label}])"
    if node.kind == CIDR:
        return f"{ident}{{{{{label}}}}}"
    return f"{ident}[{label}]"


def render(view: View, title: str = "") -> str:
    ids = {node.id: f"n{i}" for i, node in enumerate(view.nodes)}
    lines = ["flowchart LR"]
    if title:
        lines.insert(0, f"---\ntitle: {text(title)}\n---")
    lines += _nodes(view, ids)
    plaintext = []
    for i, edge in enumerate(view.edges):
        label = text("\n".join(edge_lines(edge)))
        arrow = "-.->" if edge.plaintext else "-->"
        lines.append(f'  {ids[edge.source]} {arrow}|"{label}"| {ids[edge.target]}')
        if edge.plaintext:
            plaintext.append(i)
    lines += _styles(view, ids)
    if plaintext:
        lines.append(f"  linkStyle {','.join(map(str, plaintext))} {PLAINTEXT_LINK}")
    return "\n".join(lines) + "\n"


def _nodes(view: View, ids: dict[str, str]) -> list[str]:
    lines = []
    by_ns: dict[str, list[Node]] = {}
    for node in view.nodes:
        by_ns.setdefault(node.namespace, []).append(node)
    for node in by_ns.pop("", []):
        lines.append("  " + shape(node, ids[node.id]))
    for i, ns in enumerate(view.namespaces):
        members = by_ns.get(ns.name, [])
        if not members:
            continue
        lines.append(f'  subgraph ns{i}["{text(namespace_title(ns))}"]')
        lines += ["    " + shape(node, ids[node.id]) for node in members]
        lines.append("  end")
    return lines


def _styles(view: View, ids: dict[str, str]) -> list[str]:
    lines = [f"  classDef {name} {style}" for name, style in CLASSES.items()]
    by_class: dict[str, list[str]] = {}
    for node in view.nodes:
        by_class.setdefault(node_class(node), []).append(ids[node.id])
    lines += [f"  class {','.join(members)} {name}" for name, members in sorted(by_class.items())]
    return lines


def fenced(body: str) -> str:
    """In a Markdown code fence, as a pull-request comment wants it."""
    return "```mermaid\n" + body + "```\n"
