"""Linkerd names (docs/targets/linkerd.md, "Names"): honest about what a resource holds, and stable while
a route holds the same rules on the same paths, whatever methods or callers those rules gain."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import yaml
from helpers import documents
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from meshpolicy import pipeline
from meshpolicy.diagnostics import MeshError
from meshpolicy.source import SourceFile

HEAD = """namespace n {
  service s :8080/http :9000/tcp probes /healthz
  service a :80/http
  service b :80/http
  service c :80/http
"""
ROUTES = ("HTTPRoute", "GRPCRoute")


def _build(text: str) -> dict[str, str]:
    return pipeline.lower(pipeline.analyze([SourceFile("test.mesh", text)]), "linkerd", verify=False).files


def _routes(files: dict[str, str]) -> dict[tuple[str, str, tuple[str, ...]], dict]:
    """Every route by what makes it the same route: its Server, the rule lines it holds, its paths."""
    out = {}
    for doc in documents(files):
        if doc["kind"] in ROUTES:
            server = doc["spec"]["parentRefs"][0]["name"]
            lines = doc["metadata"]["annotations"]["meshpolicy.io/source"]
            paths = tuple(sorted({str(m.get("path", {}).get("value", m.get("method")))
                                  for rule in doc["spec"]["rules"] for m in rule["matches"]}))
            out[(server, lines, paths)] = doc
    return out


def _policies_of(files: dict[str, str], route: str) -> list[str]:
    return sorted(d["metadata"]["name"] for d in documents(files)
                  if d["kind"] == "AuthorizationPolicy" and d["spec"]["targetRef"]["name"] == route)


def _route_named(files: dict[str, str], prefix: str) -> dict:
    [doc] = [d for d in documents(files) if d["kind"] == "HTTPRoute" and d["metadata"]["name"].startswith(prefix)]
    return doc


# -- the examples of issue 8 -------------------------------------------------------------------------

ORDERS = HEAD + """  allow a -> s GET /api/*
  allow b -> s POST
}
"""


def test_adding_a_method_to_a_rule_keeps_its_route_and_policy_names():
    before = _build(ORDERS)
    after = _build(ORDERS.replace("allow a -> s GET /api/*", "allow a -> s GET,DELETE /api/*"))
    old, new = _route_named(before, "s-8080-api-"), _route_named(after, "s-8080-api-")
    assert old["metadata"]["name"] == new["metadata"]["name"]
    assert old["spec"] != new["spec"]                      # the route changed: it now also matches DELETE
    assert {m.get("method") for r in new["spec"]["rules"] for m in r["matches"]} == {"GET", "DELETE"}
    assert _policies_of(before, old["metadata"]["name"]) == _policies_of(after, new["metadata"]["name"]) \
        == [old["metadata"]["name"]]
    assert {p for p in after if p not in before} == set()  # nothing renamed, nothing new


def test_adding_a_caller_to_a_rule_keeps_its_route_and_policy_names():
    before = _build(ORDERS)
    after = _build(ORDERS.replace("allow a -> s GET /api/*", "allow a, c -> s GET /api/*"))
    old, new = _route_named(before, "s-8080-api-"), _route_named(after, "s-8080-api-")
    assert old == new                                      # the same matches, the same name
    [policy] = _policies_of(after, new["metadata"]["name"])
    assert policy == new["metadata"]["name"]
    ref = yaml.safe_load(after[f"n/authorizationpolicy-{policy}.yaml"])["spec"]["requiredAuthenticationRefs"][0]
    assert ref["name"].startswith("n-a-and-1-more-")       # the callers changed: a and c
    # only the authentication changed name: it is shared by content
    assert {p.split("/")[1].split("-")[0] for p in set(before) ^ set(after)} == {"meshtlsauthentication"}


def test_a_route_is_not_named_after_a_method_or_a_part_of_what_it_holds():
    files = _build(HEAD + "  allow a -> s DELETE,GET,POST /api/*, /b\n}\n")
    [route] = [d for d in documents(files) if d["kind"] == "HTTPRoute" and "probes" not in d["metadata"]["name"]]
    name = route["metadata"]["name"]
    assert not any(m in name for m in ("delete", "get", "post"))
    assert name.startswith("s-8080-api-b-")                # every path it matches, in order


def test_an_authentication_of_several_callers_says_so():
    files = _build(HEAD + "  allow a, b, c -> s GET\n  allow 10.0.0.0/8, 10.9.0.0/16 -> s :9000\n"
                   "  deny 10.1.0.0/16 -> s :9000\n}\n")
    kinds = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0]) for d in documents(files)}
    assert ("MeshTLSAuthentication", "n-a-and-2-more") in kinds
    assert ("NetworkAuthentication", "10-0-0-0-8-with-exceptions") in kinds
    policies = {d["metadata"]["name"] for d in documents(files) if d["kind"] == "AuthorizationPolicy"}
    assert "s-9000-networks" in policies and "s-9000" not in policies  # CIDR callers only: admitted by address


def test_two_routes_of_rules_of_one_shape_get_different_names():
    files = _build(HEAD + "  allow a -> s GET\n  allow b -> s POST\n}\n")
    names = sorted(d["metadata"]["name"] for d in documents(files) if d["kind"] == "HTTPRoute")
    assert len(names) == 3 and len(set(names)) == 3       # root (a), root (b), probes


# -- the property: random edits ----------------------------------------------------------------------

SOURCES = ["a", "b", "c", "*", "any", "n/*", "10.0.0.0/8", "10.1.0.0/16"]
METHODS = ["GET", "POST", "DELETE", "PUT"]
PATHS = ["/api/*", "/api", "/api/x", "/api/x/*", "/b/*", "/healthz", "/*"]


@dataclass(frozen=True)
class R:
    action: str
    sources: tuple[str, ...]
    methods: tuple[str, ...]
    paths: tuple[str, ...]
    port: str

    def __str__(self) -> str:
        parts = [f"  {self.action} {', '.join(self.sources)} -> s", ",".join(self.methods), ", ".join(self.paths),
                 self.port]
        return " ".join(p for p in parts if p)


def _text(rules: list[R]) -> str:
    return HEAD + "".join(f"{r}\n" for r in rules) + "}\n"


def subsets(items: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=2, unique=True).map(tuple)


rule_lists = st.lists(st.builds(
    R, st.sampled_from(["allow", "allow", "deny"]), subsets(SOURCES),
    st.one_of(st.just(()), subsets(METHODS)), st.one_of(st.just(()), subsets(PATHS)),
    st.sampled_from(["", ":8080"])), min_size=1, max_size=5)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, derandomize=True)
@given(rules=rule_lists, which=st.integers(0, 4), kind=st.sampled_from(["method", "caller"]),
       pick=st.integers(0, 7))
def test_routes_that_remain_keep_their_names(rules, which, kind, pick):
    rule = rules[which % len(rules)]
    if kind == "method":
        extra = [m for m in METHODS if m not in rule.methods]
        assume(rule.methods and extra)                     # a method-less rule takes every method already
        edited = replace(rule, methods=(*rule.methods, extra[pick % len(extra)]))
    else:
        extra = [s for s in SOURCES if s not in rule.sources]
        edited = replace(rule, sources=(*rule.sources, extra[pick % len(extra)]))
    try:
        before = _build(_text(rules))
        after = _build(_text([edited if r is rule else r for r in rules]))
    except MeshError:
        assume(False)
    old, new = _routes(before), _routes(after)
    for same in old.keys() & new.keys():
        name = old[same]["metadata"]["name"]
        assert new[same]["metadata"]["name"] == name, (_text(rules), str(edited))
        for files in (before, after):
            assert set(_policies_of(files, name)) <= {name, f"{name}-networks"}
