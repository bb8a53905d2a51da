"""The Istio backend: what it owns (LANGUAGE §4, issue 8), the root namespace, sources and limits."""

from __future__ import annotations

import pytest
import yaml
from helpers import compile_text, invoke

from meshpolicy import verify as verifier
from meshpolicy.diagnostics import MeshError
from meshpolicy.output.writer import KUSTOMIZATION, with_kustomization

ONE_NAMESPACE = """
namespace shop {
  service frontend :8080/http
  service orders :8080/http
  allow frontend -> orders GET
}
"""


def refused(text: str, **options) -> MeshError:
    with pytest.raises(MeshError) as info:
        compile_text(text, "istio", **options)
    return info.value


def errors(err: MeshError) -> list[str]:
    return [f"{d.code} {d.message}" for d in err.diagnostics if d.severity.value == "error"]


# -- nothing outside the policy's namespaces unless asked (issue 8 item 1) ---------------------------

def test_a_one_namespace_policy_writes_only_into_its_namespace():
    files = compile_text(ONE_NAMESPACE, "istio").files
    assert sorted(files) == ["kustomization.yaml", "shop/authorizationpolicy-allow-nothing.yaml",
                             "shop/authorizationpolicy-orders-allow.yaml", "shop/peerauthentication-default.yaml"]
    # the namespace's own PeerAuthentication holds the default mode (strict), so nothing depends on the mesh's
    assert yaml.safe_load(files["shop/peerauthentication-default.yaml"])["spec"] == {"mtls": {"mode": "STRICT"}}


@pytest.mark.parametrize("mode", ["strict", "permissive"])
def test_a_top_level_mtls_also_writes_the_mesh_wide_peer_authentication(mode):
    files = compile_text(f"mtls {mode}\n" + ONE_NAMESPACE, "istio").files
    outside = sorted(p for p in files if not p.startswith("shop/") and p != "kustomization.yaml")
    assert outside == ["istio-system/peerauthentication-default.yaml"]
    doc = yaml.safe_load(files["istio-system/peerauthentication-default.yaml"])
    assert doc["spec"] == {"mtls": {"mode": mode.upper()}}  # no selector: mesh-wide (istio.md §12)
    assert doc["metadata"]["annotations"]["meshpolicy.io/source"] == "test.mesh:1"


def test_the_root_namespace_option_moves_the_mesh_wide_peer_authentication():
    files = compile_text("mtls strict\n" + ONE_NAMESPACE, "istio", root_namespace="mesh-root").files
    outside = sorted(p for p in files if not p.startswith("shop/") and p != "kustomization.yaml")
    assert outside == ["mesh-root/peerauthentication-default.yaml"]


def test_services_in_the_root_namespace_named_by_the_option_are_refused():
    text = "namespace mesh-root {\n  service web :80/http\n}\n" + ONE_NAMESPACE
    err = refused(text, root_namespace="mesh-root")
    assert errors(err) == [("MP301 managing namespace 'mesh-root' (Istio's root namespace) cannot be expressed "
                           "exactly on target 'istio'")]
    assert err.diagnostics[0].span.line == 1
    # ... and istio-system stays a system namespace, refused on every target (MP120, docs/language.md decision 14)
    text = "namespace istio-system {\n  service web :80/http\n}\n" + ONE_NAMESPACE
    assert errors(refused(text, root_namespace="mesh-root"))[0].startswith("MP120 ")


