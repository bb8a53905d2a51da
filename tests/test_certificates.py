"""The ``authority`` statement (issue 16, docs/certificates.md): what each target emits, validated against the
real CRDs of cert-manager, trust-manager and prometheus-operator (tests/crds); the alerts parsed by a real
PromQL parser and evaluated on synthetic metrics; the install values beside the manifests; the readers."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import yaml
from helpers import CASES, ROOT, builds, case_id, compile_case, compile_errors, compile_text, require_tool

from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError
from meshpolicy.output import crds, writer
from meshpolicy.output.folder import MARKER

promql = pytest.importorskip("promql_parser", reason="promql-parser (a test extra) parses the alert expressions")

#: the kinds ``authority`` emits beyond each mesh's own
CERT_KINDS = {"Certificate", "Issuer", "Bundle", "PrometheusRule"}
CERT_CASES = sorted((CASES / "certificates").glob("*.mesh"))
BUILT = [(p, t) for t in sorted(TARGETS) for p in builds(t) if p in CERT_CASES]


@cache
def schemas() -> dict:
    return crds.load(ROOT / "tests" / "crds")


def cert_files(files: dict[str, str]) -> dict[str, str]:
    return {p: t for p, t in files.items() if not p.startswith("_values/") and p != writer.KUSTOMIZATION
            and yaml.safe_load(t)["kind"] in CERT_KINDS}


# -- the real CRDs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["enforce", "audit"])
@pytest.mark.parametrize(("path", "target"), BUILT, ids=[f"{case_id(p)}-{t}" for p, t in BUILT])
def test_every_certificate_resource_validates_against_its_real_crd(path, target, mode):
    files = cert_files(compile_case(path, target, mode).files)
    assert files, "an authority emits at least its alerts"
    assert crds.validate(schemas(), files) == []
    for text in files.values():  # a reference names a kind the cert-manager CRDs define
        doc = yaml.safe_load(text)
        if doc["kind"] == "Certificate":
            ref = doc["spec"]["issuerRef"]
            assert ("cert-manager.io/v1", ref["kind"]) in schemas()


def test_every_kind_is_covered_by_some_case():
    texts = [t for path, target in BUILT for t in cert_files(compile_case(path, target).files).values()]
    kinds = {(yaml.safe_load(t)["apiVersion"], yaml.safe_load(t)["kind"]) for t in texts}
    assert kinds == {("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer"),
                     ("trust.cert-manager.io/v1alpha1", "Bundle"), ("monitoring.coreos.com/v1", "PrometheusRule")}


@pytest.mark.parametrize(("kind", "change", "problem"), [
    ("Certificate", lambda d: d["spec"].update(duration=2160), "is not of type 'string'"),
    ("Certificate", lambda d: d["spec"].update(lifetime="720h"), "Additional properties are not allowed"),
    ("Bundle", lambda d: d["spec"]["target"].update(configMap={}), "'key' is a required property"),
    ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].update(**{"for": "5 minutes"}), "does not match"),
    ("Issuer", lambda d: d["spec"]["vault"].pop("server"), "'server' is a required property"),
])
def test_the_crds_do_refuse_a_wrong_resource(kind, change, problem):
    """The validation above can fail: each CRD refuses a plausible mistake."""
    files = cert_files(compile_case(CASES / "certificates" / "vault.mesh", "linkerd").files)
    [(path, text)] = [(p, t) for p, t in files.items() if yaml.safe_load(t)["kind"] == kind]
    doc = yaml.safe_load(text)
    change(doc)
    found = crds.validate(schemas(), {path: yaml.safe_dump(doc)})
    assert found and problem in found[0], found


# -- what each target emits ------------------------------------------------------------------------------

def docs_of(files: dict[str, str], kind: str) -> list[dict]:
    return [yaml.safe_load(t) for t in cert_files(files).values() if yaml.safe_load(t)["kind"] == kind]


def test_istio_plugs_cert_manager_into_istiods_cacerts_secret():
    files = compile_case(CASES / "certificates" / "cert-manager.mesh", "istio").files
    [cert] = docs_of(files, "Certificate")
    assert cert["metadata"]["namespace"] == "istio-system" and cert["spec"]["secretName"] == "cacerts"
    assert cert["spec"]["isCA"] is True
    assert (cert["spec"]["duration"], cert["spec"]["renewBefore"]) == ("720h", "240h")  # 30d, 10d
    assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "mesh-ca"}
    values = yaml.safe_load(files["_values/istiod.yaml"])
    assert values == {"env": {"DEFAULT_WORKLOAD_CERT_TTL": "12h", "MAX_WORKLOAD_CERT_TTL": "12h"},
                      "meshConfig": {"defaultConfig": {"proxyMetadata": {"SECRET_TTL": "12h"}}}}


def test_the_istio_root_namespace_option_moves_the_ca():
    files = compile_case(CASES / "certificates" / "cert-manager.mesh", "istio", root_namespace="mesh-root").files
    assert "mesh-root/certificate-cacerts.yaml" in files
    assert "mesh-root/prometheusrule-meshpolicy-certificates.yaml" in files


def test_istio_builtin_sets_the_self_signed_roots_lifetime_and_emits_no_certificate():
    files = compile_case(CASES / "certificates" / "builtin.mesh", "istio").files
    assert not docs_of(files, "Certificate")
    assert yaml.safe_load(files["_values/istiod.yaml"])["env"] == {
        "CITADEL_SELF_SIGNED_CA_CERT_TTL": "87600h", "DEFAULT_WORKLOAD_CERT_TTL": "12h", "MAX_WORKLOAD_CERT_TTL": "12h"}


def test_linkerd_issues_its_identity_issuer_and_distributes_the_anchor():
    files = compile_case(CASES / "certificates" / "cert-manager.mesh", "linkerd").files
    [cert] = docs_of(files, "Certificate")
    assert cert["metadata"] == {**cert["metadata"], "name": "linkerd-identity-issuer", "namespace": "linkerd"}
    assert cert["spec"]["commonName"] == "identity.linkerd.cluster.local"
    assert cert["spec"]["dnsNames"] == ["identity.linkerd.cluster.local"]
    assert cert["spec"]["privateKey"]["algorithm"] == "ECDSA"
    [bundle] = docs_of(files, "Bundle")
    assert "namespace" not in bundle["metadata"]  # cluster-scoped
    assert bundle["spec"]["sources"] == [{"secret": {"name": "mesh-root", "key": "ca.crt"}}]
    selector = {"matchLabels": {"kubernetes.io/metadata.name": "linkerd"}}
    assert bundle["spec"]["target"] == {"configMap": {"key": "ca-bundle.crt"}, "namespaceSelector": selector}
    assert yaml.safe_load(files["_values/linkerd-control-plane.yaml"]) == {
        "identity": {"externalCA": True, "issuer": {"issuanceLifetime": "12h", "scheme": "kubernetes.io/tls"}}}


def test_the_trust_domain_names_linkerds_issuer():
    text = "trust-domain example.org\nauthority cert-manager issuer ca anchor root\nservice a :80\nallow a -> a\n"
    [cert] = docs_of(compile_text(text, "linkerd").files, "Certificate")
    assert cert["spec"]["commonName"] == "identity.linkerd.example.org"


def test_vault_signs_through_a_cert_manager_vault_issuer():
    files = compile_case(CASES / "certificates" / "vault.mesh", "istio").files
    [issuer] = docs_of(files, "Issuer")
    assert issuer["metadata"]["namespace"] == "istio-system"
    assert issuer["spec"] == {"vault": {
        "server": "https://vault.example.com:8200", "path": "pki_int/sign/mesh",
        "auth": {"kubernetes": {"role": "mesh-issuer", "mountPath": "/v1/auth/kubernetes",
                                "serviceAccountRef": {"name": "cert-manager-vault"}}}}}
    [cert] = docs_of(files, "Certificate")
    assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "Issuer", "name": "meshpolicy-vault"}
    assert (cert["spec"]["duration"], cert["spec"]["renewBefore"]) == ("2160h", "720h")  # the defaults 90d, 30d


def test_no_authority_emits_nothing_about_certificates():
    files = compile_text("service a :80\nallow a -> a\n", "linkerd").files
    assert not cert_files(files) and not [p for p in files if p.startswith("_values/")]


def test_targets_refuse_what_they_cannot_express():
    text = "authority cert-manager issuer ca\nservice a :80\nallow a -> a\n"
    assert "error[MP704]: authority cert-manager without 'anchor' cannot be expressed on target 'linkerd'" in \
        compile_errors(text, "linkerd")
    text = "authority cert-manager issuer ca anchor a,b\nservice a :80\nallow a -> a\n"
    assert compile_errors(text, "istio").startswith(
        "policy.mesh:1:34: error[MP704]: two trust anchors cannot be expressed on target 'istio'")


# -- the alerts: real PromQL, evaluated ---------------------------------------------------------------------

def alerts(files: dict[str, str]) -> dict[str, dict]:
    [rule] = docs_of(files, "PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


@pytest.mark.parametrize(("path", "target"), BUILT, ids=[f"{case_id(p)}-{t}" for p, t in BUILT])
def test_every_alert_expression_is_valid_promql(path, target):
    for name, rule in alerts(compile_case(path, target).files).items():
        promql.parse(rule["expr"])  # raises ValueError on a syntax error
        assert rule["labels"]["severity"] in ("warning", "critical"), name


def test_the_parser_does_refuse_bad_promql():
    with pytest.raises(ValueError):
        promql.parse('increase(citadel_server_csr_sign_err_count[15m] > 0')


@dataclass
class Series:
    """One time series: its value now and, for counters, ``before`` (the value one range ago)."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    before: float = 0.0


