"""The picture as JSON, with a published JSON Schema (``graph.schema.json`` beside this module).

The record is stable: keys are always present (``null`` when they do not
apply), lists are sorted, and ``version`` changes only when a meaning changes.
docs/graph.md documents every field; tests validate every record against the schema.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ..graph.model import Rule, Source
from ..source import Span
from .model import Edge, Grant, Node, View
from .text import edge_lines, grant_text, node_lines

VERSION = 1
SCHEMA_ID = "https://meshpolicy.io/schemas/graph-v1.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema of :func:`record` (shipped in the wheel)."""
    return json.loads(resources.files(__package__).joinpath("graph.schema.json").read_text(encoding="utf-8"))


def render(view: View) -> str:
    return json.dumps(record(view), indent=2, ensure_ascii=False) + "\n"


def record(view: View) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_ID,
        "version": VERSION,
        "trust_domain": view.trust_domain,
        "mtls": view.mesh_mtls.value,
        "target": view.target,
        "focus": {"namespaces": list(view.focus.get("namespaces", ())),
                  "services": list(view.focus.get("services", ()))},
        "namespaces": [{"name": ns.name, "external": ns.external, "declared": ns.declared,
                        "mtls": ns.mtls.value if ns.mtls else None} for ns in view.namespaces],
        "nodes": [_node(n) for n in view.nodes],
        "edges": [_edge(e) for e in view.edges],
    }


def _span(span: Span | None) -> dict[str, Any] | None:
    return None if span is None else {"file": span.file, "line": span.line, "column": span.col}


def rule_record(rule: Rule) -> dict[str, Any]:
    return {"file": rule.origin.file, "line": rule.origin.line, "column": rule.origin.col,
            "action": rule.action.value, "text": rule.text}


def source_record(source: Source) -> dict[str, Any]:
    return {"kind": source.kind.value, "namespace": source.namespace or None, "account": source.account or None,
            "cidr": source.cidr or None}


def _node(node: Node) -> dict[str, Any]:
    return {
        "id": node.id, "kind": node.kind, "label": node.label, "lines": node_lines(node),
        "namespace": node.namespace or None, "name": node.name or None, "account": node.account or None,
        "cidr": node.cidr or None, "mtls": node.mtls.value if node.mtls else None,
        "ports": [{"number": p.number, "protocol": p.protocol, "mtls": p.mtls or None} for p in node.ports],
        "probes": list(node.probes), "source": _span(node.origin),
    }


def _conditions(rule: Rule) -> dict[str, Any]:
    return {
        "ports": list(rule.ports) or None,
        "methods": list(rule.methods),
        "paths": [{"kind": p.kind, "value": p.value} for p in rule.paths],
        "grpc": [{"service": g.service, "method": g.method or None} for g in rule.grpc],
        "if": [{"kind": c.kind.value, "name": c.name, "value": c.value} for c in rule.conditions],
    }


def _grant(grant: Grant) -> dict[str, Any]:
    return {
        "rule": rule_record(grant.rule),
        "source": source_record(grant.source),
        **_conditions(grant.rule),
        "plaintext": grant.plaintext,
        "except": [{"rule": rule_record(d), "sources": [source_record(s) for s in d.sources], **_conditions(d)}
                   for d in grant.excepts],
        "resources": [{"kind": k, "namespace": ns, "name": n} for k, ns, n in grant.resources],
        "summary": grant_text(grant),
    }


def _edge(edge: Edge) -> dict[str, Any]:
    return {
        "id": edge.id, "from": edge.source, "to": edge.target, "plaintext": edge.plaintext,
        "label": edge_lines(edge),
        "grants": [_grant(g) for g in edge.grants],
        "invariants": [rule_record(r) for r in edge.invariants],
    }
