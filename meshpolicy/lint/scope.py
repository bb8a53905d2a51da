"""Scope rules: groups never used (ML006) and destinations that cover a whole namespace (ML007)."""

from __future__ import annotations

from collections.abc import Iterator

from ..parse import ast
from .context import Context, Scoped
from .registry import Finding, rule


@rule("ML006", "unused-group")
def unused_group(ctx: Context) -> Iterator[Finding]:
    """The resolver finds unused groups (MP105, scoping and nesting included); lint reports them as ML006."""
    for diag in ctx.warnings:
        if diag.code == "MP105":
            yield Finding(diag.message, diag.span, diag.hint, diag.related)


@rule("ML007", "namespace-wide-destination")
def namespace_wide_destination(ctx: Context) -> Iterator[Finding]:
    """``*`` and ``NS/*`` as destinations grant access to services declared later, without review of this rule."""
    for scoped in ctx.nodes(ast.Rule):
        node = scoped.node
        if node.action != "allow":
            continue
        for ref in node.destinations:
            for member in ctx.expand(scoped.namespace, ref):
                if member.kind is ast.RefKind.STAR:
                    whole = "every service of the policy" if scoped.top_level else \
                        f"every service of namespace '{scoped.namespace}'"
                elif member.kind is ast.RefKind.NAME and member.value.endswith("/*"):
                    whole = f"every service of namespace '{member.value[:-2]}'"
                elif member.kind is ast.RefKind.WIDE:
                    yield _every_workload(scoped, ref, member)
                    break
                else:
                    continue
                via = "" if member is ref else f" (through group '{ref.value}')"
                yield Finding(
                    f"destination '{member.value}'{via} grants this access to {whole}, "
                    "including services declared later",
                    ref.span, "name the services, or a group of them, so that a new service gets no access "
                    "until a rule names it")
                break



def _every_workload(scoped: Scoped[ast.Rule], ref: ast.Ref, member: ast.Ref) -> Finding:
    """``**`` and ``NS/**``: every workload of a namespace, declared or not, deployed now or later."""
    if member.value != "**":
        whole = f"namespace '{member.value[:-3]}'"
    else:
        whole = "every managed namespace" if scoped.top_level and member is ref else f"namespace '{scoped.namespace}'"
    via = "" if member is ref else f" (through group '{ref.value}')"
    return Finding(f"destination '{member.value}'{via} grants this access to every workload of {whole}, declared "
                   "or not, including workloads deployed later", ref.span,
                   "that is what '**' is for (metrics scrapers, mesh-wide health checks); for anything else name the "
                   "services, so that a new workload gets no access until a rule names it")
