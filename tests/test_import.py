"""``meshpolicy import`` (issue 14): existing Istio and Linkerd policy to a proved ``.mesh``.

- the round trip: meshpolicy's own output, imported, gives back a policy whose ``diff`` against the
  source is empty, for every case of the corpus and every example, on both targets;
- hand-written manifests covering every field the readers model: snapshots of the ``.mesh`` and of
  the diagnostics;
- each narrowing (MP801) and each finding (ML060-ML066), with its rendered text;
- never wider, checked independently here with the readers on the original manifests;
- hostile input: aliases, size, nesting, wrong types and tags give a diagnostic, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT, case_id, case_paths, compile_case, documents, expected_errors, invoke

from meshpolicy import diff, pipeline
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError, render_text
from meshpolicy.graph.space import requests
from meshpolicy.importer import Imported, run
from meshpolicy.importer import linkerd as linkerd_import
from meshpolicy.importer.prove import _merge
from meshpolicy.readers import ReaderError, World, get_reader
from meshpolicy.source import SourceFile

IMPORTS = Path(__file__).resolve().parent / "imports"
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())


def write(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def imported_graph(result: Imported):
    return diff.load([SourceFile("imported.mesh", result.text)])


def rendered(result: Imported, codes: tuple[str, ...] = ()) -> str:
    said = [d for d in result.diagnostics + result.findings if not codes or d.code in codes]
    return "\n".join(render_text(d, result.sources) for d in said)


# -- the round trip ---------------------------------------------------------------------------------------

# A case that does not build for a target has nothing to import: test_cases holds it to its expected errors.
ROUND_TRIP = [pytest.param(p, t, id=f"{case_id(p)}-{t}")
              for p in case_paths() for t in sorted(TARGETS) if not expected_errors(p, t)]


@pytest.mark.parametrize(("path", "target"), ROUND_TRIP)
def test_importing_meshpolicys_own_output_gives_back_the_same_access(path, target, tmp_path):
    built = compile_case(path, target)
    result = run([str(write(tmp_path, built.files))], target)
    change = diff.compare(built.analysis.graph, imported_graph(result))
    assert not change.changed, [c.request for c in change.changes] + list(change.notes)
    assert result.narrower == 0 and result.exact, rendered(result)


def example_paths(example: Path, target: str) -> list[Path]:
    """The folders a target's build of an example reads: examples/platform's README builds its shared policy/ with
    the target's own folder; every other example is one folder."""
    if (example / "policy").is_dir():
        return [example / "policy"] + ([example / target] if (example / target).is_dir() else [])
    return [example]


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_importing_an_example_gives_back_the_same_access(example, target, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    built = pipeline.build([p.relative_to(ROOT) for p in example_paths(example, target)], target)
    manifests = example / "manifests"
    cluster = [str(manifests.relative_to(ROOT))] if manifests.is_dir() else None
    result = run([str(write(tmp_path, built.files))], target, cluster=cluster)
    change = diff.compare(built.analysis.graph, imported_graph(result))
    assert not change.changed, [c.request for c in change.changes] + list(change.notes)


def test_the_imported_text_is_in_fmts_layout_and_builds():
    from meshpolicy.fmt import format_source

    result = run([str(IMPORTS / "istio-fields.yaml")], "istio")
    assert format_source(SourceFile("imported.mesh", result.text)) == result.text
    pipeline.lower(pipeline.analyze([SourceFile("imported.mesh", result.text)]), "istio")


# -- hand-written manifests: snapshots ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "target"), [("istio-fields.yaml", "istio"), ("linkerd-fields.yaml", "linkerd")])
def test_hand_written_manifests_import_as_snapshotted(name, target, snapshot_yaml, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run([str((IMPORTS / name).relative_to(ROOT))], target)
    assert f"{result.text}\n# ---- diagnostics\n{rendered(result)}\n" == snapshot_yaml
    if target == "linkerd":  # the Istio file holds what the reader does not model (when, CUSTOM): narrowed first
        assert_never_wider([str(IMPORTS / name)], target, result)


# -- never wider, checked here on the original manifests ---------------------------------------------------

def original_docs(paths: list[str]) -> list[dict]:
    from meshpolicy.importer.manifests import read

    return [d.data for d in read(paths).documents]


def assert_never_wider(paths: list[str], target: str, result: Imported, docs: list[dict] | None = None) -> int:
    """Every request of the imported policy's space: the compiled manifests allow nothing the original
    refuses; returns how many the original allows and the import refuses (then a diagnostic says so)."""
    graph = imported_graph(result)
    world = World.from_graph(graph)
    options = {"assumed_namespace_annotations": linkerd_import.ASSUMED} if target == "linkerd" else {}
    before = get_reader(target)(docs if docs is not None else original_docs(paths), world, **options)
    after = get_reader(target)(documents(result.files), world)
    narrower = 0
    for req in requests(graph, lambda ns, svc: _merge(before.mentions(ns, svc), after.mentions(ns, svc))):
        was, now = before.decide(req), after.decide(req)
        assert not (now and not was), f"the import allows {req}, which the original refuses"
        narrower += was and not now
    if narrower:
        assert any(d.code in ("MP801", "MP802", "MP803") for d in result.diagnostics)
    return narrower


# -- narrowings: the closest narrower rule, or none, and a diagnostic naming resource and field --------------

ISTIO_HEAD = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\n"


def istio(tmp_path: Path, spec: str, extra: str = "") -> Imported:
    path = tmp_path / "p.yaml"
    path.write_text(ISTIO_HEAD + spec + extra)
    return run([str(path)], "istio")


NARROWINGS = {
    "notPaths": (("spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - to:\n    - operation: {ports: ['80'], "
                 "notPaths: ['/admin']}\n"),
                 ("rules[0].to[0].operation.notPaths: the language has no 'every request but': that operation is not "
                 "imported")),
    "regex-like principal": (("spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - from:\n    - source: "
                             "{principals: ['*/ns/x/sa/y']}\n"),
                             ("rules[0].from[0].source.principals: the principal pattern '*/ns/x/sa/y': that source is "
                             "not imported")),
    "custom action": (("spec:\n  selector: {matchLabels: {app: a}}\n  action: CUSTOM\n  provider: {name: opa}\n"
                      "  rules:\n  - to:\n    - operation: {ports: ['80']}\n"),
                      "action CUSTOM (an external authorizer) is imported as DENY of every request it sends there"),
    "when": (("spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - when:\n    - {key: 'destination.port', "
             "values: ['80']}\n"),
             ("rules[0]: the when condition 'destination.port' cannot be written in the language: the rule is not "
             "imported")),
    "prefix path": (("spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - to:\n    - operation: {ports: ['80'], "
                    "paths: ['/api/*']}\n"),
                    ("rules[0].to[0].operation.paths: '/api/*' is every path starting with '/api/', which the "
                    "language cannot write yet: dropped")),
    "identity and address": (("spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - from:\n    - source: "
                             "{principals: ['cluster.local/ns/x/sa/y'], ipBlocks: ['10.0.0.0/8']}\n"),
                             ("ipBlocks together with principals or namespaces (a caller with both) cannot be written "
                             "in the language: that source is not imported")),
}


@pytest.mark.parametrize("name", sorted(NARROWINGS))
def test_what_the_language_cannot_say_is_imported_narrower_with_a_diagnostic(name, tmp_path):
    spec, message = NARROWINGS[name]
    result = istio(tmp_path, spec)
    assert message in rendered(result, ("MP801",))
    assert "AuthorizationPolicy shop/p" in rendered(result, ("MP801",))
    assert not result.exact
    try:
        assert_never_wider([str(tmp_path / "p.yaml")], "istio", result)
    except ReaderError:  # the reader cannot evaluate the original (CUSTOM, when, a pattern): the proof read it
        assert name in ("custom action", "regex-like principal", "when")  # narrowed first (docs/import.md)


def test_a_root_namespace_policy_is_imported_for_the_policys_namespaces_only(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(ISTIO_HEAD.replace("shop", "istio-system") + "spec:\n  action: DENY\n  rules:\n  - to:\n    - "
                    "operation: {ports: ['9000']}\n---\n" + ISTIO_HEAD + "spec:\n  selector: {matchLabels: "
                    "{app: a}}\n  rules:\n  - {}\n")
    result = run([str(path)], "istio")
    assert "a policy of the root namespace applies mesh-wide: imported for the policy's namespaces only" in \
        rendered(result, ("MP801",))
    assert "deny any -> ** :9000" in result.text  # every workload of shop, declared or not
    assert_never_wider([str(path)], "istio", result)


def test_a_linkerd_route_overlapped_by_a_more_specific_one_keeps_its_callers_out(tmp_path):
    """§4.3: the more specific route takes /api/admin; its callers are not the broader route's."""
    result = run([str(IMPORTS / "linkerd-fields.yaml")], "linkerd")
    assert "deny frontend -> orders /api/admin/* :8080" in result.text
    assert "allow ops/* -> orders /api/admin/* :8080" in result.text


def test_a_rule_the_proof_finds_too_wide_is_left_out_as_a_comment(tmp_path):
    """A broader route's callers include a namespace wildcard the narrower route names part of: no 'but' in
    the language, so the broader rule is left out (MP803) rather than allow /api/admin to all of ops."""
    text = (IMPORTS / "linkerd-fields.yaml").read_text().replace(
        "identityRefs: [{kind: Namespace, name: ops}]",
        "identities: ['admin.ops.serviceaccount.identity.linkerd.cluster.local']").replace(
        "identities: [\"frontend.shop.serviceaccount.identity.linkerd.cluster.local\"]",
        "identityRefs: [{kind: Namespace, name: ops}]")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = run([str(path)], "linkerd")
    assert "# import: not imported (it would allow more than the original): allow ops/* -> orders GET /api/* :8080" \
        in result.text
    assert "a rule is not imported, as it would allow" in rendered(result, ("MP803",))
    assert_never_wider([str(path)], "linkerd", result)


SA_BASE = ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  annotations: {linkerd.io/inject: enabled, "
           "config.linkerd.io/default-inbound-policy: deny}\n---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\n"
           "metadata: {name: orders-db, namespace: shop, labels: {tier: db}}\nspec:\n  podSelector: {matchLabels: "
           "{app: orders}}\n  port: 5432\n  proxyProtocol: opaque\n---\napiVersion: policy.linkerd.io/v1beta1\n"
           "kind: ServerAuthorization\nmetadata: {name: old, namespace: shop}\nspec:\n")


def server_authorization(tmp_path: Path, spec: str, **options) -> tuple[Imported, list[str]]:
    path = tmp_path / "p.yaml"
    path.write_text(SA_BASE + spec)
    return run([str(path)], "linkerd", **options), [str(path)]


def block(result: Imported) -> str:
    """The rules of namespace shop, one per line, without comments."""
    body = result.text.split("namespace shop {\n", 1)[1].split("\n}", 1)[0]
    return "\n".join(line.strip() for line in body.splitlines() if not line.strip().startswith("#"))


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param("  server: {name: orders-db}\n  client:\n    meshTLS:\n      identities: "
                 "[frontend.shop.serviceaccount.identity.linkerd.cluster.local]\n      serviceAccounts: [{name: billing},"
                 " {name: a, namespace: ops}]\n    networks: [{cidr: 0.0.0.0/0}, {cidr: '::/0'}]\n",
                 "allow ops/a, billing, frontend -> orders :5432", id="by-name-identities-and-accounts"),
    pytest.param("  server: {selector: {matchLabels: {tier: db}}}\n  client:\n    meshTLS: {identities: ['*']}\n"
                 "    networks: [{cidr: 0.0.0.0/0}, {cidr: '::/0'}]\n",
                 "allow * -> orders :5432", id="by-selector-any-identity"),
    pytest.param("  server: {name: orders-db}\n  client:\n    meshTLS:\n      identities: "
                 "[frontend.shop.serviceaccount.identity.linkerd.example.org]\n"
                 "    networks: [{cidr: 0.0.0.0/0}, {cidr: '::/0'}]\n",
                 "allow frontend -> orders :5432", id="identities-name-the-trust-domain"),
    pytest.param("  server: {selector: {matchLabels: {tier: db}}}\n  client: {unauthenticated: true}\n",
                 "allow 10.0.0.0/8, 100.64.0.0/10, 172.16.0.0/12, 192.168.0.0/16, fd00::/8 -> orders :5432",
                 id="unauthenticated-without-networks-is-the-cluster-networks"),
    pytest.param("  server: {name: orders-db}\n  client: {unauthenticated: true, networks: [{cidr: 10.1.0.0/16, except: "
                 "[10.1.2.0/24]}]}\n", "deny 10.1.2.0/24 -> orders :5432\nallow 10.1.0.0/16 -> orders :5432",
                 id="unauthenticated-with-networks"),
])
def test_a_server_authorization_is_imported_exactly(tmp_path, spec, expected):
    result, paths = server_authorization(tmp_path, spec)
    assert expected in block(result)
    assert ("trust-domain example.org" in result.text) == ("example.org" in spec)
    assert result.exact and result.compared > 0, rendered(result)
    assert assert_never_wider(paths, "linkerd", result) == 0


def test_a_server_authorization_selector_takes_only_the_servers_whose_labels_match(tmp_path):
    result, paths = server_authorization(tmp_path, "  server: {selector: {matchLabels: {tier: web}}}\n"
                                         "  client: {unauthenticated: true}\n")
    assert "-> orders" not in block(result)
    assert result.exact
    assert_never_wider(paths, "linkerd", result)


@pytest.mark.parametrize("access", [None, "cluster-unauthenticated"])
def test_cluster_networks_override_the_chart_default(tmp_path, access):
    """A ServerAuthorization without networks, or an accessPolicy cluster-*: the clusterNetworks given."""
    path = tmp_path / "p.yaml"
    text = SA_BASE + "  server: {name: orders-db}\n  client: {unauthenticated: true}\n"
    if access:
        text = text.replace("proxyProtocol: opaque\n", f"proxyProtocol: opaque\n  accessPolicy: {access}\n").replace(
            "server: {name: orders-db}", "server: {name: other}")
    path.write_text(text)
    paths = [str(path)]
    result = run(paths, "linkerd", cluster_networks=("10.0.0.0/8",))
    assert "allow 10.0.0.0/8 -> orders :5432" in block(result) and "172.16.0.0/12" not in result.text
    assert result.exact
    graph = imported_graph(result)
    world = World.from_graph(graph)
    before = get_reader("linkerd")(original_docs(paths), world, cluster_networks=("10.0.0.0/8",),
                                   assumed_namespace_annotations=linkerd_import.ASSUMED)
    after = get_reader("linkerd")(documents(result.files), world)
    for req in requests(graph, lambda ns, svc: _merge(before.mentions(ns, svc), after.mentions(ns, svc))):
        assert before.decide(req) == after.decide(req), req


def test_the_cluster_networks_option_is_checked(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(SA_BASE + "  server: {name: orders-db}\n  client: {unauthenticated: true}\n")
    ok = invoke(["import", path, "--from", "linkerd", "--cluster-networks", "10.0.0.0/8, fd00::/8"])
    assert "allow 10.0.0.0/8, fd00::/8 -> orders :5432" in ok.output
    bad = invoke(["import", path, "--from", "linkerd", "--cluster-networks", "10.0.0.0/33"], code=None)
    assert bad.exit_code == 2 and "'10.0.0.0/33' is not a CIDR block" in bad.output
    istio_run = invoke(["import", path, "--from", "istio", "--cluster-networks", "10.0.0.0/8"], code=None)
    assert istio_run.exit_code == 2 and "applies to --from linkerd only" in istio_run.output


def test_a_server_authorization_by_identity_on_the_cluster_networks_is_narrowed(tmp_path):
    """Identities AND the clusterNetworks (no client.networks): the language cannot AND them, so left out."""
    result, paths = server_authorization(tmp_path, "  server: {name: orders-db}\n  client:\n    meshTLS: "
                                         "{serviceAccounts: [{name: a, namespace: ops}]}\n")
    assert "-> orders" not in block(result)
    assert ("ServerAuthorization shop/old (client.meshTLS with no client.networks: the clusterNetworks, linkerd.md "
            "section 3.4): an authorization by identity AND network cannot be written") in rendered(result, ("MP801",))
    assert assert_never_wider(paths, "linkerd", result) > 0


@pytest.mark.parametrize(("spec", "field", "closed"), [
    pytest.param("  server: {selector: {matchExpressions: [{key: tier, operator: Exists}]}}\n  client: "
                 "{unauthenticated: true}\n", "spec.server.selector.matchExpressions", "every Server of shop is",
                 id="selector-matchExpressions"),
    pytest.param("  server: {name: orders-db}\n  client: {meshTLS: {unauthenticatedTLS: true}}\n",
                 "spec.client.meshTLS: field unauthenticatedTLS", "the Server orders-db is", id="unauthenticatedTLS"),
    pytest.param("  server: {name: orders-db}\n  client: {unauthenticated: false}\n",
                 "exactly one of unauthenticated: true and meshTLS", "the Server orders-db is", id="no-client"),
])
def test_a_server_authorization_the_reader_cannot_model_closes_its_servers(tmp_path, spec, field, closed):
    text = SA_BASE + spec + ("---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: "
                             "{name: any, namespace: shop}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: "
                             "Server, name: orders-db}\n  requiredAuthenticationRefs: []\n")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = run([str(path)], "linkerd")
    said = rendered(result, ("MP801",))
    assert field in said and f"{closed} imported closed (nothing allowed)" in said
    assert ":5432" in result.text and "-> orders :5432" not in result.text
    with pytest.raises(ReaderError, match="Unmodelled|exactly one|unauthenticatedTLS|matchExpressions"):
        get_reader("linkerd")(original_docs([str(path)]), imported_world(result))


def imported_world(result: Imported) -> World:
    return World.from_graph(imported_graph(result))


# -- findings: what the original really says ---------------------------------------------------------------

SPLIT = (ISTIO_HEAD.replace("{name: p, namespace: shop}", "{name: orders, namespace: default}")
         + "spec:\n  selector:\n    matchLabels: {app: orders}\n  action: ALLOW\n  rules:\n  - from:\n"
           "    - source: {principals: [cluster.local/ns/default/sa/frontend]}\n  - to:\n"
           "    - operation: {methods: [GET, POST], ports: ['8080']}\n")

FINDINGS = {
    "ML060": (SPLIT, ("p.yaml:8:3: warning[ML060]: AuthorizationPolicy default/orders: 'from' and 'to' sit in "
                     "separate rule entries, which Istio ORs: cluster.local/ns/default/sa/frontend may reach every "
                     "port, method and path of the selected workloads, and any caller at all (also unauthenticated) "
                     "may send GET,POST port 8080\n 8 |   rules:\n   |   ^\n  = hint: put 'from' and 'to' in one "
                     "entry (no '-' before 'to:') for 'these callers may do this'")),
    "ML061": (ISTIO_HEAD + "spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - from:\n    - source: "
              "{namespaces: [ops]}\n",
              ("warning[ML061]: AuthorizationPolicy shop/p: namespaces ['ops'] admits every workload of those "
              "namespaces, of any trust domain")),
    "ML062": (ISTIO_HEAD + "spec:\n  selector: {matchLabels: {app: a}}\n  action: DENY\n  rules:\n  - to:\n    - "
              "operation: {methods: [DELETE]}\n---\n" + ISTIO_HEAD.replace("name: p,", "name: q,")
              + "spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - to:\n    - operation: {ports: ['5432']}\n",
              ("warning[ML062]: AuthorizationPolicy shop/p: a DENY with methods or paths refuses every connection to "
              "TCP port(s) 5432")),
    "ML063": (ISTIO_HEAD + "spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - to:\n    - operation: "
              "{ports: ['80'], paths: ['/x/**']}\n",
              ("warning[ML063]: AuthorizationPolicy shop/p: the path '/x/**' is matched literally by Istio: only paths "
              "starting with '/x/*' (with the '*' in them) match")),
    "ML065": (ISTIO_HEAD + "spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - from:\n    - source: "
              "{principals: ['cluster.local/ns/shop/sa/b']}\n",
              ("warning[ML065]: AuthorizationPolicy shop/p: names callers by identity, but shop/a accepts plaintext "
              "(PERMISSIVE)")),
    "ML066": (ISTIO_HEAD.replace("namespace: shop}", "namespace: shop, annotations: {istio.io/dry-run: 'true'}}")
              + "spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n  - {}\n",
              ("warning[ML066]: AuthorizationPolicy shop/p carries istio.io/dry-run: \"true\": Istio does not enforce "
              "it, and the import leaves it out")),
}


@pytest.mark.parametrize("code", sorted(FINDINGS))
def test_each_classic_mistake_is_found_with_its_text(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, expected = FINDINGS[code]
    Path("p.yaml").write_text(text)
    result = run(["p.yaml"], "istio")
    assert expected in rendered(result, (code,))


def test_a_selector_that_matches_nothing_in_the_cluster_is_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(ISTIO_HEAD + "spec:\n  selector: {matchLabels: {app: orderz}}\n  rules:\n  - {}\n")
    Path("c.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: orders, namespace: shop}\n"
                              "spec:\n  template:\n    metadata: {labels: {app: orders}}\n    spec:\n"
                              "      containers: [{name: app, image: x, ports: [{containerPort: 8080}]}]\n")
    result = run(["p.yaml"], "istio", cluster=["c.yaml"])
    assert ("warning[ML064]: AuthorizationPolicy shop/p: its selector app=orderz matches no workload of shop in "
            "--cluster: it protects nothing today") in rendered(result, ("ML064",))


def test_linkerd_audit_and_plaintext_beside_identities_are_found(tmp_path):
    text = (IMPORTS / "linkerd-fields.yaml").read_text().replace("proxyProtocol: opaque",
                                                                 "proxyProtocol: opaque\n  accessPolicy: audit")
    text = text.replace("default-inbound-policy: deny", "default-inbound-policy: audit")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = run([str(path)], "linkerd")
    found = rendered(result, ("ML066",))
    assert "Server shop/orders-db has accessPolicy: audit" in found
    assert "Namespace shop: default-inbound-policy audit admits every request to ports without a Server" in found


def test_cluster_names_services_and_accounts_after_the_workloads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(SPLIT)
    Path("c.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: orders-v2, namespace: default}\nspec:\n  template:\n"
        "    metadata: {labels: {app: orders}}\n    spec:\n      serviceAccountName: orders-sa\n"
        "      containers: [{name: app, image: x, ports: [{containerPort: 8080}, {containerPort: 9090}]}]\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  template:\n"
        "    metadata: {labels: {app: web}}\n    spec:\n      serviceAccountName: frontend\n"
        "      containers: [{name: app, image: x}]\n")
    result = run(["p.yaml"], "istio", cluster=["c.yaml"])
    assert "service orders-v2 account orders-sa labels app=orders :8080/http :9090/tcp" in result.text
    assert "service web account frontend" in result.text
    assert "allow web -> orders-v2" in result.text


# -- hostile input -------------------------------------------------------------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b]\n"

HOSTILE = {
    "alias bomb": (ISTIO_HEAD + "spec: {}\n" + BOMB, "YAML alias '*a' refused"),
    "deep nesting": (ISTIO_HEAD + "spec: " + "[" * 100 + "]" * 100 + "\n", "nested more than 64 levels deep"),
    "not YAML": ("kind: [\n", "not valid YAML"),
    "not an object": ("- 1\n- 2\n", "not a Kubernetes object"),
    "python tag": (ISTIO_HEAD + "spec: !!python/object/apply:os.system ['true']\n", None),
    "spec a number": (ISTIO_HEAD + "spec: 5\n", "spec is not a mapping: not imported"),
    "rules a string": (ISTIO_HEAD + "spec:\n  rules: x\n", "rules is not a list"),
    "principals a number": (ISTIO_HEAD + "spec:\n  rules:\n  - from:\n    - source: {principals: 5}\n",
                            "not a list of strings"),
    "selector a list": (ISTIO_HEAD + "spec:\n  selector: [1]\n  rules:\n  - {}\n", "selector other than matchLabels"),
    "metadata a string": ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: x\nspec: {}\n", None),
    "ports not numbers": (ISTIO_HEAD + "spec:\n  rules:\n  - to:\n    - operation: {ports: [http]}\n",
                          "the port 'http'"),
    "linkerd wrong types": (("apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: s, namespace: "
                            "shop}\nspec: {podSelector: {matchLabels: {app: 5}}, port: [1]}\n"), None),
    "linkerd route rules a map": (("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, "
                                  "namespace: shop}\nspec: {parentRefs: 3, rules: {a: 1}}\n"), None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gives_a_diagnostic_never_a_traceback(name, tmp_path):
    text, expected = HOSTILE[name]
    path = tmp_path / "p.yaml"
    path.write_text(text)
    source = "linkerd" if "linkerd" in name else "istio"
    result = invoke(["import", str(path), "--from", source], code=None)
    assert result.exit_code in (0, 1), result.output
    if expected is not None:
        assert expected in result.output


def test_a_file_over_the_bound_is_not_read(tmp_path, monkeypatch):
    from meshpolicy.cluster import reader  # the one bound of the manifests --cluster and import read

    monkeypatch.setattr(reader, "MAX_BYTES", 1000)
    path = tmp_path / "big.yaml"
    path.write_text(ISTIO_HEAD + "spec: {}\n" + "# padding\n" * 200)
    with pytest.raises(MeshError) as err:
        run([str(path)], "istio")
    assert "larger than 1,000 bytes: not read" in str(err.value)


def test_an_unreadable_document_stops_the_import(tmp_path):
    """A document that cannot be read could be a DENY: importing the rest could be wider (MP806)."""
    path = tmp_path / "p.yaml"
    path.write_text(SPLIT + "---\n" + BOMB)
    result = invoke(["import", str(path), "--from", "istio"], code=1)
    assert "error[MP806]: some manifests cannot be read: nothing is imported" in result.output
    assert "allow" not in result.stdout


# -- the command line ---------------------------------------------------------------------------------------

def test_the_command_writes_the_file_and_the_findings_in_every_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(SPLIT)
    result = invoke(["import", "p.yaml", "--from", "istio", "-o", "out.mesh", "--format", "json"], code=1)
    assert '"code": "ML060"' in result.stdout
    assert Path("out.mesh").read_text().startswith("# Imported by 'meshpolicy import --from istio'")
    sarif = invoke(["import", "p.yaml", "--from", "istio", "-o", "out.mesh", "--format", "sarif"], code=1)
    assert '"ruleId": "ML060"' in sarif.stdout
    github = invoke(["import", "p.yaml", "--from", "istio", "-o", "out.mesh", "--format", "github"], code=1)
    assert "::warning file=p.yaml,line=8,endLine=8,col=3,endColumn=3,title=meshpolicy ML060::" in github.stdout


def test_an_exact_import_exits_zero(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = compile_case(ROOT / "tests" / "cases" / "deny" / "deny.mesh", "istio")
    write(tmp_path / "out", built.files)
    result = invoke(["import", "out", "--from", "istio"])
    assert "imported: proved on" in result.output and "equal to the original" in result.output


# -- docs/import.md: the worked migration is what the command does ------------------------------------------

def test_the_worked_migration_of_the_docs_is_what_import_does(tmp_path, monkeypatch):
    import re

    doc = (ROOT / "docs" / "import.md").read_text().split("## Worked migration", 1)[1]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", doc, re.DOTALL | re.MULTILINE)
    manifests = next(text for lang, text in blocks if lang == "yaml")
    finding = next(text for lang, text in blocks if lang == "text")
    policies = [text for lang, text in blocks if lang == ""]
    monkeypatch.chdir(tmp_path)
    Path("orders.yaml").write_text(manifests)
    result = run(["orders.yaml"], "istio")
    assert result.text == policies[0]
    assert finding.rstrip("\n") == rendered(result, ("ML060",))
    assert_never_wider(["orders.yaml"], "istio", result)
    fixed = pipeline.lower(pipeline.analyze([SourceFile("fixed.mesh", policies[1])]), "istio")
    rules = next(d for d in documents(fixed.files) if d["metadata"]["name"] == "orders-allow")["spec"]["rules"]
    assert len(rules) == 1 and set(rules[0]) == {"from", "to"}  # one entry: from AND to
    change = diff.compare(imported_graph(result), diff.load([SourceFile("fixed.mesh", policies[1])]))
    assert [c.kind for c in change.changes] == ["removed", "removed"]


def test_a_diagnostic_names_the_field_as_the_manifest_writes_it(tmp_path, monkeypatch):
    """Rules left out before translation do not shift the indexes the diagnostics name; the caret is on the field."""
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(ISTIO_HEAD + "spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n"
                              "  - when: [{key: 'destination.port', values: ['80']}]\n"
                              "  - to:\n    - operation: {ports: ['80']}\n    - operation: {notPaths: ['/admin']}\n")
    result = run(["p.yaml"], "istio")
    said = rendered(result, ("MP801",))
    assert ("p.yaml:7:5: warning[MP801]: AuthorizationPolicy shop/p: rules[0]: the when condition "
            "'destination.port' cannot be written in the language: the rule is not imported") in said
    assert ("p.yaml:10:18: warning[MP801]: AuthorizationPolicy shop/p: rules[1].to[1].operation.notPaths: the "
            "language has no 'every request but': that operation is not imported") in said
    assert "allow any -> a :80" in result.text


def test_manifests_from_standard_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["import", "-", "--from", "istio", "-o", "p.mesh"], code=1, input=SPLIT)
    assert "<stdin>:8:3: warning[ML060]" in result.stdout
    assert "allow any -> orders GET,POST :8080" in Path("p.mesh").read_text()


def test_request_conditions_are_imported_as_the_languages_if(tmp_path, monkeypatch):
    """when (headers, claims), requestPrincipals and RequestAuthentication: 'if header', 'if jwt', 'if claim',
    with the issuer declared; a subject the language cannot name is left out of an ALLOW."""
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: shop}\n"
        "spec:\n  jwtRules: [{issuer: 'https://login.example.com', jwksUri: 'https://login.example.com/keys'}]\n---\n"
        + ISTIO_HEAD + "spec:\n  selector: {matchLabels: {app: a}}\n  rules:\n"
        "  - from: [{source: {requestPrincipals: ['https://login.example.com/*']}}]\n"
        "    to: [{operation: {ports: ['80'], methods: [GET]}}]\n"
        "    when: [{key: 'request.auth.claims[scope]', values: [read]}, {key: 'request.headers[X-Tenant]', "
        "values: [acme, beta]}]\n"
        "  - from: [{source: {requestPrincipals: ['https://login.example.com/alice']}}]\n"
        "    to: [{operation: {ports: ['80']}}]\n")
    result = run(["p.yaml"], "istio")
    assert "issuer login-example-com https://login.example.com jwks https://login.example.com/keys" in result.text
    assert "allow any -> a GET :80 if jwt login-example-com, claim scope=read, header x-tenant=acme" in result.text
    assert "allow any -> a GET :80 if jwt login-example-com, claim scope=read, header x-tenant=beta" in result.text
    assert "requestPrincipals 'https://login.example.com/alice' names one subject" in rendered(result, ("MP801",))
    assert_never_wider(["p.yaml"], "istio", result)


def test_a_regex_path_that_the_language_cannot_write_is_left_out_and_said(tmp_path):
    """Issue 11: ^/static/.*$ takes what is under /static/ but not /static itself, which no pattern of the
    language writes (/static/* also takes /static): that match is left out, and the import says so."""
    policy = ("namespace shop {\n  service orders :8080/http\n  service frontend :8080/http\n"
              "  allow frontend -> orders GET /static* :8080\n}\n")
    built = compile_case_text(policy, tmp_path)
    files = {p: t.replace('"^/static.*$"', '"^/static/.*$"') for p, t in built.items()}
    assert files != built
    result = run([str(write(tmp_path / "out", files))], "linkerd")
    assert result.narrower > 0
    assert "takes what is under '/static/' but not '/static' itself" in rendered(result)


def compile_case_text(text: str, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "p.mesh"
    path.write_text(text, encoding="utf-8")
    return pipeline.build([path], "linkerd").files
