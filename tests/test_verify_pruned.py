"""Verification decides one caller for every set of callers neither side tells apart: exactly the exhaustive result.

``verify`` walks each destination's space per operation and decides one caller for all those that the
decider's and the reader's :class:`Seen` cannot tell apart (docs/verify.md, "How the space is walked").
``verify(..., exhaustive=True)`` decides every request of the space one by one. Both must give the same
counterexamples (same requests, same order, same decisions) or the same refusal, on every corpus case,
every example, both targets, the mutated outputs of tests/test_verify.py, and random policies with random
changes to their output.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, builds, case_id, compile_case, compile_text
from hypothesis import given, settings
from hypothesis import strategies as st
from test_random_policies import policies
from test_verify import MUTATIONS, edit, listed

from meshpolicy import pipeline
from meshpolicy import verify as verifier
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph.evaluate import Caller, Seen
from meshpolicy.graph.model import Identity
from meshpolicy.output import writer
from meshpolicy.readers import get_reader
from meshpolicy.source import SourceFile

EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())


def outcome(graph, files, target, open_probes, exhaustive: bool, **options):
    """The counterexamples, or the messages of the refusal."""
    try:
        return verifier.verify(graph, files, target, open_probes, workers=1, exhaustive=exhaustive, **options)
    except MeshError as err:
        return [d.message for d in err.diagnostics]


def both(build, target: str, files: dict[str, str] | None = None, mode: str = "enforce"):
    args = (build.analysis.graph, files if files is not None else build.files, target, build.open_probes)
    options = {"mode": mode, "reader_options": build.reader_options}
    return outcome(*args, exhaustive=False, **options), outcome(*args, exhaustive=True, **options)


@pytest.mark.parametrize("path, target", [(p, t) for t in sorted(TARGETS) for p in builds(t)],
                         ids=lambda v: case_id(v) if isinstance(v, Path) else v)
def test_every_corpus_case_walks_to_the_exhaustive_result(path: Path, target: str):
    build = compile_case(path, target)
    pruned, exhaustive = both(build, target)
    assert pruned == exhaustive


def example_folders(example: Path, target: str) -> list[Path]:
    """What of an example a target builds: all of it, but for examples/platform, whose istio/ folder only Istio
    builds (tests/test_platform_example.py holds Linkerd to refusing exactly those rules)."""
    if example.name == "platform":
        return [example / "policy"] + ([example / "istio"] if target == "istio" else [])
    return [example]


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_walks_to_the_exhaustive_result(example: Path, target: str):
    sources = [SourceFile(p.relative_to(ROOT).as_posix(), p.read_text())
               for folder in example_folders(example, target) for p in sorted(folder.rglob("*.mesh"))]
    build = pipeline.lower(pipeline.analyze(sources), target, "enforce")
    pruned, exhaustive = both(build, target)
    assert pruned == exhaustive


@pytest.mark.parametrize("target, name, kind, mutate, policy", MUTATIONS, ids=[f"{m[0]}-{m[1]}" for m in MUTATIONS])
def test_every_mutation_gives_the_same_counterexamples(target, name, kind, mutate, policy):
    build = compile_text(policy, target)
    mutated = edit(build.files, kind, mutate)
    pruned, exhaustive = both(build, target, mutated)
    assert exhaustive and all(isinstance(c, verifier.Counterexample) for c in exhaustive), name
    assert pruned == exhaustive


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_refusal_names_the_same_request(target):
    """A reader's refusal met while deciding names the request the one-by-one walk meets first."""
    build = compile_text(CALLERS, target)
    doubled = dict(build.files)
    for path, text in build.files.items():
        doc = yaml.safe_load(text) if path != writer.KUSTOMIZATION else None
        if doc and doc.get("kind") in ("PeerAuthentication", "Server"):
            doc["metadata"]["name"] += "-copy"
            doubled[path.replace(".yaml", "-copy.yaml")] = yaml.safe_dump(doc)
    doubled = listed(doubled)
    pruned, exhaustive = both(build, target, doubled)
    assert pruned == exhaustive
    assert exhaustive and all(isinstance(m, str) and "Ambiguous" in m for m in exhaustive)


