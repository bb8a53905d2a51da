"""The lookups that keep verification linear mean what the scans they replace meant.

The request space tests many paths as lookups (``_PathTests``: atoms per reading, looked up by the prefixes
and suffixes of a path); the decider finds the rules that fit an operation through ``_RuleIndex``; the Istio
reader its rules through ``_EntryIndex``; the Linkerd reader its routes through ``_RouteIndex`` and the
policies and routes of a Server or route by name. Each is checked against the definition it replaces: the
tests written as functions, every rule a candidate, every policy and route of the namespace scanned
(issue 12, docs/performance.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import builds, case_id, compile_case, compile_text
from hypothesis import given, settings
from hypothesis import strategies as st
from test_random_policies import policies
from test_verify_pruned import CALLERS, built_and_changed, mutated

from meshpolicy import verify as verifier
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph import evaluate, space
from meshpolicy.graph.evaluate import Decider
from meshpolicy.graph.model import GrpcMatch, PathKind, PathMatch, path_only
from meshpolicy.graph.space import Universe, destinations, requests_to
from meshpolicy.readers import ReaderError
from meshpolicy.readers import istio as istio_reader
from meshpolicy.readers import linkerd as linkerd_reader

# -- the request space's path tests -----------------------------------------------------------------

#: the tests as the space wrote them before the lookups (functions of the path), the definition kept here
def pattern_functions(pattern: str):
    if pattern == "*":
        return [lambda p: p != ""]
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return [lambda p: p.endswith(suffix)]
    if not pattern.endswith("*"):
        return [lambda p: p == pattern]
    base = pattern[:-1]
    seg = base.rstrip("/")
    return [lambda p: p.startswith(base), lambda p: p == seg or p.startswith(seg + "/")]


def reading_functions(m: PathMatch):
    base = m.value
    if m.kind is PathKind.SUFFIX:
        return [m.matches, lambda p: path_only(p).lower().endswith(base.lower()), lambda p: p.endswith(base)]
    if m.kind in (PathKind.PREFIX, PathKind.STARTS):
        return [m.matches, lambda p: p.startswith(base), lambda p: p == base or p.startswith(base + "/"),
                lambda p: p.startswith(base + "/")]
    return [m.matches]


def holds(test, path: str) -> bool:
    """One path test (a disjunction of atoms, () for always) evaluated directly."""
    if callable(test):
        return test(path)
    if not test:
        return True
    for reading, kind, value in test:
        text = {"raw": path, "path": path_only(path), "lower": path_only(path).lower()}[reading]
        if (kind == "eq" and text == value) or (kind == "starts" and text.startswith(value)) or \
                (kind == "ends" and text.endswith(value)) or (kind == "nonempty" and text != ""):
            return True
    return False


SEGMENTS = st.sampled_from(["", "a", "ab", "A", "x.png", "x.PNG", "pkg.S", "M", "?q=1", "*"])
PATHS = st.lists(SEGMENTS, max_size=4).map(lambda parts: "/" + "/".join(parts))
PATTERNS = st.one_of(PATHS, PATHS.map(lambda p: p + "*"), PATHS.map(lambda p: "*" + p), st.just("*"),
                     PATHS.map(lambda p: p.rstrip("/") + "/*"))
MATCHES = st.builds(PathMatch, st.sampled_from(list(PathKind)), PATHS)
CALLS = st.builds(GrpcMatch, st.sampled_from(["pkg.S", "a", "p.T"]), st.sampled_from(["", "M", "x.png"]))


@settings(max_examples=300, deadline=None)
@given(pattern=PATTERNS, match=MATCHES, call=CALLS, paths=st.lists(PATHS, min_size=1, max_size=8))
def test_the_atoms_mean_the_functions_they_replace(pattern, match, call, paths):
    for path in paths:
        assert [holds(t, path) for t in space._pattern_tests(pattern)] == [f(path) for f in pattern_functions(pattern)]
        assert [holds(t, path) for t in space._match_readings(match)] == [f(path) for f in reading_functions(match)]
        assert holds(space._path_match_test(match), path) == match.matches(path)
        assert holds(space._grpc_test(call), path) == call.matches(path)


@settings(max_examples=300, deadline=None)
@given(tests=st.lists(st.one_of(PATTERNS.map(space._pattern_tests), MATCHES.map(space._match_readings),
                                st.just([()]), st.just([lambda p: "a" in p])), max_size=12),
       paths=st.lists(PATHS, min_size=1, max_size=8))
def test_looked_up_path_tests_hold_exactly_where_evaluated_ones_do(tests, paths):
    flat = [t for group in tests for t in group]
    index = space._PathTests()
    assert [index.add(t) for t in flat] == list(range(len(flat)))
    for path in paths:
        assert index.holding(path) == {i for i, t in enumerate(flat) if holds(t, path)}


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(st.one_of(PATTERNS, st.sampled_from(["*", "**", "GET", "G*", "*T", "8080"])), max_size=20),
       values=st.lists(st.one_of(PATHS, st.sampled_from(["", "GET", "POST", "8080", "*"])), min_size=1, max_size=8))
def test_istio_matches_many_patterns_by_lookups_as_one_by_one(patterns, values):
    patterns = tuple(patterns)
    for value in values:
        for match in (istio_reader.match_string, istio_reader._port_match):
            assert istio_reader._any_match(patterns, value, match) == any(match(p, value) for p in patterns)


# -- the decider and the readers: indexed, and every rule, route and policy a candidate -------------

def scanning(patch: pytest.MonkeyPatch) -> None:
    """Every index answers with everything it holds: the scans the indexes replace."""
    patch.setattr(evaluate._RuleIndex, "candidates", lambda self, port, path: set(range(len(self.rules))))
    patch.setattr(istio_reader._EntryIndex, "candidates", lambda self, port, path: list(range(len(self.rules))))
    patch.setattr(linkerd_reader._RouteIndex, "candidates", lambda self, req: list(self.routes))
    patch.setattr(istio_reader, "_INDEXED_FROM", 1 << 30)


def decisions(build, target: str, files: dict[str, str]):
    """Every request of the space and both sides' decisions, or the reader's refusal."""
    graph = build.analysis.graph
    try:
        reader = verifier.reader_for(target, graph, verifier.documents(files), reader_options=build.reader_options)
        decider = Decider(graph, build.open_probes)
        universe = Universe(graph)
        return [(req, decider.decide(req), decider.seen(req), reader.decide(req), reader.seen(req))
                for dest in destinations(graph) for req in requests_to(graph, dest, universe, reader.mentions)]
    except (ReaderError, MeshError) as exc:
        return repr(exc)


def indexed_and_scanned(build, target: str, files: dict[str, str]):
    indexed = decisions(build, target, files)
    with pytest.MonkeyPatch.context() as patch:
        scanning(patch)
        scanned = decisions(build, target, files)
    return indexed, scanned


@pytest.mark.parametrize("path, target", [(p, t) for t in sorted(TARGETS) for p in builds(t)],
                         ids=lambda v: case_id(v) if isinstance(v, Path) else v)
def test_every_corpus_case_decides_alike_indexed_and_scanned(path, target):
    build = compile_case(path, target)
    indexed, scanned = indexed_and_scanned(build, target, build.files)
    assert indexed == scanned


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("seed", range(10))
def test_changed_outputs_decide_alike_indexed_and_scanned(target, seed):
    build = compile_text(CALLERS, target)
    files = mutated(build.files, seed, 1 + seed % 3)
    indexed, scanned = indexed_and_scanned(build, target, files)
    assert indexed == scanned


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=40, deadline=None, derandomize=True)
@given(text=policies, seed=st.integers(0, 10_000), changes=st.integers(0, 2))
def test_random_policies_decide_alike_indexed_and_scanned(target, text, seed, changes):
    built = built_and_changed(text, target, seed, changes)
    if built is None:
        return  # refused by the target
    build, files = built
    indexed, scanned = indexed_and_scanned(build, target, files)
    assert indexed == scanned


@pytest.mark.parametrize("seed", range(10))
def test_linkerd_finds_the_policies_and_routes_of_a_server_by_name_as_a_scan_does(seed):
    build = compile_text(CALLERS, "linkerd")
    files = mutated(build.files, seed, 1 + seed % 3) if seed else build.files
    try:
        reader = verifier.reader_for("linkerd", build.analysis.graph, verifier.documents(files))
    except (ReaderError, MeshError):
        return
    found = reader.manifests
    for server in found.servers:
        assert reader._targeting_server(server) == [p for p in found.policies if p.namespace == server.namespace
                                                    and p.targets_server(server)]
        for kind in ("HTTPRoute", "GRPCRoute"):
            assert reader._routes(server, kind) == [r for r in found.routes if r.namespace == server.namespace
                                                    and r.kind == kind and r.attached_to(server)]
    for route in found.routes:
        assert reader._targeting_route(route) == [p for p in found.policies if p.namespace == route.namespace
                                                  and p.targets_route(route)]
