"""Translation validation: every classic mistake in emitted output is caught with a counterexample.

Each mutation takes correct output, applies one mistake a hand or a buggy
backend makes, and asserts that ``verify`` reports at least one concrete
request on which the output and the source disagree. The CLI tests check
that ``build`` fails closed (writes nothing) and that ``meshpolicy verify``
checks a folder edited by hand.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from helpers import compile_text
from typer.testing import CliRunner

from meshpolicy import pipeline
from meshpolicy import verify as verifier
from meshpolicy.backends import TARGETS, get_backend
from meshpolicy.cli import app
from meshpolicy.diagnostics import CODES, MeshError
from meshpolicy.output import writer
from meshpolicy.source import SourceFile

runner = CliRunner()


def run_verify(build, target: str) -> list[verifier.Counterexample]:
    return verifier.verify(build.analysis.graph, build.files, target, build.open_probes)


def load(text: str) -> dict:
    return yaml.safe_load(text)


def dump(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def edit(files: dict[str, str], kind: str, change) -> dict[str, str]:
    """Apply ``change(doc, files)`` to every document of ``kind``; it returns the new doc or None to drop it."""
    out = dict(files)
    for path, text in files.items():
        if path == writer.KUSTOMIZATION:
            continue
        doc = load(text)
        if doc.get("kind") != kind:
            continue
        new = change(copy.deepcopy(doc), files)
        if new is None:
            del out[path]
        elif new != doc:
            out[path] = dump(new)
    return listed(out)


def listed(files: dict[str, str]) -> dict[str, str]:
    """``files`` with the kustomization meshpolicy writes for them (as a rebuild would list them)."""
    return writer.with_kustomization({p: t for p, t in files.items() if p != writer.KUSTOMIZATION})


# -- the mutations ----------------------------------------------------------------------------------

def split_from_and_to(doc, _files):
    """istio.md §10: a '-' before 'to:' makes two OR'ed rules out of one."""
    if doc["spec"].get("action") != "ALLOW":
        return doc
    rules = []
    for rule in doc["spec"].get("rules", []):
        if "from" in rule and "to" in rule:
            rules += [{"from": rule["from"]}, {"to": rule["to"]}]
        else:
            rules.append(rule)
    doc["spec"]["rules"] = rules
    return doc


def drop_allow_nothing(doc, _files):
    return None if not doc.get("spec") else doc


def widen_principal(doc, _files):
    for rule in doc["spec"].get("rules", []):
        for entry in rule.get("from", []):
            if "principals" in entry["source"]:
                entry["source"]["principals"] = ["*"]
    return doc


def drop_deny_ports(doc, _files):
    if doc["spec"].get("action") == "DENY":
        for rule in doc["spec"]["rules"]:
            for entry in rule.get("to", []):
                entry["operation"].pop("ports", None)
    return doc


def route_policy_to_server(doc, files):
    """linkerd.md §3.1/§4.4: an AuthorizationPolicy moved from a route to the route's parent Server."""
    ref = doc["spec"]["targetRef"]
    if ref.get("kind") not in ("HTTPRoute", "GRPCRoute"):
        return doc
    namespace = doc["metadata"]["namespace"]
    for text in files.values():
        route = load(text)
        if (route.get("kind") == ref["kind"] and route["metadata"]["name"] == ref["name"]
                and route["metadata"].get("namespace") == namespace):
            parent = route["spec"]["parentRefs"][0]
            doc["spec"]["targetRef"] = {"group": "policy.linkerd.io", "kind": "Server", "name": parent["name"]}
            return doc
    raise AssertionError(f"route {ref['name']} not found")


def replace_path(old: str, new: str):
    """Every Istio operation path ``old`` emitted as ``new`` (issue 11: ``/a*`` emitted as ``/a/*``, ...)."""
    def change(doc, _files):
        for rule in doc["spec"].get("rules", []):
            for entry in rule.get("to", []):
                paths = entry["operation"].get("paths")
                if paths:
                    entry["operation"]["paths"] = [new if p == old else p for p in paths]
        return doc
    return change


