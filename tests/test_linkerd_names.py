"""Linkerd names (docs/targets/linkerd.md, "Names"): honest about what a resource holds, and derived from its
content alone. A route is shared by every Server of its namespace that needs one of the same content
(linkerd.md §4.1), so adding or removing a Server changes only the parentRefs of the routes it shares."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import yaml
from helpers import compile_text, disagreements, documents, proved_or_refused
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from meshpolicy import pipeline
from meshpolicy.diagnostics import MeshError
from meshpolicy.source import SourceFile

HEAD = """namespace n {
  service s :8080/http :9000/tcp probes /healthz
  service t :8080/http probes /healthz
  service a :80/http
  service b :80/http
  service c :80/http
"""
ROUTES = ("HTTPRoute", "GRPCRoute")
SOURCE = "meshpolicy.io/source"


def _build(text: str) -> dict[str, str]:
    return pipeline.lower(pipeline.analyze([SourceFile("test.mesh", text)]), "linkerd", verify=False).files


def _docs(files: dict[str, str], kinds: tuple[str, ...] = ROUTES) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents(files) if d["kind"] in kinds}


def _parents(doc: dict) -> list[str]:
    return [p["name"] for p in doc["spec"]["parentRefs"]]


def _policies_of(files: dict[str, str], route: str) -> list[str]:
    return sorted(d["metadata"]["name"] for d in documents(files)
                  if d["kind"] == "AuthorizationPolicy" and d["spec"]["targetRef"]["name"] == route)


def _without(doc: dict, *fields: str) -> dict:
    """The document without its provenance annotation and the given spec fields."""
    out = yaml.safe_load(yaml.safe_dump(doc))
    out["metadata"]["annotations"].pop(SOURCE, None)
    for name in fields:
        out.get("spec", {}).pop(name, None)
    return out


def _only_parents_changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Assert that every file in both builds differs at most in its routes' parentRefs and in provenance;
    returns the files that are in one build only."""
    for path in set(before) & set(after) - {"kustomization.yaml"}:
        old, new = yaml.safe_load(before[path]), yaml.safe_load(after[path])
        assert _without(old, "parentRefs") == _without(new, "parentRefs"), path
    return set(before) ^ set(after)


# -- sharing (issue 12 item 4) -------------------------------------------------------------------------

METRICS = HEAD + """  service prom
  allow prom -> a GET /metrics
  allow prom -> c GET /metrics
  allow prom -> b GET /metrics
  allow a -> b POST /api/*
}
"""


def test_a_route_is_shared_by_every_server_that_needs_it():
    build = compile_text(METRICS, "linkerd")
    routes = _docs(build.files)
    [metrics] = [d for d in routes.values() if d["spec"]["rules"][0]["matches"][0]["path"]["value"] == "/metrics"]
    assert _parents(metrics) == ["a-80", "b-80", "c-80"]               # sorted, whatever the source order
    name = metrics["metadata"]["name"]
    assert name.startswith("metrics-") and not any(s in name for s in ("a-80", "b-80", "c-80", "get"))
    assert _policies_of(build.files, name) == [name]                   # one policy for the three Servers
    assert disagreements(build, "linkerd") == []                       # and it means the same on each
    assert len(routes) == 2                                            # /metrics, and b's own POST /api/*


def test_routes_with_the_same_matches_and_other_callers_are_not_shared():
    files = _build(HEAD + "  allow a -> b GET\n  allow b -> c GET\n  allow a -> c POST\n}\n")
    gets = [d for d in _docs(files).values()
            if [m.get("method") for r in d["spec"]["rules"] for m in r["matches"]] == ["GET"]]
    assert sorted(map(_parents, gets)) == [["b-80"], ["c-80"]]        # GET / for a, GET / for b: two routes
    assert len({d["metadata"]["name"] for d in gets}) == 2


def test_adding_a_server_changes_only_the_parent_refs_of_what_it_shares():
    before = _build(METRICS.replace("  allow prom -> c GET /metrics\n", ""))
    after = _build(METRICS)
    assert _only_parents_changed(before, after) == set()               # no file comes or goes
    changed = {p for p in before if before[p] != after[p]} - {"kustomization.yaml"}
    route = next(p for p in changed if "/httproute-metrics-" in p)
    assert _parents(yaml.safe_load(before[route])) == ["a-80", "b-80"]
    assert _parents(yaml.safe_load(after[route])) == ["a-80", "b-80", "c-80"]
    assert {p.split("/")[1].split("-")[0] for p in changed} == {"httproute", "authorizationpolicy",
                                                                 "meshtlsauthentication"}
    # and removing it again is the same change backwards
    assert _only_parents_changed(after, before) == set()


def test_removing_the_last_server_of_a_route_removes_the_route_and_its_policy():
    before = _build(METRICS)
    after = _build(METRICS.replace("  allow a -> b POST /api/*\n", ""))
    gone = _only_parents_changed(before, after)
    assert gone and all(p in before for p in gone)
    assert {p.split("/")[1].split("-")[0] for p in gone} <= {"httproute", "authorizationpolicy",
                                                             "meshtlsauthentication"}


def test_the_probe_route_is_shared_and_named_after_its_paths():
    files = _build(HEAD + "  allow a -> s GET /api/*\n  allow a -> t GET /api/*\n}\n")
    routes = _docs(files)
    [probes] = [d for n, d in routes.items() if n.startswith("probes-healthz-")]
    assert _parents(probes) == ["s-8080", "t-8080"]
    [api] = [d for n, d in routes.items() if n.startswith("api-")]
    assert _parents(api) == ["s-8080", "t-8080"]
    assert len(routes) == 2


def test_more_servers_than_one_route_names_are_split_in_order():
    services = "".join(f"  service w{i:02} :80/http\n  allow a -> w{i:02} GET /x\n" for i in range(70))
    files = _build(HEAD + services + "}\n")
    routes = _docs(files)
    names = sorted(routes)
    stem = names[0]
    assert names == [stem, f"{stem}-servers-2", f"{stem}-servers-3"]
    assert [len(_parents(routes[n])) for n in names] == [32, 32, 6]
    assert [p for n in names for p in _parents(routes[n])] == [f"w{i:02}-80" for i in range(70)]
    assert all(_policies_of(files, n) == [n] for n in names)


@pytest.mark.parametrize("api", ["gateway", "policy"])
def test_routes_of_many_servers_pass_the_admission_schemas(api):
    """Both HTTPRoute groups' CRDs (and the admission rules) take up to 32 parentRefs; 33 is refused."""
    from test_schema import schema_errors

    services = "".join(f"  service w{i:02} :80/http\n  allow a -> w{i:02} GET /x\n" for i in range(40))
    build = compile_text(HEAD + services + "}\n", "linkerd", routes=api)
    assert schema_errors("linkerd", build.files) == []
    first = next(p for p in build.files if "/httproute-x-" in p and "-servers-" not in p)
    doc = yaml.safe_load(build.files[first])
    doc["spec"]["parentRefs"].append({"group": "policy.linkerd.io", "kind": "Server", "name": "w39-80"})
    assert len(doc["spec"]["parentRefs"]) == 33
    assert any("parentRefs" in e for e in schema_errors("linkerd", {first: yaml.safe_dump(doc)}))


def test_a_grpcroute_is_shared_too():
    text = ("namespace n {\n  service g1 :9000/grpc\n  service g2 :9000/grpc\n  service a\n  service b\n"
            "  allow a -> g1, g2 grpc grpc.health.v1.Health\n  allow b -> g2 grpc pkg.Other :9000\n}\n")
    build = compile_text(text, "linkerd")
    routes = _docs(build.files, ("GRPCRoute",))
    [health] = [d for n, d in routes.items() if n.startswith("grpc-health-v1-health-")]
    assert _parents(health) == ["g1-9000", "g2-9000"] and len(routes) == 2
    assert disagreements(build, "linkerd") == []


def test_two_routes_of_one_name_and_different_content_are_an_internal_error(monkeypatch):
    """A digest clash must never merge two routes (one would take the other's callers): the build stops."""
    from meshpolicy.backends.linkerd import emit
    from meshpolicy.errors import InternalError

    monkeypatch.setattr(emit.names, "http_route_name", lambda route: "clash")
    with pytest.raises(InternalError, match="two different HTTPRoute resources named n/clash"):
        _build(HEAD + "  allow a -> b GET\n  allow b -> c GET\n  allow a -> c POST\n}\n")


def test_import_reads_shared_routes_back_exactly(tmp_path):
    """``import --from linkerd`` reads a route on each Server it names (the round trip of test_import.py does
    it on every corpus case; here on routes shared by three Servers, one of them among other routes)."""
    from test_import import imported_graph, write

    from meshpolicy import diff
    from meshpolicy.importer import run

    build = compile_text(METRICS, "linkerd")
    assert any(len(_parents(d)) == 3 for d in _docs(build.files).values())
    result = run([str(write(tmp_path, build.files))], "linkerd")
    change = diff.compare(build.analysis.graph, imported_graph(result))
    assert not change.changed, [c.request for c in change.changes] + list(change.notes)
    assert result.narrower == 0 and result.exact


def test_explain_names_the_shared_route_on_each_server(tmp_path):
    import json

    from helpers import invoke

    (tmp_path / "p.mesh").write_text(METRICS)
    named = {}
    for svc in ("a", "b", "c"):
        out = invoke(["explain", str(tmp_path / "p.mesh"), "n/prom", "->", f"n/{svc}", "GET", "/metrics",
                      "-t", "linkerd", "--format", "json"]).output
        data = json.loads(out)
        assert data["emitted_allows"] is True
        named[svc] = [(r["kind"], r["name"]) for r in data["resources"]]
    assert named["a"][0] == ("Server", "a-80") and named["c"][0] == ("Server", "c-80")
    assert named["a"][1:] == named["b"][1:] == named["c"][1:]          # the one route and its policy
    assert named["a"][1][0] == "HTTPRoute" and named["a"][1][1].startswith("metrics-")


def test_a_route_is_not_named_after_a_method_or_a_server():
    files = _build(HEAD + "  allow a -> s DELETE,GET,POST /api/*, /b\n}\n")
    [route] = [d for n, d in _docs(files).items() if not n.startswith("probes-")]
    name = route["metadata"]["name"]
    assert not any(m in name for m in ("delete", "get", "post", "s-8080"))
    assert name.startswith("api-b-")                                   # every path it matches, in order


def test_an_authentication_of_several_callers_says_so():
    files = _build(HEAD + "  allow a, b, c -> s GET\n  allow 10.0.0.0/8, 10.9.0.0/16 -> s :9000\n"
                   "  deny 10.1.0.0/16 -> s :9000\n}\n")
    kinds = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0]) for d in documents(files)}
    assert ("MeshTLSAuthentication", "n-a-and-2-more") in kinds
    assert ("NetworkAuthentication", "10-0-0-0-8-with-exceptions") in kinds
    policies = {d["metadata"]["name"] for d in documents(files) if d["kind"] == "AuthorizationPolicy"}
    assert "s-9000-networks" in policies and "s-9000" not in policies  # CIDR callers only: admitted by address


