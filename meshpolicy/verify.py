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
:class:`MeshError` with an MP501 diagnostic instead of guessing. So does a
``kustomization.yaml`` that would make GitOps apply anything else than the
manifests verified (:func:`check_kustomization`): what is proven is what
``kubectl kustomize OUT`` builds.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic, MeshError, Related, Severity
from .graph.evaluate import (
    Caller,
    Decider,
    Decision,
    OpenProbes,
    Reason,
    Request,
    Seen,
    mtls_origin,
    nearest_allow,
)
from .graph.model import AccessGraph, Identity, Mode, Rule
from .graph.space import Universe, WorkloadSpace, destinations, space_to
from .output import folder
from .output.folder import KUSTOMIZATION, Folder
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


class _UniqueKeys(_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader, refusing a mapping that holds one key twice.

    PyYAML keeps the last value of a repeated key; kubectl and kustomize refuse the
    document or read it otherwise, so what was verified would not be what is applied.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _load(path: str, text: str) -> list[Any]:
    try:
        return [d for d in yaml.load_all(text, Loader=_UniqueKeys) if d is not None]
    except yaml.constructor.ConstructorError as exc:
        if exc.problem and "appears twice" in exc.problem:
            line = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
            raise MeshError([_unverifiable(f"{path}: {exc.problem}{line}; "
                                           "kubectl reads such a document otherwise or refuses it", None)]) from None
        raise MeshError([_unverifiable(f"{path} is not valid YAML ({exc.__class__.__name__})", None)]) from None
    except yaml.YAMLError as exc:
        raise MeshError([_unverifiable(f"{path} is not valid YAML ({exc.__class__.__name__})", None)]) from None


def documents(files: dict[str, str]) -> list[dict[str, Any]]:
    """The YAML documents of an output folder's files (the kustomization left out)."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if path != KUSTOMIZATION and not folder.is_values(path):  # install values are no manifests (docs/output.md)
            docs.extend(file_documents(path, text))
    return docs


def file_documents(path: str, text: str) -> list[dict[str, Any]]:
    """The YAML documents of one file of an output folder; raises :class:`MeshError` (MP501) when they are
    not all mappings."""
    loaded = _load(path, text)
    for doc in loaded:
        if not isinstance(doc, dict):
            raise MeshError([_unverifiable(f"{path} holds a document that is not a mapping", None)])
    return loaded


#: what meshpolicy writes in ``kustomization.yaml``; ``resources`` lists the manifests (output/writer.py)
KUSTOMIZATION_FIELDS = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": None}
#: the names kustomize reads a kustomization from (it refuses a folder that holds two of them)
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_KUSTOMIZE_HINT = ("the kustomization decides what GitOps applies, and meshpolicy proves only its own: rebuild the "
                   "folder with 'meshpolicy build', and put changes of your own in an overlay that uses it as a base")


def check_kustomization(files: dict[str, str]) -> None:
    """Prove that ``kubectl kustomize`` on the folder builds exactly the manifests of ``files``, unchanged.

    That holds when ``kustomization.yaml`` carries only the fields meshpolicy writes (no patches, name
    prefixes, labels, generators, components...) and its ``resources`` are exactly the other files of
    ``files``: none left out, none added. Anything else raises :class:`MeshError` (MP501), naming it.
    """
    def refuse(message: str) -> MeshError:
        return MeshError([Diagnostic("MP501", Severity.ERROR, message, None, _KUSTOMIZE_HINT)])

    if KUSTOMIZATION not in files:
        raise refuse(f"the output has no {KUSTOMIZATION}: what GitOps applies is what 'kubectl kustomize' builds, "
                     "and without it nothing proves which manifests that is")
    beyond = folder.beyond_bounds(files[KUSTOMIZATION], limits_only=True)  # it may be anyone's: never load it unbounded
    if beyond:
        raise refuse(f"{KUSTOMIZATION}: {beyond}")
    loaded = _load(KUSTOMIZATION, files[KUSTOMIZATION])
    if len(loaded) != 1 or not isinstance(loaded[0], dict):
        raise refuse(f"{KUSTOMIZATION} is not one mapping")
    kustomization = loaded[0]
    for field, value in kustomization.items():
        if field not in KUSTOMIZATION_FIELDS:
            raise refuse(f"{KUSTOMIZATION} carries the field '{field}', which meshpolicy never writes: "
                         "'kubectl kustomize' would apply the manifests as it changes them, not as verified")
        if KUSTOMIZATION_FIELDS[field] is not None and value != KUSTOMIZATION_FIELDS[field]:
            raise refuse(f"{KUSTOMIZATION} has {field} {value!r}, not {KUSTOMIZATION_FIELDS[field]!r}")
    resources = kustomization.get("resources") or []  # meshpolicy writes an empty list as 'resources:'
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise refuse(f"{KUSTOMIZATION} has no list of resources")
    manifests = {p for p in files if p != KUSTOMIZATION and not folder.is_values(p)}
    listed: set[str] = set()
    for entry in resources:
        if entry not in manifests:
            raise refuse(f"{KUSTOMIZATION} lists '{entry}', which is not a manifest meshpolicy manages in the folder: "
                         "'kubectl kustomize' would apply it unverified")
        if entry in listed:
            raise refuse(f"{KUSTOMIZATION} lists '{entry}' twice")
        listed.add(entry)
    for path in sorted(manifests - listed):
        raise refuse(f"{KUSTOMIZATION} does not list {path}: 'kubectl kustomize' would leave it out, "
                     "and the policy verified is not the one applied")


def read_folder(out: Path | Folder) -> dict[str, str]:
    """What verification reads of an output folder: the managed manifests and the kustomization.

    The folder is read within :mod:`.output.folder`'s bounds (pass its :class:`Folder` to keep its
    notes). The kustomization is read whoever wrote it (it decides what is applied), up to
    ``MAX_KUSTOMIZATION_BYTES``; another file kustomize would read a kustomization from is refused (MP501).
    """
    current = out if isinstance(out, Folder) else folder.read(out)
    out = current.root
    files = current.manifests
    for name in KUSTOMIZATION_NAMES:
        path = out / name
        if name != KUSTOMIZATION and (path.exists() or path.is_symlink()):
            raise MeshError([Diagnostic("MP501", Severity.ERROR,
                                        f"{out} holds {name}: 'kubectl kustomize' reads the kustomization from it "
                                        f"or refuses the folder, never what meshpolicy wrote", None, _KUSTOMIZE_HINT)])
    path = out / KUSTOMIZATION
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise MeshError([Diagnostic("MP501", Severity.ERROR, f"{path} is not a regular file", None, _KUSTOMIZE_HINT)])
    if path.is_file():
        data = folder.read_at_most(path, folder.MAX_KUSTOMIZATION_BYTES)
        if data is None or len(data) > folder.MAX_KUSTOMIZATION_BYTES:
            raise MeshError([Diagnostic("MP501", Severity.ERROR, f"{path} is larger than "
                                        f"{folder.MAX_KUSTOMIZATION_BYTES >> 20} MiB or not a regular file", None,
                                        _KUSTOMIZE_HINT)])
        try:
            files[KUSTOMIZATION] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MeshError([Diagnostic("MP501", Severity.ERROR, f"{path} is not UTF-8 text", None,
                                        _KUSTOMIZE_HINT)]) from None
    return files


def verify(graph: AccessGraph, files: dict[str, str], target: str,
           open_probes: OpenProbes = frozenset(), mode: Mode = Mode.ENFORCE,
           reader_options: dict[str, Any] | None = None, workers: int | None = None,
           exhaustive: bool = False) -> list[Counterexample]:
    """Every request of the space on which ``files`` (emitted for ``target``) and the source disagree.

    ``mode=Mode.AUDIT`` reads dry-run policies as if they were enforced (LANGUAGE §5).
    ``reader_options``: what the reader must know of the mesh's installation (``Backend.reader_options``).
    ``workers``: processes to share the destinations among (default: one per CPU for a large
    policy, where the platform can fork; the result is the same, in the same order).
    ``exhaustive``: decide every request of the space one by one, the definition the default walk is tested
    against (same result, same order; docs/verify.md).
    Raises :class:`MeshError` (MP501) when the reader cannot evaluate the manifests, or when
    ``files``' kustomization would make GitOps apply anything else than them (:func:`check_kustomization`).
    """
    check_kustomization(files)
    job = _Job(graph, documents(files), target, open_probes, mode, dict(reader_options or {}), exhaustive=exhaustive)
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
    open_probes: OpenProbes
    mode: Mode
    reader_options: dict[str, Any]
    #: the names taken in the whole policy, when ``graph`` is a slice of it (cache/verification.py)
    universe: Universe | None = None

    #: decide every request of the space one by one (:meth:`_exhaustive`), instead of one caller for all those
    #: that neither side tells apart (:meth:`_pruned`); same result, same order (tests/test_verify_pruned.py)
    exhaustive: bool = False

    def run(self, share: list[tuple[str, str | None]]) -> list[Counterexample] | str:
        """The counterexamples among requests to ``share``, or why the reader cannot evaluate the manifests."""
        found: list[Counterexample] = []
        try:
            reader = reader_for(self.target, self.graph, self.docs, self.mode, self.reader_options)
            decider = Decider(self.graph, self.open_probes)
            universe = self.universe or Universe(self.graph)
            for destination in share:
                space = space_to(self.graph, destination, universe, reader.mentions)
                if self.exhaustive:
                    found.extend(self._exhaustive(space, reader, decider))
                else:
                    found.extend(self._pruned(space, reader, decider))
        except ReaderError as exc:  # only what the reader refuses: any other exception is a bug in it
            if not self.exhaustive:
                # the refusal the one-by-one walk meets first, so that the message names the same request
                return replace(self, exhaustive=True).run(share)
            return f"the {self.target} reader cannot evaluate the manifests: {exc.__class__.__name__}: {exc}"
        return found

    def _exhaustive(self, space: WorkloadSpace, reader: Reader, decider: Decider) -> Iterator[Counterexample]:
        """Every request of the space decided by both sides, in the space's order."""
        for req in space.requests():
            expected = decider.decide(req)
            emitted = reader.decide(req)
            if emitted != expected.allowed and not (expected.allowed and decider.may_refuse(req)):
                yield _counterexample(self.graph, req, expected, emitted)

    def _pruned(self, space: WorkloadSpace, reader: Reader, decider: Decider) -> list[Counterexample]:
        """The counterexamples of :meth:`_exhaustive`, in its order, deciding per operation one caller for every
        set of callers that neither side tells apart (docs/verify.md, "How the space is walked").

        Both sides say what of the caller they look at for an operation (:class:`Seen`): its address and whether
        it has an identity always, and whether its namespace or identity is one the fitting rules or records
        name. Callers alike in all of that get one decision from each side, so one of them is decided and, where
        the sides disagree, every caller it stands for is a counterexample with that decision.
        """
        callers = _Callers(space.callers)
        if not callers.plain:
            return list(self._exhaustive(space, reader, decider))
        found: list[tuple[tuple[int, int, int], Counterexample]] = []
        for p, port in enumerate(space.ports):
            for o, operation in enumerate(port.operations):
                probe = space.request(space.callers[0], port.number, operation)
                seen = Seen.together((decider.seen(probe), reader.seen(probe)))
                for rep, members in callers.classes(seen):
                    req = space.request(space.callers[rep], port.number, operation)
                    expected, emitted = decider.decide(req), reader.decide(req)
                    if emitted == expected.allowed or (expected.allowed and decider.may_refuse(req)):
                        continue
                    for c in members():
                        one = req if c == rep else space.request(space.callers[c], port.number, operation)
                        found.append(((p, c, o), _counterexample(self.graph, one, expected, emitted)))
        found.sort(key=lambda item: item[0])
        return [c for _, c in found]


