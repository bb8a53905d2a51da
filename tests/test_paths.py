"""Paths (issue 9, defect 1): the language accepts only paths every target admits.

One path that a mesh's admission refuses makes the whole object that holds it invalid (every deny rule
of a service shares one Istio AuthorizationPolicy; every refused request of a Linkerd port shares one
route), so the character rules are the language's, with a caret on the offending character; ``--crds``
also applies the admission rules the schemas do not carry; and a property shows that every path the
language accepts passes both meshes' admission rules as meshpolicy encodes them.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from helpers import as_json, compile_errors, documents, invoke, schemas_root
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy import pipeline
from meshpolicy.backends.linkerd.matching import regex
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph.model import PathKind, PathMatch
from meshpolicy.output import admission, crds
from meshpolicy.resolve.paths import ALLOWED, MAX_LENGTH, parse_path
from meshpolicy.source import SourceFile

POLICY = ("namespace shop {{\n  service frontend :8080/http\n  service orders :8080/http\n"
          "  allow frontend -> orders GET :8080\n  {rule}\n}}\n")


def rendered(rule: str) -> str:
    return compile_errors(POLICY.format(rule=rule))


def test_the_reproducer_is_refused_with_a_caret_on_the_brace():
    """issue 9: Istio's webhook refuses '{' and '}' in a path, which took every deny rule of orders down."""
    assert rendered("deny frontend -> orders GET /users/{id}/export :8080") == (
        "policy.mesh:5:38: error[MP114]: invalid path '/users/{id}/export': '{' is not allowed in a path\n"
        " 5 |   deny frontend -> orders GET /users/{id}/export :8080\n"
        "   |                                      ^\n"
        "  = hint: a path holds letters, digits and - . _ ~ ! $ & ' ( ) + ; = : @ / only; write any other "
        "character percent-encoded ('{' is %7B)")


@pytest.mark.parametrize(("path", "message", "caret"), [
    ('/a"b', "'\"' is not allowed in a path", (3, 1)),
    ("/a|b", "'|' is not allowed in a path", (3, 1)),
    ("/a[0]", "'[' is not allowed in a path", (3, 1)),
    ("/caf\u00e9", "'\\xe9' is not allowed in a path", (5, 1)),
    ("/admin\u200b", "'\\u200b' is not allowed in a path", (7, 1)),
    ("/\u0430dmin", "'\\u0430' is not allowed in a path", (2, 1)),
    ("/a%zz", "'%zz' is not a percent escape", (3, 1)),
    ("/a%4", "'%4' is not a percent escape", (3, 2)),
    ("/a%", "'%' is not a percent escape", (3, 1)),
    ("/a%2fb", "it contains '%2f'", (3, 3)),
    ("/a%5Cb", "it contains '%5C'", (3, 3)),
    ("/a%7b", "'%7b' is written with lower-case hex digits", (3, 3)),
    ("/a%41", "'%41' encodes 'A', which needs no escape", (3, 3)),
    ("/a*b", "'*' may only begin a path (*SUFFIX) or end it (/prefix* or /prefix/*)", (3, 1)),
    ("*a*", "'*' may only begin a path (*SUFFIX) or end it (/prefix* or /prefix/*)", (3, 1)),
    ("**", "'*' may only begin a path (*SUFFIX) or end it (/prefix* or /prefix/*)", (2, 1)),
    ("*/*", "'*' may only begin a path (*SUFFIX) or end it (/prefix* or /prefix/*)", (3, 1)),
    ("/a/*/b*", "'*' may only begin a path (*SUFFIX) or end it (/prefix* or /prefix/*)", (4, 1)),
    ("*.png?x", "a query string never takes part in matching", (6, 2)),
    ("/a?x=1", "a query string never takes part in matching", (3, 4)),
    ("/a\\b", "it contains '\\'", (3, 1)),
])
def test_each_refused_character_gets_a_caret_on_itself(path, message, caret):
    match, problem = parse_path(path)
    assert match is None and problem is not None
    assert problem.message.endswith(": " + message)
    assert (problem.at + 1, problem.width) == caret


def test_a_path_longer_than_the_gateway_api_admits_is_refused():
    assert parse_path("/" + "a" * (MAX_LENGTH - 1))[1] is None
    problem = parse_path("/" + "a" * MAX_LENGTH)[1]
    assert problem is not None and f"longer than {MAX_LENGTH} characters" in problem.message


@pytest.mark.parametrize("path", ["/a%20b", "/a:b@c!$&'()+;=", "/%C3%A9t%C3%A9", "/~user/x_y-z.json", "/a/*"])
def test_rfc_3986_paths_are_accepted(path):
    assert parse_path(path)[1] is None


