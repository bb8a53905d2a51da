"""``--cluster``: the policy against the manifests of the workloads it governs (docs/cluster.md).

Each folder of tests/cluster/ is a case: ``policy.mesh``, ``manifests/`` and optionally ``args``
(more options, such as ``--target linkerd``). ``meshpolicy check policy.mesh --cluster manifests``
runs in that folder, and its whole output (diagnostics rendered in full, the exit code) is a
snapshot (tests/__snapshots__/test_cluster/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import TESTS, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from meshpolicy.cluster import read
from meshpolicy.cluster import reader as manifest_reader
from meshpolicy.cluster.model import Container, Workload
from meshpolicy.cluster.selectors import PodIndex, disjoint_by_labels, selects
from meshpolicy.source import Span

CORPUS = TESTS / "cluster"


class TextSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "txt"


def run_case(folder: Path, monkeypatch) -> str:
    monkeypatch.chdir(folder)
    extra = (folder / "args").read_text().split() if (folder / "args").exists() else []
    result = invoke(["check", "policy.mesh", "--cluster", "manifests", *extra], code=None)
    return f"$ meshpolicy check policy.mesh --cluster manifests {' '.join(extra)}".rstrip() + \
        f"\n{result.output}exit {result.exit_code}\n"


@pytest.mark.parametrize("folder", sorted(p for p in CORPUS.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_corpus(folder, monkeypatch, snapshot):
    assert run_case(folder, monkeypatch) == snapshot.use_extension(TextSnapshot)


# -- the library, for the tests below -----------------------------------------------------------------------
def findings(policy: Path, manifests: list[Path | str], target: str | None = None):
    """Every diagnostic of ``check --cluster`` (errors, warnings and notes), and whether it failed."""
    from meshpolicy import pipeline
    from meshpolicy.diagnostics import MeshError
    from meshpolicy.source import discover

    try:
        analysis = pipeline.analyze(discover([policy]), read([str(m) for m in manifests]), target)
    except MeshError as exc:
        return exc.diagnostics, True
    return analysis.diagnostics, False


# -- Kubeflow-style namespaces: label keys that differ, proven disjoint by the pods --------------------------
KUBEFLOW = CORPUS / "kubeflow-mixed-keys"


def test_mixed_label_keys_are_refused_without_the_manifests():
    result = invoke(["check", KUBEFLOW / "policy.mesh"], code=1)
    assert "error[MP118]" in result.output


@pytest.mark.parametrize("target", ["istio", "linkerd"])
def test_mixed_label_keys_build_and_verify_once_the_manifests_prove_them_disjoint(target, tmp_path):
    result = invoke(["build", KUBEFLOW / "policy.mesh", "--cluster", KUBEFLOW / "manifests", "-t", target,
                     "-o", tmp_path / "out"])
    assert "note[MP612]" in result.output and "the proof rests on the manifests given" in result.output
    assert (tmp_path / "out" / "kustomization.yaml").is_file()


def test_a_pod_of_two_services_is_an_error_naming_the_pod_even_where_labels_differ_in_keys(tmp_path):
    manifests = tmp_path / "m.yaml"
    text = (KUBEFLOW / "manifests" / "kubeflow.yaml").read_text()
    manifests.write_text(text.replace("{labels: {katib.kubeflow.org/component: ui}}",
                                      "{labels: {katib.kubeflow.org/component: ui, app: centraldashboard}}"))
    found, failed = findings(KUBEFLOW / "policy.mesh", [manifests])
    assert failed
    [overlap] = [d for d in found if d.code == "MP611"]
    assert overlap.message == ("'central-dashboard' and 'katib-ui' both select the pods of Deployment "
                               "kubeflow/katib-ui (app=centraldashboard,katib.kubeflow.org/component=ui)")
    assert [Path(r.span.file).name for r in overlap.related] == ["policy.mesh", "m.yaml"]


# -- the disjointness proof against a brute-force matcher ----------------------------------------------------


SETTINGS = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}
KEYS, VALUES = ("app", "tier", "track", "app.kubernetes.io/name"), ("a", "b", "c")
label_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3).map(
    lambda d: tuple(sorted(d.items())))


def pod(i: int, labels) -> Workload:
    return Workload("ns", f"w{i}", "Deployment", labels, (), "default", (Container("c"),), Span("m.yaml", i, 1, i, 1))


def brute_shared(workloads, a, b) -> list[Workload]:
    """Every pod that carries all of a's labels and all of b's (no index, no shortcut)."""
    return [w for w in workloads
            if all(dict(w.labels).get(k) == v for k, v in a) and all(dict(w.labels).get(k) == v for k, v in b)]


@pytest.mark.slow
@settings(max_examples=400, **SETTINGS)
@given(pods=st.lists(label_sets, max_size=8), a=label_sets.filter(bool), b=label_sets.filter(bool))
def test_the_disjointness_proof_agrees_with_a_brute_force_matcher(pods, a, b):
    workloads = [pod(i, labels) for i, labels in enumerate(pods)]
    index = PodIndex(workloads)
    assert index.shared(a, b) == brute_shared(workloads, a, b)
    assert index.selected(a) == [w for w in workloads if selects(a, w.labels)]
    if disjoint_by_labels(a, b):  # disjoint by labels: no pod at all can match both, whatever the manifests
        assert brute_shared([pod(0, tuple(sorted({**dict(a), **dict(b)}.items())))], a, b) == []


# -- malformed manifests never crash --------------------------------------------------------------------------

VALID = (CORPUS / "helm-template" / "manifests" / "rendered.yaml").read_text()


@pytest.mark.slow
@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_mangled_manifests_are_diagnostics_never_a_crash(data, tmp_path_factory):
    """Cut, spliced, retyped and random inputs: read() returns records and MP601s, and never raises."""
    text = data.draw(st.one_of(
        st.text(max_size=300),
        st.builds(lambda i, j: VALID[:i] + VALID[j:], st.integers(0, len(VALID)), st.integers(0, len(VALID))),
        st.builds(lambda i, s: VALID[:i] + s + VALID[i:], st.integers(0, len(VALID)),
                  st.sampled_from(["\t", "- ", ": ", "{", "]", "&a ", "*a", "!!binary ", "\x00", "'", "\n  -"])),
        st.builds(lambda old, new: VALID.replace(old, new),
                  st.sampled_from(["3000", "frontend", "metadata:", "labels:", "containers:", "ports:", "items:"]),
                  st.sampled_from(["", "[]", "{}", "~", "-1", "70000", "true", "[1, 2]", "{a: b}"])),
    ))
    path = tmp_path_factory.mktemp("m") / "m.yaml"
    path.write_text(text, encoding="utf-8")
    found = read([str(path)])
    assert all(d.code == "MP601" and d.span is not None and d.span.line >= 1 for d in found.diagnostics)


@pytest.mark.parametrize(("text", "message"), [
    ("a: " + "[" * 200 + "]" * 200 + "\n", "nested more than 64 levels deep"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n",
     "YAML alias '*a' refused"),
    ("apiVersion: v1\nkind: Service\n\x07\n", "not valid YAML"),
    ("\ud800", "not valid UTF-8"),
])
def test_bombs_and_binary_are_refused_with_their_place(text, message, tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    [diag] = read([str(path)]).diagnostics
    assert message in diag.message and diag.code == "MP601"


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_reader, "MAX_BYTES", 1024)
    path = tmp_path / "big.yaml"
    path.write_text(VALID * 10)
    [diag] = read([str(path)]).diagnostics
    assert diag.message == "larger than 1,024 bytes: not read"
    assert read([str(path)]).cluster.workloads == ()


def test_standard_input_is_read_with_a_dash(monkeypatch, tmp_path):
    monkeypatch.chdir(CORPUS / "helm-template")
    result = invoke(["check", "policy.mesh", "--cluster", "-", "--format", "json"],
                    input=(CORPUS / "helm-template" / "manifests" / "rendered.yaml").read_text())
    assert "against 2 workloads" in result.output


def test_a_missing_cluster_path_is_a_usage_error():
    result = invoke(["check", KUBEFLOW / "policy.mesh", "--cluster", "no/such/folder"], code=2)
    assert "--cluster: no such file or folder: no/such/folder" in result.output


def test_without_cluster_nothing_changes():
    plain = invoke(["check", CORPUS / "clean" / "policy.mesh"])
    assert plain.output == "ok: 2 services, 1 rules, 0 invariants hold\n"


# -- explain and lint know the workloads ----------------------------------------------------------------------
HELM = CORPUS / "helm-template"


def test_explain_names_workloads_by_their_name(monkeypatch):
    monkeypatch.chdir(HELM)
    result = invoke(["explain", "policy.mesh", "--cluster", "manifests", "shop/shop-frontend", "->", "shop/shop-api",
                     "POST", "/orders"])
    assert result.output == (
        "shop/frontend (mTLS, from 192.0.2.10) -> shop/api:8080 POST /orders\n"
        "allowed\n"
        "  mtls:    strict (the default); the caller is authenticated\n"
        "  rule:    policy.mesh:4: allow frontend -> api GET,POST :8080\n"
        "  note:    Deployment shop/shop-frontend is declared service shop/frontend (its labels select its pods)\n"
        "  note:    Deployment shop/shop-api is declared service shop/api (its labels select its pods)\n"
        "  note:    port 8080 assumed: the first HTTP port of shop/api\n")


def test_explain_without_cluster_does_not_know_workload_names(monkeypatch):
    monkeypatch.chdir(HELM)
    result = invoke(["explain", "policy.mesh", "shop/shop-frontend", "->", "shop/api"], code=2)
    assert "caller 'shop/shop-frontend' is not a declared service" in result.output


def test_explain_an_undeclared_workload_is_under_default_deny_and_calls_as_its_account(monkeypatch):
    monkeypatch.chdir(CORPUS / "undeclared-workload")
    to_it = invoke(["explain", "policy.mesh", "--cluster", "manifests", "shop/web", "->", "shop/worker", "GET", "/x"])
    assert ("shop/web (mTLS, from 192.0.2.10) -> shop/(undeclared workload):9000 GET /x\n"
            "refused: no allow rule matches (default deny)\n") in to_it.output
    assert "no allow rule protects shop/(undeclared workload)" in to_it.output
    from_it = invoke(["explain", "policy.mesh", "--cluster", "manifests", "shop/worker", "->", "shop/web"])
    assert "shop/worker (mTLS, from 192.0.2.10) -> shop/web:8080 GET /\nallowed\n" in from_it.output
    assert "Deployment shop/worker is a workload that no declared service selects (account 'worker')" in from_it.output


def test_lint_with_cluster_reports_the_workload_findings(monkeypatch):
    monkeypatch.chdir(CORPUS / "borrowed-identity")
    # ML011 (on Linkerd, orders' port 8080 loses its probe route) is beside the point: these pods have no probes
    plain = invoke(["lint", "policy.mesh", "--disable", "ML011"])
    assert plain.output == "no findings\n"
    result = invoke(["lint", "policy.mesh", "--cluster", "manifests", "--format", "json", "--disable", "ML011"],
                    code=1)
    assert [(d["code"], d["severity"]) for d in json.loads(result.output)] == [
        ("MP610", "note"), ("MP613", "warning")]


# -- docs/cluster.md shows what check prints ------------------------------------------------------------------
def test_the_worked_example_prints_what_the_page_shows(tmp_path, monkeypatch):
    """Replay docs/cluster.md: the first try (the page's first mesh block) and the examples, from a copy of the repo."""
    import re
    import shlex
    import shutil
    import subprocess

    from test_docs import transcript

    doc = (TESTS.parent / "docs" / "cluster.md").read_text()
    first_try = re.search(r"```mesh\n(.*?)```", doc, re.DOTALL).group(1)
    shutil.copytree(TESTS.parent / "examples", tmp_path / "examples")
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "emojivoto.mesh").write_text(first_try)
    monkeypatch.chdir(tmp_path)
    steps = transcript(doc[doc.index("## A worked example"):doc.index("## In CI")])
    assert len(steps) == 4
    for command, shown in steps:
        words = shlex.split(command)
        if "|" in words:  # kubectl kustomize DIR | meshpolicy check ... --cluster -
            if shutil.which("kubectl") is None:
                assert os.environ.get("CI") != "true", "kubectl is required in CI"
                continue
            bar = words.index("|")
            rendered = subprocess.run(words[:bar], capture_output=True, text=True, check=True).stdout
            assert invoke(words[bar + 2:], input=rendered).output == shown, command
        else:
            assert invoke(words[1:], code=None).output == shown, command


