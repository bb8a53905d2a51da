"""Translation validation: read the emitted manifests back with the target's semantics and compare.

For every request of the policy's finite request space (:mod:`.graph.space`),
the target's independent reader (:mod:`.readers`) decides the request from
the emitted YAML alone, and the reference decider (:mod:`.graph.evaluate`)
decides it from the access graph. Every disagreement is a
:class:`Counterexample`: a concrete request, what the source says, what the
output does, and the rule(s) responsible. The reader also names what its
manifests distinguish for each workload (``mentions``), so that a value only
the output names (a hand-added principal, say) is part of the space too.

Manifests a reader cannot evaluate exactly fail closed: verification raises
:class:`MeshError` with an MP501 diagnostic instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .diagnostics import Diagnostic, MeshError, Related, Severity
from .graph.evaluate import Decider, Decision, Request, mtls_origin, nearest_allow
from .graph.model import AccessGraph, Rule
from .graph.space import requests
from .output.writer import KUSTOMIZATION
from .readers import World, get_reader, reader_errors

#: kinds of disagreement printed in full; the rest are counted
SHOWN = 20
#: libyaml's safe loader when PyYAML was built with it (same documents, several times faster)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Counterexample:
    request: Request
    expected: Decision
    emitted: bool                   # what the manifests do: True = allowed
    rules: tuple[Rule, ...] = ()    # the deciding rules, or for a wrongly allowed request the nearest allow rule
    why: tuple[str, ...] = ()       # for a nearest rule: the conditions it fails

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": str(self.request),
            "expected": "allowed" if self.expected.allowed else "refused",
            "reason": self.expected.reason,
            "emitted": "allowed" if self.emitted else "refused",
            "rules": [str(r) for r in self.rules],
        }


def documents(files: dict[str, str]) -> list[dict[str, Any]]:
    """The YAML documents of an output folder's files (the kustomization left out)."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if path == KUSTOMIZATION:
            continue
        try:
            loaded = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
        except yaml.YAMLError as exc:
            raise MeshError([_unverifiable(f"{path} is not valid YAML ({exc.__class__.__name__})", None)]) from None
        for doc in loaded:
            if not isinstance(doc, dict):
                raise MeshError([_unverifiable(f"{path} holds a document that is not a mapping", None)])
            docs.append(doc)
    return docs


def verify(graph: AccessGraph, files: dict[str, str], target: str,
           open_probes: frozenset[tuple[str, str, int]] = frozenset(), mode: str = "enforce") -> list[Counterexample]:
    """Every request of the space on which ``files`` (emitted for ``target``) and the source disagree.

    ``mode="audit"`` reads dry-run policies as if they were enforced (LANGUAGE §5).
    Raises :class:`MeshError` (MP501) when the reader cannot evaluate the manifests.
    """
    docs = documents(files)
    options = {"dry_run_enforced": True} if mode == "audit" else {}
    unreadable = reader_errors(target) + (KeyError, TypeError, ValueError, AttributeError)
    found: list[Counterexample] = []
    try:
        reader = get_reader(target)(docs, World.from_graph(graph), **options)
        decider = Decider(graph, open_probes)
        for req in requests(graph, getattr(reader, "mentions", None)):
            expected = decider.decide(req)
            emitted = reader.decide(req)
            if emitted != expected.allowed:
                found.append(_counterexample(graph, req, expected, emitted))
    except unreadable as exc:
        raise MeshError([_unverifiable(f"the {target} reader cannot evaluate the manifests: "
                                       f"{exc.__class__.__name__}: {exc}", target)]) from None
    return found


def _counterexample(graph: AccessGraph, req: Request, expected: Decision, emitted: bool) -> Counterexample:
    if expected.rules or expected.allowed:
        return Counterexample(req, expected, emitted, expected.rules)
    near = nearest_allow(graph, req) if expected.reason == "default" else None
    if near is None:
        return Counterexample(req, expected, emitted)
    return Counterexample(req, expected, emitted, (near[0],), tuple(near[1]))


def _unverifiable(message: str, target: str | None) -> Diagnostic:
    return Diagnostic("MP501", Severity.ERROR, message, None,
                      "meshpolicy refuses output it cannot prove equal to the source; rebuild it "
                      + (f"with 'meshpolicy build --target {target}'" if target else "")
                      + " or remove the construct the reader does not model")


def diagnostics(found: list[Counterexample], graph: AccessGraph, target: str, shown: int = SHOWN) -> list[Diagnostic]:
    """One MP501 error per kind of disagreement (same rules, same decisions), the first ``shown`` of them.

    Each names its first concrete request and how many more requests disagree the same way.
    """
    groups: dict[tuple, list[Counterexample]] = {}
    for c in found:
        key = (c.rules, c.why, c.expected.allowed, c.expected.reason, c.emitted, c.request.namespace,
               c.request.service)
        groups.setdefault(key, []).append(c)
    out = [_diagnostic(group[0], len(group) - 1, graph, target) for group in list(groups.values())[:shown]]
    if len(groups) > shown:
        rest = sum(len(g) for g in list(groups.values())[shown:])
        out.append(Diagnostic("MP501", Severity.ERROR,
                              f"... and {rest} more requests on which the emitted {target} policy differs "
                              "from the source"))
    return out


def _diagnostic(c: Counterexample, similar: int, graph: AccessGraph, target: str) -> Diagnostic:
    emitted = "allows" if c.emitted else "refuses"
    expected = "allowed" if c.expected.allowed else "refused"
    message = f"the emitted {target} policy {emitted} {c.request}, which the source says is {expected}"
    if similar:
        message += f" (and {similar} more request{'s' if similar > 1 else ''} like it)"
    span = c.rules[0].origin if c.rules else None
    related = tuple(Related(r.origin, f"also deciding: {r.text}") for r in c.rules[1:])
    reason = c.expected.reason
    if reason == "mtls":
        span = mtls_origin(graph, c.request.namespace, c.request.service, c.request.port)
        hint = "the port is mTLS strict and the caller is plaintext" + ("" if span else " (strict is the default)")
    elif reason == "deny":
        hint = f"refused by the deny rule: {c.rules[0].text}"
    elif reason == "allow":
        hint = f"allowed by: {c.rules[0].text}"
    elif reason == "probe":
        hint = f"a kubelet probe path that {target} keeps open (LANGUAGE §3.5)"
    elif c.rules:
        hint = f"no allow rule matches; the nearest, {c.rules[0].text!r}, fails on {'; '.join(c.why)}"
    else:
        ns = graph.namespace(c.request.namespace)
        span = ns.origins[0] if ns is not None and ns.origins else None
        hint = "no allow rule covers this request: the namespace's default deny refuses it"
    return Diagnostic("MP501", Severity.ERROR, message, span, hint, related)
