"""Syntax trees -> access graph: scoping, defaults, references and every check of LANGUAGE §2.

Three passes over one set of tables (:mod:`.base`), each a visitor with one method per syntax node:

1. :mod:`.declarations`: every statement into the tables (names, duplicates, namespaces);
2. :mod:`.services`: each service from its attributes, and disjoint selectors;
3. :mod:`.rules`: each rule, with its references resolved by :mod:`.references`.

All errors of the stage are collected and raised together as one
:class:`~meshpolicy.diagnostics.MeshError`; warnings are returned with the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..diagnostics import Collector, Diagnostic
from ..graph.model import DEFAULT_TRUST_DOMAIN, AccessGraph, Action, Mtls, Namespace
from ..parse import ast
from .base import PortNames, Tables
from .declarations import Declarations
from .references import References
from .rules import Rules
from .services import Services

__all__ = ["Resolved", "resolve"]


@dataclass
class Resolved:
    graph: AccessGraph
    warnings: list[Diagnostic]


def resolve(files: list[ast.File], selectors_by_pods: bool = False, port_names: PortNames | None = None) -> Resolved:
    """``selectors_by_pods``: leave overlapping selectors (MP118) to the manifests of ``--cluster``;
    ``port_names``: what a container port name in a rule (``:http``) stands for, from those manifests."""
    tables, diag = Tables(port_names=port_names), Collector()
    Declarations(tables, diag).files(files)
    Services(tables, diag).services(selectors_by_pods)
    rules = Rules(tables, diag).rules()
    References(tables, diag).report_unused_groups()
    diag.raise_if_errors()
    graph = AccessGraph(
        trust_domain=tables.trust_domain[0] if tables.trust_domain else DEFAULT_TRUST_DOMAIN,
        trust_domain_origin=tables.trust_domain[1] if tables.trust_domain else None,
        mesh_mtls=tables.mesh_mtls[0] if tables.mesh_mtls else Mtls.STRICT,
        mesh_mtls_origin=tables.mesh_mtls[1] if tables.mesh_mtls else None,
        namespaces=tuple(sorted(
            Namespace(n.name, n.external, n.mtls, n.mtls_span, tuple(sorted(n.origins)), wide=n.wide is not None)
            for n in tables.namespaces.values())),
        services=tuple(sorted(tables.services.values())),
        rules=tuple(sorted(r for r in rules if r.action is not Action.NEVER)),
        invariants=tuple(sorted(r for r in rules if r.action is Action.NEVER)),
        issuers=tuple(sorted(issuer for issuer, _ in tables.issuers.values())),
        authority=tables.authority[1] if tables.authority else None,
    )
    return Resolved(graph, diag.warnings())