@pytest.mark.parametrize("move", [False, True], ids=["added", "moved"])
def test_verification_catches_a_route_shared_onto_a_server_whose_callers_differ(move):
    """The mutation sharing could make: c-80's parentRef on the route of a-80 and b-80 (prom may GET /metrics)
    while c's own rule is for another caller; verification must refuse the build (MP501)."""
    text = METRICS.replace("allow prom -> c GET /metrics", "allow a -> c GET /metrics")
    build = compile_text(text, "linkerd")
    assert disagreements(build, "linkerd") == []
    routes = {p: yaml.safe_load(t) for p, t in build.files.items() if "/httproute-metrics-" in p}
    [shared] = [p for p, d in routes.items() if _parents(d) == ["a-80", "b-80"]]
    [own] = [p for p, d in routes.items() if _parents(d) == ["c-80"]]
    doc = routes[shared]
    doc["spec"]["parentRefs"].append({"group": "policy.linkerd.io", "kind": "Server", "name": "c-80"})
    build.files[shared] = yaml.safe_dump(doc)
    if move:  # c-80 on the shared route only: prom may GET /metrics on c, a may not
        del build.files[own]
        build.files["kustomization.yaml"] = build.files["kustomization.yaml"].replace(
            f"  - {own}\n", "").replace(f"- {own}\n", "")
        found = disagreements(build, "linkerd")
        assert any(f.startswith("n/prom") and "n/c:80" in f and "decider refuses, linkerd YAML allows" in f
                   for f in found), found
    # added: c-80 has both routes, tied on GET /metrics: the reader refuses to guess (Ambiguous), so does verify
    with pytest.raises(MeshError) as err:
        pipeline.check(build, "linkerd")
    assert "MP501" in {d.code for d in err.value.diagnostics if d.severity == "error"}
    assert "n/c:80 GET /metrics" in str(err.value)


