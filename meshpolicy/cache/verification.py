"""Verification with the cache: one verdict per namespace, keyed on the slice of policy and output deciding it.

Verification (:mod:`..verify`) decides every request to every destination twice, from the source and
from the emitted files. Requests to the destinations of namespace ``N`` depend on:

- the policy's *context*: everything of the access graph but its allow and deny rules (services, their
  labels, ports, probes and mTLS modes, namespaces, trust domain, mesh mTLS, ``never`` rules, spans), and
  the names the whole policy takes (:class:`~..graph.space.Universe`: the accounts and namespaces from
  which "unlisted" and "foreign" callers are made fresh);
- the rules whose destination is in ``N`` (the reference decider reads a request to a workload only
  through that workload's rules, its mTLS mode and its probes: LANGUAGE §3, graph/space.py);
- the emitted files that hold a document of ``N``, every file that holds a document of no managed
  namespace (cluster-scoped Namespaces, Istio's root namespace, which is mesh-wide: istio.md §2), and,
  transitively, the files of every namespace one of those names in a ``namespace`` field anywhere (a
  Linkerd AuthorizationPolicy may name another namespace's MeshTLSAuthentication, linkerd.md §3);
  Istio and Linkerd apply a namespaced policy only to the workloads of its own namespace (istio.md §2,
  linkerd.md §2-§4), so another managed namespace's documents decide nothing in ``N`` unless named;
- the target, the mode, the reader's options, the probe ports a target keeps open, and the code.

The key of ``N``'s verdict is the hash of exactly those, and a missing verdict is computed from exactly
those: the reader reads only the slice's files, the decider sees only ``N``'s rules, the universe is
the whole policy's. Only agreement is stored. When any slice disagrees or its files cannot be read,
the whole policy is verified again without the cache, so the errors (MP501) are those of an uncached
build, word for word. tests/test_cache.py checks the slices against whole verification on the corpus
and on the verification mutations.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import verify as verifier
from ..graph.evaluate import OpenProbes
from ..graph.model import AccessGraph, Mode
from ..graph.space import Universe, destinations
from ..output.folder import KUSTOMIZATION, is_values

if TYPE_CHECKING:
    from . import BuildCache
    from .lowering import Rendered


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What slicing needs of one emitted file: its documents' namespaces and the namespaces they name."""

    path: str
    text_hash: str
    namespaces: frozenset[str]  # of its namespaced documents
    is_global: bool             # holds a document of no managed namespace (or of none at all)
    named: frozenset[str]       # every string value of a ``namespace`` field, at any depth


def verify(cache: BuildCache, graph: AccessGraph, files: dict[str, str], target: str,
           open_probes: OpenProbes = frozenset(), mode: Mode = Mode.ENFORCE,
           reader_options: dict[str, Any] | None = None,
           parts: list[Rendered] | None = None) -> list[verifier.Counterexample]:
    """What :func:`..verify.verify` returns, reusing the verdicts of unchanged namespaces. ``parts``: the
    parts of a by-namespace lowering that gave ``files`` (:mod:`.lowering`): a part's key stands for the
    rules of its namespace in that namespace's key, and the slicing facts of its files are kept under it."""
    verifier.check_kustomization(files)
    options = dict(reader_options or {})
    managed = frozenset(ns.name for ns in graph.managed_namespaces)
    memo: dict[str, list[dict[str, Any]]] = {}
    known = _part_infos(cache, memo, parts or [], files)
    infos = [known[path] if path in known else _info(cache, memo, path, text)
             for path, text in sorted(files.items()) if path != KUSTOMIZATION and not is_values(path)]
    infos = [replace(i, is_global=i.is_global or not i.namespaces <= managed) for i in infos]
    part_keys = {part.namespace: part.key for part in parts or [] if part.namespace is not None}
    universe = Universe(graph)
    context = cache.key("verify-context", replace(graph, rules=()), sorted(universe.accounts),
                        sorted(universe.namespaces), target, str(mode), options, sorted(open_probes))
    by_namespace: dict[str, list[tuple[str, str | None]]] = {}
    for dest in destinations(graph):
        by_namespace.setdefault(dest[0], []).append(dest)
    rules: dict[str, list] = {}
    for rule in graph.rules:
        rules.setdefault(rule.destination[0], []).append(rule)
    pending: list[tuple[str, str | None, verifier._Job, list[tuple[str, str | None]]]] = []
    indexed = _Files(infos)
    for namespace, dests in by_namespace.items():
        chosen = indexed.slice(namespace)
        own = tuple(rules.get(namespace, ()))
        # the key of the namespace's lowered part holds its slice, whose rules are exactly ``own``: no need to
        # hash them again
        rules_key: Any = part_keys.get(namespace) or own
        key = None if context is None else cache.key("verify", context, rules_key,
                                                     [(i.path, i.text_hash) for i in chosen])
        if key is not None and cache.store.get("verify", key) == b"agree":
            continue
        docs = [doc for info in chosen for doc in _documents(cache, memo, info.path, files[info.path])]
        job = verifier._Job(replace(graph, rules=own), docs, target, open_probes, mode, options, universe)
        pending.append((namespace, key, job, dests))
    for (namespace, key, _, _), outcome in zip(pending, _run(pending), strict=True):
        if outcome != []:  # a disagreement, or a reader's refusal: the whole, uncached, for its exact errors
            return verifier.verify(graph, files, target, open_probes, mode, options)
        if key is not None:
            cache.store.put("verify", key, b"agree")
    return []


