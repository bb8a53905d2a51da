"""``meshpolicy graph``: snapshots of dot, mermaid and json for the corpus, the json against its schema,
and the json's edges against the reference decider over the request space."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from helpers import ROOT, case_id, case_paths, expected_errors, invoke, source
from hypothesis import given, settings
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from test_random_policies import policies

from meshpolicy import pipeline
from meshpolicy.graph.evaluate import decide
from meshpolicy.graph.space import requests, whole_requests
from meshpolicy.source import SourceFile
from meshpolicy.view import access, dot, mermaid, record

CASES = [p for p in case_paths() if not expected_errors(p)]
EXAMPLE = ROOT / "examples" / "shop"


class DotSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "dot"


class MermaidSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "mmd"


class JsonSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "json"


FORMATS = {"dot": (dot.render, DotSnapshot), "mermaid": (mermaid.render, MermaidSnapshot),
           "json": (record.render, JsonSnapshot)}


def view_of(path: Path):
    return access.build(pipeline.analyze([source(path)]).graph)


def tool_or_skip(program: str, package: str) -> str:
    """The program's path; skip with a reason where it is absent, but fail in CI (CI=true)."""
    found = shutil.which(program)
    if found is None:
        message = f"{program} is not installed (Debian package {package}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("path", CASES, ids=[case_id(p) for p in CASES])
def test_graph_snapshot(path, fmt, snapshot):
    render, extension = FORMATS[fmt]
    assert render(view_of(path)) == snapshot.use_extension(extension)


@pytest.mark.parametrize("path", CASES, ids=[case_id(p) for p in CASES])
def test_json_is_valid_against_the_published_schema(path):
    schema = record.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(record.render(view_of(path))), schema)


def test_the_schema_is_shipped_in_the_package_and_names_the_record_version():
    schema = json.loads((ROOT / "meshpolicy" / "view" / "graph.schema.json").read_text())
    assert schema == record.schema()
    assert schema["properties"]["version"] == {"const": record.VERSION}
    assert schema["$id"] == record.SCHEMA_ID


# -- the json means what the decider says ------------------------------------------------

def _source_admits(src: dict, caller) -> bool:
    """A rule source of the json record against a caller (written from docs/graph.md, not from the IR)."""
    ident = caller.identity
    if src["kind"] == "any":
        return True
    if src["kind"] == "cidr":
        net = ipaddress.ip_network(src["cidr"])
        addr = ipaddress.ip_address(caller.ip)
        return addr.version == net.version and addr in net
    if ident is None:
        return False
    if src["kind"] == "mesh":
        return True
    if src["kind"] == "namespace":
        return ident.namespace == src["namespace"]
    return (ident.namespace, ident.account) == (src["namespace"], src["account"])


def _node_admits(node: dict, caller) -> bool:
    kind = node["kind"]
    if kind in ("service", "external", "identity"):
        kind = "identity"
    return _source_admits({"kind": kind, "namespace": node["namespace"], "account": node["account"],
                           "cidr": node["cidr"]}, caller)


def _json_path_matches(pattern: dict, path: str) -> bool:
    """graph.md: ``exact``, ``prefix`` (the path and every path under ``value/``), ``starts``, ``suffix``."""
    value = pattern["value"]
    return {"exact": path == value, "prefix": path == value or path.startswith(value + "/"),
            "starts": path.startswith(value), "suffix": path.endswith(value)}[pattern["kind"]]


def _conditions_match(cond: dict, req) -> bool:
    if cond["ports"] is not None and req.port not in cond["ports"]:
        return False
    if cond["methods"] and req.method not in cond["methods"]:
        return False
    if cond["paths"]:
        if req.path is None:
            return False
        if not any(_json_path_matches(p, req.path.partition("?")[0]) for p in cond["paths"]):
            return False
    if cond["grpc"]:
        if req.method != "POST" or req.path is None:
            return False
        if not any(req.path == f"/{g['service']}/{g['method']}" if g["method"]
                   else req.path.startswith(f"/{g['service']}/") for g in cond["grpc"]):
            return False
    return all(_request_condition_holds(c, req) for c in cond["if"])


