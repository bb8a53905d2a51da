"""The review-workflow docs show what the commands really do."""

from __future__ import annotations

import yaml

from helpers import ROOT
from meshpolicy.fmt import format_source
from meshpolicy.lint import lint
from meshpolicy.pipeline import analyze, lower
from meshpolicy.source import SourceFile

DOCS = ROOT / "docs"


def blocks(text: str, lang: str = "") -> list[str]:
    """The fenced code blocks whose info string is ``lang``."""
    out, current, info = [], None, ""
    for line in text.splitlines(True):
        if line.startswith("```"):
            if current is None:
                current, info = [], line[3:].strip()
            else:
                if info == lang:
                    out.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return out


def test_getting_started_policy_is_canonical_clean_and_builds_the_listed_files():
    doc = (DOCS / "getting-started.md").read_text()
    mesh = doc.split("`policy/mesh.mesh`", 1)[1]
    sources = [SourceFile("policy/mesh.mesh", blocks(mesh)[0]),
               SourceFile("policy/shop.mesh", blocks(mesh.split("`policy/shop.mesh`", 1)[1])[0])]
    for src in sources:
        assert format_source(src) == src.text
    assert lint(sources) == []
    files = lower(analyze(sources), "istio").files
    listed = [line for block in blocks(doc) for line in block.splitlines() if line.startswith("deploy/istio/")]
    assert sorted(f"deploy/istio/{path}" for path in files) == sorted(listed)


def test_ci_workflow_and_pre_commit_config_parse_and_use_the_shipped_hooks():
    doc = (DOCS / "ci.md").read_text()
    workflow, sarif_steps, config = [yaml.safe_load(b) for b in blocks(doc, "yaml")]
    runs = [step.get("run", "") for step in workflow["jobs"]["policy"]["steps"]]
    assert any("--target istio" in r and "--check" in r for r in runs)
    assert any("--target linkerd" in r and "--check" in r for r in runs)
    assert any("meshpolicy diff --base" in r and "--format markdown" in r for r in runs)
    assert [s.get("uses", "").split("@")[0] for s in sarif_steps][-1] == "github/codeql-action/upload-sarif"
    shipped = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for repo in config["repos"] for h in repo["hooks"]} == shipped


def test_gitops_manifests_parse_and_never_override_namespaces():
    for block in blocks((DOCS / "gitops.md").read_text(), "yaml"):
        for doc in yaml.safe_load_all(block):
            spec = doc["spec"]
            assert "targetNamespace" not in spec
            assert "namespace" not in spec.get("destination", {})

