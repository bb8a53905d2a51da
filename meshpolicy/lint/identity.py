"""Identity rules: services no rule names (ML003), shared accounts (ML008), caller-only namespaces (ML009),
allow rules whose caller is a shared account (ML010)."""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Related
from ..graph.model import EVERY_WORKLOAD, Action, Identity, Service, SourceKind
from ..parse import ast
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
        if svc.key in destinations or svc.identity in callers or (svc.namespace, EVERY_WORKLOAD) in destinations:
            continue  # named, or covered by its namespace's '**' rules
        external = ctx.namespace(svc.namespace).external
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


#: the account of every pod that names no service account of its own (Kubernetes creates it in each namespace)
DEFAULT_ACCOUNT = "default"


@rule("ML010", "shared-account-caller")
def shared_account_caller(ctx: Context) -> Iterator[Finding]:
    """A caller is an account, not a service: an allow rule admits every pod that runs as the caller's account.

    Reported where that account is ``default`` (every pod of the namespace without a service account of its
    own) or is shared by several declared services; once per rule and account, on the source that names it.
    """
    sharing: dict[Identity, list[Service]] = {}
    for svc in ctx.graph.services:
        sharing.setdefault(svc.identity, []).append(svc)
    for scoped in ctx.nodes(ast.Rule):
        node = scoped.node
        if node.action != "allow":
            continue
        reported: set[Identity] = set()
        for ref in node.sources:
            for member in ctx.expand(scoped.namespace, ref):
                caller = _caller(ctx, scoped.namespace, member)
                if caller is None or caller.identity in reported:
                    continue
                shared = sorted(sharing[caller.identity], key=lambda s: s.key)
                if caller.account != DEFAULT_ACCOUNT and len(shared) < 2:
                    continue
                reported.add(caller.identity)
                yield _shared_caller(ctx, caller, shared, ref, member)


def _caller(ctx: Context, scope: str, ref: ast.Ref) -> Service | None:
    """The declared service a source names (None for ``*``, ``NS/*``, ``any`` and networks)."""
    if ref.kind is not ast.RefKind.NAME or ref.value.endswith("/*"):
        return None
    ns, slash, name = ref.value.rpartition("/")
    return ctx.graph.service((ns if slash else scope, name))


def _shared_caller(ctx: Context, svc: Service, shared: list[Service], ref: ast.Ref, member: ast.Ref) -> Finding:
    via = "" if member is ref else f" (through group '{ref.value}')"
    quoted = [f"'{s}'" for s in shared]
    names = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
    others = [s for s in shared if s.key != svc.key]
    if svc.account == DEFAULT_ACCOUNT:
        message = (f"caller '{svc}'{via} runs as account '{svc.identity}', the account of every pod of namespace "
                   f"'{svc.namespace}' that names none of its own: this rule grants its access to all of them "
                   f"(declared services running as it: {names})")
        hint = (f"give '{svc.name}' an account of its own (account {svc.name}) and set serviceAccountName in its "
                "pod spec")
    else:
        message = (f"caller '{svc}'{via} runs as account '{svc.identity}', which services {names} share: this "
                   "rule grants its access to the pods of every one of them")
        hint = (f"give each service its own account (account {svc.name} for '{svc.name}', account "
                f"{others[0].name} for '{others[0].name}'), or name them in a group if they really are one "
                "caller")
    return Finding(message, ref.span, hint,
                   tuple(Related(ctx.service_span(s.key) or s.origins[0], f"'{s}' runs as '{s.identity}' too")
                         for s in others if s.origins))