NOW = 1_900_000_000.0


def evaluate(node, series: list[Series]):
    """A small PromQL evaluator for what the alerts use: selectors with = and != matchers, increase() over a
    range, time(), max(), parentheses, arithmetic and comparison filters. A vector is [(labels, value)]."""
    kind = type(node).__name__
    if kind == "ParenExpr":
        return evaluate(node.expr, series)
    if kind == "NumberLiteral":
        return node.val
    if kind == "VectorSelector":
        return [(s.labels, s.value) for s in series if selected(node, s)]
    if kind == "Call" and node.func.name == "time":
        return NOW
    if kind == "Call" and node.func.name == "increase":
        [matrix] = node.args
        return [(s.labels, s.value - s.before) for s in series if selected(matrix.vector_selector, s)]
    if kind == "AggregateExpr" and str(node.op) == "max":
        vector = evaluate(node.expr, series)
        return [({}, max(v for _, v in vector))] if vector else []
    if kind == "BinaryExpr":
        lhs, rhs, op = evaluate(node.lhs, series), evaluate(node.rhs, series), str(node.op)
        assert isinstance(lhs, list) and isinstance(rhs, float), "the alerts compare a vector with a number"
        if op == "-":
            return [(labels, v - rhs) for labels, v in lhs]
        test = {"<": float.__lt__, ">": float.__gt__, "==": float.__eq__}[op]
        return [(labels, v) for labels, v in lhs if test(float(v), rhs)]
    raise AssertionError(f"the evaluator does not model {kind}")


