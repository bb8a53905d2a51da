"""Pictures of a change: ``meshpolicy diff OLD NEW --format mermaid|html`` (docs/graph.md, docs/diff.md).

Both policies decide every request of one request space built for the two of
them (the merged graph of :mod:`meshpolicy.diff`, with every identity its rules
name as a caller of its own). An edge *carries* a request on one side when
that side allows it through a grant of the edge (an allowing rule whose source
is the edge's caller node). Comparing what each edge carries on each side:

- ``added``: nothing before, something now; ``removed``: the reverse;
- ``widened``: it now carries everything it did and more; ``narrowed``: less;
- ``changed``: some of each; ``same``: exactly what it did (html only, grey).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..diff import _align, _merged  # one space and one alignment of renamed services, as diff itself uses
from ..graph.evaluate import Decider, source_matches
from ..graph.model import AccessGraph, Rule, Source
from ..graph.space import Universe
from . import access, mermaid, page
from .model import Edge, Grant, Node, View
from .text import edge_lines, namespace_title

KINDS = ("added", "removed", "widened", "narrowed", "changed")
STYLE = {
    "added": "stroke:#2e7d32,stroke-width:3px",
    "removed": "stroke:#c62828,stroke-width:3px,stroke-dasharray:4 4",
    "widened": "stroke:#ef6c00,stroke-width:3px",
    "narrowed": "stroke:#1565c0,stroke-width:3px,stroke-dasharray:9 4",
    "changed": "stroke:#6a1b9a,stroke-width:3px,stroke-dasharray:9 3 2 3",
}
ARROW = {"added": "==>", "removed": "-.->", "widened": "==>", "narrowed": "-->", "changed": "-->"}


@dataclass(frozen=True, slots=True)
class EdgeChange:
    source: str
    target: str
    kind: str                   # added | removed | widened | narrowed | changed | same
    before: tuple[Grant, ...]
    after: tuple[Grant, ...]

    @property
    def id(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass(frozen=True, slots=True)
class Picture:
    nodes: tuple[Node, ...]     # both sides' nodes, the new side's where both have one
    namespaces: tuple          # NamespaceInfo of both sides
    edges: tuple[EdgeChange, ...]
    notes: tuple[str, ...]
    old: View
    new: View

    def changed(self) -> tuple[EdgeChange, ...]:
        return tuple(e for e in self.edges if e.kind != "same")


def compare(old: AccessGraph, new: AccessGraph) -> Picture:
    old, notes = _align(old, new)
    space = _merged(old, new)
    views = access.build(old), access.build(new)
    deciders = Decider(old), Decider(new)
    owners = [_owners(g) for g in (old, new)]
    universe = Universe(space)
    managed = {ns.name for ns in old.managed_namespaces} | {ns.name for ns in new.managed_namespaces}
    carried: dict[tuple[str, str], tuple[set[int], set[int]]] = {}
    count = 0
    for svc in space.services:
        if svc.namespace not in managed:
            continue
        rules = [r for r in space.rules + space.invariants if r.covers(svc.namespace, svc.name)]
        target = f"{svc.namespace}/{svc.name}"
        for req in access._requests(space, svc, svc.name, universe, rules):
            count += 1
            for side in (0, 1):
                decision = deciders[side].decide(req)
                if decision.reason != "allow":
                    continue
                for rule in decision.rules:
                    for src in rule.sources:
                        if source_matches(src, req.caller):
                            for node in owners[side](src):
                                carried.setdefault((node, target), (set(), set()))[side].add(count)
    old_edges = {e.id: e for e in views[0].edges}
    new_edges = {e.id: e for e in views[1].edges}
    edges = []
    for (source, target), (before, after) in sorted(carried.items()):
        key = f"{source}->{target}"
        edges.append(EdgeChange(source, target, _kind(before, after), _grants(old_edges.get(key)),
                                _grants(new_edges.get(key))))
    nodes = {n.id: n for n in views[0].nodes}
    nodes.update({n.id: n for n in views[1].nodes})
    namespaces = {ns.name: ns for ns in views[0].namespaces}
    namespaces.update({ns.name: ns for ns in views[1].namespaces})
    order = {n.id: i for i, n in enumerate(sorted(nodes.values(), key=access._node_order))}
    return Picture(tuple(sorted(nodes.values(), key=lambda n: order[n.id])), tuple(sorted(namespaces.values())),
                   tuple(edges), tuple(notes), views[0], views[1])


def _owners(graph: AccessGraph) -> Callable[[Source], list[str]]:
    """Rule source -> the node ids it is drawn from, as :func:`access.build` draws them."""
    by_identity: dict[tuple[str, str], list[str]] = {}
    for svc in graph.services:
        by_identity.setdefault((svc.namespace, svc.account), []).append(f"{svc.namespace}/{svc.name}")
    scratch: dict[str, Node] = {}
    return lambda src: access._source_nodes(src, by_identity, scratch)


def _kind(before: set[int], after: set[int]) -> str:
    if before == after:
        return "same"
    if not before:
        return "added"
    if not after:
        return "removed"
    if before < after:
        return "widened"
    if after < before:
        return "narrowed"
    return "changed"


def _grants(edge: Edge | None) -> tuple[Grant, ...]:
    return edge.grants if edge is not None else ()


# -- drawing ---------------------------------------------------------------------------------------

def _lines(grants: tuple[Grant, ...]) -> list[str]:
    return edge_lines(Edge("", "", grants)) if grants else []


def label(change: EdgeChange) -> str:
    """``added: :8080 GET``, ``narrowed: was :8080 GET,POST, now :8080 GET``."""
    if change.kind == "added":
        return "added: " + "\n".join(_lines(change.after))
    if change.kind == "removed":
        return "removed: " + "\n".join(_lines(change.before))
    return f"{change.kind}: was " + "\n".join(_lines(change.before)) + "\nnow " + "\n".join(_lines(change.after))


def render_mermaid(picture: Picture) -> str:
    """The changed edges and their ends, grouped by namespace, one style per kind of change."""
    changed = picture.changed()
    used = {e.source for e in changed} | {e.target for e in changed}
    nodes = [n for n in picture.nodes if n.id in used]
    ids = {n.id: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart LR"]
    if not changed:
        lines.append('  none["no change in access"]')
    outside = [n for n in nodes if not n.namespace]
    lines += ["  " + mermaid.shape(n, ids[n.id]) for n in outside]
    for i, ns in enumerate(picture.namespaces):
        members = [n for n in nodes if n.namespace == ns.name]
        if members:
            lines.append(f'  subgraph ns{i}["{mermaid.text(namespace_title(ns))}"]')
            lines += ["    " + mermaid.shape(n, ids[n.id]) for n in members]
            lines.append("  end")
    by_kind: dict[str, list[int]] = {}
    for i, change in enumerate(changed):
        lines.append(f'  {ids[change.source]} {ARROW[change.kind]}|"{mermaid.text(label(change))}"| {ids[change.target]}')
        by_kind.setdefault(change.kind, []).append(i)
    lines += [f"  classDef {name} {style}" for name, style in mermaid.CLASSES.items()]
    by_class: dict[str, list[str]] = {}
    for node in nodes:
        by_class.setdefault(mermaid.node_class(node), []).append(ids[node.id])
    lines += [f"  class {','.join(members)} {name}" for name, members in sorted(by_class.items())]
    lines += [f"  linkStyle {','.join(map(str, idx))} {STYLE[kind]}" for kind, idx in sorted(by_kind.items())]
    return "\n".join(lines) + "\n"


def render_html(picture: Picture, old_name: str, new_name: str) -> str:
    """The review page with every edge of either side, each styled by its change (unchanged ones grey)."""
    grants = {e.id: e.after or e.before for e in picture.edges}
    edges = tuple(Edge(e.source, e.target, grants[e.id], _invariants(picture, e.id)) for e in picture.edges)
    view = View(picture.new.trust_domain, picture.new.mesh_mtls, picture.namespaces, picture.nodes, edges)
    counts = {kind: sum(e.kind == kind for e in picture.edges) for kind in KINDS}
    change = {"old": old_name, "new": new_name, "notes": list(picture.notes), "counts": counts,
              "edges": {e.id: {"kind": e.kind, "before": e.before, "after": e.after} for e in picture.edges}}
    return page.render(view, f"meshpolicy diff: {old_name} → {new_name}", change=change)


def _invariants(picture: Picture, edge_id: str) -> tuple[Rule, ...]:
    for view in (picture.new, picture.old):
        for edge in view.edges:
            if edge.id == edge_id:
                return edge.invariants
    return ()