def test_explain_resolves_a_named_container_port_through_the_pods(monkeypatch):
    monkeypatch.chdir(HELM)
    result = invoke(["explain", "policy.mesh", "--cluster", "manifests", "shop/frontend", "->", "shop/api", ":web"])
    assert "-> shop/api:8080 GET /\n" in result.output
    assert "note:    port 'web' is 8080: the container port of that name" in result.output
    missing = invoke(["explain", "policy.mesh", "--cluster", "manifests", "shop/frontend", "->", "shop/api", ":nope"],
                     code=2)
    assert ("no pod of 'shop/api' (app.kubernetes.io/instance=shop,app.kubernetes.io/name=api) has a container "
            "port named 'nope': Deployment shop/shop-api (the ports they name: web (8080))") in missing.output
    without = invoke(["explain", "policy.mesh", "shop/frontend", "->", "shop/api", ":web"], code=2)
    assert "bad port ':web'" in without.output


def test_verify_and_graph_take_the_manifests_that_a_build_needed(tmp_path):
    """A policy that compiles only with --cluster (MP612) is verified and drawn with it too."""
    out = tmp_path / "out"
    invoke(["build", KUBEFLOW / "policy.mesh", "--cluster", KUBEFLOW / "manifests", "-t", "linkerd", "-o", out])
    assert "error[MP118]" in invoke(["verify", KUBEFLOW / "policy.mesh", "-t", "linkerd", "-o", out], code=1).output
    verified = invoke(["verify", KUBEFLOW / "policy.mesh", "--cluster", KUBEFLOW / "manifests", "-t", "linkerd",
                       "-o", out])
    assert "allow exactly what the source says" in verified.output
    drawn = invoke(["graph", KUBEFLOW / "policy.mesh", "--cluster", KUBEFLOW / "manifests", "--format", "json"])
    assert "katib-ui" in drawn.output