def test_the_reader_knows_the_root_namespace(tmp_path):
    """A selector-less ALLOW-all policy in the root namespace opens every workload of the mesh (istio.md §2):
    verification must read the root namespace the build was made for, or it would call that output exact."""
    build = compile_text(ONE_NAMESPACE, "istio", root_namespace="mesh-root")
    assert build.reader_options == {"root_namespace": "mesh-root"}
    opened = dict(build.files)
    opened["mesh-root/authorizationpolicy-open.yaml"] = yaml.safe_dump({
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "open", "namespace": "mesh-root",
                     "labels": {"app.kubernetes.io/managed-by": "meshpolicy"}},
        "spec": {"action": "ALLOW", "rules": [{}]}})
    opened = with_kustomization({p: t for p, t in opened.items() if p != KUSTOMIZATION})
    graph = build.analysis.graph
    assert verifier.verify(graph, opened, "istio", build.open_probes, "enforce", build.reader_options)
    # the same folder, read for a mesh rooted in istio-system, is exact: mesh-root is just another namespace there
    assert not verifier.verify(graph, opened, "istio", build.open_probes)

    policy = tmp_path / "shop.mesh"
    policy.write_text(ONE_NAMESPACE)
    out = tmp_path / "out"
    invoke(["build", policy, "-t", "istio", "-o", out, "--istio-root-namespace", "mesh-root"])
    invoke(["verify", policy, "-t", "istio", "-o", out, "--istio-root-namespace", "mesh-root"])
    (out / "mesh-root").mkdir()
    (out / "mesh-root/authorizationpolicy-open.yaml").write_text(opened["mesh-root/authorizationpolicy-open.yaml"])
    result = invoke(["verify", policy, "-t", "istio", "-o", out, "--istio-root-namespace", "mesh-root"], code=1)
    assert "MP501" in result.output
    result = invoke(["explain", policy, "shop/frontend", "->", "shop/orders", "POST", "-t", "istio", "-o", out,
                     "--istio-root-namespace", "mesh-root"])
    assert "mesh-root" in result.output  # the root namespace's policy is one that decides


def test_the_cli_writes_nothing_outside_and_takes_the_root_namespace(tmp_path):
    policy = tmp_path / "shop.mesh"
    policy.write_text("mtls strict\n" + ONE_NAMESPACE)
    out = tmp_path / "out"
    invoke(["build", policy, "-t", "istio", "-o", out, "--istio-root-namespace", "mesh-root"])
    assert sorted(p.name for p in out.iterdir()) == ["kustomization.yaml", "mesh-root", "shop"]


@pytest.mark.parametrize(("args", "message"), [
    (["-t", "linkerd", "--istio-root-namespace", "mesh-root"],
     "--istio-root-namespace applies to --target istio only (got --target linkerd)"),
    (["-t", "istio", "--istio-root-namespace", "Mesh_Root"],
     "--istio-root-namespace must be a namespace name (a DNS-1123 label), got 'Mesh_Root'"),
])
def test_a_bad_root_namespace_option_is_a_usage_error(tmp_path, args, message):
    policy = tmp_path / "shop.mesh"
    policy.write_text(ONE_NAMESPACE)
    for command in (["build", policy, "-o", tmp_path / "out"], ["verify", policy, "-o", tmp_path]):
        result = invoke(command + args, code=2)
        assert message in result.output


# -- '*' as a source is pinned to the trust domain (issue 9 item 9) ------------------------------------

MESH_SOURCE = """trust-domain example.org
namespace shop {
  service orders :8080/http
  service reports :8080/http
  allow * -> reports GET
  allow shop/*, frontend, * -> orders
  deny * -> orders DELETE
  service frontend
}
"""


def test_a_mesh_source_is_pinned_to_the_trust_domain():
    """LANGUAGE §2.3: '*' is any authenticated workload *of the mesh*. 'principals: ["*"]' admitted any peer
    the mesh trusts, of any trust domain (istio.md §5, §6); 'TD/*' is the prefix of the mesh's identities,
    as 'NS/*' is 'TD/ns/NS/sa/*'. It also subsumes the other identity sources of its rule."""
    files = compile_text(MESH_SOURCE, "istio").files
    [allow] = yaml.safe_load(files["shop/authorizationpolicy-reports-allow.yaml"])["spec"]["rules"]
    assert allow["from"] == [{"source": {"principals": ["example.org/*"]}}]
    [allow] = yaml.safe_load(files["shop/authorizationpolicy-orders-allow.yaml"])["spec"]["rules"]
    assert allow["from"] == [{"source": {"principals": ["example.org/*"]}}]
    [deny] = yaml.safe_load(files["shop/authorizationpolicy-orders-deny.yaml"])["spec"]["rules"]
    assert deny["from"] == [{"source": {"principals": ["example.org/*"]}}]


