"""``never`` rules: invariants checked on the access graph, over the whole request space."""

from __future__ import annotations

from ..diagnostics import Diagnostic, Related, Severity
from .evaluate import Decider, Request, rule_matches
from .model import AccessGraph, Rule
from .space import Universe, destinations, requests_to


def violations(graph: AccessGraph) -> dict[Rule, tuple[Request, set[Rule]]]:
    """For each violated ``never`` rule: one allowed request it forbids, and every allow rule that grants one."""
    found: dict[Rule, tuple[Request, set[Rule]]] = {}
    if not graph.invariants:
        return found
    decider = Decider(graph)
    universe = Universe(graph)
    for destination in destinations(graph):
        invariants = [inv for inv in graph.invariants if inv.covers(*destination)]
        if not invariants:
            continue
        for req in requests_to(graph, destination, universe):
            matching = [inv for inv in invariants if rule_matches(inv, req)]
            if not matching:
                continue
            decision = decider.decide(req)
            if not decision.allowed:
                continue
            for inv in matching:
                found.setdefault(inv, (req, set()))[1].update(decision.rules)  # the first request is the example
    return found


def check(graph: AccessGraph) -> list[Diagnostic]:
    out = []
    for inv, (example, granting) in sorted(violations(graph).items(), key=lambda kv: kv[0].origin):
        related = tuple(Related(r.origin, f"allowed by: {r.text}") for r in sorted(granting, key=lambda r: r.origin))
        out.append(Diagnostic(
            "MP201", Severity.ERROR,
            f"never rule violated: the policy allows {example}",
            inv.origin,
            "narrow the allow rule(s) below, or add a deny rule for what must never happen",
            tuple(dict.fromkeys(related)),
        ))
    return out