def route_paths(change):
    """Every HTTPRoute path match ``{type, value}`` rewritten by ``change`` (None: left as it is)."""
    def mutate(doc, _files):
        for rule in doc["spec"].get("rules", []):
            for match in rule.get("matches", []):
                if "path" in match:
                    match["path"] = change(match["path"]) or match["path"]
        return doc
    return mutate


def regex_as(kind: str, value: str, new_value: str):
    """The RegularExpression ``value`` emitted as a match of ``kind`` with ``new_value``."""
    return route_paths(lambda p: {"type": kind, "value": new_value} if p["value"] == value else None)


def condition_to_own_entry(doc, _files):
    """Issue 11: a rule's ``when`` moved to an entry of its own (OR'ed with the rest, istio.md §4)."""
    rules = []
    for rule in doc["spec"].get("rules", []):
        if "when" in rule:
            rules += [{k: v for k, v in rule.items() if k != "when"}, {"when": rule["when"]}]
        else:
            rules.append(rule)
    doc["spec"]["rules"] = rules
    return doc


def drop_document(_doc, _files):
    """Issue 11: a resource left out (a dropped RequestAuthentication)."""
    return


def drop_request_principals(doc, _files):
    """The ``jwt`` condition lost: any token (or none) passes where one of the issuer was required."""
    for rule in doc["spec"].get("rules", []):
        for entry in rule.get("from", []):
            entry["source"].pop("requestPrincipals", None)
        entries = [e for e in rule.get("from", []) if e["source"]]
        if entries:
            rule["from"] = entries
        else:
            rule.pop("from", None)
    return doc


def header_presence_for_value(doc, _files):
    """A header value condition emitted as presence (``*``): any value passes."""
    for rule in doc["spec"].get("rules", []):
        for cond in rule.get("when", []):
            if cond["key"].startswith("request.headers["):
                cond["values"] = ["*"]
    return doc


#: request conditions (LANGUAGE §2.4)
CONDITIONS = """
issuer google https://accounts.google.com
namespace shop {
  service frontend :8080/http
  service orders :8080/http
  allow frontend -> orders POST :8080 if header x-tenant=acme
  allow any -> orders GET /account/* :8080 if jwt google, claim groups=shoppers
  deny any -> orders GET /account/admin :8080 if jwt google, claim scope=readonly
}
"""

#: character prefixes and suffixes (LANGUAGE §2.4)
PATTERNS = """
namespace shop {
  service frontend :8080/http
  service orders :8080/http
  allow frontend -> orders GET /static*, *.png :8080
  deny frontend -> orders GET /static/private* :8080
}
"""

SHOP = """
namespace shop {
  service frontend :8080/http
  service orders :8080/http :9090/tcp
  service other :8080/http
  service db :5432/tcp
  allow frontend -> orders GET,POST :8080
  allow frontend -> orders :9090
  allow other -> orders GET /api/orders/*
  allow frontend -> db :5432
  deny frontend -> orders DELETE,POST /admin/* :8080
}
"""

MUTATIONS = [
    ("istio", "split-from-and-to", "AuthorizationPolicy", split_from_and_to, SHOP),
    ("istio", "drop-allow-nothing", "AuthorizationPolicy", drop_allow_nothing, SHOP),
    ("istio", "widen-principal", "AuthorizationPolicy", widen_principal, SHOP),
    ("istio", "drop-deny-ports", "AuthorizationPolicy", drop_deny_ports, SHOP),
    ("istio", "char-prefix-as-segment-prefix", "AuthorizationPolicy", replace_path("/static*", "/static/*"), PATTERNS),
    ("istio", "char-prefix-as-exact", "AuthorizationPolicy", replace_path("/static*", "/static"), PATTERNS),
    ("istio", "deny-char-prefix-as-segment-prefix", "AuthorizationPolicy",
     replace_path("/static/private*", "/static/private/*"), PATTERNS),
    ("istio", "suffix-in-another-case", "AuthorizationPolicy", replace_path("*.png", "*.PNG"), PATTERNS),
    ("istio", "suffix-as-prefix", "AuthorizationPolicy", replace_path("*.png", ".png*"), PATTERNS),
    ("linkerd", "char-prefix-as-path-prefix", "HTTPRoute", regex_as("PathPrefix", "^/static.*$", "/static"),
     PATTERNS.replace("  deny frontend -> orders GET /static/private* :8080\n", "")),
    ("linkerd", "char-prefix-as-segment-regex", "HTTPRoute", regex_as("RegularExpression", "^/static.*$",
                                                                      "^/static/.*$"),
     PATTERNS.replace("  deny frontend -> orders GET /static/private* :8080\n", "")),
    ("linkerd", "suffix-as-exact", "HTTPRoute", regex_as("Exact", "^.*\\.png$", "/x.png"),
     PATTERNS.replace("  deny frontend -> orders GET /static/private* :8080\n", "")),
    ("istio", "condition-in-its-own-entry", "AuthorizationPolicy", condition_to_own_entry, CONDITIONS),
    ("istio", "drop-request-authentication", "RequestAuthentication", drop_document, CONDITIONS),
    ("istio", "drop-request-principals", "AuthorizationPolicy", drop_request_principals, CONDITIONS),
    ("istio", "header-presence-for-value", "AuthorizationPolicy", header_presence_for_value, CONDITIONS),
    ("linkerd", "route-policy-to-server", "AuthorizationPolicy", route_policy_to_server, SHOP.replace(
        "  deny frontend -> orders DELETE,POST /admin/* :8080\n", "")),
]


