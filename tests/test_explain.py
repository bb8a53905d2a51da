"""``meshpolicy explain``: allowed or refused, the deciding line, the mTLS mode, the nearest rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from meshpolicy.backends import TARGETS
from meshpolicy.cli import app

runner = CliRunner()

SHOP = """\
namespace shop {
  mtls strict
  service frontend :8080/http
  service orders :8080/http :9090/tcp probes /healthz
  service legacy :7000/tcp mtls permissive on 7000
  allow frontend -> orders GET,POST :8080
  allow frontend -> orders GET /api/orders/* :8080
  allow monitoring/prometheus -> orders :9090
  allow 10.0.0.0/8 -> legacy :7000
  deny * -> orders DELETE
}
namespace monitoring external {
  service prometheus account prometheus-server
}
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch) -> str:
    monkeypatch.chdir(tmp_path)
    Path("shop.mesh").write_text(SHOP, encoding="utf-8")
    return "shop.mesh"


def explain(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["explain", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_allowed_names_every_deciding_rule(policy):
    out = explain(policy, "shop/frontend", "->", "shop/orders", "GET", "/api/orders/7", ":8080")
    assert out.splitlines()[:5] == [
        "shop/frontend (mTLS, from 192.0.2.10) -> shop/orders:8080 GET /api/orders/7",
        "allowed",
        "  mtls:    strict (set at shop.mesh:2); the caller is authenticated",
        "  rule:    shop.mesh:6: allow frontend -> orders GET,POST :8080",
        "  rule:    shop.mesh:7: allow frontend -> orders GET /api/orders/* :8080",
    ]


def test_refused_by_default_names_the_nearest_rule_and_the_failing_condition(policy):
    out = explain(policy, "shop/frontend", "->", "shop/orders", "PUT", "/x")
    assert "refused: no allow rule matches (default deny)" in out
    assert "  nearest: shop.mesh:6: allow frontend -> orders GET,POST :8080\n    - method: PUT is not GET, POST" in out
    assert "port 8080 assumed: the first HTTP port of shop/orders" in out


def test_refused_by_deny(policy):
    out = explain(policy, "shop/frontend", "->", "shop/orders", "DELETE", "/api/orders/1")
    assert "refused by a deny rule" in out
    assert "  rule:    shop.mesh:10: deny * -> orders DELETE" in out


def test_refused_by_strict_mtls_for_a_plaintext_caller(policy):
    out = explain(policy, "shop/frontend", "->", "shop/orders", "GET", "/", "--plaintext", "--ip", "10.1.1.1")
    assert out.splitlines()[0] == "plaintext client 10.1.1.1 -> shop/orders:8080 GET /"
    assert "refused: port 8080 is mTLS strict and the caller is plaintext" in out
    assert "- mtls: the port is strict and the caller is plaintext" in out


def test_address_as_caller_on_a_permissive_port(policy):
    out = explain(policy, "10.2.3.4", "->", "shop/legacy", ":7000")
    assert "allowed" in out.splitlines()[1]
    assert "mtls:    permissive (set at shop.mesh:5); the caller is plaintext" in out
    refused = explain(policy, "192.168.1.1", "->", "shop/legacy", ":7000")
    assert "source: a plaintext client at 192.168.1.1 is not 10.0.0.0/8" in refused


def test_namespace_wildcard_caller_is_an_undeclared_workload(policy):
    out = explain(policy, "monitoring/*", "->", "shop/orders", ":9090")
    assert "refused" in out and "stands for an undeclared workload of namespace monitoring" in out
    assert "source: monitoring/unlisted is not monitoring/prometheus-server" in out
    assert "allowed" == explain(policy, "monitoring/prometheus", "->", "shop/orders", ":9090").splitlines()[1]


def test_arrow_may_be_joined_to_the_names(policy):
    assert explain(policy, "shop/frontend->shop/orders", "GET").splitlines()[1] == "allowed"


def test_json_output(policy):
    data = json.loads(explain(policy, "shop/frontend", "->", "shop/orders", "PUT", "/x", "--format", "json"))
    assert data["allowed"] is False and data["reason"] == "default"
    assert data["request"] == {"caller": "shop/frontend", "address": "192.0.2.10", "namespace": "shop",
                               "service": "orders", "port": 8080, "method": "PUT", "path": "/x",
                               "headers": {}, "token": None}
    assert data["mtls"] == {"mode": "strict", "set_at": "shop.mesh:2"}
    assert data["nearest"] == {"file": "shop.mesh", "line": 6, "text": "allow frontend -> orders GET,POST :8080",
                               "failed": ["method: PUT is not GET, POST"]}
    assert "resources" not in data


#: the resources that decide frontend's GET / on orders:8080 (names that content-derived hashes make unstable
#: are checked against the output below, not spelled here)
DECIDING = {
    "istio": [("PeerAuthentication", "default"), ("AuthorizationPolicy", "orders-allow")],
    "linkerd": [("Server", "orders-8080"), ("HTTPRoute", None), ("AuthorizationPolicy", None)],
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_names_the_deciding_resources(policy, target):
    data = json.loads(explain(policy, "shop/frontend", "->", "shop/orders", "GET", "/", "-t", target,
                              "--format", "json"))
    assert data["emitted_allows"] is True
    assert data["notes"] == ["port 8080 assumed: the first HTTP port of shop/orders"]
    named = [(r["kind"], r["name"]) for r in data["resources"]]
    assert [(kind, name if want else None) for (kind, name), (_, want) in zip(named, DECIDING[target], strict=True)] \
        == DECIDING[target]
    assert runner.invoke(app, ["build", policy, "-t", target, "-o", "out"]).exit_code == 0
    for res in data["resources"]:  # each one is a file of the build, holding that very resource
        doc = yaml.safe_load((Path("out") / res["file"]).read_text())
        assert (doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"]) == (
            res["kind"], res["namespace"], res["name"])
    if target == "linkerd":  # the authorization is the route's: frontend's access is granted on it
        route, authz = data["resources"][1], yaml.safe_load((Path("out") / data["resources"][2]["file"]).read_text())
        assert authz["spec"]["targetRef"]["name"] == route["name"]


def test_istio_resources_from_an_output_folder(policy):
    assert runner.invoke(app, ["build", policy, "-t", "istio", "-o", "out"]).exit_code == 0
    out = explain(policy, "shop/frontend", "->", "shop/orders", "PUT", "/", "-t", "istio", "-o", "out")
    assert "  emitted: PeerAuthentication shop/default (shop/peerauthentication-default.yaml)" in out
    assert "  emitted: AuthorizationPolicy shop/allow-nothing (shop/authorizationpolicy-allow-nothing.yaml)" in out
    deny = explain(policy, "shop/frontend", "->", "shop/orders", "DELETE", "/", "-t", "istio", "-o", "out")
    assert "  emitted: AuthorizationPolicy shop/orders-deny (shop/authorizationpolicy-orders-deny.yaml)" in deny
    assert "allow-nothing" not in deny


def test_a_reader_that_disagrees_is_reported(policy):
    assert runner.invoke(app, ["build", policy, "-t", "istio", "-o", "out"]).exit_code == 0
    Path("out/shop/authorizationpolicy-orders-allow.yaml").unlink()
    out = explain(policy, "shop/frontend", "->", "shop/orders", "GET", "/", "-t", "istio", "-o", "out")
    assert out.splitlines()[1] == "allowed"
    assert "decides this request differently from the source: run 'meshpolicy verify'" in out


@pytest.mark.parametrize("args, message", [
    (["shop/frontend", "shop/orders"], "write the question as"),
    (["shop/frontend", "->", "shop/ordrs"], "did you mean 'shop/orders'?"),
    (["shop/frontnd", "->", "shop/orders"], "is not a declared service"),
    (["*", "->", "shop/orders"], "is not one caller"),
    (["shop/frontend", "->", "monitoring/prometheus"], "external namespace"),
    (["shop/frontend", "->", "shop/orders", "GET", ":9090"], "not an HTTP port"),
    (["shop/frontend", "->", "shop/orders", ":99999"], "bad port"),
    (["shop/frontend", "->", "shop/orders", "--bogus"], "unknown option --bogus"),
    (["1.2.3.4", "->", "shop/orders", "--ip", "5.6.7.8"], "but --ip says"),
    (["shop/frontend", "->", "shop/orders", "GET", "*.png"], "'*.png' is a path pattern"),
])
def test_usage_errors_exit_2(policy, args, message):
    out = explain(policy, *args, code=2)
    assert message in out


def test_out_needs_target(policy):
    assert "--out needs --target" in explain(policy, "shop/frontend", "->", "shop/orders", "-o", "x", code=2)


# -- the question is read by the grammar (issue 10 item 8): one parser, the same diagnostics ----------------

def test_a_question_that_does_not_read_gets_a_diagnostic_with_a_caret(policy):
    """explain's question is the grammar's `query` rule: its syntax errors read like a policy's, with the
    question as the source line (`<question>`), the column and a caret."""
    out = explain(policy, "shop/frontend", "->", "shop/orders", "GET", "PUT", code=2)
    assert out == (
        "meshpolicy: error: the question does not read\n"
        "<question>:1:34: error[MP001]: unexpected 'PUT', expected one of a container port's name such as :http, "
        "a path such as /api/*, a port such as :8080\n"
        " 1 | shop/frontend -> shop/orders GET PUT\n"
        "   |                                  ^^^\n"
        "  = hint: a question names one request: its parts come once each, in the order METHOD, PATH, :PORT "
        "(or grpc SERVICE/METHOD, :PORT)\n"
        "1 error(s), 0 warning(s)\n")


@pytest.mark.parametrize(("args", "message"), [
    (["shop/frontend", "->"], "<question>:1:17: error[MP001]: unexpected end of the question"),
    (["shop/frontend", "->", "shop/orders", ":8080", "GET"], "<question>:1:36: error[MP001]: unexpected 'GET'"),
    (["shop/frontend", "shop/x", "->", "shop/orders"], "meshpolicy: error: "),
    (["shop/frontend", "->", "shop/orders", "GET", "/a", "/b"], "<question>:1:37: error[MP001]: unexpected '/b'"),
])
def test_question_syntax_errors_are_located(policy, args, message):
    assert message in explain(policy, *args, code=2)


def test_the_grammar_reads_every_form_of_the_question(policy):
    assert explain(policy, "2001:db8::1", "->", "shop/legacy", ":7000").splitlines()[0].startswith(
        "plaintext client 2001:db8::1 -> shop/legacy:7000")
    assert "allowed" in explain(policy, "shop/frontend", "->", "shop/orders", "GET", "/api/orders/1?x=1", ":8080")


PATTERNS = """\
namespace shop {
  service frontend :8080/http
  service orders :8080/http
  allow frontend -> orders GET /static*, *.png :8080
}
"""


REFUSED = "refused: no allow rule matches (default deny)"


@pytest.mark.parametrize(("path", "verdict"), [
    ("/staticfiles/app.js", "allowed"), ("/static", "allowed"), ("/img/logo.png?v=2", "allowed"),
    ("/img/logo.PNG", REFUSED), ("/stati", REFUSED),
])
def test_explain_reads_character_prefixes_and_suffixes(tmp_path, monkeypatch, path, verdict):
    """Issue 11 item 3: explain decides a concrete path against /static* and *.png, and names the failing path
    condition with the patterns as written."""
    monkeypatch.chdir(tmp_path)
    Path("p.mesh").write_text(PATTERNS, encoding="utf-8")
    out = explain("p.mesh", "shop/frontend", "->", "shop/orders", "GET", path, ":8080")
    assert out.splitlines()[1] == verdict
    if verdict != "allowed":
        assert f"path: {path} is not /static*, *.png" in out