def selected(selector, s: Series) -> bool:
    if selector.name != s.name:
        return False
    for m in selector.matchers.matchers:
        equal = s.labels.get(m.name, "") == m.value
        if equal != (str(m.op) in ("MatchOp.Equal", "=")):
            return False
    return True


def fires(rule: dict, series: list[Series]) -> bool:
    return bool(evaluate(promql.parse(rule["expr"]), series))


#: cert-manager.mesh: workload 12h, issuer 30d, anchor 3650d; margins: a fifth, a sixth, a sixth (docs)
WORKLOAD_MARGIN, ISSUER_MARGIN, ANCHOR_MARGIN = 12 * 3600 // 5, 30 * 86400 // 6, 3650 * 86400 // 6

#: alert -> metrics with ``x`` seconds left (or ``x`` errors) for each target
WORLDS = {
    "istio": {
        "MeshWorkloadCertificateExpiring": (WORKLOAD_MARGIN, lambda x: [
            Series("istio_agent_cert_expiry_seconds", x, {"resource_name": "default", "pod": "a"}),
            Series("istio_agent_cert_expiry_seconds", 10 * WORKLOAD_MARGIN, {"resource_name": "default", "pod": "b"}),
            Series("istio_agent_cert_expiry_seconds", 1.0, {"resource_name": "ROOTCA"})]),
        "MeshIssuerCertificateExpiring": (ISSUER_MARGIN, lambda x: [
            Series("citadel_server_cert_chain_expiry_timestamp", NOW + x)]),
        "MeshTrustAnchorExpiring": (ANCHOR_MARGIN, lambda x: [
            Series("citadel_server_root_cert_expiry_timestamp", NOW + x)]),
    },
    "linkerd": {
        "MeshWorkloadCertificateExpiring": (WORKLOAD_MARGIN, lambda x: [
            Series("control_identity_cert_expiration_timestamp_seconds", NOW + x, {"pod": "a"})]),
        "MeshIssuerCertificateExpiring": (ISSUER_MARGIN, lambda x: [Series("issuer_cert_ttl_seconds", x)]),
    },
}
ERRORS = {
    "istio": {
        "MeshCertificateSigningErrors": lambda n: [Series("citadel_server_csr_sign_err_count", 7 + n, before=7)],
        "MeshWorkloadCertificateRotationErrors": lambda n: [
            Series("istio_agent_num_failed_outgoing_requests", 3 + n, {"request_type": "csr"}, before=3),
            Series("istio_agent_num_failed_outgoing_requests", 9, {"request_type": "token"}, before=1)],
        "MeshIssuerCertificateNotReady": lambda n: [
            Series("certmanager_certificate_ready_status", float(n > 0),
                   {"namespace": "istio-system", "name": "cacerts", "condition": "False"}),
            Series("certmanager_certificate_ready_status", 1.0,
                   {"namespace": "istio-system", "name": "other", "condition": "False"})],
    },
    "linkerd": {
        "MeshCertificateSigningErrors": lambda n: [
            Series("grpc_server_handled_total", 5 + n,
                   {"grpc_service": "io.linkerd.proxy.identity.Identity", "grpc_code": "Internal"}, before=5),
            Series("grpc_server_handled_total", 900, {"grpc_service": "io.linkerd.proxy.identity.Identity",
                                                      "grpc_code": "OK"}, before=100)],
        "MeshWorkloadCertificateRotationErrors": lambda n: [
            Series("control_identity_cert_refreshes_total", 2 + n, {"result": "error"}, before=2),
            Series("control_identity_cert_refreshes_total", 50, {"result": "ok"}, before=10)],
        "MeshIssuerCertificateNotReady": lambda n: [
            Series("certmanager_certificate_ready_status", float(n > 0),
                   {"namespace": "linkerd", "name": "linkerd-identity-issuer", "condition": "False"})],
    },
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_alerts_fire_below_their_margin_and_on_errors_only(target):
    rules = alerts(compile_case(CASES / "certificates" / "cert-manager.mesh", target).files)
    assert set(rules) == set(WORLDS[target]) | set(ERRORS[target])  # every alert is exercised below
    for name, (margin, world) in WORLDS[target].items():
        assert fires(rules[name], world(margin - 60)), name
        assert not fires(rules[name], world(margin + 60)), name
        assert not fires(rules[name], []), name  # no such metric: nothing to say
    for name, world in ERRORS[target].items():
        assert fires(rules[name], world(1)), name
        assert not fires(rules[name], world(0)), name


def test_alerts_ship_in_audit_mode_too():
    for target in sorted(TARGETS):
        path = CASES / "certificates" / "cert-manager.mesh"
        assert alerts(compile_case(path, target, "audit").files) == alerts(compile_case(path, target).files)


# -- install values in the output folder ---------------------------------------------------------------------

def build(tmp_path: Path, text: str, target: str = "istio") -> Path:
    out = tmp_path / "out"
    writer.write(out, compile_text(text, target).files)
    return out


AUTHORITY = "authority cert-manager issuer ca anchor root\nservice a :80\nallow a -> a\n"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kustomize_builds_the_manifests_and_leaves_the_values_out(tmp_path, target):
    kubectl = require_tool("kubectl", "an output folder must pass 'kubectl kustomize OUT'")
    out = build(tmp_path, AUTHORITY, target)
    values = sorted(p.relative_to(out).as_posix() for p in (out / "_values").iterdir())
    assert values == [{"istio": "_values/istiod.yaml", "linkerd": "_values/linkerd-control-plane.yaml"}[target]]
    assert (out / values[0]).read_text().startswith(MARKER + "\n")
    built = subprocess.run([kubectl, "kustomize", str(out)], capture_output=True, text=True, check=True).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built))
    assert "Certificate" in kinds and "PrometheusRule" in kinds
    assert all("kind" in d for d in yaml.safe_load_all(built))  # no values file among them
    assert "_values" not in (out / "kustomization.yaml").read_text()