def _request_condition_holds(cond: dict, req) -> bool:
    """The record's request conditions, read as docs/graph.md says (LANGUAGE 2.4)."""
    headers = dict(req.headers)
    if cond["kind"] == "header":
        return cond["name"] in headers and cond["value"] in (None, headers[cond["name"]])
    token = req.token
    if token is None:
        return False
    if cond["kind"] == "jwt":
        return token.issuer == cond["value"] and token.subject != ""
    strings, lists = dict(token.strings), dict(token.lists)
    if cond["name"] in strings:
        words = strings[cond["name"]].split(" ") if cond["name"] in ("scope", "permission") else []
        return cond["value"] == strings[cond["name"]] or cond["value"] in words
    return cond["value"] in lists.get(cond["name"], ())


def json_allows(rec: dict, req) -> bool:
    """Whether some grant of some edge into the request's destination admits it."""
    nodes = {n["id"]: n for n in rec["nodes"]}
    dest = nodes.get(f"{req.namespace}/{req.service or '**'}")  # ** : the namespace's undeclared workloads
    if dest is None:
        return False
    port_modes = {p["number"]: p["mtls"] for p in dest["ports"]}
    mode = port_modes.get(req.port, dest["mtls"])
    if req.caller.identity is None and mode == "strict":
        return False
    for edge in rec["edges"]:
        if edge["to"] != dest["id"] or not _node_admits(nodes[edge["from"]], req.caller):
            continue
        for grant in edge["grants"]:
            if not _source_admits(grant["source"], req.caller) or not _conditions_match(grant, req):
                continue
            if any(any(_source_admits(s, req.caller) for s in x["sources"]) and _conditions_match(x, req)
                   for x in grant["except"]):
                continue
            return True
    return False


def disagreements(graph, space) -> list[str]:
    rec = json.loads(record.render(access.build(graph)))
    out = []
    for req in space:
        expected = decide(graph, req).allowed
        if req.service is None and not graph.wide_rules(req.namespace):
            assert not expected  # an undeclared workload without a node in the picture: the policy refuses it
            continue
        if json_allows(rec, req) != expected:
            out.append(f"{req}: decider {'allows' if expected else 'refuses'}, the json "
                       f"{'refuses' if expected else 'allows'}")
    return out


@pytest.mark.parametrize("path", CASES, ids=[case_id(p) for p in CASES])
def test_json_edges_are_the_deciders_answers_over_the_request_space(path):
    graph = pipeline.analyze([source(path)]).graph
    assert disagreements(graph, requests(graph)) == []
    # and over the uniform space of diff (every caller and method of the policy against every service)
    assert disagreements(graph, whole_requests(graph)) == []


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(text=policies)
def test_json_edges_are_the_deciders_answers_for_random_policies(text):
    graph = pipeline.analyze([SourceFile("p.mesh", text)]).graph
    assert disagreements(graph, requests(graph)) == [], text


def test_a_grant_that_deny_rules_cover_is_no_edge_and_a_partial_one_lists_the_deny():
    text = """namespace n {
  service s :8080/http
  service a :80/http
  service b :80/http
  allow a -> s DELETE
  allow b -> s GET,DELETE
  deny * -> s DELETE
}
"""
    view = access.build(pipeline.analyze([SourceFile("p.mesh", text)]).graph)
    assert [e.id for e in view.edges] == ["n/b->n/s"]
    [grant] = view.edges[0].grants
    assert [d.origin.line for d in grant.excepts] == [7]
    assert mermaid.render(view).count("except DELETE") == 1


def test_plaintext_edges_stand_out_only_where_a_permissive_port_admits_a_plaintext_caller():
    view = access.build(pipeline.analyze_paths([EXAMPLE]).graph)
    plain = {e.id for e in view.edges if e.plaintext}
    # legacy takes plaintext on :7000; frontend is strict, so 'any' reaches it only with mTLS
    assert plain == {"cidr:10.0.0.0/8->shop/legacy", "cidr:2001:db8::/32->shop/legacy"}
    text = dot.render(view)
    assert text.count('penwidth="2"') == 2
    assert mermaid.render(view).count("-.->") == 2


def test_never_rules_show_on_the_edges_whose_callers_they_name():
    view = access.build(pipeline.analyze_paths([EXAMPLE]).graph)
    touched = {e.id: [r.origin.line for r in e.invariants] for e in view.edges if e.invariants}
    assert touched == {"shop/frontend->shop/payments": [31]}


# -- the command line ----------------------------------------------------------------------

