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

import multiprocessing
import os
from dataclasses import dataclass
from typing import Any

import yaml

from .diagnostics import Diagnostic, MeshError, Related, Severity
from .graph.evaluate import Decider, Decision, Request, mtls_origin, nearest_allow
from .graph.model import AccessGraph, Rule
from .graph.space import Universe, destinations, requests_to
from .output.writer import KUSTOMIZATION
from .readers import Reader, ReaderError, World, get_reader

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
           open_probes: frozenset[tuple[str, str, int]] = frozenset(), mode: str = "enforce",
           reader_options: dict[str, Any] | None = None, workers: int | None = None) -> list[Counterexample]:
    """Every request of the space on which ``files`` (emitted for ``target``) and the source disagree.

    ``mode="audit"`` reads dry-run policies as if they were enforced (LANGUAGE §5).
    ``reader_options``: what the reader must know of the mesh's installation (``Backend.reader_options``).
    ``workers``: processes to share the destinations among (default: one per CPU for a large
    policy, where the platform can fork; the result is the same, in the same order).
    Raises :class:`MeshError` (MP501) when the reader cannot evaluate the manifests.
    """
    job = _Job(graph, documents(files), target, open_probes, mode, dict(reader_options or {}))
    dests = destinations(graph)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(dests) >= PARALLEL_FROM else 1
    workers = max(1, min(workers, len(dests)))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        results = [job.run(dests)]
    else:
        global _JOB
        _JOB = job  # a forked worker finds the job here, without pickling the documents
        size = -(-len(dests) // workers)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = pool.map(_run_share, [dests[i:i + size] for i in range(0, len(dests), size)])
        finally:
            _JOB = None
    found: list[Counterexample] = []
    for part in results:
        if isinstance(part, str):
            raise MeshError([_unverifiable(part, target)])
        found.extend(part)
    return found


#: destinations from which verify() shares the work among processes
PARALLEL_FROM = 400
_JOB: _Job | None = None


def _run_share(share: list[tuple[str, str | None]]) -> list[Counterexample] | str:
    assert _JOB is not None
    return _JOB.run(share)


@dataclass
class _Job:
    graph: AccessGraph
    docs: list[dict[str, Any]]
    target: str
    open_probes: frozenset[tuple[str, str, int]]
    mode: str
    reader_options: dict[str, Any]

    def run(self, share: list[tuple[str, str | None]]) -> list[Counterexample] | str:
        """The counterexamples among requests to ``share``, or why the reader cannot evaluate the manifests."""
        found: list[Counterexample] = []
        try:
            reader = reader_for(self.target, self.graph, self.docs, self.mode, self.reader_options)
            decider = Decider(self.graph, self.open_probes)
            universe = Universe(self.graph)
            for destination in share:
                for req in requests_to(self.graph, destination, universe, reader.mentions):
                    expected = decider.decide(req)
                    emitted = reader.decide(req)
                    if emitted != expected.allowed:
                        found.append(_counterexample(self.graph, req, expected, emitted))
        except ReaderError as exc:  # only what the reader refuses: any other exception is a bug in it
            return f"the {self.target} reader cannot evaluate the manifests: {exc.__class__.__name__}: {exc}"
        return found


def reader_for(target: str, graph: AccessGraph, docs: list[dict[str, Any]], mode: str = "enforce",
               reader_options: dict[str, Any] | None = None) -> Reader:
    """The target's reader over ``docs``; in audit mode dry-run policies count as enforced."""
    options = dict(reader_options or {})
    if mode == "audit":
        options["dry_run_enforced"] = True
    return get_reader(target)(docs, World.from_graph(graph), **options)


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