def test_a_build_without_authority_removes_the_values_and_keeps_foreign_files(tmp_path):
    out = build(tmp_path, AUTHORITY)
    (out / "_values" / "mine.yaml").write_text("replicaCount: 3\n")
    build(tmp_path, "service a :80\nallow a -> a\n")
    assert sorted(p.name for p in (out / "_values").iterdir()) == ["mine.yaml"]
    assert not (out / "istio-system").exists()


def test_a_values_file_meshpolicy_did_not_write_is_never_overwritten(tmp_path):
    out = tmp_path / "out"
    (out / "_values").mkdir(parents=True)
    (out / "_values" / "istiod.yaml").write_text("# my own values\nenv: {}\n")
    with pytest.raises(writer.OutputError, match="was not written by meshpolicy"):
        writer.write(out, compile_text(AUTHORITY).files)
    assert (out / "_values" / "istiod.yaml").read_text() == "# my own values\nenv: {}\n"


# -- the readers -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", sorted(TARGETS))
def test_readers_leave_out_exactly_the_certificate_kinds(target):
    """Verification passes with the certificates in the output, and still fails closed on any other kind."""
    from meshpolicy import verify

    result = compile_text(AUTHORITY, target)
    graph = result.analysis.graph
    assert verify.verify(graph, result.files, target, result.open_probes, reader_options=result.reader_options) == []
    extra = {"x/configmap-x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: x}\n",
             "x/certificate-x.yaml": ("apiVersion: example.com/v1\nkind: Certificate\n"
                                      "metadata: {name: x, namespace: x}\n")}
    for path, text in extra.items():
        files = writer.with_kustomization({**{p: t for p, t in result.files.items() if p != "kustomization.yaml"},
                                           path: text})
        with pytest.raises(MeshError, match="cannot evaluate"):
            verify.verify(graph, files, target, result.open_probes, reader_options=result.reader_options)