def test_cli_writes_each_format_and_infers_it_from_the_file_suffix(tmp_path):
    for suffix, fmt in ((".dot", "dot"), (".mmd", "mermaid"), (".json", "json")):
        out = tmp_path / f"shop{suffix}"
        invoke(["graph", EXAMPLE, "-o", out])
        assert out.read_text() == invoke(["graph", EXAMPLE, "--format", fmt]).output
    assert invoke(["graph", EXAMPLE]).output.startswith("digraph access {")


def test_cli_focus_on_a_service_and_on_a_namespace():
    rec = json.loads(invoke(["graph", EXAMPLE, "-f", "json", "--service", "payments"]).output)
    assert {e["id"] for e in rec["edges"]} == {"shop/frontend->shop/payments", "*->shop/frontend",
                                               "any->shop/frontend"}
    assert rec["focus"] == {"namespaces": [], "services": ["shop/payments"]}
    rec = json.loads(invoke(["graph", EXAMPLE, "-f", "json", "--namespace", "monitoring"]).output)
    assert {e["id"] for e in rec["edges"]} == {"monitoring/prometheus->shop/orders"}
    both = json.loads(invoke(["graph", EXAMPLE, "-f", "json", "-n", "shop", "-s", "legacy"]).output)
    assert {e["id"] for e in both["edges"]} == {"cidr:10.0.0.0/8->shop/legacy", "cidr:2001:db8::/32->shop/legacy",
                                               "*->shop/frontend", "any->shop/frontend"}


@pytest.mark.parametrize("args, message", [
    (["--service", "nope"], "--service nope: no such service"),
    (["--namespace", "nope"], "--namespace nope: no such namespace"),
    (["--format", "png"], "--format must be one of"),
    (["--target", "consul"], "--target must be one of"),
])
def test_cli_refuses_what_names_nothing(args, message):
    assert message in invoke(["graph", EXAMPLE, *args], code=2).output


def test_cli_with_a_target_names_the_resources_behind_each_edge():
    rec = json.loads(invoke(["graph", EXAMPLE, "-f", "json", "-t", "istio", "-s", "payments"]).output)
    jsonschema.validate(rec, record.schema())
    assert rec["target"] == "istio"
    edge = next(e for e in rec["edges"] if e["id"] == "shop/frontend->shop/payments")
    assert {"kind": "AuthorizationPolicy", "namespace": "shop", "name": "payments-allow"} in \
        edge["grants"][0]["resources"]
    plain = json.loads(invoke(["graph", EXAMPLE, "-f", "json"]).output)
    assert all(g["resources"] == [] for e in plain["edges"] for g in e["grants"])


def test_policy_errors_are_diagnostics_with_exit_1(tmp_path):
    bad = tmp_path / "bad.mesh"
    bad.write_text("service web :8080/http\nallow nobody -> web\n")
    assert "error[MP" in invoke(["graph", bad], code=1).output


# -- Graphviz ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", CASES, ids=[case_id(p) for p in CASES])
def test_graphviz_reads_the_dot_of_every_case(path):
    program = tool_or_skip("dot", "graphviz")
    done = subprocess.run([program, "-Tsvg"], input=dot.render(view_of(path)), capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warning either


def test_svg_format_is_graphviz_output_with_every_service(tmp_path):
    tool_or_skip("dot", "graphviz")
    out = tmp_path / "shop.svg"
    invoke(["graph", EXAMPLE, "-o", out])
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for name in ("frontend", "orders", "payments", "legacy", "prometheus", "web"):
        assert f">{name}</text>" in text


def test_svg_without_graphviz_names_the_package_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "")
    result = invoke(["graph", EXAMPLE, "-f", "svg"], code=2)
    assert "Graphviz" in result.output and "apt-get install graphviz" in result.output


# -- pictures of a change: diff --format mermaid|html ----------------------------------------

def changed_policy(root: Path) -> tuple[Path, Path]:
    """The example, and the example with one edge removed, one added, two widened and one narrowed."""
    old, new = root / "old", root / "new"
    shutil.copytree(EXAMPLE, old)
    shutil.copytree(EXAMPLE, new)
    shop = new / "shop.mesh"
    text = shop.read_text()
    for before, after in (("  allow frontend -> payments grpc payments.v1.Payments/Charge\n", ""),
                          ("allow payments/* -> orders GET ", "allow payments/* -> orders GET,POST "),
                          ("allow any -> frontend :8080", "allow any -> frontend GET :8080"),
                          ("  deny  * -> orders DELETE",
                           "  deny  * -> orders DELETE\n  allow legacy -> orders :9090\n  allow * -> frontend POST /healthz")):
        assert before in text
        text = text.replace(before, after)
    shop.write_text(text)
    return old, new


