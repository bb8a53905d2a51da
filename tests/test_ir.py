"""The IR's one meaning of an HTTP match, and its enums (issue 10 item 4)."""

from __future__ import annotations

import itertools

from helpers import compile_text
from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy.graph.evaluate import Caller, OpenProbes, Reason, Request, decide
from meshpolicy.graph.model import (
    Action,
    GrpcMatch,
    HttpCondition,
    Identity,
    Mode,
    PathKind,
    PathMatch,
    Rule,
    Source,
    SourceKind,
)
from meshpolicy.source import Span

SPAN = Span("t.mesh", 1, 1, 1, 2)
METHODS = ["GET", "POST", "PUT", None]
PATHS = ["/", "/api", "/api/", "/api/x", "/apix", "/pkg.Svc/Get", "/pkg.Svc/Put", "/pkg.Svc/Get/x", "/pkg.SvcX/Get",
         "/pkg.Svc", None]

rules = st.builds(
    lambda methods, paths, grpc: Rule(("n", "s"), Action.ALLOW, SPAN, (Source(SourceKind.ANY),), (8080,),
                                      tuple(methods), tuple(paths), tuple(grpc)),
    st.lists(st.sampled_from(["GET", "POST", "PUT"]), max_size=2, unique=True),
    st.lists(st.sampled_from([PathMatch(PathKind.EXACT, "/api"), PathMatch(PathKind.PREFIX, "/api"),
                              PathMatch(PathKind.EXACT, "/pkg.Svc/Get")]), max_size=2, unique=True),
    st.lists(st.sampled_from([GrpcMatch("pkg.Svc", "Get"), GrpcMatch("pkg.Svc")]), max_size=2, unique=True))


def spelled_out(rule: Rule, method: str | None, path: str | None) -> bool:
    """LANGUAGE §3 written out once more, by hand, as the test's oracle."""
    if rule.methods and method not in rule.methods:
        return False
    if rule.paths and (path is None or not any(
            path == p.value or (p.kind == "prefix" and path.startswith(p.value + "/")) for p in rule.paths)):
        return False
    if rule.grpc:
        if method != "POST" or path is None:
            return False
        return any(path == f"/{g.service}/{g.method}" if g.method else path.startswith(f"/{g.service}/")
                   for g in rule.grpc)
    return True


@settings(max_examples=200, derandomize=True)
@given(rule=rules)
def test_one_meaning_of_an_http_match(rule):
    for method, path in itertools.product(METHODS, PATHS):
        matches = rule.http_matches(method, path)
        assert matches == spelled_out(rule, method, path), (method, path)
        assert matches == (rule.admits_method(method) and rule.admits_path(path))  # the space's factoring
        assert matches == (rule.http_mismatches(method, path) == ())               # explain's and verify's hints


def test_mismatches_name_each_failing_condition():
    rule = Rule(("n", "s"), Action.ALLOW, SPAN, (Source(SourceKind.ANY),), (8080,), ("GET",),
                (PathMatch(PathKind.PREFIX, "/api"),))
    assert rule.http_mismatches("PUT", "/other") == (HttpCondition.METHODS, HttpCondition.PATHS)
    grpc = Rule(("n", "s"), Action.ALLOW, SPAN, (Source(SourceKind.ANY),), (8080,), grpc=(GrpcMatch("pkg.Svc"),))
    assert grpc.http_mismatches("GET", "/pkg.Svc/Get") == (HttpCondition.GRPC,)


def test_a_path_kind_is_an_enum_however_it_is_built():
    assert PathMatch("prefix", "/a").kind is PathKind.PREFIX  # the resolver may pass the word
    assert str(PathMatch(PathKind.PREFIX, "/a")) == "/a/*" and str(PathMatch(PathKind.EXACT, "/a")) == "/a"


def test_reasons_and_modes_are_enums_that_read_as_their_words():
    assert Reason.DEFAULT == "default" and f"{Reason.MTLS}" == "mtls"
    assert Mode("audit") is Mode.AUDIT and [m.value for m in Mode] == ["enforce", "audit"]
    nothing: OpenProbes = frozenset()
    assert nothing == frozenset()


def test_the_decider_gives_reasons_as_enums():
    graph = compile_text("namespace n {\n  service a :80/http\n  service s :80/http\n  allow a -> s GET :80\n}\n"
                         ).analysis.graph
    allowed = decide(graph, Request(Caller(Identity("n", "a"), "192.0.2.10"), "n", "s", 80, "GET", "/"))
    refused = decide(graph, Request(Caller(Identity("n", "a"), "192.0.2.10"), "n", "s", 80, "PUT", "/"))
    assert allowed.reason is Reason.ALLOW and refused.reason is Reason.DEFAULT
