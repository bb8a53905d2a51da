"""mTLS rules: permissive mode anywhere (ML001), ``any`` where mTLS is strict (ML002)."""

from __future__ import annotations

from collections.abc import Iterator

from ..graph.model import AccessGraph, Mtls, Rule, Service, SourceKind
from ..parse import ast
from .context import Context, Scoped
from .registry import Finding, rule


def _scope(scoped: Scoped, mode: ast.Mtls) -> str:
    """Where a permissive mode applies, in words."""
    node = scoped.node
    if isinstance(node, ast.Service):
        ports = ", ".join(p.value for p in mode.ports)
        return f"on port {ports} of service '{node.name.value}'" if ports else f"for service '{node.name.value}'"
    return "for the whole mesh" if scoped.top_level else f"for namespace '{scoped.namespace}'"


@rule("ML001", "permissive-mtls")
def permissive_mtls(ctx: Context) -> Iterator[Finding]:
    """Permissive mode accepts plaintext: nothing proves who such a caller is, and nothing encrypts it."""
    for scoped in ctx.statements:
        node = scoped.node
        if isinstance(node, ast.Mtls):
            modes = [node]
        elif isinstance(node, ast.Service):
            modes = [a for a in node.attrs if isinstance(a, ast.Mtls)]
        else:
            continue
        for mode in modes:
            if mode.mode.value == Mtls.PERMISSIVE.value:
                yield Finding(
                    f"mTLS is permissive {_scope(scoped, mode)}: plaintext requests are accepted, unencrypted "
                    "and with no identity",
                    mode.span,
                    "use 'mtls strict' once every client runs in the mesh; while migrating, keep permissive "
                    "on as few ports as possible ('mtls permissive on PORT')")


@rule("ML002", "any-on-strict")
def any_on_strict(ctx: Context) -> Iterator[Finding]:
    """``any`` differs from ``*`` only for plaintext callers, whom strict mTLS refuses first."""
    graph = ctx.graph
    for scoped in ctx.nodes(ast.Rule):
        node = scoped.node
        rules = ctx.graph_rules.get(node.span, [])
        if not rules or not any(s.kind is SourceKind.ANY for s in rules[0].sources):
            continue
        if not all(_wide_strict(graph, r) if r.wide else _strict(graph, ctx.service(r.destination), r)
                   for r in rules):
            continue
        direct = [ref for ref in node.sources if ref.kind is ast.RefKind.ANY]
        yield Finding(
            "'any' also names unauthenticated clients, but every port this rule covers has strict mTLS, "
            "which refuses them first: here 'any' means the same as '*'",
            direct[0].span if direct else node.span,
            "write '*' (any authenticated workload), or make the port permissive if plaintext clients "
            "must really get in")


def _wide_strict(graph: AccessGraph, r: Rule) -> bool:
    """Whether every port a ``NS/**`` rule covers has strict mTLS on every workload of its namespace, declared or
    not (no ports: any port, so every port mode of the namespace's services too)."""
    namespace = r.destination[0]
    if graph.namespace_mtls(namespace) is not Mtls.STRICT:
        return False
    for svc in graph.services_in(namespace):
        ports = list(r.ports) or [n for n, _ in svc.port_mtls]
        if graph.service_mtls(svc) is not Mtls.STRICT or any(
                graph.mtls_for(svc, namespace, p) is not Mtls.STRICT for p in ports):
            return False
    return True


def _strict(graph: AccessGraph, svc: Service, r: Rule) -> bool:
    """Whether every port the rule covers on its destination ``svc`` has strict mTLS."""
    if not r.ports and not svc.ports:  # a service without ports: the rule covers any port, at its mode
        return graph.service_mtls(svc) is Mtls.STRICT
    return all(graph.mtls_for(svc, svc.namespace, p) is Mtls.STRICT for p in r.ports or [p.number for p in svc.ports])