def mermaid_edges(text: str) -> set[tuple[str, str, str]]:
    """(from, to, kind) of every edge of a diff picture, with node ids read back from the labels."""
    ids, namespace = {}, ""
    for line in text.splitlines():
        if m := re.match(r'\s*subgraph \w+\["namespace ([\w-]+)', line):
            namespace = m[1]
        elif line.strip() == "end":
            namespace = ""
        elif m := re.match(r'\s*(n\d+)[\[({]+"([^"<]+)', line):
            name = m[2]
            ids[m[1]] = f"{namespace}/{name}" if namespace and "/" not in name else name
    return {(ids[a], ids[b], kind) for a, kind, b in
            re.findall(r'^\s*(n\d+) (?:==>|-->|-\.->)\|"(\w+):.*?"\| (n\d+)$', text, re.MULTILINE)}


def test_diff_mermaid_shows_exactly_the_added_removed_and_changed_edges(tmp_path):
    old, new = changed_policy(tmp_path)
    result = invoke(["diff", old, new, "--format", "mermaid"], code=1)
    assert result.output.startswith("flowchart LR\n")
    assert mermaid_edges(result.output) == {
        ("shop/frontend", "shop/payments", "removed"),
        ("shop/legacy", "shop/orders", "added"),
        ("payments/*", "shop/orders", "widened"),
        ("*", "shop/frontend", "widened"),      # POST /healthz, which 'any' already allowed
        ("any", "shop/frontend", "narrowed"),   # GET only
    }
    # one style per kind: removed dashed red, added thick green
    assert re.search(r"linkStyle \d+ stroke:#c62828,stroke-width:3px,stroke-dasharray:4 4", result.output)
    assert re.search(r"linkStyle \d+ stroke:#2e7d32,stroke-width:3px", result.output)
    assert "removed: :8443 grpc payments.v1.Payments/Charge" in result.output


def test_diff_mermaid_of_no_change_says_so(tmp_path):
    result = invoke(["diff", EXAMPLE, EXAMPLE, "--format", "mermaid"], code=0)
    assert mermaid_edges(result.output) == set()
    assert 'none["no change in access"]' in result.output


def test_diff_picture_edges_agree_with_the_text_diff(tmp_path):
    """Every change the text diff reports shows as an edge change into its destination, and no other."""
    old, new = changed_policy(tmp_path)
    text = json.loads(invoke(["diff", old, new, "--format", "json"], code=1).output)
    destinations = {c["destination"] for c in text["changes"]}
    edges = mermaid_edges(invoke(["diff", old, new, "--format", "mermaid"], code=1).output)
    assert {to for _, to, _ in edges} == destinations


@pytest.mark.slow
def test_every_format_is_the_same_bytes_in_every_process():
    """Same input, same bytes, whatever the hash seed (sets and dicts of the picture are sorted)."""
    import sys

    def run(fmt: str, seed: str) -> str:
        done = subprocess.run([sys.executable, "-m", "meshpolicy", "graph", "examples/shop", "--format", fmt,
                               "--target", "linkerd"], cwd=ROOT, capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        return done.stdout

    for fmt in ("dot", "mermaid", "json", "html"):
        assert run(fmt, "1") == run(fmt, "2"), fmt


def test_target_options_are_builds_and_refused_for_another_target():
    rec = json.loads(invoke(["graph", EXAMPLE, "-f", "json", "-t", "linkerd", "--linkerd-routes", "policy"]).output)
    kinds = {r["kind"] for e in rec["edges"] for g in e["grants"] for r in g["resources"]}
    assert "HTTPRoute" in kinds
    assert "applies to --target linkerd only" in invoke(
        ["graph", EXAMPLE, "-t", "istio", "--linkerd-routes", "policy"], code=2).output
    assert invoke(["graph", EXAMPLE, "-f", "json", "-t", "istio", "--istio-root-namespace", "mesh-root"]).output