def test_a_caller_added_to_one_of_the_servers_moves_it_to_another_route():
    before = _build(METRICS)
    after = _build(METRICS.replace("allow prom -> c GET /metrics", "allow prom, a -> c GET /metrics"))
    old, new = _docs(before), _docs(after)
    [shared] = [n for n, d in old.items() if _parents(d) == ["a-80", "b-80", "c-80"]]
    assert _parents(new[shared]) == ["a-80", "b-80"]                   # the same route, without c
    [moved] = [n for n, d in new.items() if _parents(d) == ["c-80"]]
    assert moved not in old and _policies_of(after, moved) == [moved]
    assert disagreements(compile_text(METRICS.replace("allow prom -> c", "allow prom, a -> c"), "linkerd"),
                         "linkerd") == []


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
    target: str = "s"

    def __str__(self) -> str:
        parts = [f"  {self.action} {', '.join(self.sources)} -> {self.target}", ",".join(self.methods),
                 ", ".join(self.paths), self.port]
        return " ".join(p for p in parts if p)


def _text(rules: list[R]) -> str:
    return HEAD + "".join(f"{r}\n" for r in rules) + "}\n"


def subsets(items: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(items), min_size=1, max_size=2, unique=True).map(tuple)


rule_lists = st.lists(st.builds(
    R, st.sampled_from(["allow", "allow", "deny"]), subsets(SOURCES),
    st.one_of(st.just(()), subsets(METHODS)), st.one_of(st.just(()), subsets(PATHS)),
    st.sampled_from(["", ":8080"])), min_size=1, max_size=5)