def _slice(namespace: str, infos: list[FileInfo]) -> list[FileInfo]:
    """The files that decide requests to ``namespace``'s workloads (module docstring), in path order."""
    return _Files(infos).slice(namespace)


class _Files:
    """The emitted files indexed by the namespaces of their documents, so that a slice costs its own files:
    a scan of every file for every namespace was quadratic (issue 12: 3.6 s of a 5,000-service rebuild)."""

    def __init__(self, infos: list[FileInfo]) -> None:
        self.infos = infos
        self.global_ = [i for i in infos if i.is_global]
        self.by_namespace: dict[str, list[FileInfo]] = {}
        for info in infos:
            for name in info.namespaces:
                self.by_namespace.setdefault(name, []).append(info)

    def slice(self, namespace: str) -> list[FileInfo]:
        """Every global file, and every file holding a document of a namespace the slice reaches: ``namespace``,
        and any namespace a chosen file holds a document of or names, transitively."""
        chosen = {i.path: i for i in self.global_}
        pending = [namespace]
        for info in self.global_:
            pending.extend(info.named | info.namespaces)
        reached: set[str] = set()
        while pending:
            name = pending.pop()
            if name in reached:
                continue
            reached.add(name)
            for info in self.by_namespace.get(name, ()):
                if info.path not in chosen:
                    chosen[info.path] = info
                    pending.extend(info.named | info.namespaces)
        return [chosen[path] for path in sorted(chosen)]


def _part_infos(cache: BuildCache, memo: dict[str, list[dict[str, Any]]], parts: list[Rendered],
                files: dict[str, str]) -> dict[str, FileInfo]:
    """The slicing facts of the files of every kept part, one entry per part (``partinfo``, under the part's
    key, of which its files are a function); a part without a key, or whose files are not those of the build,
    is left to :func:`_info`, file by file."""
    out: dict[str, FileInfo] = {}
    for part in parts:
        if part.key is None or any(files.get(path) != text for path, text in part.files):
            continue

        def compute(part: Rendered = part) -> list[tuple[str, tuple[str, ...], bool, tuple[str, ...]]]:
            return [(path, *_facts(cache, memo, path, text)) for path, text in part.files]

        for (path, text), (_, namespaces, is_global, named) in zip(
                part.files, cache.cached("partinfo", cache.key("partinfo", part.key), compute), strict=True):
            out[path] = FileInfo(path, hashlib.sha256(text.encode()).hexdigest(), frozenset(namespaces), is_global,
                                 frozenset(named))
    return out


def _info(cache: BuildCache, memo: dict[str, list[dict[str, Any]]], path: str, text: str) -> FileInfo:
    """One file's slicing facts (``is_global`` before the managed namespaces are known), kept under its text."""
    namespaces, is_global, named = cache.cached("docinfo", cache.key("docinfo", path, text),
                                                lambda: _facts(cache, memo, path, text))
    return FileInfo(path, hashlib.sha256(text.encode()).hexdigest(), frozenset(namespaces), is_global,
                    frozenset(named))


def _facts(cache: BuildCache, memo: dict[str, list[dict[str, Any]]], path: str,
           text: str) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """The namespaces of a file's namespaced documents, whether it holds one of no namespace, and every
    namespace its documents name."""
    namespaces: set[str] = set()
    named: set[str] = set()
    is_global = False
    for doc in _documents(cache, memo, path, text):
        metadata = doc.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        if isinstance(namespace, str):
            namespaces.add(namespace)
        else:
            is_global = True
        named.update(_named(doc))
    return tuple(sorted(namespaces)), is_global, tuple(sorted(named))


def _documents(cache: BuildCache, memo: dict[str, list[dict[str, Any]]], path: str,
               text: str) -> list[dict[str, Any]]:
    """The documents of one file, loaded once per build (``memo``) and kept in the cache under its text."""
    if path not in memo:
        memo[path] = cache.cached("docs", cache.key("docs", path, text), lambda: verifier.file_documents(path, text))
    return memo[path]


def _named(value: Any) -> Iterator[str]:
    """Every string value of a ``namespace`` key, at any depth (iteratively: documents may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if key == "namespace" and isinstance(child, str):
                    yield child
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


_PENDING: list | None = None


def _run(pending: list) -> list:
    """Each pending slice's counterexamples (or why its files cannot be read), in order; in one process
    per CPU when the slices hold as many destinations as verify.py shares among processes."""
    global _PENDING
    total = sum(len(dests) for *_, dests in pending)
    workers = min(os.cpu_count() or 1, len(pending))
    if workers <= 1 or total < verifier.PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return [job.run(dests) for _, _, job, dests in pending]
    _PENDING = pending
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_run_one, range(len(pending)))
    finally:
        _PENDING = None


def _run_one(index: int) -> Any:
    assert _PENDING is not None
    _, _, job, dests = _PENDING[index]
    return job.run(dests)