@pytest.mark.parametrize(("path", "kind", "value"), [
    ("/a/b", PathKind.EXACT, "/a/b"),
    ("/a/b/*", PathKind.PREFIX, "/a/b"),
    ("/a/b*", PathKind.STARTS, "/a/b"),
    ("/a/.*", PathKind.STARTS, "/a/."),          # a character prefix: /a/.well-known
    ("*.png", PathKind.SUFFIX, ".png"),
    ("*/edit", PathKind.SUFFIX, "/edit"),
    ("*..", PathKind.SUFFIX, ".."),              # a suffix: /a.. ends with it
    ("*/", PathKind.SUFFIX, "/"),
])
def test_the_four_kinds_of_path(path, kind, value):
    """LANGUAGE §2.4: exact, segment prefix, character prefix and suffix (issue 11, item 3)."""
    assert parse_path(path) == (PathMatch(kind, value), None)


@pytest.mark.parametrize(("path", "message"), [
    ("*//x", "it contains '//'"),
    ("*/../x", "it contains a dot segment"),
    ("*/./x", "it contains a dot segment"),
    ("/a/../b*", "it contains a dot segment"),
    ("/a//b*", "it contains '//'"),
    ("a.png", "a path starts with '/'"),
])
def test_patterns_are_normalized_like_paths(path, message):
    match, problem = parse_path(path)
    assert match is None and problem is not None and problem.message.endswith(": " + message)


@pytest.mark.parametrize(("pattern", "inside", "outside"), [
    ("/a/b*", ["/a/b", "/a/bc", "/a/b/", "/a/b/c", "/a/bc?x=1"], ["/a", "/a/", "/a/c", "/A/b"]),
    ("/a/b/*", ["/a/b", "/a/b/", "/a/b/c"], ["/a/bc", "/a"]),
    ("*.png", ["/x.png", "/.png", "/a/b.png", "/x.png?v=2"], ["/x.PNG", "/x.pngx", "/x.png/", "/png"]),
    ("/a/b", ["/a/b", "/a/b?x"], ["/a/b/", "/a/bc"]),
])
def test_what_each_kind_matches(pattern, inside, outside):
    """The one meaning of a path (LANGUAGE §2.4), which the decider, the space and the backends use; a query
    string never takes part in matching; matching is case-sensitive."""
    match, problem = parse_path(pattern)
    assert problem is None and match is not None
    assert [p for p in inside if not match.matches(p)] == []
    assert [p for p in outside if match.matches(p)] == []


def test_a_suffix_pattern_does_not_collide_with_the_star_reference():
    """``*`` alone is a reference (any authenticated workload); ``*.png`` in a rule's paths is a suffix."""
    analysis = pipeline.analyze([SourceFile("p.mesh", POLICY.format(rule="allow * -> orders GET *.png :8080"))])
    rule = next(r for r in analysis.graph.rules if r.paths)
    assert [str(s) for s in rule.sources] == ["*"]
    assert rule.paths == (PathMatch(PathKind.SUFFIX, ".png"),)
    assert rendered("allow * -> orders GET ** :8080").startswith(
        "policy.mesh:5:26: error[MP114]: invalid path '**': '*' may only begin a path")


# -- every path the language accepts passes both meshes' admission rules ------------------------------------

def test_every_character_the_language_admits_passes_both_meshes_admission():
    """The whole character space below U+3000, one character in a path at a time."""
    for code in range(0x3000):
        ch = chr(code)
        path = f"/a{ch}b"
        if parse_path(path)[1] is not None:
            assert ch not in ALLOWED or ch == "*", repr(ch)
            continue
        assert admission.gateway_path_problems(path) == [], repr(ch)
        assert admission.istio_path_problem(path) is None, repr(ch)


#: what the language admits, and everything else (a path is cut at white space and ',')
GOOD = sorted(ALLOWED - {"/"}) + ["%20", "%7B", "%C3%A9", "%25"]
BAD = sorted(set(string.printable) - ALLOWED - set(" \t\n\r\x0b\x0c,")) + [
    "%2F", "%2f", "%41", "%7b", "%", "%g1", "\u00e9", "\u200b", "\u0430", "..", "."]


def paths_of(pieces: list[str]) -> st.SearchStrategy[str]:
    segments = st.lists(st.lists(st.sampled_from(pieces), min_size=1, max_size=6).map("".join), min_size=1,
                        max_size=5).map("/".join)
    return st.one_of(segments.map(lambda p: "/" + p), segments.map(lambda p: f"/{p}/*"),
                     segments.map(lambda p: f"/{p}*"), segments.map(lambda p: f"*{p}"),
                     st.sampled_from(["/*", "/" + "a" * (MAX_LENGTH - 1), "/" + "a" * MAX_LENGTH,
                                      "/" + "a" * (MAX_LENGTH - 2) + "*", "*" + "." * (MAX_LENGTH - 1)]))


def admission_problems(files: dict[str, str]) -> list[str]:
    return [f"{d['kind']}/{d['metadata']['name']} {where}: {message}"
            for d in documents(files) for where, message in admission.problems(as_json(d))]