class _Callers:
    """The callers of one destination, indexed by what :class:`Seen` can tell apart: by (address, identity or
    not), then by namespace, then by identity."""

    def __init__(self, callers: tuple[Caller, ...]):
        self.callers = callers
        #: every namespace and account is a plain name (no '.', '/' or '*': what the readers' Seen assume)
        self.plain = all(c.identity is None or (_PLAIN.fullmatch(c.identity.namespace) is not None
                                                and _PLAIN.fullmatch(c.identity.account) is not None)
                         for c in callers)
        #: (address, identity or not) -> namespace ('' for none) -> indexes of its callers, in order
        self.groups: dict[tuple[str, bool], dict[str, list[int]]] = {}
        self.at: dict[tuple[str, Identity], int] = {}
        for i, caller in enumerate(callers):
            ident = caller.identity
            group = self.groups.setdefault((caller.ip, ident is None), {})
            group.setdefault(ident.namespace if ident is not None else "", []).append(i)
            if ident is not None:
                self.at[(caller.ip, ident)] = i

    def classes(self, seen: Seen | None) -> Iterator[tuple[int, Callable[[], list[int]]]]:
        """One caller per class of callers ``seen`` cannot tell apart, and (called only where needed) every
        caller of its class. ``seen`` None: every caller is a class of its own."""
        if seen is None:
            for i in range(len(self.callers)):
                yield i, partial(_only, i)
            return
        for (ip, plaintext), spaces in self.groups.items():
            if plaintext:  # no identity: no namespace or identity is read
                members = spaces[""]
                yield members[0], partial(list, members)
                continue
            alone = {self.at[(ip, ident)] for ident in seen.identities if (ip, ident) in self.at}
            for one in sorted(alone):
                yield one, partial(_only, one)
            for namespace in sorted(seen.namespaces & spaces.keys()):
                first = next((i for i in spaces[namespace] if i not in alone), None)
                if first is not None:
                    yield first, partial(_without, spaces[namespace], alone)
            default = next((i for namespace, found in spaces.items() if namespace not in seen.namespaces
                            for i in found if i not in alone), None)
            if default is not None:
                yield default, partial(self._others, spaces, seen.namespaces, alone)

    @staticmethod
    def _others(spaces: dict[str, list[int]], namespaces: frozenset[str], alone: set[int]) -> list[int]:
        return [i for namespace, found in spaces.items() if namespace not in namespaces for i in found
                if i not in alone]


