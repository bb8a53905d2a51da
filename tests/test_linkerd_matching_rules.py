"""The rules of a Linkerd port found by lookups (issue 12): the same rules, in the same order, as the scan
of every rule with ``Rule.http_matches`` that planning used before (docs/performance.md)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy.backends.linkerd.matching import OTHER_METHOD
from meshpolicy.backends.linkerd.plan import MatchingRules
from meshpolicy.graph.model import Action, GrpcMatch, PathKind, PathMatch, Rule, Source, SourceKind
from meshpolicy.source import Span

# short paths over few characters, so that exact paths, segments, prefixes and suffixes meet often
text = st.text(alphabet="/ab.?", max_size=6)
methods = st.sampled_from(["GET", "POST", "PUT"])
paths = st.builds(PathMatch, st.sampled_from(list(PathKind)), text)
grpc = st.builds(GrpcMatch, st.sampled_from(["a", "a.b", "b"]), st.sampled_from(["", "a", "M"]))


@st.composite
def rules(draw: st.DrawFn) -> list[Rule]:
    found = []
    for at in range(draw(st.integers(0, 10))):
        found.append(Rule(("shop", "api"), draw(st.sampled_from(list(Action))), Span("p.mesh", at + 1, 1, at + 1, 2),
                          (Source(SourceKind.ANY),), (8080,),
                          tuple(draw(st.lists(methods, max_size=2, unique=True))),
                          tuple(draw(st.lists(paths, max_size=3))),
                          tuple(draw(st.lists(grpc, max_size=2)))))
    return found


@st.composite
def port_and_requests(draw: st.DrawFn) -> tuple[list[Rule], list[tuple[str | None, str | None]]]:
    """Rules, and requests whose paths are often built from the rules' own paths and calls (a path, a text
    before or after it), so that every way of matching is met."""
    port = draw(rules())
    values = [p.value for r in port for p in r.paths] + [f"/{g.service}/{g.method}" for r in port for g in r.grpc]
    around = st.tuples(text, st.sampled_from(values), text).map(lambda t: "".join(t)) if values else text
    own = st.sampled_from(values) if values else text
    path = st.one_of(st.none(), text, own, around, st.sampled_from(["/a/a", "/a.b/M", "/b/", "/a/M?x"]))
    asked = draw(st.lists(st.tuples(st.one_of(st.none(), methods, st.just(OTHER_METHOD)), path),
                          min_size=1, max_size=10))
    return port, asked


@settings(max_examples=500, deadline=None)
@given(port_and_requests())
def test_the_index_finds_what_the_scan_of_every_rule_finds(
        case: tuple[list[Rule], list[tuple[str | None, str | None]]]) -> None:
    port, asked = case
    index = MatchingRules(port, indexed_from=0)   # every port through the index, however few its rules
    for method, path in asked:
        scan = tuple(r for r in port if r.http_matches(method, path))
        assert index.matching(method, path) == scan, (port, method, path)
        assert index.matching(method, path) == scan   # the memo answers the same
    scan = tuple(r for r in port if any(r.http_matches(m, p) for m, p in asked))
    assert index.holding(asked) == scan


def rule(at: int, *, methods: tuple[str, ...] = (), paths: tuple[PathMatch, ...] = (),
         grpc: tuple[GrpcMatch, ...] = ()) -> Rule:
    return Rule(("shop", "api"), Action.ALLOW, Span("p.mesh", at, 1, at, 2), (Source(SourceKind.ANY),), (8080,),
                methods, paths, grpc)


def test_each_way_a_rule_is_filed() -> None:
    exact, prefix = rule(1, paths=(PathMatch(PathKind.EXACT, "/a"),)), rule(2, paths=(PathMatch(PathKind.PREFIX, "/api"),))
    starts, suffix = rule(3, paths=(PathMatch(PathKind.STARTS, "/st"),)), rule(4, paths=(PathMatch(PathKind.SUFFIX, ".png"),))
    call, service = rule(5, grpc=(GrpcMatch("pkg.S", "Get"),)), rule(6, grpc=(GrpcMatch("pkg.T"),))
    get, anything = rule(7, methods=("GET",)), rule(8)
    index = MatchingRules([exact, prefix, starts, suffix, call, service, get, anything], indexed_from=0)
    assert index.matching("GET", "/a") == (exact, get, anything)
    assert index.matching("PUT", "/api/x/y.png?q=1") == (prefix, suffix, anything)
    assert index.matching("PUT", "/apix") == (anything,)
    assert index.matching("GET", "/stx") == (starts, get, anything)
    assert index.matching("POST", "/pkg.S/Get") == (call, anything)
    assert index.matching("POST", "/pkg.T/Any") == (service, anything)
    assert index.matching("GET", "/pkg.T/Any") == (get, anything)    # a gRPC call is a POST
    assert index.matching(None, None) == (anything,)                  # a connection: rules without HTTP matches
    assert index.holding([("GET", "/a"), ("POST", "/pkg.T/x")]) == (exact, service, get, anything)


def test_a_port_of_few_rules_is_scanned_with_the_same_answer() -> None:
    port = [rule(1, paths=(PathMatch(PathKind.PREFIX, "/api"),)), rule(2, methods=("GET",)), rule(3)]
    scanned, indexed = MatchingRules(port), MatchingRules(port, indexed_from=0)
    for request in [("GET", "/api/x"), ("PUT", "/api"), ("PUT", "/b"), (None, None)]:
        assert scanned.matching(*request) == indexed.matching(*request)
        assert scanned.matching(*request) == tuple(r for r in port if r.http_matches(*request))
