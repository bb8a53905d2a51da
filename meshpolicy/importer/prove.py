"""The proof of an import: the ``.mesh`` it writes, compiled for the same target, must decide like the original.

The draft is rendered, parsed, resolved and built exactly as ``meshpolicy build`` would (the
build verifies its own output against the reference decider). Then the target's reader decides
every request of the request space (:mod:`meshpolicy.graph.space`, over the imported policy,
with everything either set of manifests mentions) twice: on the original manifests (as narrowed
by the translator) and on the compiled ones, in one world of pods (the imported services).

- A request the compiled policy allows and the original refuses would make the import wider:
  the allow rules that grant it (the reference decider names them, and the build proved the
  compiled manifests equal to it) are dropped, with MP803, and the proof runs again. A wider
  request no allow rule explains stops the import (MP806): it never writes a wider policy.
- A request the original allows and the compiled policy refuses is a narrowing: MP802 names
  each destination and port where one happens, with an example.
- A rule the build refuses (a construct the target cannot express) is dropped the same way; a
  refused deny rule takes every allow rule of its destination with it, so that nothing widens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..diagnostics import Diagnostic, MeshError, Severity, shown
from ..graph.evaluate import Decider, Reason, Request
from ..graph.space import Mentions, Universe, destinations, requests_to
from ..readers import ReaderError, World, get_reader
from ..source import SourceFile
from .draft import Draft, Rule

#: at most this many rounds of dropping rules (each drops at least one)
MAX_ROUNDS = 200


@dataclass
class Proof:
    text: str                              # the .mesh text that was proved (before fmt)
    name: str
    compared: int = 0                      # requests decided on both sides
    narrower: list[Request] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)   # the compiled manifests


class ImportFailed(MeshError):
    """The import cannot be written without widening, or the compiled policy cannot be read back (MP806)."""


def _merge(a: Mentions, b: Mentions) -> Mentions:
    """Everything either reader mentions, field by field (a ``None`` conjunction set: any combination)."""
    merged: dict[str, Any] = {}
    for f in fields(Mentions):
        x, y = getattr(a, f.name), getattr(b, f.name)
        merged[f.name] = None if x is None or y is None else x | y
    return Mentions(**merged)


def prove(out: Draft, original: list[dict[str, Any]], target: str, header: list[str], name: str,
          original_options: dict[str, Any] | None = None, build_options: dict[str, Any] | None = None) -> Proof:
    from .. import pipeline, verify

    for _ in range(MAX_ROUNDS):
        text, at = out.render(header)
        src = SourceFile(name, text)
        try:
            analysis = pipeline.analyze([src])
            build = pipeline.lower(analysis, target, **(build_options or {}))
        except MeshError as exc:
            if not _drop_refused(out, exc, at, name, text):
                raise ImportFailed([Diagnostic("MP806", Severity.ERROR, "the imported policy does not build: "
                                               + shown(d.message), None, d.hint) for d in exc.diagnostics
                                    if d.severity is Severity.ERROR] or [_failed("the imported policy does not build")]
                                   ) from None
            continue
        graph = analysis.graph
        world = World.from_graph(graph)
        reader = get_reader(target)
        try:
            before = reader(original, world, **(original_options or {}))
            after = reader(verify.documents(build.files), world, **build.reader_options)
        except ReaderError as exc:
            raise ImportFailed([_failed(f"the {target} reader cannot evaluate the manifests: {exc}")]) from None
        decider = Decider(graph, build.open_probes)
        universe = Universe(graph)
        proof = Proof(text, name, files=build.files)
        wider: list[Request] = []

        def mentions(namespace: str, service: str | None, before: Any = before, after: Any = after) -> Mentions:
            return _merge(before.mentions(namespace, service), after.mentions(namespace, service))

        try:
            for destination in destinations(graph):
                for req in requests_to(graph, destination, universe, mentions):
                    was, now = before.decide(req), after.decide(req)
                    proof.compared += 1
                    if now and not was:
                        wider.append(req)
                    elif was and not now:
                        proof.narrower.append(req)
        except ReaderError as exc:
            raise ImportFailed([_failed(f"the {target} reader cannot decide on the manifests: {exc}")]) from None
        if not wider:
            proof.diagnostics = _narrowings(proof.narrower, out)
            return proof
        by_line = {rule.origin.line: rule for rule in graph.rules}
        culprits: dict[int, Request] = {}
        for req in wider:
            decision = decider.decide(req)
            if decision.reason is Reason.ALLOW:
                for rule in decision.rules:
                    culprits.setdefault(rule.origin.line, req)
        dropped = [(at[line], req) for line, req in culprits.items() if line in at and line in by_line]
        if not dropped:
            raise ImportFailed([_failed(f"the imported policy would allow {wider[0]}, which the original refuses, "
                                        "and no rule of it can be left out to prevent that")])
        for victim, req in dropped:
            victim.dropped = "it would allow more than the original"
            out.diagnostics.append(Diagnostic(
                "MP803", Severity.WARNING, shown(f"{victim.resource}: a rule is not imported, as it would allow "
                                                 f"{req}, which the original refuses"),
                victim.origin, "the original says something the language cannot write exactly; see docs/import.md"))
    raise ImportFailed([_failed(f"no proof after {MAX_ROUNDS} rounds")])


def _failed(message: str) -> Diagnostic:
    return Diagnostic("MP806", Severity.ERROR, shown(message), None,
                      "nothing was written: an import never writes a policy wider than the original")


def _drop_refused(out: Draft, exc: MeshError, at: dict[int, Rule], name: str, text: str) -> bool:
    """Drop the rules the build refuses; True when at least one was dropped."""
    dropped = False
    for diag in exc.diagnostics:
        if diag.severity is not Severity.ERROR or diag.span is None or diag.span.file != name:
            continue
        rule = at.get(diag.span.line)
        if rule is None or rule.dropped:
            continue
        rule.dropped = f"{diag.code}: {diag.message}"
        victims = [rule]
        if rule.action == "deny":  # leaving out a deny widens: leave out what it restricts too
            victims += [r for r in out.rules if r.action == "allow" and not r.dropped
                        and (r.namespace, r.service) == (rule.namespace, rule.service)]
        for victim in victims:
            victim.dropped = victim.dropped or f"the deny rule it depends on cannot be built ({diag.code})"
            out.diagnostics.append(Diagnostic("MP803", Severity.WARNING,
                                              shown(f"{victim.resource}: a rule is not imported: {victim.dropped}"),
                                              victim.origin, diag.hint))
        dropped = True
    return dropped


def _narrowings(narrower: list[Request], out: Draft) -> list[Diagnostic]:
    """MP802: one per destination and port where the import refuses what the original allows, with why."""
    groups: dict[tuple[str, str | None, int], list[Request]] = {}
    for req in narrower:
        groups.setdefault((req.namespace, req.service, req.port), []).append(req)
    diags = []
    for (ns, name, port), reqs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        svc = out.services.get((ns, name)) if name is not None else None
        where = f"{ns}/{name or '(workloads it does not declare)'}:{port}"
        more = f" (and {len(reqs) - 1} more like it)" if len(reqs) > 1 else ""
        if svc is None or svc.caller_only:
            hint = ("a workload that no policy selects: " + ("Istio allows every request to it" if out.target == "istio"
                    else "Linkerd applies the namespace's default inbound policy") + ", and the language's default "
                    "deny covers every workload of a managed namespace")
        elif port not in svc.ports and svc.described:
            hint = "a port no container of the workload exposes (--cluster): no request reaches it"
        elif port not in svc.ports:
            hint = ("a port the manifests never name: a rule without ports covers the ports the service declares; "
                    "give --cluster the workloads' manifests to declare theirs")
        else:
            hint = "the MP801 and MP803 diagnostics say what could not be written exactly"
        span = (svc.origin if svc is not None else None) or next(
            (r.origin for r in out.rules if r.namespace == ns), None)
        diags.append(Diagnostic("MP802", Severity.WARNING, shown(f"the imported policy refuses {reqs[0]}{more}, "
                                                                 f"which the original allows, on {where}"), span, hint))
    return diags
