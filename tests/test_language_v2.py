"""LANGUAGE.md version 2 (../shared/LANGUAGE.md, issue 11): every example of the page and every statement form it
gives builds, or fails, exactly as the page says.

- the page's example of section 2 (kept verbatim in tests/cases/basics/language-example.mesh, see
  tests/test_language.py) fails on its ``never`` rule only, and without it builds on Istio and is refused on
  Linkerd exactly where section 4 says (the ``jwt`` condition);
- the rule forms of section 2.4, with concrete values, build on both targets (or are refused where a target
  cannot express them, with MP301 naming the construct);
- every sentence of sections 1 and 2 that calls something an error is an error, with its code;
- the meanings that sections 2.4 and 3 spell out (patterns, gRPC, conditions, ``**``) are what the reference
  decider answers (``meshpolicy explain``), and every build above is verified against it by each target's reader.
"""

from __future__ import annotations

import re

import pytest
from helpers import invoke, schemas_root

from meshpolicy import pipeline
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError, Severity
from meshpolicy.source import SourceFile


def page() -> str:
    return (schemas_root().parent / "LANGUAGE.md").read_text()


def page_example() -> str:
    return re.search(r"```\n(trust-domain.*?)```", page(), re.DOTALL).group(1)


def analyze(text: str) -> pipeline.Analysis:
    return pipeline.analyze([SourceFile("page.mesh", text)])


def errors(text: str, target: str | None = None) -> list[tuple[str, int]]:
    """(code, line) of every error of ``text``: the policy's own, then (with ``target``) the backend's."""
    with pytest.raises(MeshError) as err:
        result = analyze(text)
        if target is not None:
            pipeline.lower(result, target)
    return sorted((d.code, d.span.line if d.span else 0) for d in err.value.diagnostics
                  if d.severity is Severity.ERROR)


def line_of(text: str, needle: str) -> int:
    [number] = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return number


# -- the page's example --------------------------------------------------------------------------------------
def test_the_page_is_version_2():
    assert page().startswith("# The mesh language, version 2\n")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_page_example_fails_exactly_on_its_never_rule(target):
    """`never frontend -> payments POST` forbids what `allow frontend -> payments grpc ...` grants (a gRPC call is
    a POST, section 2.4): "The build fails, naming the never line and each allow rule that grants part of what it
    forbids"."""
    text = page_example()
    with pytest.raises(MeshError) as err:
        pipeline.lower(analyze(text), target)
    [diag] = [d for d in err.value.diagnostics if d.severity is Severity.ERROR]
    assert (diag.code, diag.span.line) == ("MP201", line_of(text, "never frontend -> payments POST"))
    assert [r.span.line for r in diag.related] == [line_of(text, "allow frontend -> payments grpc")]


WITHOUT_NEVER = ("  never frontend -> payments POST", "  # (the never rule, left out)")


def test_without_its_never_rule_the_page_example_builds_on_istio():
    text = page_example().replace(*WITHOUT_NEVER)
    result = pipeline.lower(analyze(text), "istio")  # verified: Istio's reader decides as the page does
    kinds = {re.search(r"(?m)^kind: \"?(\w+)", body).group(1) for body in result.files.values()
             if "kind:" in body}
    assert {"AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"} <= kinds


#: the lines of the page's example that Linkerd may refuse (MP301, naming the rule and the target), each for a reason
#: section 4 allows ("where a construct cannot be expressed exactly on a target, the build fails"), written in
#: docs/targets/linkerd.md: "Linkerd has no JWT authorization: a jwt condition is an error on this target"; header
#: conditions are not emitted for Linkerd; a `shop/**` Server would cover workloads whose mTLS modes differ on its
#: port (payments is permissive)
LINKERD_REFUSES = ("allow any -> frontend GET /account/* :8080 if jwt google, claim groups=shoppers",
                   "allow frontend -> orders POST /api/* :8080 if header x-tenant=acme",
                   "allow monitoring/prometheus -> shop/** GET /metrics :9102")


def code_of(line: str) -> str:
    return line.split("#")[0].strip()


