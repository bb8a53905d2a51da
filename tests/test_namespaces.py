"""Namespaces in a shared GitOps repository (issue 8 items 2, 3, 5; docs/gitops.md "Namespaces"): no prune can
delete one, --namespaces skip says what each must carry, and Linkerd's build notes say what audit mode and
routes leave out."""

from __future__ import annotations

import re

import pytest
import yaml
from helpers import builds, case_id, compile_case, compile_text, disagreements, documents, invoke

from meshpolicy.backends.linkerd import ports_losing_probes
from meshpolicy.diagnostics import MeshError
from meshpolicy.pipeline import analyze
from meshpolicy.source import SourceFile

PROTECTION = {"argocd.argoproj.io/sync-options": "Prune=false", "kustomize.toolkit.fluxcd.io/prune": "disabled"}
TWO = """namespace shop {
  service orders :8080/http probes /healthz
  service web :8080/http
  allow web -> orders GET /api/*
}
namespace pay {
  service payments :8443/http2
  allow shop/web -> payments POST
}
"""


def _namespaces(files: dict[str, str]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents(files) if d["kind"] == "Namespace"}


@pytest.mark.parametrize("path", builds("linkerd"), ids=case_id)
def test_every_linkerd_namespace_is_protected_from_pruning(path):
    found = _namespaces(compile_case(path, "linkerd").files)
    assert found
    for ns in found.values():
        assert PROTECTION.items() <= ns["metadata"]["annotations"].items()
        assert ns["metadata"]["annotations"]["linkerd.io/inject"] == "enabled"


def test_namespaces_emit_on_istio_writes_the_injection_label_protected():
    files = compile_text(TWO, "istio", namespaces="emit").files
    assert sorted(_namespaces(files)) == ["pay", "shop"]
    for ns in _namespaces(files).values():
        assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
        assert PROTECTION.items() <= ns["metadata"]["annotations"].items()


def test_a_namespace_removed_from_the_policy_leaves_no_file_whose_pruning_deletes_it(tmp_path):
    (tmp_path / "p.mesh").write_text(TWO)
    out = tmp_path / "out"
    invoke(["build", tmp_path / "p.mesh", "-t", "linkerd", "-o", out])
    before = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*.yaml")}
    (tmp_path / "p.mesh").write_text(TWO.split("namespace pay")[0])
    invoke(["build", tmp_path / "p.mesh", "-t", "linkerd", "-o", out])
    after = {p.relative_to(out).as_posix() for p in out.rglob("*.yaml")}
    pruned = [yaml.safe_load(before[p]) for p in before.keys() - after]
    assert "pay/namespace-pay.yaml" in before.keys() - after   # the file goes (GitOps prunes what it held)
    for doc in pruned:                                         # but a Namespace it held is never deleted
        if doc["kind"] == "Namespace":
            assert PROTECTION.items() <= doc["metadata"]["annotations"].items()
    assert [d for d in pruned if d["kind"] == "Namespace"]


@pytest.mark.parametrize("target, wants", [
    ("linkerd", "annotation linkerd.io/inject: enabled, annotation config.linkerd.io/default-inbound-policy: deny"),
    ("istio", "label istio-injection=enabled"),
])
def test_namespaces_skip_writes_none_and_names_what_each_must_carry(tmp_path, target, wants):
    (tmp_path / "p.mesh").write_text(TWO)
    out = tmp_path / "out"
    result = invoke(["build", tmp_path / "p.mesh", "-t", target, "-o", out, "--namespaces", "skip"])
    assert not list(out.rglob("namespace-*.yaml"))
    for name, line in (("shop", 1), ("pay", 6)):
        assert (f"p.mesh:{line}:11: note[MP303]: namespace '{name}' is not emitted: for the policy to hold it "
                f"must carry {wants}\n") in result.output
    # verification read every namespace as carrying exactly that, and so does `verify --namespaces skip`
    invoke(["verify", tmp_path / "p.mesh", "-t", target, "-o", out, "--namespaces", "skip"])


