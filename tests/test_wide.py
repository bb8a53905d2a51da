"""`NS/**` and `**` destinations (LANGUAGE §2.1, §2.3, §2.4, §3; issue 11 item 1): every workload of a managed
namespace, declared or not, in the resolver, the IR, the reference decider and the request space."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy import pipeline
from meshpolicy import verify as verifier
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph.evaluate import Caller, Reason, Request, decide
from meshpolicy.graph.invariants import check
from meshpolicy.graph.model import EVERY_WORKLOAD, Identity
from meshpolicy.graph.space import requests
from meshpolicy.source import SourceFile

MONITORING = "namespace monitoring external {\n  service prometheus\n}\n"
PROMETHEUS = Caller(Identity("monitoring", "prometheus-server"), "10.1.2.3")
OTHER = Caller(Identity("shop", "frontend"), "10.1.2.4")

POLICY = """\
namespace shop {
  service orders :8080/http :9090/tcp
  allow monitoring/prometheus -> ** GET /metrics :9102
  allow monitoring/* -> shop/** :7000
  deny monitoring/prometheus -> ** :7000
}
namespace monitoring external {
  service prometheus account prometheus-server
}
allow monitoring/* -> tools/** :22
"""


def graph_of(text: str):
    return pipeline.analyze([SourceFile("policy.mesh", text)]).graph


def codes(text: str) -> list[str]:
    with pytest.raises(MeshError) as err:
        graph_of(text)
    return sorted(d.code for d in err.value.diagnostics if d.severity.value == "error")


def test_every_workload_is_one_rule_per_namespace_not_a_list_of_services():
    graph = graph_of(POLICY)
    wide = [r for r in graph.rules if r.wide]
    assert sorted(r.destination for r in wide) == [("shop", EVERY_WORKLOAD)] * 3 + [("tools", EVERY_WORKLOAD)]
    assert {r.ports for r in wide} == {(9102,), (7000,), (22,)}


def test_naming_ns_wide_makes_it_managed_without_services():
    graph = graph_of(POLICY)
    assert [ns.name for ns in graph.managed_namespaces] == ["shop", "tools"]
    assert graph.namespace("tools").wide and not graph.namespace("monitoring").wide


def test_undeclared_workloads_get_the_wide_rules_and_the_default_deny():
    graph = graph_of(POLICY)
    metrics = Request(PROMETHEUS, "shop", None, 9102, "GET", "/metrics")
    assert decide(graph, metrics).allowed
    assert not decide(graph, Request(PROMETHEUS, "shop", None, 9102, "POST", "/metrics")).allowed
    assert not decide(graph, Request(OTHER, "shop", None, 9102, "GET", "/metrics")).allowed
    assert decide(graph, Request(OTHER, "shop", None, 8080)).reason is Reason.DEFAULT
    ssh = Request(Caller(Identity("monitoring", "x"), "10.0.0.1"), "tools", None, 22)
    assert decide(graph, ssh).allowed
    assert not decide(graph, Request(ssh.caller, "tools", None, 23)).allowed


def test_declared_services_get_the_wide_rules_on_ports_they_do_not_declare():
    graph = graph_of(POLICY)
    assert decide(graph, Request(PROMETHEUS, "shop", "orders", 9102, "GET", "/metrics")).allowed
    # the deny on ** wins over the allow on shop/** for prometheus, everywhere in shop
    for service in ("orders", None):
        assert decide(graph, Request(PROMETHEUS, "shop", service, 7000)).reason is Reason.DENY
        other = Caller(Identity("monitoring", "grafana"), "10.1.2.5")
        assert decide(graph, Request(other, "shop", service, 7000)).allowed


def test_top_level_wide_is_every_managed_namespace():
    graph = graph_of("namespace a {\n  service x :80/http\n}\nallow b/* -> c/** :1\nallow b/* -> ** :2\n")
    assert sorted(r.destination[0] for r in graph.rules if r.ports == (2,)) == ["a", "c"]


def test_wide_inside_a_group_is_the_groups_namespace():
    graph = graph_of("namespace a {\n  service x :80/http\n  group g = **\n}\nallow b/* -> a/g :1\n")
    assert [r.destination for r in graph.rules] == [("a", EVERY_WORKLOAD)]


def test_the_request_space_holds_http_requests_on_wide_ports_of_undeclared_and_declared_workloads():
    graph = graph_of(POLICY)
    space = list(requests(graph))
    undeclared = {(r.port, r.method is not None) for r in space if r.namespace == "shop" and r.service is None}
    assert (9102, True) in undeclared and (7000, False) in undeclared
    assert any(p not in (9102, 7000) for p, _ in undeclared)  # a port no rule names: the default deny
    orders = {(r.port, r.method is not None) for r in space if r.service == "orders"}
    assert (9102, True) in orders and (9090, False) in orders
    assert any(r.namespace == "tools" and r.port == 22 for r in space)


def test_a_never_rule_on_wide_checks_undeclared_workloads():
    with pytest.raises(MeshError) as err:
        graph_of("namespace a {\n  service x :80/http\n}\nallow b/* -> a/** :1\nnever b/* -> a/** :1\n")
    assert [d.code for d in err.value.diagnostics] == ["MP201"]
    assert "a/(undeclared workload):1" in err.value.diagnostics[0].message
    # and a never rule on one service is not violated by a wide rule on another port
    assert check(graph_of("namespace a {\n  service x :80/http\n  allow b/* -> ** :1\n"
                          "  never b/* -> x :80\n}\n")) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("namespace a {\n  service x :80/http\n  allow ** -> x :80\n}\n", ["MP150"]),
    ("namespace a {\n  service x :80/http\n  group g = a/**\n  allow g -> x :80\n}\n", ["MP150"]),
    ("namespace a {\n  service x :80/http\n  allow b/* -> ** GET\n}\n", ["MP151"]),
    ("namespace a {\n  service x :80/http\n  allow b/* -> a/** grpc p.S\n}\n", ["MP151"]),
    ("namespace a {\n  service x :80/http :81/tcp\n  allow b/* -> ** GET :81\n}\n", ["MP152"]),
    ("namespace a external {\n  service x\n}\nallow b/* -> a/** :1\n", ["MP106"]),
    ("namespace a external {\n  service x\n  allow b/* -> ** :1\n}\n", ["MP106"]),
    ("allow b/* -> istio-system/** :1\n", ["MP120"]),
    ("allow b/* -> ** :1\n", ["MP103"]),
    ("namespace a {\n  service x :80/http\n  allow b/* -> ** :http\n}\n", ["MP153"]),
    ("allow b/* -> Bad_Name/** :1\n", ["MP101"]),
])
def test_errors(text, expected):
    assert codes(text) == expected


def test_a_tcp_port_of_a_declared_service_is_fine_without_http_fields():
    graph = graph_of("namespace a {\n  service x :80/http :81/tcp\n  allow b/* -> ** :81\n}\n")
    assert decide(graph, Request(Caller(Identity("b", "y"), "10.0.0.1"), "a", "x", 81)).allowed


# -- Istio: one selector-less policy per namespace and action, proved by the reader -------------------------

def build_of(text: str, target: str = "istio"):
    return pipeline.lower(pipeline.analyze([SourceFile("policy.mesh", text)]), target)


def test_istio_emits_selector_less_policies_that_verify():
    from helpers import documents
    build = build_of(POLICY)
    policies = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"] for d in documents(build.files)
                if d["kind"] == "AuthorizationPolicy"}
    assert "selector" not in policies[("shop", "allow-every-workload")]
    assert policies[("shop", "deny-every-workload")]["action"] == "DENY"
    assert "selector" not in policies[("tools", "allow-every-workload")]
    assert policies[("tools", "allow-nothing")] == {}
    assert verifier.verify(build.analysis.graph, build.files, "istio", build.open_probes) == []


def give_selector(doc, _files):
    """A ``**`` policy narrowed to one declared service: undeclared workloads lose what it allowed."""
    if doc["metadata"]["name"].endswith("every-workload") and doc["metadata"]["namespace"] == "shop":
        doc["spec"] = {"selector": {"matchLabels": {"app": "orders"}}, **doc["spec"]}
    return doc


def test_mutation_a_wide_policy_given_a_selector_is_caught():
    from test_verify import edit
    build = build_of(POLICY)
    build.files = edit(build.files, "AuthorizationPolicy", give_selector)
    found = verifier.verify(build.analysis.graph, build.files, "istio", build.open_probes)
    assert found and all(c.request.namespace == "shop" and c.request.service is None for c in found)
    assert any(c.expected.allowed and not c.emitted for c in found)


def test_istio_refuses_wide_in_its_root_namespace():
    with pytest.raises(MeshError) as err:
        pipeline.lower(pipeline.analyze([SourceFile("policy.mesh", "allow a/* -> mesh-root/** :1\n")]), "istio",
                       root_namespace="mesh-root")
    assert [d.code for d in err.value.diagnostics if d.severity.value == "error"] == ["MP301"]
    assert "Istio's root namespace" in err.value.diagnostics[0].message


def test_diff_names_the_wide_rule_on_undeclared_and_declared_workloads():
    from meshpolicy.diff import compare
    before = graph_of("namespace shop {\n  service orders :8080/http\n}\n" + MONITORING)
    after = graph_of("namespace shop {\n  service orders :8080/http\n"
                     "  allow monitoring/prometheus -> ** GET /metrics :9102\n}\n" + MONITORING)
    diff = compare(before, after)
    lines = sorted(c.request for c in diff.changes)
    assert lines == ["monitoring/prometheus -> shop/(workloads it does not declare) :9102 GET /metrics",
                     "monitoring/prometheus -> shop/orders :9102 GET /metrics"]
    assert all(c.kind == "granted" and c.after.rules[0].wide for c in diff.changes)


# -- --cluster, explain ------------------------------------------------------------------------------------------

def test_cluster_note_on_an_unselected_workload_names_the_wide_rules(tmp_path, monkeypatch):
    from pathlib import Path

    from helpers import invoke
    corpus = Path(__file__).parent / "cluster" / "undeclared-workload"
    monkeypatch.chdir(tmp_path)
    policy = (corpus / "policy.mesh").read_text()
    Path("plain.mesh").write_text(policy)
    Path("wide.mesh").write_text(policy.replace("}\n", "  allow monitoring/* -> ** :9000\n}\n"))
    manifests = str(corpus / "manifests")
    plain = invoke(["check", "plain.mesh", "--cluster", manifests])
    assert "no declared service selects it: it is under default deny" in plain.output
    wide = invoke(["check", "wide.mesh", "--cluster", manifests])
    assert "no declared service selects it: only its namespace's '**' rules reach it" in wide.output
    assert "reaches it: allow monitoring/* -> ** :9000" in wide.output


def test_explain_ns_wide_asks_about_an_undeclared_workload(tmp_path, monkeypatch):
    from pathlib import Path

    from helpers import invoke
    monkeypatch.chdir(tmp_path)
    Path("p.mesh").write_text(POLICY)
    out = invoke(["explain", "p.mesh", "monitoring/prometheus", "->", "shop/**", "GET", "/metrics"]).output
    assert out.startswith("monitoring/prometheus-server (mTLS, from 192.0.2.10) -> shop/(undeclared workload):9102 "
                          "GET /metrics\nallowed\n")
    assert "rule:    p.mesh:3: allow monitoring/prometheus -> ** GET /metrics :9102" in out
    assert "port 9102 assumed: the first HTTP port of the 'shop/**' rules" in out
    denied = invoke(["explain", "p.mesh", "monitoring/prometheus", "->", "shop/**", ":7000", "--target", "istio"])
    assert "refused by a deny rule" in denied.output
    assert "emitted: AuthorizationPolicy shop/deny-every-workload" in denied.output
    assert "write NS/**" in invoke(["explain", "p.mesh", "monitoring/prometheus", "->", "**"], code=2).output
    assert "not managed" in invoke(["explain", "p.mesh", "monitoring/prometheus", "->", "monitoring/**"],
                                   code=2).output


# -- Linkerd: a Server selecting every pod of the namespace on each ** port, where that is exact ----------------

LINKERD = POLICY.replace("  deny monitoring/prometheus -> ** :7000\n", "")


def test_linkerd_emits_a_namespace_wide_server_per_wide_port_that_verifies():
    from helpers import documents
    build = build_of(LINKERD, "linkerd")
    servers = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"] for d in documents(build.files)
               if d["kind"] == "Server"}
    assert servers[("shop", "every-workload-9102")]["podSelector"] == {"matchLabels": {}}
    assert servers[("shop", "every-workload-9102")]["proxyProtocol"] == "HTTP/1"   # HTTP fields: taken as HTTP
    assert servers[("shop", "every-workload-7000")]["proxyProtocol"] == "unknown"  # the workloads' own protocol
    assert servers[("tools", "every-workload-22")]["podSelector"] == {"matchLabels": {}}
    assert verifier.verify(build.analysis.graph, build.files, "linkerd", build.open_probes) == []


def give_server_selector(doc, _files):
    """The namespace-wide Server narrowed to one declared service."""
    if doc["metadata"]["name"] == "every-workload-7000":
        doc["spec"]["podSelector"] = {"matchLabels": {"app": "orders"}}
    return doc


def test_mutation_a_wide_server_given_a_selector_is_caught():
    from test_verify import edit
    build = build_of(LINKERD, "linkerd")
    build.files = edit(build.files, "Server", give_server_selector)
    found = verifier.verify(build.analysis.graph, build.files, "linkerd", build.open_probes)
    assert found and all(c.request.service is None and c.request.port == 7000 for c in found)
    assert all(c.expected.allowed and not c.emitted for c in found)


@pytest.mark.parametrize(("rule", "reason"), [
    ("deny ops/* -> ** :7000", "a deny rule on 'shop/**'"),
    ("allow ops/* -> **", "every port of 'shop/**'"),
    ("allow ops/* -> ** :8080", "orders also declares it"),
])
def test_linkerd_refuses_what_it_cannot_express_exactly(rule, reason):
    with pytest.raises(MeshError) as err:
        build_of(f"namespace shop {{\n  service orders :8080/http\n  {rule}\n}}\n", "linkerd")
    errors = [d for d in err.value.diagnostics if d.severity.value == "error"]
    assert [d.code for d in errors] == ["MP301"]
    assert reason in errors[0].message + (errors[0].hint or "")
    build_of(f"namespace shop {{\n  service orders :8080/http\n  {rule}\n}}\n", "istio")  # Istio expresses each


# -- lint ---------------------------------------------------------------------------------------------------------

def lint_of(text: str):
    from meshpolicy.lint import lint
    return lint([SourceFile("policy.mesh", text)])


def test_lint_understands_wide_rules():
    found = lint_of("namespace shop {\n  service orders :8080/http\n  allow any -> ** :9102\n"
                    "  allow a/* -> orders :8080\n  allow a/* -> ** :8080\n}\n")
    by_code = {}
    for d in found:
        by_code.setdefault(d.code, []).append(d)
    # ML007: '**' covers every workload of the namespace, declared or not, deployed now or later
    assert [d.span.line for d in by_code["ML007"]] == [3, 5]
    assert "every workload of namespace 'shop', declared or not" in by_code["ML007"][0].message
    # ML002: 'any' on strict ports of every workload means '*'
    assert [d.span.line for d in by_code["ML002"]] == [3]
    # ML004: the rule on orders grants nothing the '**' rule does not
    assert [d.span.line for d in by_code["ML004"]] == [4]
    # ML003: orders is covered by the '**' rules, so it is not "named by no rule"
    assert "ML003" not in by_code


def test_lint_ml002_stays_quiet_where_a_workload_of_the_namespace_is_permissive():
    found = lint_of("namespace shop {\n  service legacy :7000/tcp mtls permissive\n  allow any -> ** :7000\n}\n")
    assert "ML002" not in {d.code for d in found}


# -- random policies with ** rules: whenever a target builds one, its reader agrees with the decider ----------------

WIDE_HEAD = """namespace n {{
  mtls {mode}
  service s :8080/http :9000/tcp probes /healthz
  service a :80/http
"""


@st.composite
def wide_rules(draw) -> str:
    action = draw(st.sampled_from(["allow", "allow", "allow", "deny"]))
    source = draw(st.sampled_from(["a", "*", "any", "ops/*", "10.0.0.0/8"]))
    dest = draw(st.sampled_from(["**", "n/**", "**", "s"]))
    http = draw(st.sampled_from(["", "GET", "GET /metrics", "POST /api/*"]))
    if dest == "s":
        ports = ":8080"
    else:
        ports = draw(st.sampled_from([":9102", ":7000", ":7000,9102"] + ([""] if not http else [])))
    return " ".join(p for p in (f"  {action} {source} -> {dest}", http, ports) if p)


wide_policies = st.builds(lambda mode, body: WIDE_HEAD.format(mode=mode) + "\n".join(body) + "\n}\n",
                          st.sampled_from(["strict", "permissive"]), st.lists(wide_rules(), min_size=1, max_size=4))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["istio", "linkerd"])
@settings(max_examples=40, deadline=None, derandomize=True)
@given(text=wide_policies)
def test_a_built_policy_with_wide_rules_means_what_the_decider_says(target, text):
    from helpers import proved_or_refused
    proved_or_refused(text, target)


def test_fmt_keeps_wide_references():
    from meshpolicy.fmt import format_source
    text = "namespace shop {\n  group g = **,  shop/**\n  allow a/* ->   **,shop/** GET /m :9102\n}\n"
    out = format_source(SourceFile("p.mesh", text))
    assert "  group g = **, shop/**\n" in out and "  allow a/* -> **, shop/** GET /m :9102\n" in out
    assert format_source(SourceFile("p.mesh", out)) == out


def test_linkerd_builds_wide_where_modes_differ_but_every_source_needs_an_identity():
    text = ("namespace shop {\n  service orders :8080/http\n  service payments :8443/grpc\n  mtls permissive\n}\n"
            "namespace shop {\n  allow monitoring/prometheus -> shop/** GET /metrics :9102\n}\n"
            "namespace monitoring external {\n  service prometheus\n}\n")
    text = text.replace("  service payments :8443/grpc\n  mtls permissive\n", "  service payments :8443/grpc mtls permissive\n")
    build = build_of(text, "linkerd")
    assert verifier.verify(build.analysis.graph, build.files, "linkerd", build.open_probes) == []
    with pytest.raises(MeshError):
        build_of(text.replace("monitoring/prometheus -> shop/**", "10.0.0.0/8 -> shop/**"), "linkerd")
