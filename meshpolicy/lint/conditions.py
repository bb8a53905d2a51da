"""Request-condition rules: a header is not authentication (ML030), a deny that a header alone triggers (ML031)."""

from __future__ import annotations

from collections.abc import Iterator

from ..graph.model import Action, ConditionKind, SourceKind
from ..parse import ast
from .context import Context
from .registry import Finding, rule


def _headers(node: ast.Rule) -> list[ast.Condition]:
    return [c for c in node.conditions if c.kind is ast.ConditionKind.HEADER]


@rule("ML030", "header-not-authentication")
def header_not_authentication(ctx: Context) -> Iterator[Finding]:
    """Any client chooses its headers: on an ``any`` or CIDR source, a header condition proves nothing."""
    for scoped in ctx.nodes(ast.Rule):
        node = scoped.node
        rules = ctx.graph_rules.get(node.span, [])
        if not rules or rules[0].action is not Action.ALLOW or not _headers(node):
            continue
        if any(c.kind is ConditionKind.JWT for c in rules[0].conditions):
            continue
        open_sources = [s for s in rules[0].sources if s.kind in (SourceKind.ANY, SourceKind.CIDR)]
        if not open_sources:
            continue
        header = _headers(node)[0]
        who = "any client" if any(s.kind is SourceKind.ANY for s in open_sources) else "any client in the network"
        yield Finding(
            f"a header condition is not authentication: {who} can send '{header.key.value}' with the value it "
            "needs, so this rule admits whoever knows the header",
            header.span,
            "name the callers by identity ('*', 'NS/*', a service), or require a token: if jwt ISSUER")


@rule("ML031", "deny-on-header")
def deny_on_header(ctx: Context) -> Iterator[Finding]:
    """A deny rule that only headers trigger refuses nobody who leaves the header out."""
    for scoped in ctx.nodes(ast.Rule):
        node = scoped.node
        rules = ctx.graph_rules.get(node.span, [])
        if not rules or rules[0].action is not Action.DENY or not _headers(node):
            continue
        if any(c.kind is not ConditionKind.HEADER for c in rules[0].conditions):
            continue
        yield Finding(
            "this deny rule refuses only requests that carry the header: a client that leaves it out (or changes "
            "its value) is not refused by it",
            _headers(node)[0].span,
            "deny by who calls and what is called, and allow the header's requests explicitly; a header is "
            "chosen by the client")
