"""The picture as one self-contained HTML page: the data, the script and the style inline, nothing fetched.

The page's Content-Security-Policy (``default-src 'none'``) forbids every
network request at view time; the script (``page/graph.js``) is meshpolicy's
own, with no library, under the project's licence. The data is a compact
form of the json record: rules are listed once and referenced by index.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from ..graph.model import Rule
from .model import Edge, Grant, View
from .record import source_record
from .text import KIND_TEXT, edge_lines, grant_text, namespace_title, node_lines, permissive

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("page", name).read_text(encoding="utf-8")


def render(view: View, title: str = "meshpolicy access graph", change: dict[str, Any] | None = None) -> str:
    """The page; ``change`` adds what a diff says per edge (see :mod:`.change`)."""
    data = page_data(view, change)
    # inside <script>, only "</" can end the element: JSON allows "<\/" for it
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    page = _asset("graph.html")
    for key, value in (("TITLE", html.escape(title)), ("CSP", html.escape(CSP, quote=True)),
                       ("STYLE", _asset("graph.css")), ("SCRIPT", _asset("graph.js")), ("DATA", payload)):
        page = page.replace("{{" + key + "}}", value)
    return page


def page_data(view: View, change: dict[str, Any] | None = None) -> dict[str, Any]:
    """The page's data; ``change`` (from :mod:`.change`) adds per edge its kind of change and both sides' grants."""
    rules: dict[Rule, int] = {}

    def ref(rule: Rule) -> int:
        return rules.setdefault(rule, len(rules))

    edges = [_edge(e, ref) for e in view.edges]
    summary = None
    if change is not None:
        for edge in edges:
            info = change["edges"][edge["id"]]
            edge["change"] = info["kind"]
            edge["before"] = [_grant(g, ref) for g in info["before"]]
            edge["after"] = [_grant(g, ref) for g in info["after"]]
        summary = {k: v for k, v in change.items() if k != "edges"}
    return {
        "change": summary,
        "trust_domain": view.trust_domain,
        "mtls": view.mesh_mtls.value,
        "target": view.target,
        "namespaces": [{"name": ns.name, "title": namespace_title(ns), "external": ns.external,
                        "declared": ns.declared} for ns in view.namespaces],
        "nodes": [{"id": n.id, "kind": n.kind, "kind_text": KIND_TEXT[n.kind], "namespace": n.namespace,
                   "lines": node_lines(n), "permissive": permissive(n),
                   "ports": [[p.number, p.protocol, p.mtls] for p in n.ports], "account": n.account,
                   "where": f"{n.origin.file}:{n.origin.line}" if n.origin else ""} for n in view.nodes],
        "rules": [[r.origin.file, r.origin.line, r.text, r.action.value] for r in rules],
        "edges": edges,
    }


def _edge(edge: Edge, ref: Callable[[Rule], int]) -> dict[str, Any]:
    return {
        "id": edge.id, "from": edge.source, "to": edge.target, "plaintext": edge.plaintext,
        "label": edge_lines(edge),
        "grants": [_grant(g, ref) for g in edge.grants],
        "invariants": [ref(r) for r in edge.invariants],
    }


def _grant(grant: Grant, ref: Callable[[Rule], int]) -> dict[str, Any]:
    return {"rule": ref(grant.rule), "summary": grant_text(grant), "plaintext": grant.plaintext,
            "source": source_record(grant.source)["kind"], "except": [ref(d) for d in grant.excepts],
            "resources": [list(r) for r in grant.resources]}