#: many callers, each allowed paths of its own, one namespace allowed a path, every identity another
CALLERS = """
namespace shop {
  mtls strict
  service api :8080/http :9090/tcp probes /healthz
""" + "".join(f"  service c{i} :8080/http\n" for i in range(8)) + "".join(
    f"  allow c{i} -> api GET /items/{i}, /items/{i}/* :8080\n" for i in range(8)) + """
  allow c1, c2 -> api POST /orders :8080
  allow shop/* -> api GET /shop/* :8080
  allow * -> api GET /public :8080
  deny c3 -> api GET /items/3/secret :8080
  allow c4 -> api :9090
}
namespace ops {
  service admin :8080/http
  allow admin -> shop/api DELETE /items/* :8080
}
"""


def _widen(doc: dict, rng: random.Random, strings: list[str]) -> None:
    """One random change somewhere in a document: a string replaced by another of the output, an item or a key
    dropped (most such changes widen, narrow or break the policy)."""
    spots: list[tuple[object, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("apiVersion", "kind"):
                    spots.append((node, key))
                    walk(value)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                spots.append((node, i))
                walk(value)

    walk(doc.get("spec"))
    if not spots:
        return
    parent, key = rng.choice(spots)
    value = parent[key]  # type: ignore[index]
    if isinstance(value, str) and rng.random() < 0.7:
        parent[key] = rng.choice(strings)  # type: ignore[index]
    elif isinstance(parent, list):
        parent.pop(key)  # type: ignore[arg-type]
    else:
        del parent[key]  # type: ignore[attr-defined]


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def built_and_changed(text: str, target: str, seed: int, changes: int):
    """A random policy built for ``target`` and its files after ``changes`` random edits; None when the target
    refuses the policy."""
    try:
        build = compile_text(text, target)
    except MeshError:
        return None
    return build, mutated(build.files, seed, changes) if changes else build.files


def mutated(files: dict[str, str], seed: int, changes: int) -> dict[str, str]:
    rng = random.Random(seed)
    docs = {p: yaml.safe_load(t) for p, t in files.items() if p != writer.KUSTOMIZATION}
    strings = sorted({s for d in docs.values() for s in _strings(d.get("spec"))}) or ["x"]
    out = dict(files)
    paths = sorted(docs)
    for _ in range(changes):
        path = rng.choice(paths)
        doc = copy.deepcopy(docs[path])
        if rng.random() < 0.1:
            out.pop(path, None)
            continue
        _widen(doc, rng, strings)
        docs[path] = doc
        out[path] = yaml.safe_dump(doc, sort_keys=False)
    return listed({p: t for p, t in out.items() if p != writer.KUSTOMIZATION})


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("seed", range(12))
def test_random_changes_to_many_callers_give_the_same_result(target, seed):
    build = compile_text(CALLERS, target)
    files = mutated(build.files, seed, 1 + seed % 3)
    pruned, exhaustive = both(build, target, files)
    assert pruned == exhaustive


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=60, deadline=None, derandomize=True)
@given(text=policies, seed=st.integers(0, 10_000), changes=st.integers(0, 3))
def test_random_policies_with_random_changes_give_the_same_result(target, text, seed, changes):
    built = built_and_changed(text, target, seed, changes)
    if built is None:
        return  # refused by the target (tests/test_random_policies.py checks how)
    build, files = built
    pruned, exhaustive = both(build, target, files)
    assert pruned == exhaustive


def test_callers_alike_share_one_decision_and_the_rest_are_decided_alone():
    """The index hands out one caller per class of what Seen reads, and lists every member on demand."""
    a, b, c = Identity("shop", "a"), Identity("shop", "b"), Identity("ops", "c")
    callers = (Caller(None, "192.0.2.10"), Caller(a, "192.0.2.10"), Caller(b, "192.0.2.10"), Caller(c, "192.0.2.10"),
               Caller(a, "10.0.0.1"))
    index = verifier._Callers(callers)
    assert index.plain
    classes = {rep: sorted(members()) for rep, members in index.classes(Seen())}
    assert classes == {0: [0], 1: [1, 2, 3], 4: [4]}
    classes = {rep: sorted(members()) for rep, members in index.classes(Seen(identities=frozenset([b])))}
    assert classes == {0: [0], 2: [2], 1: [1, 3], 4: [4]}
    classes = {rep: sorted(members()) for rep, members in index.classes(Seen(namespaces=frozenset(["shop"])))}
    assert classes == {0: [0], 1: [1, 2], 3: [3], 4: [4]}
    assert {rep for rep, _ in index.classes(None)} == {0, 1, 2, 3, 4}
    assert not verifier._Callers((Caller(Identity("shop", "a.b"), "192.0.2.10"),)).plain


def _istio_source(change):
    """Change the ``source`` of every rule of every Istio AuthorizationPolicy that names c1."""
    def mutate(doc, _files):
        for rule in doc["spec"].get("rules", []):
            for entry in rule.get("from", []):
                if "cluster.local/ns/shop/sa/c1" in entry["source"].get("principals", []):
                    change(entry["source"])
        return doc
    return mutate


def _linkerd_identities(identities):
    def mutate(doc, _files):
        if doc["metadata"]["name"].startswith("shop-c1-"):
            doc["spec"]["identities"] = identities
            doc["spec"].pop("identityRefs", None)
        return doc
    return mutate


#: hand edits of the sources: an identity, a namespace, everyone, negations, another trust domain (a pattern the
#: readers refuse to parse is refused before any walk): the walk must give what the one-by-one walk gives
HAND_EDITS = [
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(principals=["*"]))),
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(principals=["cluster.local/*"]))),
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(principals=["cluster.local/ns/shop/sa/*"]))),
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(principals=["cluster.local/ns/ops/sa/admin"]))),
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(notPrincipals=["cluster.local/ns/shop/sa/c2"],
                                                                       principals=["*"]))),
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(namespaces=["ops"]))),
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(principals=[], notNamespaces=["ops"]))),
    ("istio", "AuthorizationPolicy", _istio_source(lambda s: s.update(principals=["other.td/ns/shop/sa/c1"]))),
    ("linkerd", "MeshTLSAuthentication", _linkerd_identities(["*"])),
    ("linkerd", "MeshTLSAuthentication", _linkerd_identities(["*.shop.serviceaccount.identity.linkerd.cluster.local"])),
    ("linkerd", "MeshTLSAuthentication", _linkerd_identities(["c2.shop.serviceaccount.identity.linkerd.cluster.local"])),
    ("linkerd", "MeshTLSAuthentication", _linkerd_identities(["*.ops.serviceaccount.identity.linkerd.cluster.local",
                                                              "c3.shop.serviceaccount.identity.linkerd.cluster.local"])),
]


@pytest.mark.parametrize("target, kind, mutate", HAND_EDITS, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(HAND_EDITS)])
def test_hand_edited_sources_give_the_same_counterexamples(target, kind, mutate):
    build = compile_text(CALLERS, target)
    files = edit(build.files, kind, mutate)
    assert files != build.files
    pruned, exhaustive = both(build, target, files)
    assert pruned == exhaustive
    assert exhaustive and all(isinstance(c, verifier.Counterexample) for c in exhaustive), exhaustive[:1]


@pytest.mark.parametrize("target, name, kind, mutate, policy", MUTATIONS, ids=[f"{m[0]}-{m[1]}" for m in MUTATIONS])
def test_a_side_that_cannot_say_gets_every_caller_decided(target, name, kind, mutate, policy, monkeypatch):
    """Where a side's Seen is None (a pattern it cannot classify), every caller is decided on its own."""
    build = compile_text(policy, target)
    files = edit(build.files, kind, mutate)
    monkeypatch.setattr(get_reader(target), "seen", lambda self, req: None)
    pruned, exhaustive = both(build, target, files)
    assert pruned == exhaustive and exhaustive