def test_istio_matches_a_pinned_mesh_source_only_in_its_trust_domain():
    """istio.md §6: 'TD/*' is a prefix of the peer's identity; '*' is presence, any trust domain."""
    from meshpolicy.readers.istio import match_string

    assert match_string("*", "other.org/ns/shop/sa/x")
    assert not match_string("example.org/*", "other.org/ns/shop/sa/x")
    assert match_string("example.org/*", "example.org/ns/shop/sa/x")


def test_a_deny_of_the_mesh_without_a_stated_trust_domain_says_what_it_matches():
    """'cluster.local/*' has two segments: istiod leaves it as written (istio.md §7), so on a mesh whose trust
    domain is not cluster.local the deny would refuse nobody. The build says so where that can happen."""
    from meshpolicy.diagnostics import render_text
    from meshpolicy.source import SourceFile

    text = MESH_SOURCE.replace("trust-domain example.org\n", "")
    notes = [d for d in compile_text(text, "istio").diagnostics if d.code == "MP312"]
    assert [render_text(d, {"test.mesh": SourceFile("test.mesh", text)}) for d in notes] == [
        ("test.mesh:6:3: note[MP312]: '*' in this deny rule matches the peers of trust domain cluster.local only\n"
        " 6 |   deny * -> orders DELETE\n"
        "   |   ^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  = hint: istiod does not rewrite 'cluster.local/*' to the mesh's trust domain (istio.md §7): if yours is "
        "another, state it with 'trust-domain', or the rule refuses nobody")]
    # stated, or only in allow rules (which then fail closed): no note
    assert not [d for d in compile_text(MESH_SOURCE, "istio").diagnostics if d.code == "MP312"]
    allow_only = text.replace("  deny * -> orders DELETE\n", "")
    assert not [d for d in compile_text(allow_only, "istio").diagnostics if d.code == "MP312"]


# -- audit mode says what it does not cover (issue 8 item 3) -------------------------------------------

def test_audit_mode_names_the_peer_authentications_that_stay_enforcing():
    from meshpolicy.diagnostics import render_text
    from meshpolicy.source import SourceFile

    text = ("mtls strict\nnamespace shop {\n  mtls permissive\n  service orders :8080/http mtls strict\n"
            "  service web :8080/http :8443/http mtls strict on 8443\n}\n"
            "namespace open {\n  mtls permissive\n  service a :80/http\n}\n")
    sources = {"test.mesh": SourceFile("test.mesh", text)}
    notes = [render_text(d, sources) for d in compile_text(text, "istio", "audit").diagnostics if d.code == "MP311"]
    hint = ("  = hint: Istio has no dry-run for PeerAuthentication (istio.md §1, §12); to watch plaintext clients "
            "before refusing them, write 'mtls permissive' until you enforce")
    assert notes == [
        "test.mesh:1:1: note[MP311]: --mode audit: PeerAuthentication istio-system/default (STRICT, mesh-wide) "
        "still refuses plaintext requests\n 1 | mtls strict\n   | ^^^^^^^^^^^\n" + hint,
        "test.mesh:4:3: note[MP311]: --mode audit: PeerAuthentication shop/orders-mtls (STRICT), shop/web-mtls "
        "(STRICT on 8443) still refuse plaintext requests\n 4 |   service orders :8080/http mtls strict\n"
        "   |   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n" + hint,
    ]  # shop/default and open/ are permissive: they refuse nothing, nothing to say
    assert not [d for d in compile_text(text, "istio").diagnostics if d.code == "MP311"]  # enforce: no note


def test_the_audit_note_reaches_the_command_line(tmp_path):
    policy = tmp_path / "shop.mesh"
    policy.write_text(ONE_NAMESPACE)
    result = invoke(["build", policy, "-t", "istio", "-o", tmp_path / "out", "--mode", "audit"])
    assert "note[MP311]: --mode audit: PeerAuthentication shop/default (STRICT) still refuses" in result.output