def test_codes_table_has_mp501():
    assert CODES["MP501"] == "emitted policy differs from the source"


@pytest.mark.parametrize("target, name, kind, mutate, policy", MUTATIONS, ids=[f"{m[0]}-{m[1]}" for m in MUTATIONS])
def test_mutation_is_caught(target, name, kind, mutate, policy):
    build = compile_text(policy, target)
    assert run_verify(build, target) == []
    mutated = edit(build.files, kind, mutate)
    assert mutated != build.files, "the mutation changed nothing"
    build.files = mutated
    found = run_verify(build, target)
    assert found, f"{name}: no counterexample"
    first = found[0]
    assert first.emitted != first.expected.allowed
    diags = verifier.diagnostics(found, build.analysis.graph, target)
    assert all(d.code == "MP501" for d in diags)
    assert str(first.request) in diags[0].message


def test_split_rule_counterexamples_name_the_widening():
    build = compile_text(SHOP)
    build.files = edit(build.files, "AuthorizationPolicy", split_from_and_to)
    found = run_verify(build, "istio")
    widened = [c for c in found if c.emitted and not c.expected.allowed]
    # frontend may now use any method on 8080 (DELETE, say), and others may GET/POST
    assert any(str(c.request.caller.identity) == "shop/frontend" and c.request.method not in ("GET", "POST")
               for c in widened)
    assert any(c.request.caller.identity is not None and str(c.request.caller.identity) != "shop/frontend"
               and c.request.method in ("GET", "POST") for c in widened)
    # a wrongly allowed request names the nearest allow rule and why it does not match
    near = next(c for c in widened if c.expected.reason == "default" and c.rules)
    assert near.why


def test_dropped_deny_ports_refuse_tcp_traffic():
    """istio.md §9: a DENY with HTTP-only fields and no ports denies every TCP connection to the workload."""
    build = compile_text(SHOP)
    build.files = edit(build.files, "AuthorizationPolicy", drop_deny_ports)
    found = run_verify(build, "istio")
    assert any(c.request.port == 9090 and c.expected.allowed and not c.emitted for c in found)


def test_widened_principal_admits_a_foreign_identity():
    build = compile_text(SHOP)
    build.files = edit(build.files, "AuthorizationPolicy", widen_principal)
    found = run_verify(build, "istio")
    assert any(c.emitted and c.request.caller.identity and c.request.caller.identity.namespace != "shop"
               for c in found)


def test_a_hand_added_principal_is_in_the_space():
    """A principal only the output names still gets a request of its own (reader mentions)."""
    build = compile_text(SHOP)

    def add_evil(doc, _files):
        for rule in doc["spec"].get("rules", []):
            for entry in rule.get("from", []):
                if "principals" in entry["source"]:
                    entry["source"]["principals"].append("cluster.local/ns/shop/sa/evil")
        return doc

    build.files = edit(build.files, "AuthorizationPolicy", add_evil)
    found = run_verify(build, "istio")
    assert any(str(c.request.caller.identity) == "shop/evil" for c in found)