# -- the statement -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "seconds"), [("90m", 5400), ("24h", 86400), ("90d", 7776000), ("1h", 3600)])
def test_durations(value, seconds):
    from meshpolicy.pipeline import analyze
    from meshpolicy.source import SourceFile

    graph = analyze([SourceFile("p.mesh", f"authority builtin workload-lifetime {value}\n")]).graph
    assert graph.authority is not None and graph.authority.workload.seconds == seconds


@pytest.mark.parametrize("value", ["24", "1.5h", "1d12h", "0h", "59m", "36501d", "24H", "-1h", "0024h"])
def test_bad_durations_are_mp701(value):
    text = f"authority builtin workload-lifetime {value}\nservice a :80\n"
    assert "error[MP701]" in compile_errors(text)


def test_a_comment_after_the_authority_is_a_comment():
    text = "authority builtin workload-lifetime 12h # short\nservice a :80\nallow a -> a\n"
    files = compile_text(text).files
    assert yaml.safe_load(files["_values/istiod.yaml"])["env"]["DEFAULT_WORKLOAD_CERT_TTL"] == "12h"


def test_an_anchor_list_reads_the_same_whatever_its_spacing():
    """``a, b`` is one value, as every comma list of the language; fmt writes it ``a,b``."""
    from meshpolicy.fmt import format_source
    from meshpolicy.source import SourceFile

    spaced = "authority cert-manager issuer ca anchor old, new/ca.crt\nservice a :80\nallow a -> a\n"
    [bundle] = docs_of(compile_text(spaced, "linkerd").files, "Bundle")
    assert bundle["spec"]["sources"] == [{"secret": {"name": "old", "key": "tls.crt"}},
                                         {"secret": {"name": "new", "key": "ca.crt"}}]
    assert format_source(SourceFile("p.mesh", spaced)).splitlines()[0] == \
        "authority cert-manager issuer ca anchor old,new/ca.crt"


def test_build_crds_validates_the_certificate_kinds_too(tmp_path):
    """``build --crds`` with the mesh's CRDs and those of tests/crds: the output passes; without the
    cert-manager ones, each Certificate is MP402 and nothing is written."""
    import shutil

    from helpers import invoke, schemas_root

    policy = tmp_path / "p.mesh"
    policy.write_text((CASES / "certificates" / "vault.mesh").read_text())
    folder = tmp_path / "crds"
    shutil.copytree(ROOT / "tests" / "crds", folder)
    for name in ("authorizationpolicies.security.istio.io.yaml", "peerauthentications.security.istio.io.yaml"):
        shutil.copy(schemas_root() / "istio" / name, folder)
    invoke(["build", str(policy), "-t", "istio", "-o", str(tmp_path / "out"), "--crds", str(folder)], code=0)
    shutil.rmtree(folder / "cert-manager")
    result = invoke(["build", str(policy), "-t", "istio", "-o", str(tmp_path / "out2"), "--crds", str(folder)],
                    code=1)
    assert "error[MP402]" in result.output
    assert "istio-system/certificate-cacerts.yaml: Certificate/cacerts: no CRD for cert-manager.io/v1 Certificate" \
        in result.output
    assert not (tmp_path / "out2").exists()