def test_without_the_assumption_a_skipped_linkerd_namespace_reads_as_unmeshed(tmp_path):
    build = compile_text(TWO, "linkerd", namespaces="skip")
    assert disagreements(build, "linkerd", assumed_namespace_annotations={
        "linkerd.io/inject": "enabled", "config.linkerd.io/default-inbound-policy": "deny"}) == []
    assert disagreements(build, "linkerd")  # no Namespace and nothing assumed: unmeshed pods allow everything


def test_istio_is_skip_by_default_and_linkerd_emit():
    assert not _namespaces(compile_text(TWO, "istio").files)
    assert sorted(_namespaces(compile_text(TWO, "linkerd").files)) == ["pay", "shop"]


def test_an_unknown_namespaces_value_is_a_usage_error(tmp_path):
    (tmp_path / "p.mesh").write_text(TWO)
    result = invoke(["build", tmp_path / "p.mesh", "-t", "linkerd", "-o", tmp_path / "out", "--namespaces", "own"],
                    code=2)
    assert result.output.startswith("meshpolicy: error: ") and "--namespaces" in result.output


def test_the_istio_reader_refuses_a_namespace_without_sidecars():
    build = compile_text(TWO, "istio", namespaces="emit")
    doc = yaml.safe_load(build.files["shop/namespace-shop.yaml"])
    doc["metadata"]["labels"]["istio-injection"] = "disabled"
    build.files["shop/namespace-shop.yaml"] = yaml.safe_dump(doc)
    with pytest.raises(MeshError) as err:
        from meshpolicy import pipeline
        pipeline.check(build, "istio")
    assert "istio-injection" in str(err.value)


# -- audit mode (item 3) and probes (item 5) ---------------------------------------------------------


def test_audit_mode_names_the_servers_whose_unrouted_requests_still_get_404(tmp_path):
    (tmp_path / "p.mesh").write_text(TWO)
    result = invoke(["build", tmp_path / "p.mesh", "-t", "linkerd", "-o", tmp_path / "out", "--mode", "audit"])
    notes = re.findall(r"note\[MP314\]: (.*)", result.output)
    routes = sorted(p.stem.removeprefix("httproute-") for p in (tmp_path / "out").rglob("httproute-*.yaml"))
    assert len(notes) == 2  # orders-8080 and payments-8443: the two Servers with routes
    assert re.fullmatch(r"--mode audit: on Server shop/orders-8080 requests that match none of its routes "
                        r"\(HTTPRoute api-\w+, HTTPRoute probes-healthz-\w+\) still get 404", notes[0])
    assert notes[1].startswith("--mode audit: on Server pay/payments-8443 requests that match none of its routes "
                               "(HTTPRoute root-")
    assert all(f"HTTPRoute {r}" in "".join(notes) for r in routes)
    assert "hint: Linkerd picks a route before it checks authorization, and accessPolicy: audit does not turn a " \
           "404 into an allow (linkerd.md §4.3); audit does not cover those requests" in result.output
    enforce = invoke(["build", tmp_path / "p.mesh", "-t", "linkerd", "-o", tmp_path / "out2"])
    assert "MP314" not in enforce.output


def test_a_port_with_routes_and_no_declared_probes_is_noted(tmp_path):
    (tmp_path / "p.mesh").write_text(TWO)
    result = invoke(["build", tmp_path / "p.mesh", "-t", "linkerd", "-o", tmp_path / "out"])
    assert ("p.mesh:7:3: note[MP304]: port 8443 of 'pay/payments' has routes and 'pay/payments' declares no probes: "
            "kubelet probes of that port will be refused (404 or 403) and its pods never become Ready\n"
            " 7 |   service payments :8443/http2\n") in result.output
    assert "'shop/orders' declares no probes" not in result.output    # it declares /healthz: MP302 instead
    assert "'shop/web' declares no probes" not in result.output       # no rule for it: no routes, Linkerd's probes
    graph = analyze([SourceFile("p.mesh", TWO)]).graph
    assert [(p.service.name, p.port.number) for p in ports_losing_probes(graph)] == [("payments", 8443)]
