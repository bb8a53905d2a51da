"""examples/platform/ (a policy in LANGUAGE.md version 2): both builds, verified and valid against the real CRDs,
and what its README says about them."""

from __future__ import annotations

import re

import pytest
from helpers import ROOT, invoke, require_tool
from test_schema import schema_errors

from meshpolicy import pipeline
from meshpolicy.diagnostics import MeshError

PLATFORM = ROOT / "examples" / "platform"
SHARED = PLATFORM / "policy"
#: target -> the folders its build reads (examples/platform/README.md)
BUILDS = {"istio": [SHARED, PLATFORM / "istio"], "linkerd": [SHARED]}


def text_of(*folders) -> str:
    return "".join(p.read_text() for folder in folders for p in sorted(folder.glob("*.mesh")))


@pytest.mark.parametrize("target", sorted(BUILDS))
def test_each_target_builds_its_folders_verified_and_valid(target):
    result = pipeline.build(BUILDS[target], target)  # verified: the target's reader decides as the language does
    assert schema_errors(target, result.files) == []
    # edge and monitoring only call: nothing is emitted for them; Istio's mesh-wide mTLS mode (the top-level
    # 'mtls strict') sits in its root namespace (LANGUAGE.md §4)
    namespaces = {path.split("/")[0] for path in result.files if "/" in path}
    assert namespaces == ({"shop", "istio-system"} if target == "istio" else {"shop"})


def test_the_istio_policy_uses_what_version_2_adds():
    text = text_of(*BUILDS["istio"])
    for construct in ("shop/** ", "if header ", "if jwt ", "claim ", "issuer ", "jwks ", "*.png", "/api/products*"):
        assert construct in text, construct


def test_istio_emits_the_issuer_and_the_every_workload_policy():
    files = pipeline.build(BUILDS["istio"], "istio").files
    kinds = {re.search(r'(?m)^kind: "?(\w+)', body).group(1) for body in files.values() if "kind:" in body}
    assert {"AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"} <= kinds
    assert "https://login.shop.example.com/.well-known/jwks.json" in "".join(files.values())


def test_linkerd_refuses_each_istio_only_rule_by_name_as_the_readme_says():
    """The README names the two rules of istio/ that Linkerd refuses, the header rule and the jwt rule: built for
    Linkerd, istio/ fails with MP301 on exactly those lines."""
    with pytest.raises(MeshError) as err:
        pipeline.build(BUILDS["istio"], "linkerd")
    refused = {(d.code, d.span.line) for d in err.value.diagnostics if d.severity.value == "error"}
    lines = (PLATFORM / "istio" / "storefront.mesh").read_text().splitlines()
    rules = {i for i, line in enumerate(lines, 1) if line.strip().startswith("allow")}
    assert {code for code, _ in refused} == {"MP301"}
    assert {line for _, line in refused} == rules
    assert all(d.span.file.endswith("istio/storefront.mesh") for d in err.value.diagnostics
               if d.severity.value == "error")


def test_the_linkerd_subset_differs_exactly_as_the_readme_says():
    """Linkerd's policy grants nothing the Istio one does not; it refuses more only on the admin API and the
    account pages of orders (diff's engine: every request of both policies' merged space)."""
    from meshpolicy.diff import compare

    istio = pipeline.analyze_paths(BUILDS["istio"]).graph
    linkerd = pipeline.analyze_paths(BUILDS["linkerd"]).graph
    changes = compare(istio, linkerd).changes
    assert [c for c in changes if c.kind == "granted"] == []
    removed = [c for c in changes if c.kind == "removed"]
    assert removed and all(c.destination == "shop/orders" and c.ports == (8080,) and c.paths is not None
                           and ("/api/admin/" in c.paths or "/account/" in c.paths) for c in removed), removed


def test_the_readme_commands_build(tmp_path, monkeypatch):
    require_tool("kubectl", "the output folder must pass kubectl kustomize")
    monkeypatch.chdir(ROOT)
    readme = (PLATFORM / "README.md").read_text()
    commands = re.findall(r"(?m)^meshpolicy (build .*)$", readme)  # (columns aligned with spaces)
    assert len(commands) == 2
    for command in commands:
        words = command.split()
        words[words.index("--out") + 1] = str(tmp_path / words[words.index("--out") + 1])
        invoke(words)
        import subprocess

        out = words[words.index("--out") + 1]
        subprocess.run(["kubectl", "kustomize", out], check=True, capture_output=True)
