"""``--cluster``: the policy against the manifests of the workloads it governs (docs/cluster.md).

Each folder of tests/cluster/ is a case: ``policy.mesh``, ``manifests/`` and optionally ``args``
(more options, such as ``--target linkerd``). ``meshpolicy check policy.mesh --cluster manifests``
runs in that folder, and its whole output (diagnostics rendered in full, the exit code) is a
snapshot (tests/__snapshots__/test_cluster/).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TESTS, invoke
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

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
    from meshpolicy.cluster import read
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
