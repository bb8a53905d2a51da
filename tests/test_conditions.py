"""Request conditions (LANGUAGE 2.4, issue 11 item 2): meaning, request space, targets, explain, lint, fmt."""

from __future__ import annotations

import pytest
from helpers import compile_errors, compile_text, disagreements, documents, invoke, proved_or_refused
from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy import pipeline, verify
from meshpolicy.diagnostics import MeshError
from meshpolicy.diff import compare
from meshpolicy.fmt import format_source
from meshpolicy.graph.evaluate import Caller, Decider, Request, decide
from meshpolicy.graph.model import Identity, Token
from meshpolicy.graph.space import contexts_for, requests
from meshpolicy.lint import lint
from meshpolicy.source import SourceFile

POLICY = """\
issuer google https://accounts.google.com jwks https://www.googleapis.com/oauth2/v3/certs
issuer corp https://login.corp.example/realms/main
namespace shop {
  service frontend :8080/http
  service orders :8080/http :9090/tcp
  allow frontend -> orders POST :8080 if header X-Tenant=acme
  allow frontend -> orders GET :8080 if header x-debug
  allow any -> frontend GET /account/* :8080 if jwt google, claim groups=shoppers
  allow any -> frontend POST :8080 if jwt corp, claim scope=write
  deny any -> frontend GET /account/admin :8080 if jwt google, claim groups=banned
}
"""
FRONTEND = Caller(Identity("shop", "frontend"), "192.0.2.10")
GOOGLE = "https://accounts.google.com"
CORP = "https://login.corp.example/realms/main"


@pytest.fixture(scope="module")
def graph():
    return pipeline.analyze([SourceFile("shop.mesh", POLICY)]).graph


def orders(method: str, headers=()) -> Request:
    return Request(FRONTEND, "shop", "orders", 8080, method, "/", tuple(headers))


def frontend(method: str, path: str, token: Token | None) -> Request:
    return Request(FRONTEND, "shop", "frontend", 8080, method, path, (), token)


@pytest.mark.parametrize(("headers", "method", "allowed"), [
    ([("x-tenant", "acme")], "POST", True),           # the name was written X-Tenant: names compare without case
    ([("x-tenant", "Acme")], "POST", False),          # values are exact
    ([("x-tenant", "acme2")], "POST", False),
    ([], "POST", False),
    ([("x-debug", "")], "GET", True),                 # present, even empty
    ([("x-debug", "1"), ("x-tenant", "zz")], "GET", True),
    ([("x-tenant", "acme")], "GET", False),           # each rule's conditions hold only with its own methods
])
def test_header_conditions(graph, headers, method, allowed):
    assert decide(graph, orders(method, headers)).allowed is allowed


@pytest.mark.parametrize(("token", "allowed"), [
    (Token(GOOGLE, "alice", (("groups", "shoppers"),)), True),
    (Token(GOOGLE, "alice", (), (("groups", ("admins", "shoppers")),)), True),   # a list holding it
    (Token(GOOGLE, "", (("groups", "shoppers"),)), False),                        # no sub
    (Token(GOOGLE, "alice", (("groups", "shoppers admins"),)), False),          # only scope/permission split
    (Token(GOOGLE, "alice", (), (), ("groups",)), False),                         # another type never matches
    (Token(CORP, "alice", (("groups", "shoppers"),)), False),                   # another issuer
    (None, False),
])
def test_jwt_and_claim_conditions(graph, token, allowed):
    assert decide(graph, frontend("GET", "/account/x", token)).allowed is allowed


def test_scope_and_permission_are_space_separated(graph):
    assert decide(graph, frontend("POST", "/", Token(CORP, "bob", (("scope", "read write"),)))).allowed
    assert not decide(graph, frontend("POST", "/", Token(CORP, "bob", (("scope", "read writer"),)))).allowed


def test_deny_with_conditions_refuses_only_when_they_all_hold(graph):
    banned = Token(GOOGLE, "eve", (), (("groups", ("banned", "shoppers")),))
    assert not decide(graph, frontend("GET", "/account/admin", banned)).allowed
    assert decide(graph, frontend("GET", "/account/admin", Token(GOOGLE, "al", (("groups", "shoppers"),)))).allowed


def test_the_space_separates_every_condition(graph):
    rules = [r for r in graph.rules if r.destination == ("shop", "frontend")]
    contexts = contexts_for(rules)
    tokens = {t for _, t in contexts}
    assert None in tokens and {t.issuer for t in tokens if t} == {GOOGLE, CORP}
    assert any(t and t.subject == "" for t in tokens)
    # every allow rule of the policy is live somewhere in the space, and every rule's conditions can fail
    decider = Decider(graph)
    granted = {r for req in requests(graph) for r in decider.decide(req).rules if decider.decide(req).allowed}
    assert {r.origin.line for r in granted} == {6, 7, 8, 9}