def test_unmodelled_output_fails_closed():
    build = compile_text(SHOP)

    def add_when(doc, _files):
        for rule in doc["spec"].get("rules", []):
            rule["when"] = [{"key": "destination.port", "values": ["1"]}]
        return doc

    build.files = edit(build.files, "AuthorizationPolicy", add_when)
    with pytest.raises(MeshError) as err:
        run_verify(build, "istio")
    [diag] = err.value.diagnostics
    assert diag.code == "MP501" and "cannot evaluate" in diag.message and "when key 'destination.port'" in diag.message


@pytest.mark.parametrize("value", ["(?i)^.*\\.png$", "^.*.png$", "^.*\\.(png|gif)$", "^/static/.+$", "^.*\\/png$"])
def test_a_regex_path_beyond_a_literal_prefix_or_suffix_fails_closed(value):
    """The Linkerd reader models ^LITERAL.*$ and ^.*LITERAL$ in Rust's syntax only: a case-blind flag, an
    unescaped '.', an alternation, another shape, or an escape older regex crates refuse is MP501."""
    build = compile_text(PATTERNS.replace("  deny frontend -> orders GET /static/private* :8080\n", ""), "linkerd")
    build.files = edit(build.files, "HTTPRoute", regex_as("RegularExpression", "^.*\\.png$", value))
    with pytest.raises(MeshError) as err:
        run_verify(build, "linkerd")
    [diag] = err.value.diagnostics
    assert diag.code == "MP501" and "cannot evaluate" in diag.message and "path regex" in diag.message


def test_ambiguous_output_fails_closed():
    """Two namespace-level PeerAuthentications: Istio would pick the oldest (istio.md §12)."""
    build = compile_text(SHOP)
    doc = load(build.files["shop/peerauthentication-default.yaml"])
    doc["metadata"]["name"] = "second"
    doc["spec"]["mtls"]["mode"] = "PERMISSIVE"
    build.files["shop/peerauthentication-second.yaml"] = dump(doc)
    build.files = listed(build.files)
    with pytest.raises(MeshError) as err:
        run_verify(build, "istio")
    assert "Ambiguous" in err.value.diagnostics[0].message


def test_invalid_yaml_fails_closed():
    build = compile_text(SHOP)
    path = next(p for p in build.files if p != writer.KUSTOMIZATION)
    build.files[path] = "spec: [unclosed\n"
    with pytest.raises(MeshError) as err:
        run_verify(build, "istio")
    assert "not valid YAML" in err.value.diagnostics[0].message


def test_many_counterexamples_are_grouped_and_capped():
    build = compile_text(SHOP)
    build.files = listed({})  # nothing emitted: all allowed
    found = run_verify(build, "istio")
    diags = verifier.diagnostics(found, build.analysis.graph, "istio", shown=2)
    assert len(diags) == 3
    assert diags[-1].message.startswith("... and ") and "more requests" in diags[-1].message
    # every counterexample is counted once: the shown ones, those "like it", and the rest
    counted = sum(1 + int(re.search(r"and (\d+) more request", d.message).group(1)
                          if "more request" in d.message else 0) for d in diags[:2])
    counted += int(re.search(r"and (\d+) more", diags[-1].message).group(1))
    assert counted == len(found) > 3


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_audit_output_verifies_in_audit_mode(target):
    build = compile_text(SHOP, target, "audit")
    assert verifier.verify(build.analysis.graph, build.files, target, build.open_probes, "audit") == []


# -- the CLI ---------------------------------------------------------------------------------------

@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "shop.mesh"
    path.write_text(SHOP, encoding="utf-8")
    return path


@pytest.fixture
def empty_backend(monkeypatch):
    """Make every backend emit nothing at all: the output then allows what the source refuses."""
    for target in TARGETS:
        monkeypatch.setattr(get_backend(target), "lower", lambda self, graph: [])
        monkeypatch.setattr(get_backend(target), "by_namespace", False)  # the pipeline calls lower


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_build_fails_closed_when_verification_fails(target, policy, tmp_path, empty_backend):
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", str(policy), "--target", target, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "error[MP501]" in result.output
    assert "which the source says is refused" in result.output
    assert not out.exists()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_build_no_verify_skips_the_check(target, policy, tmp_path, empty_backend):
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", str(policy), "--target", target, "--out", str(out), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert (out / writer.KUSTOMIZATION).exists()