def test_without_its_never_rule_linkerd_refuses_only_what_section_4_lets_it_refuse():
    text = page_example().replace(*WITHOUT_NEVER)
    found = errors(text, "linkerd")
    refused = {code_of(text.splitlines()[line - 1]) for _, line in found}
    assert {code for code, _ in found} == {"MP301"}
    assert LINKERD_REFUSES[0] in refused and refused <= set(LINKERD_REFUSES), refused
    rest = "".join(line + "\n" for line in text.splitlines() if code_of(line) not in LINKERD_REFUSES)
    assert pipeline.lower(analyze(rest), "linkerd").files  # the rest builds, verified


# -- the rule forms of section 2.4, with concrete values ----------------------------------------------------
HEAD = """\
issuer google https://accounts.google.com
namespace shop {
  service a :8080/http :8081/http
  service b :8080/http :8081/http :9000/grpc
"""
#: (form, the targets that refuse it with MP301, and why the page lets them)
FORMS: list[tuple[str, tuple[str, ...]]] = [
    ("allow a -> b", ()),
    ("allow a -> b GET,POST", ()),
    ("allow a -> b /x, /y/*", ()),
    ("allow a -> b /*", ()),
    ("allow a -> b :8080", ()),
    ("allow a -> b GET /x :8080,8081", ()),
    ("deny a -> b DELETE", ()),
    ("never a -> b POST", ()),
    # without ports, the grpc ports only (9000); Linkerd: one gRPC port cannot hold both a method and a whole-service
    # match exactly (docs/targets/linkerd.md, gRPC)
    ("allow a -> b grpc p.S/M, p.T", ("linkerd",)),
    ("allow a -> b grpc p.S/M :9000", ()),
    ("allow a -> b GET /static*, *.png :8080", ()),   # Linkerd: RegularExpression path matches
    # Linkerd: request conditions are not emitted (docs/targets/linkerd.md, "Request conditions")
    ("allow a -> b POST /api/* :8080 if header x-tenant=acme", ("linkerd",)),
    ("allow a -> b GET :8080 if header x-user", ("linkerd",)),
    ("allow a -> b GET :8080 if jwt google", ("linkerd",)),    # section 4: no JWT authorization on Linkerd
    ("allow a -> b GET :8080 if jwt google, claim groups=shoppers", ("linkerd",)),
    ("allow a -> shop/** GET /metrics :9102", ()),
    # Linkerd: a ** Server on a port that declared services also serve would overlap theirs (docs/targets/linkerd.md)
    ("allow a -> ** :8080", ("linkerd",)),
]


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize(("form", "refused"), FORMS, ids=[f for f, _ in FORMS])
def test_each_rule_form_builds_or_is_refused_by_name(form, refused, target):
    text = HEAD + f"  {form}\n}}\n"
    if target in refused:
        found = errors(text, target)
        assert found == [("MP301", 5)] * len(found) and found, found
    else:
        assert pipeline.lower(analyze(text), target).files  # verified against the reference decider


def test_issuer_takes_an_optional_jwks():
    for statement in ("issuer google https://accounts.google.com",
                      "issuer google https://accounts.google.com jwks https://www.googleapis.com/oauth2/v3/certs"):
        graph = analyze(statement + "\nnamespace shop {\n  service a :8080/http\n"
                        "  allow a -> a GET :8080 if jwt google\n}\n").graph
        assert graph.rules