def test_a_never_rule_sees_requests_that_only_a_header_lets_through():
    text = POLICY.replace("}\n", "  never frontend -> orders POST\n}\n")
    with pytest.raises(MeshError) as err:
        pipeline.analyze([SourceFile("shop.mesh", text)])
    assert [d.code for d in err.value.diagnostics] == ["MP201"]
    assert "[x-tenant: acme]" in err.value.diagnostics[0].message


def test_istio_output_keeps_conditions_in_the_rule_and_authenticates_each_issuer():
    build = compile_text(POLICY)
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents(build.files)}
    jwt = docs[("RequestAuthentication", "frontend-jwt")]["spec"]
    assert jwt == {"selector": {"matchLabels": {"app": "frontend"}},
                   "jwtRules": [{"issuer": GOOGLE, "jwksUri": "https://www.googleapis.com/oauth2/v3/certs"},
                                {"issuer": CORP}]}  # no jwks: istiod discovers the keys from the issuer
    assert ("RequestAuthentication", "orders-jwt") not in docs  # no rule of orders names an issuer
    [shopper, _] = docs[("AuthorizationPolicy", "frontend-allow")]["spec"]["rules"]
    assert shopper["from"] == [{"source": {"requestPrincipals": [f"{GOOGLE}/*"]}}]
    assert shopper["when"] == [{"key": "request.auth.claims[groups]", "values": ["shoppers"]}]
    [tenant, debug] = docs[("AuthorizationPolicy", "orders-allow")]["spec"]["rules"]
    assert tenant["from"] == [{"source": {"principals": ["cluster.local/ns/shop/sa/frontend"]}}]
    assert tenant["when"] == [{"key": "request.headers[x-tenant]", "values": ["acme"]}]
    assert debug["when"] == [{"key": "request.headers[x-debug]", "values": ["*"]}]


def test_a_jwt_condition_goes_into_every_source_entry():
    text = ("issuer g https://g.example\nnamespace n {\n  service s :80/http\n  service c :80/http\n"
            "  allow c, 10.0.0.0/8 -> s :80 if jwt g\n}\n")
    [rule] = next(d for d in documents(compile_text(text).files) if d["metadata"]["name"] == "s-allow")["spec"]["rules"]
    assert rule["from"] == [
        {"source": {"principals": ["cluster.local/ns/n/sa/c"], "requestPrincipals": ["https://g.example/*"]}},
        {"source": {"ipBlocks": ["10.0.0.0/8"], "requestPrincipals": ["https://g.example/*"]}}]


def test_linkerd_refuses_conditions_naming_target_and_line():
    out = compile_errors(POLICY, "linkerd")
    assert "policy.mesh:6:3: error[MP301]: a rule with request conditions ('if ...') cannot be expressed exactly on " \
           "target 'linkerd'" in out
    assert out.count("error[MP301]") == 5


def test_verify_accepts_only_the_refusal_of_a_token_its_destination_cannot_use(graph):
    decider = Decider(graph)
    stranger = Token("https://other.example", "x")
    assert decider.may_refuse(Request(FRONTEND, "shop", "orders", 8080, "GET", "/", (), stranger))
    assert not decider.may_refuse(frontend("GET", "/", Token(GOOGLE, "x")))  # its rules name google
    assert not decider.may_refuse(orders("GET"))  # no token
    build = compile_text(POLICY)
    assert verify.verify(build.analysis.graph, build.files, "istio", build.open_probes) == []


def test_explain_takes_headers_and_a_token(tmp_path):
    (tmp_path / "shop.mesh").write_text(POLICY)
    base = ["explain", tmp_path / "shop.mesh", "shop/frontend", "->"]
    out = invoke([*base, "shop/orders", "POST", "/", "--header", "X-Tenant=acme"]).output
    assert out.splitlines()[:2] == [("shop/frontend (mTLS, from 192.0.2.10) -> shop/orders:8080 POST / "
                                     "[x-tenant: acme]"), "allowed"]
    out = invoke([*base, "shop/frontend", "GET", "/account/x", "--jwt", "google", "--claim", "groups=x",
                  "--claim", "groups=shoppers"]).output
    assert "allowed" in out.splitlines()[1] and "groups=[x,shoppers]" in out.splitlines()[0]
    out = invoke([*base, "shop/frontend", "GET", "/account/x", "--jwt", "google"]).output
    assert "    - condition: claim groups=shoppers does not hold" in out
    assert "did you mean 'google'" in invoke([*base, "shop/frontend", "GET", "--jwt", "gogle"], code=2).output
    assert "--claim needs --jwt" in invoke([*base, "shop/frontend", "GET", "--claim", "a=b"], code=2).output
    assert "given twice" in invoke([*base, "shop/orders", "GET", "--header", "a=1", "--header", "A=2"],
                                   code=2).output
    assert "not an HTTP port" in invoke([*base, "shop/orders", ":9090", "--header", "a=1"], code=2).output


