"""Allow rules that grant nothing of their own: redundant (ML004) or dead (ML005).

Both are decided exactly on the request space (graph/space.py): one request
per class of requests that the policy can tell apart. An allow rule *grants*
a request when it matches it and the request is allowed (no deny rule
matches, and strict mTLS does not refuse it first).

- dead: the rule matches requests but grants none of them;
- redundant: every request it grants is also granted by another allow rule
  that is not itself reported. Rules are tried from the last line up, so
  that of two rules that cover each other the later one is reported, and
  removing every reported rule leaves the access exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..diagnostics import Related
from ..graph.evaluate import decide, rule_matches
from ..graph.model import AccessGraph, Action, Rule
from ..graph.space import requests
from ..source import Span
from .context import Context
from .registry import Finding, rule

_RELATED_MAX = 3


@dataclass
class _Usage:
    matched: int = 0
    granted: list[frozenset[Span]] = field(default_factory=list)  # per granted request: every granting line
    refused_by: set[Rule] = field(default_factory=set)             # deny rules that refused its requests
    refused_by_mtls: bool = False


def _usage(ctx: Context) -> dict[Span, _Usage]:
    """For each allow rule line: what it matched and what it granted (computed once per lint run)."""
    if "coverage" not in ctx.memo:
        ctx.memo["coverage"] = _compute(ctx.graph)
    return ctx.memo["coverage"]


def _compute(graph: AccessGraph) -> dict[Span, _Usage]:
    usage: dict[Span, _Usage] = {}
    for req in requests(graph):  # undeclared workloads too, which NS/** rules reach
        allows = [r for r in graph.rules_covering(req.namespace, req.service, Action.ALLOW) if rule_matches(r, req)]
        if not allows:
            continue
        decision = decide(graph, req)
        lines = frozenset(r.origin for r in allows)
        for line in lines:
            use = usage.setdefault(line, _Usage())
            use.matched += 1
            if decision.allowed:
                use.granted.append(lines)
            elif decision.reason == "mtls":
                use.refused_by_mtls = True
            else:
                use.refused_by.update(decision.rules)
    return usage


def _text(ctx: Context, line: Span) -> str:
    return ctx.graph_rules[line][0].text


@rule("ML005", "dead-allow")
def dead_allow(ctx: Context) -> Iterator[Finding]:
    for line, use in sorted(_usage(ctx).items()):
        if use.granted:
            continue
        why = []
        if use.refused_by:
            why.append("deny rules")
        if use.refused_by_mtls:
            why.append("strict mTLS (plaintext callers)")
        related = tuple(Related(d.origin, f"refused by: {d.text}")
                        for d in sorted(use.refused_by, key=lambda d: d.origin))
        yield Finding(f"this allow rule grants nothing: every request it matches is refused by {' and '.join(why)}",
                      line, "remove it, or narrow the deny rule if this access is wanted",
                      tuple(dict.fromkeys(related))[:_RELATED_MAX])


@rule("ML004", "redundant-allow")
def redundant_allow(ctx: Context) -> Iterator[Finding]:
    usage = _usage(ctx)
    pool = {line for line, use in usage.items() if use.granted}
    found: list[tuple[Span, set[Span]]] = []
    for line in sorted(pool, reverse=True):
        others = pool - {line}
        covering: set[Span] = set()
        for granting in usage[line].granted:
            by = granting & others
            if not by:
                break
            covering.add(min(by))
        else:
            pool.remove(line)
            found.append((line, covering))
    for line, covering in sorted(found):
        related = tuple(Related(c, f"also granted by: {_text(ctx, c)}") for c in sorted(covering))
        yield Finding("this allow rule is redundant: every request it grants is granted by other allow rules",
                      line, "remove it, or narrow the other rules if this one says what you mean",
                      related[:_RELATED_MAX])