def _only(i: int) -> list[int]:
    return [i]


def _without(found: list[int], alone: set[int]) -> list[int]:
    return [i for i in found if i not in alone]


_PLAIN = re.compile(r"[A-Za-z0-9_-]+")


def reader_for(target: str, graph: AccessGraph, docs: list[dict[str, Any]], mode: Mode = Mode.ENFORCE,
               reader_options: dict[str, Any] | None = None) -> Reader:
    """The target's reader over ``docs``; in audit mode dry-run policies count as enforced."""
    options = dict(reader_options or {})
    if mode == Mode.AUDIT:
        options["dry_run_enforced"] = True
    return get_reader(target)(docs, World.from_graph(graph), **options)


def _counterexample(graph: AccessGraph, req: Request, expected: Decision, emitted: bool) -> Counterexample:
    if expected.rules or expected.allowed:
        return Counterexample(req, expected, emitted, expected.rules)
    near = nearest_allow(graph, req) if expected.reason is Reason.DEFAULT else None
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
    if reason is Reason.MTLS:
        span = mtls_origin(graph, c.request.namespace, c.request.service, c.request.port)
        hint = "the port is mTLS strict and the caller is plaintext" + ("" if span else " (strict is the default)")
    elif reason is Reason.DENY:
        hint = f"refused by the deny rule: {c.rules[0].text}"
    elif reason is Reason.ALLOW:
        hint = f"allowed by: {c.rules[0].text}"
    elif reason is Reason.PROBE:
        hint = f"a kubelet probe path that {target} keeps open (LANGUAGE §3.5)"
    elif c.rules:
        hint = f"no allow rule matches; the nearest, {c.rules[0].text!r}, fails on {'; '.join(c.why)}"
    else:
        ns = graph.namespace(c.request.namespace)
        span = ns.origins[0] if ns is not None and ns.origins else None
        hint = "no allow rule covers this request: the namespace's default deny refuses it"
    return Diagnostic("MP501", Severity.ERROR, message, span, hint, related)