# -- every sentence of sections 1 and 2 that says "is an error" ---------------------------------------------
BODY = """\
issuer google https://accounts.google.com
namespace ext external {
  service caller
}
namespace shop {
  service a :8080/http
  service b :8080/http :5432/tcp :9000/grpc
  service c :8080/http
  %s
}
"""
#: (what the page says, the line that says it wrong, the code)
ERRORS = [
    ("§1: a keyword can't name a service (v2 keywords)", "service header :8080/http", "MP101"),
    ("§1: a keyword can't name a service (v2 keywords)", "service jwks", "MP101"),
    ("§1: names are DNS-1123 labels", "service Orders", "MP101"),
    ("§2.2: a service is declared once", "service a :8080/http", "MP102"),
    ("§2.2: a reference to a service that is not declared", "allow a -> d", "MP103"),
    ("§2.2: a port number is 1-65535", "allow a -> b :65536", "MP107"),
    ("§2.1: an external namespace's service as a destination", "allow a -> ext/caller", "MP106"),
    ("§2.3: a group cycle", "group g = h\n  group h = g\n  allow a -> g", "MP104"),
    ("§2.3: ** is a destination only", "allow ** -> b :8080", "MP150"),
    ("§2.3: ** is a destination only", "allow shop/** -> b :8080", "MP150"),
    ("§2.4: METHODS from the closed set", "allow a -> b PURGE :8080", "MP130"),
    ("§2.4: no other * in a path", "allow a -> b /a*/b :8080", "MP114"),
    ("§2.4: no other * in a path", "allow a -> b /*a* :8080", "MP114"),
    ("§2.4: a grpc rule without ports and no grpc port", "allow a -> c grpc p.S", "MP131"),
    ("§2.4: a ** rule with METHODS must give PORTS", "allow a -> ** GET /metrics", "MP151"),
    ("§2.4: a ** rule with conditions must give PORTS", "allow a -> shop/** if header x-a=b", "MP151"),
    ("§2.4: a ** rule's HTTP port that a service declares tcp", "allow a -> ** GET :5432", "MP152"),
    ("§2.4: a header VALUE may not begin or end with *", "allow a -> b GET :8080 if header x-a=*b", "MP143"),
    ("§2.4: a header VALUE may not begin or end with *", "allow a -> b GET :8080 if header x-a=b*", "MP143"),
    ("§2.4: claim needs a jwt condition in the same rule", "allow a -> b GET :8080 if claim g=x", "MP144"),
    ("§2.4: jwt names a declared issuer", "allow a -> b GET :8080 if jwt gogle", "MP141"),
    ("§2.4: conditions need HTTP-family ports", "allow a -> b :5432 if header x-a=b", "MP109"),
    ("§2.4: issuer at top level only", "issuer other https://issuer.example.com", "MP117"),
    ("§2.4: METHODS with an explicit tcp port", "allow a -> b GET :5432", "MP109"),
    ("§2.4: a port that the destination does not declare", "allow a -> b :9999", "MP110"),
]


@pytest.mark.parametrize(("says", "line", "code"), ERRORS, ids=[f"{c}-{w}" for _, w, c in ERRORS])
def test_what_the_page_calls_an_error_is_one(says, line, code):
    text = BODY % line
    assert code in {c for c, _ in errors(text)}, says


def test_an_unused_group_is_a_warning():
    analysis = analyze(BODY % "group g = a, b")
    assert [d.code for d in analysis.diagnostics if d.severity is Severity.WARNING] == ["MP105"]


def test_an_unknown_method_close_to_one_gets_a_hint():
    with pytest.raises(MeshError) as err:
        analyze(BODY % "allow a -> b GTE :8080")
    [diag] = err.value.diagnostics
    assert diag.code == "MP130" and diag.hint is not None and "GET" in diag.hint


