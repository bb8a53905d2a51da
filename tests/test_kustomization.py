"""Verification proves what GitOps applies: what ``kubectl kustomize OUT`` builds (issue 9 item 2).

A folder whose ``kustomization.yaml`` leaves a manifest out, lists a file meshpolicy
does not manage, or carries a field meshpolicy never writes (``patches``, a name
prefix, labels, generators...) is refused with MP501, naming what it found.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import compile_text, invoke, require_tool

from meshpolicy import verify as verifier
from meshpolicy.diagnostics import MeshError
from meshpolicy.output import folder as output_folder
from meshpolicy.output import writer

SHOP = """
namespace shop {
  mtls strict
  service frontend :8080/http
  service orders :8080/http :9090/tcp
  allow frontend -> orders GET,POST :8080
  deny frontend -> orders DELETE /admin/* :8080
}
"""

ALLOW_NOTHING = "shop/authorizationpolicy-allow-nothing.yaml"
DENY = "shop/authorizationpolicy-orders-deny.yaml"

#: the issue's reproducer: a strategic-merge patch that turns allow-nothing into allow-all
ALLOW_ALL_PATCH = """\
patches:
  - target:
      kind: AuthorizationPolicy
      name: allow-nothing
    patch: |-
      - op: add
        path: /spec/rules
        value: [{}]
"""


@pytest.fixture
def out(tmp_path: Path) -> Path:
    policy = tmp_path / "shop.mesh"
    policy.write_text(SHOP)
    folder = tmp_path / "out"
    invoke(["build", str(policy), "-t", "istio", "-o", str(folder)])
    assert {ALLOW_NOTHING, DENY} <= set(output_folder.read(folder).managed)
    return folder


def verify_folder(out: Path, code: int) -> str:
    result = invoke(["verify", str(out.parent / "shop.mesh"), "-t", "istio", "-o", str(out)], code=code)
    return result.output


def kustomization(out: Path) -> Path:
    return out / writer.KUSTOMIZATION


def test_an_untouched_folder_verifies(out):
    assert verify_folder(out, 0).startswith("ok: the ")


def test_a_manifest_left_out_of_the_resources_is_refused(out):
    """The issue's first reproducer: the deny file is dropped from resources, so GitOps never applies it."""
    text = kustomization(out).read_text()
    kustomization(out).write_text(text.replace(f"  - {DENY}\n", ""))
    output = verify_folder(out, 1)
    assert f"error[MP501]: kustomization.yaml does not list {DENY}: 'kubectl kustomize' would leave it out" in output
    assert "hint: the kustomization decides what GitOps applies" in output


def test_a_patch_in_the_kustomization_is_refused(out):
    """The issue's second reproducer: a patch turns allow-nothing into allow-all."""
    kustomization(out).write_text(kustomization(out).read_text() + ALLOW_ALL_PATCH)
    output = verify_folder(out, 1)
    assert "error[MP501]: kustomization.yaml carries the field 'patches', which meshpolicy never writes" in output


@pytest.mark.parametrize("field", ["namePrefix: x-", "namespace: other", "commonLabels: {a: b}",
                                   "components: [../c]", "patchesStrategicMerge: [p.yaml]",
                                   "configMapGenerator: [{name: c}]", "replacements: []",
                                   "generators: [g.yaml]", "transformers: [t.yaml]", "buildMetadata: [originAnnotations]"])
def test_every_field_meshpolicy_does_not_write_is_refused_by_name(out, field):
    kustomization(out).write_text(kustomization(out).read_text() + field + "\n")
    name = field.split(":")[0]
    assert f"carries the field '{name}'" in verify_folder(out, 1)


def test_a_listed_file_meshpolicy_does_not_manage_is_refused(out):
    (out / "shop" / "extra.yaml").write_text(yaml.safe_dump({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "open", "namespace": "shop"}, "spec": {"rules": [{}]}}))
    kustomization(out).write_text(kustomization(out).read_text() + "  - shop/extra.yaml\n")
    assert "kustomization.yaml lists 'shop/extra.yaml', which is not a manifest meshpolicy manages" in \
        verify_folder(out, 1)


def test_a_kustomization_without_the_marker_is_still_read(out):
    """Whoever wrote it, the kustomization decides what is applied: dropping the marker hides nothing."""
    text = kustomization(out).read_text().split("\n", 1)[1]
    kustomization(out).write_text(text.replace(f"  - {DENY}\n", ""))
    assert f"does not list {DENY}" in verify_folder(out, 1)
    kustomization(out).write_text(text)
    verify_folder(out, 0)


def test_a_missing_kustomization_is_refused(out):
    kustomization(out).unlink()
    assert "the output has no kustomization.yaml" in verify_folder(out, 1)


@pytest.mark.parametrize("name", ["kustomization.yml", "Kustomization"])
def test_another_kustomization_file_is_refused(out, name):
    (out / name).write_text(kustomization(out).read_text())
    assert f"holds {name}: 'kubectl kustomize' reads the kustomization from it or refuses the folder" in \
        verify_folder(out, 1)


@pytest.mark.parametrize("change, expected", [
    (lambda t: t + f"resources:\n  - {ALLOW_NOTHING}\n", "the key 'resources' appears twice in one mapping"),
    (lambda t: t.replace("kind: Kustomization", "kind: Component"), "has kind 'Component', not 'Kustomization'"),
    (lambda t: t + f"  - {DENY}\n", f"lists '{DENY}' twice"),
    (lambda t: t.replace("resources:", "resources: shop"), "has no list of resources"),
    (lambda t: t + "  - [unclosed\n", "kustomization.yaml is not valid YAML"),
    (lambda t: t + "---\nkind: Kustomization\n", "is not one mapping"),
])
def test_a_kustomization_read_otherwise_by_kustomize_is_refused(out, change, expected):
    kustomization(out).write_text(change(kustomization(out).read_text()))
    assert expected in verify_folder(out, 1)


def test_verify_checks_the_kustomization_of_the_files_it_is_given():
    build = compile_text(SHOP)
    files = dict(build.files)
    files[writer.KUSTOMIZATION] += ALLOW_ALL_PATCH
    with pytest.raises(MeshError) as err:
        verifier.verify(build.analysis.graph, files, "istio", build.open_probes)
    assert "'patches'" in err.value.diagnostics[0].message
    del files[writer.KUSTOMIZATION]
    with pytest.raises(MeshError, match="no kustomization.yaml"):
        verifier.verify(build.analysis.graph, files, "istio", build.open_probes)


def test_a_duplicate_key_in_a_manifest_is_refused():
    """PyYAML keeps the last of two keys; kubectl refuses or reads otherwise: never verify such a file."""
    build = compile_text(SHOP)
    build.files[ALLOW_NOTHING] += "spec:\n  rules:\n  - {}\n"
    with pytest.raises(MeshError, match="the key 'spec' appears twice in one mapping"):
        verifier.verify(build.analysis.graph, build.files, "istio", build.open_probes)


# -- why it matters: what the real kubectl kustomize builds from a tampered folder -------------------

def kustomize(folder: Path) -> list[dict]:
    require_tool("kubectl", "kubectl kustomize shows what GitOps applies")
    done = subprocess.run(["kubectl", "kustomize", str(folder)], check=False, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return list(yaml.safe_load_all(done.stdout))


def test_kubectl_kustomize_applies_what_the_tampered_kustomization_says(out):
    """The files on disk still say allow-nothing and deny DELETE; what kubectl builds (and GitOps applies)
    allows everything and denies nothing. Verification must look at the kustomization, and now does."""
    kustomization(out).write_text(kustomization(out).read_text().replace(f"  - {DENY}\n", "") + ALLOW_ALL_PATCH)
    on_disk = yaml.safe_load((out / ALLOW_NOTHING).read_text())
    assert "rules" not in (on_disk.get("spec") or {})  # allow-nothing, as verified file by file
    built = {(d["kind"], d["metadata"]["name"]): d for d in kustomize(out)}
    assert built[("AuthorizationPolicy", "allow-nothing")]["spec"]["rules"] == [{}]  # allow-all once applied
    assert ("AuthorizationPolicy", "orders-deny") not in built                      # the deny is never applied
    assert "carries the field 'patches'" in verify_folder(out, 1)


def test_kubectl_kustomize_builds_exactly_the_verified_manifests(out):
    """The other side: for a folder verification accepts, kubectl builds the managed manifests unchanged."""
    verify_folder(out, 0)
    built = sorted((d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in kustomize(out))
    verified = sorted((d["kind"], d["metadata"]["namespace"], d["metadata"]["name"])
                      for d in verifier.documents(output_folder.read(out).managed))
    assert built == verified
