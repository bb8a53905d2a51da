"""``--crds DIR`` reads the user's CRD files within bounds (docs/limits.md, "Files meshpolicy reads"): the output
folder's bounded reader, so that no file there can exhaust memory or time before validation starts."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from helpers import TESTS, invoke, schemas_root

from meshpolicy.output import crds

EXAMPLE = TESTS.parent / "examples" / "shop"
#: a CRD whose schema is a "billion laughs": ten levels of nine aliases, 9**10 leaves once expanded (loaded
#: unbounded, the schema's strict copy walks every one of them)
LAUGHS = ("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: bombs.x.io}\n"
          "spec:\n  group: x.io\n  names: {kind: Bomb}\n  laughs:\n    a: &a [{type: string}" + ", {type: string}" * 8
          + "]\n" + "".join(f"    {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                             for p, c in zip("abcdefghi", "bcdefghij", strict=True))
          + "  versions:\n  - name: v1\n    served: true\n    schema:\n      openAPIV3Schema:\n"
            "        type: object\n        properties:\n          spec: {type: object, allOf: *j}\n")


def istio_crds(folder: Path) -> Path:
    folder.mkdir()
    for path in (schemas_root() / "istio").glob("*.yaml"):
        shutil.copy(path, folder)
    return folder


@pytest.mark.parametrize(("text", "why"), [
    (LAUGHS, "uses YAML anchors or aliases: not loaded"),
    ("[" * 100 + "]" * 100 + "\n", "nested deeper than 64 levels: not loaded"),
])
def test_a_hostile_file_is_refused_unloaded_and_named(text, why, tmp_path):
    folder = istio_crds(tmp_path / "crds")
    (folder / "bomb.yaml").write_text(text)
    started = time.monotonic()
    with pytest.raises(crds.CrdError) as err:
        crds.load(folder)
    assert time.monotonic() - started < 10
    assert str(err.value) == f"--crds: {folder / 'bomb.yaml'}: {why}"


def test_a_file_over_the_bound_is_not_read(tmp_path, monkeypatch):
    folder = istio_crds(tmp_path / "crds")
    monkeypatch.setattr(crds, "MAX_BYTES", 1000)
    with pytest.raises(crds.CrdError, match=r"larger than 1,000 bytes: not read"):
        crds.load(folder)


def test_the_real_crds_load_and_a_link_to_one_is_followed(tmp_path):
    """Within the bounds nothing changes: the real CRDs (nested 24 levels at most) load, and a link in the user's
    folder is read through (the output folder never follows one; a CRD folder is the user's own input)."""
    folder = tmp_path / "crds"
    folder.mkdir()
    for path in (schemas_root() / "istio").glob("*.yaml"):
        (folder / path.name).symlink_to(path.resolve())
    assert {kind for _, kind in crds.load(folder)} == {"AuthorizationPolicy", "PeerAuthentication",
                                                        "RequestAuthentication"}
    linkerd = crds.load(schemas_root() / "linkerd" / "crds")
    assert ("policy.linkerd.io/v1beta3", "HTTPRoute") in linkerd


def test_build_with_a_hostile_crd_file_is_a_usage_error_and_writes_nothing(tmp_path):
    folder = istio_crds(tmp_path / "crds")
    (folder / "bomb.yaml").write_text(LAUGHS)
    out = tmp_path / "out"
    result = invoke(["build", EXAMPLE, "-t", "istio", "-o", out, "--crds", folder], code=2)
    assert "bomb.yaml: uses YAML anchors or aliases: not loaded" in result.output
    assert not out.exists()


def test_every_yaml_reader_has_one_depth_bound():
    """docs/limits.md gives one depth for every file read from outside the policy: the output folder's check
    (which --crds uses) and --cluster's value builder keep separate event walks (one checks and stops, the other
    builds values with lines), so the figure is held equal here."""
    from meshpolicy.cluster import yamldoc
    from meshpolicy.output import folder

    assert folder.MAX_DEPTH == yamldoc.MAX_DEPTH == 64
    assert "| 64 levels; no anchors or aliases |" in (TESTS.parent / "docs" / "limits.md").read_text()