# -- what sections 2.4 and 3 say a rule means, asked of the reference decider (meshpolicy explain) ----------
MEANING = """\
issuer google https://accounts.google.com
namespace shop {
  service a :8080/http
  service b :8080/http :9000/grpc
  service c :8080/http
  allow a -> b GET /a/b, /p/q/*, /pre*, *.png :8080
  allow a -> b grpc pkg.Svc/Do, pkg.All
  allow c -> b POST /h :8080 if header x-tenant=acme
  allow c -> b GET /present :8080 if header x-req
  allow c -> b GET /j :8080 if jwt google, claim groups=shoppers
  allow c -> b GET /s :8080 if jwt google, claim scope=write
  allow a -> shop/** :9102
}
"""
#: (the question, as `meshpolicy explain` takes it, allowed?, the sentence of the page it checks)
QUESTIONS = [
    ("shop/a -> shop/b GET /a/b :8080", True, "/a/b is exactly that path"),
    ("shop/a -> shop/b GET /a/b/ :8080", False, "/a/b is exactly that path"),
    ("shop/a -> shop/b GET /a/b?x=1 :8080", True, "a query string never takes part in matching"),
    ("shop/a -> shop/b GET /p/q :8080", True, "/a/b/* is /a/b itself"),
    ("shop/a -> shop/b GET /p/q/r/s :8080", True, "/a/b/* is every path under /a/b/"),
    ("shop/a -> shop/b GET /p/qr :8080", False, "/a/b/* is /a/b and what is under /a/b/ only"),
    ("shop/a -> shop/b GET /prefix :8080", True, "/a/b* starts with the characters /a/b (so also /a/bc)"),
    ("shop/a -> shop/b GET /pre :8080", True, "/a/b* starts with the characters /a/b"),
    ("shop/a -> shop/b GET /pr :8080", False, "/a/b* starts with the characters /a/b"),
    ("shop/a -> shop/b GET /img/cat.png :8080", True, "*.png is every path that ends with .png"),
    ("shop/a -> shop/b GET /cat.pngx :8080", False, "*.png is every path that ends with .png"),
    ("shop/a -> shop/b POST /a/b :8080", False, "METHODS: the methods given"),
    ("shop/a -> shop/b grpc pkg.Svc/Do :9000", True, "grpc pkg.Service/Method"),
    ("shop/a -> shop/b POST /pkg.Svc/Do :9000", True, "grpc pkg.Service/Method is a POST to /pkg.Service/Method"),
    ("shop/a -> shop/b grpc pkg.Svc/Other :9000", False, "grpc pkg.Service/Method is that method only"),
    ("shop/a -> shop/b grpc pkg.All/Any :9000", True, "grpc pkg.Service is every method of that service"),
    ("shop/c -> shop/b POST /h :8080 --header x-tenant=acme", True, "header NAME=VALUE"),
    ("shop/c -> shop/b POST /h :8080 --header X-Tenant=acme", True, "header NAME, case-insensitive"),
    ("shop/c -> shop/b POST /h :8080 --header x-tenant=ACME", False, "with exactly VALUE"),
    ("shop/c -> shop/b POST /h :8080", False, "the request carries header NAME"),
    ("shop/c -> shop/b GET /present :8080 --header x-req=anything", True, "header NAME: the header is present"),
    ("shop/c -> shop/b GET /present :8080", False, "header NAME: the header is present"),
    ("shop/c -> shop/b GET /j :8080 --jwt google --claim groups=shoppers", True, "claim NAME=VALUE: the string"),
    ("shop/c -> shop/b GET /j :8080 --jwt google --claim groups=a --claim groups=shoppers", True,
     "claim NAME=VALUE: or a list holding it"),
    ("shop/c -> shop/b GET /j :8080 --jwt google --claim groups=admins", False, "claim NAME=VALUE"),
    ("shop/c -> shop/b GET /j :8080", False, "jwt ISSUER: the request carries a valid JWT from the issuer"),
    ("shop/c -> shop/b GET /s :8080 --jwt google --claim scope=read%write", True,
     "scope is read as a space-separated list"),
    ("shop/a -> shop/** :9102", True, "NS/** is every workload of NS, declared or not"),
    ("shop/a -> shop/c :9102", True, "the ports of a ** rule apply to declared services too"),
    ("shop/a -> shop/c GET / :8080", False, "§3.4: else it is refused"),
    ("shop/b -> shop/** :9102", False, "§3.4: every workload of a managed namespace is under the default deny"),
]


@pytest.mark.parametrize(("question", "allowed", "says"), QUESTIONS, ids=[q for q, _, _ in QUESTIONS])
def test_the_decider_means_what_the_page_says(question, allowed, says, tmp_path):
    policy = tmp_path / "meaning.mesh"
    policy.write_text(MEANING)
    words = [w.replace("%", " ") for w in question.split()]
    result = invoke(["explain", policy, *words], code=None)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split(":")[0] == ("allowed" if allowed else "refused"), (says, result.output)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_targets_agree_with_those_meanings_where_they_build(target):
    """Istio builds the policy above and its reader agrees with the decider on every request of its space; Linkerd
    refuses (MP301) only rules with what docs/targets/linkerd.md says it cannot express: conditions, and a gRPC
    port holding both a method and a whole-service match."""
    if target == "istio":
        assert pipeline.lower(analyze(MEANING), target).files
    else:
        refused = {code_of(MEANING.splitlines()[line - 1]) for _, line in errors(MEANING, target)}
        assert refused and all(" if " in rule or rule.endswith("pkg.All") for rule in refused), refused
