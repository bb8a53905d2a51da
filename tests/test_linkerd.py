"""Linkerd specifics: the reader can fail, the traps of linkerd.md are caught, options and tooling work."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from helpers import (
    CASES,
    ROOT,
    builds,
    case_id,
    compile_case,
    compile_text,
    disagreements,
    documents,
    require_tool,
    schemas_root,
)
from typer.testing import CliRunner

from meshpolicy.backends import TARGETS
from meshpolicy.cli import app
from meshpolicy.errors import UsageError
from meshpolicy.graph.evaluate import Caller, Request
from meshpolicy.graph.model import Identity
from meshpolicy.output import writer
from meshpolicy.readers import World
from meshpolicy.readers.linkerd import Ambiguous, Reader, Unmodelled

LINKERD = builds("linkerd")

ORDERS = """
namespace shop {
  service orders :8080/http :9090/tcp probes /healthz
  service frontend :8080/http
  service other :8080/http
  allow frontend -> orders GET,POST :8080
  allow other -> orders GET /api/*
  deny other -> orders GET /api/admin/*
}
"""
FRONTEND = Identity("shop", "frontend")
OTHER = Identity("shop", "other")


def _req(identity, method, path, port=8080, ip="192.0.2.10"):
    return Request(Caller(identity, ip), "shop", "orders", port, method, path)


def _edit(build, path: str, change) -> None:
    doc = yaml.safe_load(build.files[path])
    change(doc)
    build.files[path] = yaml.safe_dump(doc)


def _reader(build) -> Reader:
    return Reader(documents(build.files), World.from_graph(build.analysis.graph))


def _only(build, prefix: str, contains: str = "") -> str:
    [path] = [p for p in build.files if p.startswith(prefix) and contains in p]
    return path


def _route(build, server: str, path: str, kind: str = "HTTPRoute") -> str:
    """The file of the one route attached to ``server`` that matches ``path`` (routes are named by content)."""
    found = []
    for name, text in build.files.items():
        doc = yaml.safe_load(text) if f"/{kind.lower()}-" in name else None
        if doc and server in {p["name"] for p in doc["spec"]["parentRefs"]} and any(
                m["path"]["value"] == path if kind == "HTTPRoute" else m["method"]["service"] == path
                for rule in doc["spec"]["rules"] for m in rule["matches"]):
            found.append(name)
    [only] = found
    return only


def _policy(build, route: str) -> str:
    """The file of the one AuthorizationPolicy that targets the route in file ``route``."""
    name = yaml.safe_load(build.files[route])["metadata"]["name"]
    [only] = [p for p, text in build.files.items() if "/authorizationpolicy-" in p
              and yaml.safe_load(text)["spec"]["targetRef"]["name"] == name]
    return only


# -- the reader can fail: each classic Linkerd mistake is seen as a disagreement --------------


def test_the_seed_policy_agrees():
    assert disagreements(compile_text(ORDERS, "linkerd"), "linkerd") == []


def test_a_server_level_policy_opens_every_route():
    """linkerd.md §4.4: a policy on the Server authorizes every request on every route, but never a 404 (§4.3)."""
    build = compile_text(ORDERS, "linkerd")
    path = _policy(build, _route(build, "orders-8080", "/api"))
    _edit(build, path, lambda d: d["spec"].update(
        targetRef={"group": "policy.linkerd.io", "kind": "Server", "name": "orders-8080"}))
    reader = _reader(build)
    assert reader.decide(_req(OTHER, "POST", "/"))               # the POST route now admits 'other'
    assert reader.decide(_req(OTHER, "GET", "/api/admin/keys"))  # and so does the route the deny left empty
    assert not reader.decide(_req(OTHER, "DELETE", "/"))         # no route matches DELETE: still 404
    assert any(d.startswith("shop/other (mTLS") and "POST" in d for d in disagreements(build, "linkerd"))


def test_a_route_without_the_parent_group_is_not_attached():
    """§4.1: a Gateway API parentRef defaults to group gateway.networking.k8s.io; the route then does not exist."""
    build = compile_text(ORDERS, "linkerd")
    for path in [p for p in build.files if p.startswith("shop/httproute-")]:
        _edit(build, path, lambda d: d["spec"]["parentRefs"][0].pop("group"))
    reader = _reader(build)
    assert not reader.decide(_req(FRONTEND, "GET", "/"))  # implicit default route: server-level only, none
    assert disagreements(build, "linkerd")


def test_a_route_with_a_port_on_its_server_parent_is_ignored():
    build = compile_text(ORDERS, "linkerd")
    path = _route(build, "orders-8080", "/")
    _edit(build, path, lambda d: d["spec"]["parentRefs"][0].update(port=8080))
    assert not _reader(build).decide(_req(FRONTEND, "GET", "/"))


def test_a_shared_route_with_a_port_on_any_server_parent_is_ignored_on_every_server():
    """L2 index/src/inbound/routes.rs ParentRef::collect_from_http: one bad Server parentRef fails the whole route."""
    text = ("namespace shop {\n  service orders :8080/http\n  service frontend :8080/http\n  service other\n"
            "  allow other -> orders, frontend GET /api/*\n}\n")
    build = compile_text(text, "linkerd")
    path = _route(build, "orders-8080", "/api")
    assert [p["name"] for p in yaml.safe_load(build.files[path])["spec"]["parentRefs"]] == ["frontend-8080",
                                                                                          "orders-8080"]
    on_frontend = Request(Caller(OTHER, "192.0.2.10"), "shop", "frontend", 8080, "GET", "/api/x")
    assert _reader(build).decide(on_frontend) and _reader(build).decide(_req(OTHER, "GET", "/api/x"))
    _edit(build, path, lambda d: d["spec"]["parentRefs"][1].update(port=8080))   # on orders-8080's parentRef
    reader = _reader(build)
    assert not reader.decide(_req(OTHER, "GET", "/api/x"))
    assert not reader.decide(on_frontend)                                         # frontend loses it too


def test_without_the_probe_route_probes_fail_once_routes_exist():
    """§5: the implicit probe route disappears with the first route."""
    build = compile_text(ORDERS, "linkerd")
    del build.files[_route(build, "orders-8080", "/healthz")]
    assert not _reader(build).decide(_req(None, "GET", "/healthz"))
    assert any("/healthz" in d for d in disagreements(build, "linkerd"))


def test_a_missing_authentication_makes_the_policy_ignored():
    """§3.1: a dangling requiredAuthenticationRef fails closed."""
    build = compile_text(ORDERS, "linkerd")
    policy = yaml.safe_load(build.files[_policy(build, _route(build, "orders-8080", "/"))])
    [ref] = policy["spec"]["requiredAuthenticationRefs"]
    del build.files[f"shop/meshtlsauthentication-{ref['name']}.yaml"]
    assert not _reader(build).decide(_req(FRONTEND, "POST", "/"))


def test_a_string_port_is_a_port_name():
    build = compile_text(ORDERS, "linkerd")
    _edit(build, "shop/server-orders-9090.yaml", lambda d: d["spec"].update(port="9090"))
    with pytest.raises(Unmodelled):
        _reader(build).decide(_req(FRONTEND, None, None, port=9090))


def test_tied_routes_that_decide_differently_are_ambiguous():
    """§4.3: Exact and PathPrefix of one path tie; Linkerd would pick the older route."""
    build = compile_text(ORDERS, "linkerd")
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "tie", "namespace": "shop"},
             "spec": {"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "orders-8080"}],
                      "rules": [{"matches": [{"path": {"type": "Exact", "value": "/api/admin"}, "method": "GET"}]}]}}
    build.files["shop/httproute-tie.yaml"] = yaml.safe_dump(route)
    reader = _reader(build)
    assert not reader.decide(_req(OTHER, "GET", "/api/admin"))  # both routes refuse 'other': no matter which
    with pytest.raises(Ambiguous):
        reader.decide(_req(FRONTEND, "GET", "/api/admin"))     # the PathPrefix route admits frontend, 'tie' not


def test_a_grpcroute_for_one_method_also_takes_longer_paths():
    """PX grpc/match.rs: a GRPCRoute method match ignores what follows /Service/Method, so the backend uses
    an HTTPRoute (POST, Exact path) for single methods; this is what the request space's '/x' path catches."""
    text = """
    namespace pay {
      service payments :8443/grpc
      service frontend :8080/http
      allow frontend -> payments grpc payments.v1.Payments/Charge
    }
    """
    build = compile_text(text, "linkerd")
    assert disagreements(build, "linkerd") == []
    route = _route(build, "payments-8443", "/payments.v1.Payments/Charge")
    _edit(build, "pay/server-payments-8443.yaml", lambda d: d["spec"].update(proxyProtocol="gRPC"))
    grpc = yaml.safe_load(build.files.pop(route))
    grpc.update(kind="GRPCRoute", spec={"parentRefs": grpc["spec"]["parentRefs"], "rules": [{"matches": [
        {"method": {"type": "Exact", "service": "payments.v1.Payments", "method": "Charge"}}]}]})
    build.files[route.replace("httproute", "grpcroute")] = yaml.safe_dump(grpc)
    policy = _only(build, "pay/authorizationpolicy-payments-v1-payments-charge-")
    _edit(build, policy, lambda d: d["spec"]["targetRef"].update(kind="GRPCRoute"))
    found = disagreements(build, "linkerd")
    assert found and all("/payments.v1.Payments/Charge/" in d and "decider refuses, linkerd YAML allows" in d
                         for d in found)


def test_localhost_is_always_allowed():
    build = compile_text(ORDERS, "linkerd")
    assert _reader(build).decide(_req(None, "DELETE", "/", ip="127.0.0.1"))


# -- what the backend emits ---------------------------------------------------------------------


@pytest.mark.parametrize("path", LINKERD, ids=[case_id(p) for p in LINKERD])
def test_no_server_level_policy_on_a_server_with_routes(path):
    """§4.4: a Server-level authorization would open every route; policies that narrow go on routes."""
    docs = documents(compile_case(path, "linkerd").files)
    routed = {p["name"] for d in docs if d["kind"] in ("HTTPRoute", "GRPCRoute") for p in d["spec"]["parentRefs"]}
    on_servers = {d["spec"]["targetRef"]["name"] for d in docs
                  if d["kind"] == "AuthorizationPolicy" and d["spec"]["targetRef"]["kind"] == "Server"}
    assert not routed & on_servers


@pytest.mark.parametrize("path", LINKERD, ids=[case_id(p) for p in LINKERD])
def test_one_server_per_pod_port(path):
    docs = documents(compile_case(path, "linkerd").files)
    seen = [(d["metadata"]["namespace"], tuple(sorted(d["spec"]["podSelector"]["matchLabels"].items())),
             d["spec"]["port"]) for d in docs if d["kind"] == "Server"]
    assert len(seen) == len(set(seen)) and all(isinstance(port, int) for _, _, port in seen)


@pytest.mark.parametrize("path", LINKERD, ids=[case_id(p) for p in LINKERD])
def test_policy_routes_mean_the_same(path):
    """--linkerd-routes policy: policy.linkerd.io/v1beta3 HTTPRoutes, same decisions, valid for both schemas."""
    from test_schema import schema_errors

    build = compile_case(path, "linkerd", routes="policy")
    routes = [d for d in documents(build.files) if d["kind"] == "HTTPRoute"]
    assert all(d["apiVersion"] == "policy.linkerd.io/v1beta3" for d in routes)
    assert all(d["spec"]["targetRef"]["group"] == "policy.linkerd.io" for d in documents(build.files)
               if d["kind"] == "AuthorizationPolicy" and d["spec"]["targetRef"]["kind"] == "HTTPRoute")
    assert disagreements(build, "linkerd") == []
    assert schema_errors("linkerd", build.files) == []


def test_the_probe_note_is_given_only_where_routes_exist():
    notes = [d for d in compile_case(CASES / "linkerd" / "probes.mesh", "linkerd").diagnostics
             if d.code == "MP302"]
    assert sorted(d.message.rsplit(" ", 1)[1] for d in notes) == ["8080", "8081"]
    assert all("web/api" in d.message and d.severity.value == "note" for d in notes)


def test_open_probes_cover_every_http_port_with_probes():
    build = compile_case(CASES / "linkerd" / "probes.mesh", "linkerd")
    assert build.open_probes == {("web", "api", 8080), ("web", "api", 8081), ("web", "site", 8080)}


def test_adding_a_rule_changes_only_the_files_it_touches():
    """The new rule's route and policy; what it shares (here the frontend authentication; a route of the same
    content, tests/test_linkerd_names.py) gains its line in the provenance, a route also a parentRef."""
    before = compile_text(ORDERS, "linkerd").files
    after = compile_text(ORDERS.replace("}\n", "  allow frontend -> other GET\n}\n"), "linkerd").files
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert {p for p in changed if p not in before} == {"shop/httproute-root-d3131a6666.yaml",
                                                       "shop/authorizationpolicy-root-d3131a6666.yaml"}
    for path in changed:
        if path == "kustomization.yaml" or path not in before:
            continue
        old, new = yaml.safe_load(before[path]), yaml.safe_load(after[path])
        for doc in (old, new):
            doc["metadata"]["annotations"].pop("meshpolicy.io/source")
            if doc["kind"] == "HTTPRoute":
                assert "other-8080" in {p["name"] for p in new["spec"]["parentRefs"]}
                doc["spec"].pop("parentRefs")
        assert old == new, path  # only the parentRefs and the provenance of what is shared


def test_audit_mode_marks_namespaces_and_servers():
    files = compile_text(ORDERS, "linkerd", "audit").files
    assert '"config.linkerd.io/default-inbound-policy": "audit"' in files["shop/namespace-shop.yaml"]
    assert 'accessPolicy: "audit"' in files["shop/server-orders-8080.yaml"]


def test_an_unknown_route_api_is_refused():
    with pytest.raises(UsageError, match="routes must be one of"):
        compile_text(ORDERS, "linkerd", routes="v1alpha1")


# -- tooling ---------------------------------------------------------------------------------------


def _write(tmp_path, target: str, path=ROOT / "examples" / "shop"):
    from meshpolicy import pipeline

    out = tmp_path / target
    writer.write(out, pipeline.build([path], target).files)
    return out


@pytest.mark.slow
def test_the_upstream_validator_accepts_the_output(tmp_path):
    """../shared/schemas/linkerd/validate.py --admission --lint: no error, and no warning but the probe reminder."""
    script = schemas_root() / "linkerd" / "validate.py"
    for path in LINKERD:
        out = tmp_path / case_id(path)
        writer.write(out, compile_case(path, "linkerd").files)
        files = sorted(str(p) for p in out.rglob("*.yaml") if p.name != "kustomization.yaml")
        run = subprocess.run([sys.executable, str(script), "--admission", "--lint", *files],
                             capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout
        warnings = [line for line in run.stdout.splitlines() if "warn:" in line]
        assert all("kubelet probes are no longer auto-authorized" in w for w in warnings), warnings


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kubectl_kustomize_accepts_the_output(tmp_path, target):
    kubectl = require_tool("kubectl", "cannot check that 'kubectl kustomize OUT' accepts the output")
    out = _write(tmp_path, target)
    run = subprocess.run([kubectl, "kustomize", str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    rendered = [d for d in yaml.safe_load_all(run.stdout) if d]
    assert len(rendered) == len([p for p in out.rglob("*.yaml") if p.name != "kustomization.yaml"])


def test_cli_linkerd_routes_option(tmp_path):
    runner = CliRunner()
    shop = str(ROOT / "examples" / "shop")
    ok = runner.invoke(app, ["build", shop, "-t", "linkerd", "-o", str(tmp_path / "a"), "--linkerd-routes", "policy"])
    assert ok.exit_code == 0, ok.output
    [probes] = (tmp_path / "a" / "shop").glob("httproute-probes-healthz-*.yaml")
    assert "apiVersion: \"policy.linkerd.io/v1beta3\"" in probes.read_text()
    bad = runner.invoke(app, ["build", shop, "-t", "linkerd", "-o", str(tmp_path / "b"), "--linkerd-routes", "beta"])
    assert bad.exit_code == 2 and "--linkerd-routes must be one of: gateway, policy" in bad.output
    istio = runner.invoke(app, ["build", shop, "-t", "istio", "-o", str(tmp_path / "c"), "--linkerd-routes", "gateway"])
    assert istio.exit_code == 2 and "applies to --target linkerd only" in istio.output
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


# -- '*' as a source is pinned to the trust domain (issue 9 item 9) ------------------------------------

PINNED = """trust-domain example.org
namespace shop {
  service orders :8080/http
  service legacy :7000/tcp
  service frontend
  allow * -> orders GET
  allow any -> legacy :7000
}
"""


def _identities(files: dict[str, str], name: str) -> list[str]:
    return yaml.safe_load(files[f"shop/meshtlsauthentication-{name}.yaml"])["spec"]["identities"]


def test_a_mesh_source_is_pinned_to_the_trust_domain_on_linkerd():
    """LANGUAGE §2.3: '*' is any authenticated workload *of the mesh*. Linkerd's '*' admits any meshed client,
    of any trust domain; '*.serviceaccount.identity.linkerd.TD' is the suffix of the mesh's own identities
    (linkerd.md §3.2), as '*.NS.serviceaccount...' is for 'NS/*'. 'any' on a strict port stays '*': it is
    every client, also of other trust domains."""
    files = compile_text(PINNED, "linkerd").files
    assert _identities(files, "mesh-identity") == ["*.serviceaccount.identity.linkerd.example.org"]
    assert _identities(files, "any-identity") == ["*"]


def test_the_pinned_suffix_admits_the_trust_domain_only():
    from meshpolicy.readers.linkerd import _identity_match

    pattern = "*.serviceaccount.identity.linkerd.example.org"
    assert _identity_match(pattern, "orders.shop.serviceaccount.identity.linkerd.example.org")
    assert not _identity_match(pattern, "orders.shop.serviceaccount.identity.linkerd.other.org")


def test_any_but_the_mesh_on_a_strict_port_is_refused_not_narrowed():
    """'any' minus '*' holds the identities of other trust domains, which no MeshTLSAuthentication can list
    without the mesh's own: refused (MP301), never emitted as nobody."""
    from meshpolicy.backends.linkerd.callers import EVERYONE, Identities

    rest = EVERYONE.minus(Identities.make(False, True))
    assert rest is not None and rest.foreign and not rest.mesh
    assert not rest.authenticated().writable


def test_lowers_by_namespace_with_the_authority_in_the_mesh_part():
    """The by-namespace contract on Linkerd (docs/cache.md, "Lowering by namespace"): the mesh part holds the
    certificate authority, in the control plane's namespace, and its notes; each namespace's part holds only
    resources of that namespace, routes shared by its Servers included; MP314 (audit) is given by the part of the
    Server it names, once every port of that namespace is in; the parts make the same files as the build."""
    from meshpolicy import pipeline
    from meshpolicy.backends import get_backend
    from meshpolicy.backends.base import slices
    from meshpolicy.source import SourceFile

    text = ("authority cert-manager issuer mesh-ca kind ClusterIssuer anchor mesh-root/ca.crt\n"
            "namespace shop {\n  service frontend :8080/http\n  service orders :8080/http :8081/http probes /healthz\n"
            "  allow frontend -> orders GET /api/* :8080,8081\n}\n"
            "namespace bank {\n  service ledger :8080/http probes /healthz\n  allow shop/frontend -> ledger POST /entries\n}\n")
    analysis = pipeline.analyze([SourceFile("p.mesh", text)])
    backend = get_backend("linkerd")(mode="audit")
    parts = [backend.lower_part(piece, ns) for ns, piece in slices(analysis.graph)]
    assert [p.namespace for p in parts] == [None, "bank", "shop"]
    # the control plane's namespace, and the cluster-scoped Bundle (its name as folder): no managed namespace
    assert {r.namespace for r in parts[0].resources} == {"linkerd", "linkerd-identity-trust-roots"}
    assert [d.code for d in parts[0].notes] == ["MP705"]
    shared = [r for r in parts[2].resources if r.kind == "HTTPRoute" and len(r.spec["parentRefs"]) == 2]
    assert shared, "orders' two Servers share their route"
    for part in parts[1:]:
        assert {r.namespace for r in part.resources} == {part.namespace}
        audit = [d.message for d in part.notes if d.code == "MP314"]
        routed = sorted({ref["name"] for r in part.resources if r.kind == "HTTPRoute" for ref in r.spec["parentRefs"]})
        assert routed and sorted(m.split("Server ")[1].split(" ")[0] for m in audit) == [
            f"{part.namespace}/{server}" for server in routed]
    build = pipeline.lower(analysis, "linkerd", "audit", verify=False)
    manifests = {path for path in build.files if path != "kustomization.yaml" and not path.startswith("_values/")}
    assert {r.path for p in parts for r in p.resources} == manifests


TOP_LEVEL_REFUSAL = """
namespace shop {
  service orders :8080/http
}
namespace bank {
  service ledger :8080/http
}
allow any -> * GET /api/* if header x-team=a
"""


@pytest.mark.parametrize("mode", ["enforce", "audit"])
def test_a_part_reports_as_if_lowered_alone(mode):
    """A part's diagnostics depend on its slice alone, not on the parts one backend lowered before it (the cache
    computes only some parts): on every case of the corpus, and on a top-level rule refused in two namespaces,
    each part lowered in sequence by one backend equals the part lowered by a fresh backend."""
    from helpers import case_paths, source

    from meshpolicy import pipeline
    from meshpolicy.backends import get_backend
    from meshpolicy.backends.base import slices
    from meshpolicy.diagnostics import MeshError
    from meshpolicy.source import SourceFile

    graphs = []
    for sources in [[source(path)] for path in case_paths()] + [[SourceFile("p.mesh", TOP_LEVEL_REFUSAL)]]:
        try:
            graphs.append(pipeline.analyze(sources).graph)
        except MeshError:
            continue
    refused = 0
    for graph in graphs:
        shared = get_backend("linkerd")(mode=mode)
        for ns, piece in slices(graph):
            alone = get_backend("linkerd")(mode=mode).lower_part(piece, ns)
            assert shared.lower_part(piece, ns) == alone, ns
            refused += any(d.code == "MP301" for d in alone.notes)
    assert refused >= 2  # the top-level rule, in each of its namespaces, at least