def built_paths_pass_admission(paths: list[str]) -> bool:
    """Build both kinds of Istio object and Linkerd's routes of both APIs; False when the language refuses."""
    written = ", ".join(paths)
    text = POLICY.format(rule=f"deny frontend -> orders POST {written} :8080\n  allow frontend -> orders PUT "
                              f"{written} :8080")
    try:
        analysis = pipeline.analyze([SourceFile("p.mesh", text)])
    except MeshError as err:
        assert {d.code for d in err.diagnostics} <= {"MP001", "MP114"}, text
        return False
    patterned = any((p.startswith("*") or (p.endswith("*") and not p.endswith("/*"))) and len(regex(p)) > MAX_LENGTH
                    for p in paths)
    for target, options in (("istio", {}), ("linkerd", {"routes": "gateway"}), ("linkerd", {"routes": "policy"})):
        try:
            files = pipeline.lower(analysis, target, verify=False, **options).files
        except MeshError as err:  # a pattern too long for a RegularExpression value (docs/targets/linkerd.md)
            assert target == "linkerd" and patterned and {d.code for d in err.diagnostics} == {"MP301"}, text
            continue
        assert admission_problems(files) == [], (target, text)
        assert all(len(v) <= MAX_LENGTH for v in route_path_values(files)), (target, text)
    return True


def route_path_values(files: dict[str, str]) -> list[str]:
    """Every path match value of the HTTPRoutes (the CRD's maxLength is 1024, RegularExpression included)."""
    return [m["path"]["value"] for d in documents(files) if d["kind"] == "HTTPRoute"
            for rule in d["spec"]["rules"] for m in rule.get("matches", []) if "path" in m]


PROPERTY = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize(("pieces", "least"), [(GOOD, 60), (GOOD + BAD, 10)], ids=["rfc3986", "anything"])
def test_every_path_the_language_accepts_passes_both_meshes_admission(pieces, least):
    """Through the whole build: deny and allow rules (one Istio object each), Linkerd's routes of both APIs."""
    accepted = []

    @PROPERTY
    @given(paths=st.lists(paths_of(pieces), min_size=1, max_size=2))
    def run(paths):
        accepted.append(built_paths_pass_admission(paths))

    run()
    assert sum(accepted) >= least  # the property was exercised, not vacuous


def test_the_admission_rules_do_refuse_what_the_meshes_refuse():
    """The check above can fail: the reproducer's path, emitted as the backends would emit it."""
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "x"},
              "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/ok", "/users/{id}/export"]}}]}]}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
             "spec": {"rules": [{"matches": [{"path": {"type": "Exact", "value": "/a|b#c"}}]}]}}
    assert [w for w, _ in admission.problems(policy)] == ["spec/rules/0/to/0/operation/paths/1"]
    assert [m for _, m in admission.problems(route)] == [
        "the HTTPRoute CRD's validation refuses it: must not contain '#'",
        ("the HTTPRoute CRD's validation refuses it: must only contain valid characters "
        "(matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$)")]
    assert admission.istio_path_problem("/{*}/x/{**}") is None
    assert admission.istio_path_problem("/{**}/x/{*}") is not None


# -- --crds applies them ------------------------------------------------------------------------------------

def test_crds_validation_applies_the_admission_rules_the_schemas_do_not_carry():
    """A manifest the Istio CRD schema accepts but istiod's webhook refuses is an MP402 problem."""
    schemas = crds.load(schemas_root() / "istio")
    doc = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
           "metadata": {"name": "deny-orders", "namespace": "shop"},
           "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/users/{id}/export"]}}]}]}}
    problems = crds.validate(schemas, {"shop/authorizationpolicy-deny-orders.yaml": yaml.safe_dump(doc)})
    assert problems == [
        ("shop/authorizationpolicy-deny-orders.yaml: AuthorizationPolicy/deny-orders "
        "/spec/rules/0/to/0/operation/paths/0: istiod's webhook refuses it: invalid or unsupported path "
        "/users/{id}/export: contains '{' or '}' beyond a supported path template")]


def test_every_case_passes_the_admission_rules_through_crds(tmp_path):
    """The bundled examples, built for every target with --crds, still validate (nothing refused wrongly);
    examples/platform is built as its README says, its shared policy/ with the target's own folder."""
    root = Path(__file__).resolve().parent.parent
    examples = sorted(p for p in (root / "examples").iterdir() if p.is_dir() and p.name != "platform")
    platform = root / "examples" / "platform"
    for target, folder in (("istio", schemas_root() / "istio"), ("linkerd", schemas_root() / "linkerd" / "crds")):
        invoke(["build", *examples, "-t", target, "-o", tmp_path / target, "--crds", folder], code=0)
        own = [platform / target] if (platform / target).is_dir() else []
        invoke(["build", platform / "policy", *own, "-t", target, "-o", tmp_path / f"platform-{target}",
                "--crds", folder], code=0)