def test_build_check_verifies_before_comparing(policy, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert runner.invoke(app, ["build", str(policy), "-t", "istio", "-o", str(out)]).exit_code == 0
    monkeypatch.setattr(get_backend("istio"), "lower", lambda self, graph: [])
    monkeypatch.setattr(get_backend("istio"), "by_namespace", False)  # the pipeline calls lower
    result = runner.invoke(app, ["build", str(policy), "-t", "istio", "-o", str(out), "--check"])
    assert result.exit_code == 1 and "MP501" in result.output and "out of date" not in result.output


def test_build_wrong_policy_from_a_buggy_backend(policy, tmp_path, monkeypatch):
    """The seed article's bug in the backend itself: one rule split into a from-only and a to-only entry."""
    backend = get_backend("istio")
    original = backend._rule

    def buggy(self, graph, rule, action):
        entry = original(self, graph, rule, action)
        return {"from": entry["from"]} if "from" in entry and "to" in entry else entry

    monkeypatch.setattr(backend, "_rule", buggy)
    out = tmp_path / "out"  # a patched backend: no cached namespace may stand for its output (docs/cache.md)
    result = runner.invoke(app, ["build", str(policy), "-t", "istio", "-o", str(out), "--no-cache"])
    assert result.exit_code == 1 and "error[MP501]: the emitted istio policy allows" in result.output
    assert not out.exists()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_verify_command_accepts_fresh_output(target, policy, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["build", str(policy), "-t", target, "-o", str(out)]).exit_code == 0
    result = runner.invoke(app, ["verify", str(policy), "-t", target, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: the ")


def test_verify_command_catches_a_hand_edit(policy, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["build", str(policy), "-t", "istio", "-o", str(out)]).exit_code == 0
    target = out / "shop" / "authorizationpolicy-orders-allow.yaml"
    target.write_text(dump(widen_principal(load(target.read_text()), {})))
    result = runner.invoke(app, ["verify", str(policy), "-t", "istio", "-o", str(out)])
    assert result.exit_code == 1
    assert "error[MP501]: the emitted istio policy allows" in result.output
    assert "allow frontend -> orders GET,POST :8080" in result.output  # the nearest rule, with its source line
    as_json = runner.invoke(app, ["verify", str(policy), "-t", "istio", "-o", str(out), "--format", "json"])
    assert as_json.exit_code == 1
    assert {d["code"] for d in json.loads(as_json.output)} == {"MP501"}


def test_verify_command_ignores_files_without_the_label(policy, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["build", str(policy), "-t", "istio", "-o", str(out)]).exit_code == 0
    (out / "shop" / "mine.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert runner.invoke(app, ["verify", str(policy), "-t", "istio", "-o", str(out)]).exit_code == 0


def test_verify_command_usage_errors(policy, tmp_path):
    assert runner.invoke(app, ["verify", str(policy), "-t", "istio", "-o", str(tmp_path / "none")]).exit_code == 2
    assert runner.invoke(app, ["verify", str(policy), "-t", "nope", "-o", str(tmp_path)]).exit_code == 2


def test_pipeline_lower_verifies_by_default(monkeypatch):
    monkeypatch.setattr(get_backend("istio"), "lower", lambda self, graph: [])
    monkeypatch.setattr(get_backend("istio"), "by_namespace", False)  # the pipeline calls lower
    with pytest.raises(MeshError) as err:
        compile_text(SHOP)
    assert {d.code for d in err.value.diagnostics} == {"MP501"}
    analysis = pipeline.analyze([SourceFile("test.mesh", SHOP)])
    assert set(pipeline.lower(analysis, "istio", verify=False).files) == {writer.KUSTOMIZATION}


def test_processes_find_the_same_counterexamples_in_the_same_order():
    build = compile_text(SHOP)
    build.files = edit(build.files, "AuthorizationPolicy", split_from_and_to)
    graph = build.analysis.graph
    alone = verifier.verify(graph, build.files, "istio", build.open_probes, workers=1)
    shared = verifier.verify(graph, build.files, "istio", build.open_probes, workers=2)
    assert alone and [c.to_dict() for c in shared] == [c.to_dict() for c in alone]
