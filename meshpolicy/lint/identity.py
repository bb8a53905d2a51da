"""Identity rules: services no rule names (ML003), shared accounts (ML008), caller-only namespaces (ML009)."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Related
from ..graph.model import Action, Identity, SourceKind
from .context import Context
from .registry import Finding, rule


def _named_identities(ctx: Context) -> set[Identity]:
    return {Identity(s.namespace, s.account) for r in ctx.graph.rules + ctx.graph.invariants
            for s in r.sources if s.kind is SourceKind.IDENTITY}


@rule("ML003", "unnamed-service")
def unnamed_service(ctx: Context) -> Iterator[Finding]:
    """A declared service has an identity; one that no rule names has no authorization either way."""
    destinations = {r.destination for r in ctx.graph.rules + ctx.graph.invariants}
    callers = _named_identities(ctx)
    for svc in ctx.graph.services:
        if svc.key in destinations or svc.identity in callers:
            continue
        external = ctx.graph.namespace(svc.namespace).external
        effect = "it is declared as a caller, but calls nothing" if external else \
            "the default deny refuses every request to it, and it is allowed to call nothing by name"
        yield Finding(f"no rule names service '{svc}': {effect}", ctx.service_span(svc.key) or svc.origins[0],
                      "add the rules it needs, or remove the declaration")


@rule("ML008", "shared-account")
def shared_account(ctx: Context) -> Iterator[Finding]:
    """Rules tell callers apart by account: services sharing one are one caller."""
    by_identity: dict[Identity, list] = {}
    for svc in ctx.graph.services:
        by_identity.setdefault(svc.identity, []).append(svc)
    for identity, services in sorted(by_identity.items()):
        if len(services) < 2:
            continue
        services.sort(key=lambda s: s.origins[0])
        first = services[0]
        for svc in services[1:]:
            yield Finding(
                f"services '{first}' and '{svc}' share the account '{identity}': callers cannot tell them "
                "apart, so a rule that names one as a source also admits the other",
                ctx.service_span(svc.key) or svc.origins[0],
                f"give '{svc.name}' its own account (account {svc.name})",
                (Related(ctx.service_span(first.key) or first.origins[0], f"'{first}' is declared here"),))


@rule("ML009", "caller-only-namespace")
def caller_only_namespace(ctx: Context) -> Iterator[Finding]:
    """A namespace that only calls gets the default deny like any other, unless it is external."""
    graph = ctx.graph
    destinations = {r.destination for r in graph.rules if r.action is Action.ALLOW}
    callers = _named_identities(ctx)
    wildcards = {s.namespace for r in graph.rules + graph.invariants for s in r.sources
                 if s.kind is SourceKind.NAMESPACE}
    for ns in graph.managed_namespaces:
        services = graph.services_in(ns.name)
        if any(s.key in destinations for s in services):
            continue
        if ns.name not in wildcards and not any(s.identity in callers for s in services):
            continue  # named nowhere: ML003 reports each service
        yield Finding(
            f"every service of namespace '{ns.name}' only calls: nothing may call them, and the policy "
            "emits a default deny for the namespace",
            ns.origins[0] if ns.origins else None,
            f"declare it 'namespace {ns.name} external {{' if the policy should only name its services "
            "as callers")