def _builds(*texts: str) -> list[dict[str, str]]:
    try:
        return [_build(text) for text in texts]
    except MeshError:
        assume(False)
        raise


def _touches(doc: dict, server: str, routes: dict[str, dict]) -> bool:
    """A resource of ``server``: a route attached to it, or a policy on it or on such a route."""
    if doc["kind"] in ROUTES:
        return server in _parents(doc)
    if doc["kind"] == "AuthorizationPolicy":
        target = doc["spec"]["targetRef"]["name"]
        return target == server or (target in routes and server in _parents(routes[target]))
    return doc["kind"] != "Server"  # an authentication is shared by content: it may come and go


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(rules=rule_lists)
def test_a_server_with_the_same_rules_only_joins_the_parent_refs(rules):
    """t declared like s: giving t the rules of s adds t-8080 to each route of s-8080 and changes nothing else
    (new files: t's own Server-level policies, where s-8080 has no routes)."""
    before, after = _builds(_text(rules), _text(rules + [replace(r, target="t") for r in rules]))
    new = _only_parents_changed(before, after)
    assert all(p in after and p.startswith("n/authorizationpolicy-t-8080") for p in new), new
    for doc in _docs(after).values():
        parents = _parents(doc)
        assert ("s-8080" in parents) == ("t-8080" in parents), parents


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(rules=rule_lists, others=rule_lists, which=st.integers(0, 4), kind=st.sampled_from(["method", "caller"]),
       pick=st.integers(0, 7))
def test_a_one_rule_change_touches_only_the_routes_of_its_server(rules, others, which, kind, pick):
    """A method or a caller added to a rule of t: every resource of s (whose rules did not change) keeps its
    name and its content, but for t-8080 joining or leaving a route's parentRefs."""
    ts = [replace(r, target="t") for r in others]
    rule = ts[which % len(ts)]
    if kind == "method":
        extra = [m for m in METHODS if m not in rule.methods]
        assume(rule.methods and extra)                     # a method-less rule takes every method already
        edited = replace(rule, methods=(*rule.methods, extra[pick % len(extra)]))
    else:
        extra = [s for s in SOURCES if s not in rule.sources]
        edited = replace(rule, sources=(*rule.sources, extra[pick % len(extra)]))
    before, after = _builds(_text(rules + ts), _text(rules + [edited if r is rule else r for r in ts]))
    old, new = _docs(before), _docs(after)
    for routes in (old, new):
        for name, doc in routes.items():
            if "s-8080" in _parents(doc):
                other = (new if routes is old else old).get(name)
                assert other is not None and _without(other, "parentRefs") == _without(doc, "parentRefs"), name
                assert set(_parents(other)) - {"t-8080"} == set(_parents(doc)) - {"t-8080"}
    for path in set(before) | set(after):
        if before.get(path) != after.get(path) and path != "kustomization.yaml":
            doc = yaml.safe_load(after.get(path) or before[path])
            if path in before and path in after and _without(doc) == _without(yaml.safe_load(before[path])):
                continue  # provenance only
            assert _touches(doc, "t-8080", {**old, **new}) or doc["kind"] in ROUTES, path


@pytest.mark.slow
@settings(max_examples=80, deadline=None, derandomize=True)
@given(rules=rule_lists, others=rule_lists, same=st.booleans(), shared=st.lists(st.integers(0, 4), max_size=3))
def test_shared_routes_are_proved_on_every_server(rules, others, same, shared):
    """s and t with their own rules (or the same ones) and some in common, so that some of their routes are
    shared and some have the same matches with other callers: the build is proved on the whole request space,
    or refused with MP301 alone."""
    common = [rules[i % len(rules)] for i in shared]
    text = _text(rules + [replace(r, target="t") for r in (rules if same else others) + common])
    proved_or_refused(text, "linkerd")