def test_lint_warns_on_headers_that_stand_in_for_authentication():
    text = ("issuer g https://g.example\nnamespace n {\n  service s :80/http\n  service c :80/http\n"
            "  allow any -> s GET :80 if header x-tenant=a\n"          # ML030
            "  allow 10.0.0.0/8 -> s PUT :80 if header x-debug\n"      # ML030
            "  allow any -> s POST :80 if jwt g, header x-tenant=a\n"  # a token: fine
            "  allow c -> s DELETE :80 if header x-tenant=a\n"         # an identity: fine
            "  deny c -> s DELETE :80 if header x-readonly=true\n"     # ML031
            "  deny c -> s PUT :80 if jwt g, header x-readonly=true\n" # a token too: fine
            "}\n")
    found = [(d.code, d.span.line) for d in lint([SourceFile("p.mesh", text)])
             if d.code in ("ML030", "ML031")]
    assert found == [("ML030", 5), ("ML030", 6), ("ML031", 9)]


def test_fmt_writes_conditions_and_issuers_canonically():
    messy = ("issuer   google   https://accounts.google.com   jwks  https://x.example/certs\n"
             "service a :80/http\nallow  *  ->  a  GET  :80  if  header  X-T=v ,jwt google,claim  g=s\n")
    assert format_source(SourceFile("p.mesh", messy)) == (
        "issuer google https://accounts.google.com jwks https://x.example/certs\n"
        "service a :80/http\nallow * -> a GET :80 if header X-T=v, jwt google, claim g=s\n")


def test_diff_names_the_conditions_of_a_change():
    before = pipeline.analyze([SourceFile("a.mesh", POLICY)]).graph
    text = POLICY.replace("  allow frontend -> orders GET :8080 if header x-debug\n", "")
    after = pipeline.analyze([SourceFile("a.mesh", text)]).graph
    [change] = compare(before, after).changes
    assert change.kind == "removed"
    assert change.request == "shop/frontend -> shop/orders :8080 GET if header x-debug"
    # a change that holds for some of the requests those conditions describe says so
    text = POLICY.replace("if header X-Tenant=acme", "if header X-Tenant=acme, header x-debug")
    [change] = compare(before, pipeline.analyze([SourceFile("a.mesh", text)]).graph).changes
    assert change.request == "shop/frontend -> shop/orders :8080 POST if header x-tenant=acme, not header x-debug"


# -- random policies with conditions: Istio's reader agrees with the decider, Linkerd refuses with MP301 ------

RANDOM_HEAD = """issuer g https://g.example
issuer h https://h.example/realm
namespace n {{
  mtls {mode}
  service s :8080/http :9000/tcp probes /healthz
  service a :80/http
"""
CONDITIONS = ["header x-a=1", "header x-a=2", "header x-b", "header X-B=v", "jwt g", "jwt h",
              "claim groups=a", "claim scope=w", "claim role=r"]


@st.composite
def conditional_rules(draw) -> str:
    action = draw(st.sampled_from(["allow", "allow", "deny"]))
    sources = draw(st.lists(st.sampled_from(["a", "*", "any", "10.0.0.0/8"]), min_size=1, max_size=2, unique=True))
    method = draw(st.sampled_from(["", "GET", "POST", "GET,POST"]))
    chosen = draw(st.lists(st.sampled_from(CONDITIONS), max_size=3, unique=True))
    # one value per header and one issuer per rule (MP145), a claim only with a jwt (MP144)
    headers: dict[str, str] = {}
    for c in [c for c in chosen if c.startswith("header")]:
        headers.setdefault(c.split()[1].split("=")[0].lower(), c)
    jwt = next((c for c in chosen if c.startswith("jwt")), None)
    claims = [c for c in chosen if c.startswith("claim")] if jwt else []
    parts = ([jwt] if jwt else []) + claims + list(headers.values())
    tail = f" if {', '.join(parts)}" if parts else ""
    return f"  {action} {', '.join(sources)} -> s {method} :8080{tail}".replace("  :", " :")


conditional_policies = st.builds(lambda mode, body: RANDOM_HEAD.format(mode=mode) + "\n".join(body) + "\n}\n",
                                 st.sampled_from(["strict", "permissive"]),
                                 st.lists(conditional_rules(), min_size=1, max_size=5))


@pytest.mark.slow
@settings(max_examples=20, deadline=None, derandomize=True)
@given(text=conditional_policies)
def test_random_policies_with_conditions_mean_what_the_decider_says(text):
    assert disagreements(compile_text(text), "istio") == [], text  # Istio expresses every condition
    proved_or_refused(text, "linkerd")
