"""An adversarial audit of the safety net: backends, readers, request space and decider.

Each test pins one finding: a policy or a hand-edited output on which a
wrong (wider) policy used to pass, or a build that used to crash. The last
test brute-forces a much larger, naive request space than the equivalence
classes of :mod:`meshpolicy.graph.space` on random small policies, so that a
class the space misses shows up as a disagreement between the decider and
a reader.
"""

from __future__ import annotations

import ipaddress
import random

import pytest
import yaml
from helpers import compile_text, documents, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy import verify as verifier
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph.evaluate import Caller, Decider, Request
from meshpolicy.graph.model import Identity, SourceKind
from meshpolicy.graph.space import addresses, requests
from meshpolicy.output import writer
from meshpolicy.readers import World, get_reader


def codes(err: MeshError) -> set[str]:
    return {d.code for d in err.diagnostics if d.severity.value == "error"}


def refused(text: str, target: str = "istio") -> MeshError:
    with pytest.raises(MeshError) as info:
        compile_text(text, target)
    return info.value


def counterexamples(build, target: str) -> list[verifier.Counterexample]:
    """Verify ``build.files`` as edited, listed in the kustomization a rebuild would write."""
    files = writer.with_kustomization({p: t for p, t in build.files.items() if p != writer.KUSTOMIZATION})
    return verifier.verify(build.analysis.graph, files, target, build.open_probes)


def add(build, path: str, doc: dict) -> None:
    doc.setdefault("metadata", {}).setdefault("labels", {})["app.kubernetes.io/managed-by"] = "meshpolicy"
    build.files[path] = yaml.safe_dump(doc)


def unverifiable(build, target: str) -> str:
    """The MP501 message when the reader refuses the output (fails closed)."""
    with pytest.raises(MeshError) as info:
        counterexamples(build, target)
    assert codes(info.value) == {"MP501"}
    return info.value.diagnostics[0].message


# -- Istio's root namespace ----------------------------------------------------------------------

ROOT = """
namespace istio-system {
  mtls permissive
  service web labels app=api :80/http
  allow any -> web
}
namespace shop {
  service orders :80/http
}
"""


def test_the_default_root_namespace_is_a_system_namespace_on_every_target():
    """A selector-less allow-nothing there would cover the whole mesh and a selector would pick pods of every
    namespace (istio.md §2); its namespace PeerAuthentication is the mesh's (§12). It used to crash; it is now
    refused before any backend, as one of the system namespaces (MP120, docs/language.md decision 14); a root
    namespace moved with --istio-root-namespace is the Istio backend's to refuse (tests/test_istio.py)."""
    for target in sorted(TARGETS):
        err = refused(ROOT, target)
        assert codes(err) == {"MP120"}
        assert "istio-system" in err.diagnostics[0].message
        assert err.diagnostics[0].span.line == 2


def test_the_root_namespace_is_an_error_not_a_traceback(tmp_path):
    policy = tmp_path / "root.mesh"
    policy.write_text(ROOT)
    result = invoke(["build", policy, "--target", "istio", "--out", tmp_path / "out"], code=1)
    assert "MP120" in result.output


def test_istio_reader_refuses_a_root_namespace_policy_with_a_selector():
    """Such a policy picks pods in every namespace, undeclared ones included: the world cannot say which."""
    build = compile_text("namespace shop {\n  service orders :80/http\n}\n", "istio")
    add(build, "istio-system/authorizationpolicy-open.yaml", {
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "open", "namespace": "istio-system"},
        "spec": {"selector": {"matchLabels": {"app": "ghost"}}, "action": "ALLOW", "rules": [{}]}})
    assert "root namespace" in unverifiable(build, "istio")


# -- trust domains -----------------------------------------------------------------------------------

def test_istio_namespace_sources_keep_the_trust_domain():
    """'namespaces: [m]' matches any peer whose SPIFFE path holds /ns/m/, of any trust domain the mesh trusts
    (istio.md §5: regex .*/ns/m/.*); Linkerd's '*.m.serviceaccount.identity.linkerd.TD' and LANGUAGE §4's
    identities name the trust domain. A principal prefix keeps it, and istiod still expands it to the
    trust domain's aliases (5 segments, §7)."""
    text = "trust-domain example.org\nnamespace n {\n  service s :80/http\n  allow m/*, a -> s\n  service a\n}\n"
    build = compile_text(text, "istio")
    [rule] = yaml.safe_load(build.files["n/authorizationpolicy-s-allow.yaml"])["spec"]["rules"]
    assert rule["from"] == [{"source": {"principals": ["example.org/ns/m/sa/*", "example.org/ns/n/sa/a"]}}]
    reader = get_reader("istio")(documents(build.files), World.from_graph(build.analysis.graph))
    assert reader.mentions("n", "s").namespaces == frozenset({"m"})


# -- loopback -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["allow 127.0.0.0/8 -> s", "deny 127.0.0.1/32 -> s", "deny ::1/128 -> s",
                                  "never 127.0.0.0/16 -> s"])
def test_loopback_networks_are_refused(rule):
    """Linkerd always admits 127.0.0.1 and ::1 (linkerd.md §0.2): 'deny 127.0.0.0/8' used to build there and
    refuse nothing, since the space never held a loopback caller."""
    text = f"namespace n {{\n  mtls permissive\n  service s :80/http\n  allow any -> s\n  {rule}\n}}\n"
    for target in sorted(TARGETS):
        err = refused(text, target)
        assert codes(err) == {"MP112"}
        assert "loopback" in err.diagnostics[0].message


def test_the_space_has_no_loopback_caller_and_keeps_every_other_region():
    nets = [ipaddress.ip_network(n) for n in ("124.0.0.0/6", "124.0.0.0/7", "126.0.0.0/8", "::/127")]
    found = [ipaddress.ip_address(a) for a in addresses(nets)]
    assert not any(a.is_loopback for a in found)
    # 124.0.0.0/6 minus its named children is 127.0.0.0/8 only: no caller there; the others keep one each
    for net in ("124.0.0.0/7", "126.0.0.0/8", "::/127"):
        assert any(a in ipaddress.ip_network(net) for a in found), net


# -- IPv6 networks at the bottom of the address space ----------------------------------------------

def test_an_ipv6_network_at_the_bottom_gets_an_ipv6_representative():
    """ip_address(0) is 0.0.0.0: ::/8 used to be represented by an IPv4 address, so no caller of the space
    was inside it."""
    found = [ipaddress.ip_address(a) for a in addresses([ipaddress.ip_network("::/8")])]
    assert any(a.version == 6 and a in ipaddress.ip_network("::/8") for a in found)
    text = "namespace n {\n  mtls permissive\n  service s :80/http\n  allow any -> s\n  deny ::/8 -> s\n}\n"
    graph = compile_text(text).analysis.graph
    inside = [r for r in requests(graph) if r.service == "s"
              and ipaddress.ip_address(r.caller.ip) in ipaddress.ip_network("::/8")]
    assert inside and not any(Decider(graph).decide(r).allowed for r in inside)


# -- deny and never through groups and wildcards -------------------------------------------------

PORTLESS = """
namespace n {{
  mtls permissive
  service s
  service t :8080/http
  service a :80/http
  group g = s, t
  allow a -> s
  {rule}
}}
"""


@pytest.mark.parametrize(("rule", "code"), [
    ("deny a -> g :8080", "MP110"),
    ("deny a -> * :8080", "MP110"),
    ("deny a -> n/* GET", "MP109"),
    ("never a -> g :8080", "MP110"),
])
def test_a_deny_through_a_group_cannot_skip_a_member_without_ports(rule, code):
    """'s' declares no port, so it serves every port and 'allow a -> s' grants a -> s:8080. The resolver
    used to leave 's' out of the deny (as it does for members that do not declare the port), so a -> s:8080
    stayed allowed; a never rule likewise stopped checking it."""
    err = refused(PORTLESS.format(rule=rule))
    assert codes(err) == {code}
    [error] = [d for d in err.diagnostics if d.severity.value == "error"]
    assert "'n/s'" in error.message and "every port" in error.message


def test_an_allow_through_a_group_still_leaves_a_member_without_ports_out():
    """Leaving a member out of an allow rule only narrows it (documented in docs/language.md)."""
    build = compile_text(PORTLESS.format(rule="allow a -> g :8080"))
    graph = build.analysis.graph
    assert [r.destination for r in graph.rules if r.ports == (8080,)] == [("n", "t")]


# -- hand-edited output the space used to miss (meshpolicy verify) ---------------------------------

POLICY = "namespace n {\n  service s :8080/http\n  service a :80/http\n  allow a -> s\n}\n"


@pytest.mark.parametrize("where", ["namespace", "server"])
def test_linkerd_verify_sees_a_cluster_networks_policy(where):
    """cluster-* policies admit by clusterNetworks (linkerd.md §1); the space had no address inside them."""
    build = compile_text(POLICY, "linkerd")
    if where == "namespace":
        path = "n/namespace-n.yaml"
        build.files[path] = build.files[path].replace('default-inbound-policy": "deny"',
                                                      'default-inbound-policy": "cluster-unauthenticated"')
    else:
        path = "n/server-s-8080.yaml"
        build.files[path] = build.files[path].replace('accessPolicy: "deny"', 'accessPolicy: "cluster-authenticated"')
    found = counterexamples(build, "linkerd")
    assert found and all(c.emitted and not c.expected.allowed for c in found)
    assert any(ipaddress.ip_address(c.request.caller.ip) in ipaddress.ip_network("10.0.0.0/8") for c in found)


def test_linkerd_verify_sees_a_service_account_ref():
    """A ServiceAccount ref admits exactly that identity (linkerd.md §3.1); mentions() skipped it."""
    build = compile_text(POLICY, "linkerd")
    add(build, "n/authorizationpolicy-extra.yaml", {
        "apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "extra", "namespace": "n"},
        "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "s-8080"},
                 "requiredAuthenticationRefs": [{"kind": "ServiceAccount", "name": "intruder"}]}})
    found = counterexamples(build, "linkerd")
    assert {c.request.caller.identity for c in found} == {Identity("n", "intruder")}


SPLIT = """namespace n {
  mtls permissive
  service s :8080/http
  service a :80/http
  allow a -> s GET
  deny a -> s /a/*
  allow any -> s GET /a/*
}
"""


def edit_istio(build, path: str, change) -> None:
    doc = yaml.safe_load(build.files[path])
    change(doc["spec"])
    build.files[path] = yaml.safe_dump(doc)


def test_istio_verify_sees_a_wildcard_method():
    """Istio methods match 'D*' as a prefix (istio.md §6); the space only had the methods named literally,
    so a hand-added 'methods: [D*]' (DELETE for a) used to pass."""
    build = compile_text(SPLIT, "istio")
    edit_istio(build, "n/authorizationpolicy-s-allow.yaml", lambda spec: spec["rules"].append(
        {"from": [{"source": {"principals": ["cluster.local/ns/n/sa/a"]}}],
         "to": [{"operation": {"methods": ["D*"], "ports": ["8080"]}}]}))
    found = counterexamples(build, "istio")
    assert found and {c.request.method for c in found} == {"DELETE"}


def test_istio_verify_sees_a_suffix_inside_a_prefix():
    """A deny on /a/* that spares '*.php' admits only paths under /a/ ending in .php; the space had paths
    under /a/ and paths ending in .php, but none that was both."""
    build = compile_text(SPLIT, "istio")
    edit_istio(build, "n/authorizationpolicy-s-deny.yaml",
               lambda spec: spec["rules"][0]["to"][0]["operation"].update(notPaths=["*.php"]))
    found = counterexamples(build, "istio")
    assert found and all(c.request.path.startswith("/a/") and c.request.path.endswith(".php") for c in found)


def test_istio_verify_sees_http_fields_on_a_port_the_policy_does_not_declare():
    """Istio sniffs the protocol of such a port (§9): a GET there can match. The reader used to read the
    port as TCP only, where the ALLOW rule is dropped, while the space has no HTTP request for it."""
    build = compile_text(POLICY, "istio")
    edit_istio(build, "n/authorizationpolicy-s-allow.yaml", lambda spec: spec["rules"].append(
        {"to": [{"operation": {"methods": ["GET"], "ports": ["9999"]}}]}))
    found = counterexamples(build, "istio")
    assert found and {(c.request.service, c.request.port) for c in found} == {("s", 9999)}


def test_linkerd_verify_sees_routes_on_a_detecting_server_for_a_tcp_port():
    """On a Server with protocol detection a client may send HTTP, which meets the routes' authorizations
    (linkerd.md §0.7); the reader used to answer for non-HTTP bytes only, the one reading the space has."""
    build = compile_text("namespace n {\n  service s :9000/tcp\n  service a :80/http\n  allow a -> s\n}\n",
                         "linkerd")
    path = "n/server-s-9000.yaml"
    build.files[path] = build.files[path].replace('proxyProtocol: "opaque"', 'proxyProtocol: "unknown"')
    add(build, "n/httproute-extra.yaml", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "extra", "namespace": "n"},
        "spec": {"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "s-9000"}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]}})
    add(build, "n/authorizationpolicy-extra.yaml", {
        "apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "extra", "namespace": "n"},
        "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "extra"},
                 "requiredAuthenticationRefs": []}})
    found = counterexamples(build, "linkerd")
    assert found and all(c.emitted and c.request.port == 9000 for c in found)


@pytest.mark.parametrize("labels", [{"app": "ghost"}, {"app": "s", "track": "canary"}, {"tier": "api"}])
def test_istio_verify_refuses_a_selector_the_world_cannot_read(labels):
    """The undeclared workload stands for every pod without a service's labels, a service's pod for every
    pod with them. A hand-added policy for app=ghost (or for the canary pods of s) used to pass: no pod
    of the world carries those labels, while pods of the cluster may."""
    build = compile_text(POLICY, "istio")
    add(build, "n/authorizationpolicy-extra.yaml", {
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": {"name": "extra", "namespace": "n"},
        "spec": {"selector": {"matchLabels": labels}, "action": "ALLOW", "rules": [{}]}})
    assert "selector" in unverifiable(build, "istio")


def test_istio_verify_refuses_a_peer_authentication_for_pods_outside_the_world():
    build = compile_text(POLICY, "istio")
    add(build, "n/peerauthentication-extra.yaml", {
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "extra", "namespace": "n"},
        "spec": {"selector": {"matchLabels": {"app": "ghost"}}, "mtls": {"mode": "PERMISSIVE"}}})
    assert "selector" in unverifiable(build, "istio")


@pytest.mark.parametrize("selector", [{"matchLabels": {"app": "ghost"}},
                                      {"matchLabels": {"app": "s"},
                                       "matchExpressions": [{"key": "track", "operator": "Exists"}]}])
def test_linkerd_verify_refuses_a_server_for_pods_outside_the_world(selector):
    build = compile_text(POLICY, "linkerd")
    add(build, "n/server-extra.yaml", {
        "apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
        "metadata": {"name": "extra", "namespace": "n"},
        "spec": {"podSelector": selector, "port": 9999, "proxyProtocol": "opaque",
                 "accessPolicy": "all-unauthenticated"}})
    unverifiable(build, "linkerd")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_selectors_a_build_emits_are_readable(target):
    """The check is not too strict: every emitted selector is exactly some service's labels."""
    text = ("namespace n {\n  mtls permissive\n  service s labels app=s,tier=api :8080/http mtls strict on 8080\n"
            "  service t labels app=t,tier=api :8080/http\n  allow t -> s GET\n  deny any -> t DELETE\n}\n")
    assert counterexamples(compile_text(text, target), target) == []


# -- brute force: a naive request space much larger than the classes -------------------------------

STD_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND")
BRUTE_SOURCES = ["a", "b", "*", "any", "m/*", "m/x", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "192.168.0.0/16",
                 "2001:db8::/32", "2001:db8:1::/48", "::/8", "0.0.0.0/1"]
BRUTE_PATHS = ["/a", "/a/", "/a/*", "/ab", "/a/b", "/a/b/*", "/", "/healthz", "/healthz/*", "/b/*"]
BRUTE_GRPC = ["p.S/M", "p.S", "p.T/N", "p.SX/M"]
BRUTE_HEAD = """namespace n {{
  mtls {mode}
  service s :8080/http :8081/grpc :8082/http2 :9000/tcp probes /healthz{extra}
  service a :80/http
  service b :80/http
  service c
  group g = s, c
"""


@st.composite
def brute_rules(draw) -> str:
    action = draw(st.sampled_from(["allow", "allow", "deny"]))
    sources = ", ".join(draw(st.lists(st.sampled_from(BRUTE_SOURCES), min_size=1, max_size=2, unique=True)))
    dest = draw(st.sampled_from(["s", "s", "g", "c"]))
    if dest == "c":
        return f"  {action} {sources} -> c"
    head = f"  {action} {sources} -> {dest}"
    if dest == "s" and draw(st.integers(0, 3)) == 0:
        grpc = ", ".join(draw(st.lists(st.sampled_from(BRUTE_GRPC), min_size=1, max_size=2, unique=True)))
        return f"{head} grpc {grpc} {draw(st.sampled_from(['', ':8081', ':8082']))}".rstrip()
    if dest == "g":
        return head + draw(st.sampled_from(["", " :9000" if action == "allow" else ""]))
    methods = draw(st.sampled_from(["", "GET", "POST,DELETE", "PUT"]))
    paths = ", ".join(draw(st.lists(st.sampled_from(BRUTE_PATHS), max_size=2, unique=True)))
    port = draw(st.sampled_from(["", ":8080", ":8082"] + ([] if methods or paths else [":9000"])))
    return " ".join(p for p in (head, methods, paths, port) if p)


brute_policies = st.builds(
    lambda mode, extra, body: BRUTE_HEAD.format(mode=mode, extra=extra) + "\n".join(body) + "\n}\n"
    + "namespace m external {\n  service x\n}\n",
    st.sampled_from(["strict", "permissive"]), st.sampled_from(["", " mtls permissive on 9000"]),
    st.lists(brute_rules(), min_size=1, max_size=5))


def naive_paths(graph) -> list[str]:
    """Every path a rule or probe names, with trailing slashes, children, siblings and all prefixes."""
    named = {"/", "//", "/x"}
    for rule in graph.rules:
        named |= {p.value for p in rule.paths}
        for g in rule.grpc:
            method = g.method or "Any"
            named |= {f"/{g.service}/{method}", f"/{g.service}/{method}/x", f"/{g.service}X/{method}",
                      f"//{g.service}/{method}"}
    for svc in graph.services:
        named |= set(svc.probes)
    out = set()
    for v in named:
        out |= {v, v + "/", v + "//", v + "/x", v + "x", v.upper()} | {v[:i] for i in range(1, len(v) + 1)}
    return sorted(out)


def naive_addresses(graph) -> list[str]:
    """Both ends of every network, one address beside each, and a few fixed ones (loopback left out)."""
    out = {"192.0.2.10", "10.2.0.1", "8.8.8.8", "2001:db8::1", "3fff::1", "::2", "0.0.0.1"}
    for rule in graph.rules:
        for net in (s.network for s in rule.sources if s.kind is SourceKind.CIDR):
            top = 2 ** net.max_prefixlen - 1
            for n in (int(net.network_address) - 1, int(net.network_address), int(net.broadcast_address),
                      int(net.broadcast_address) + 1):
                if 0 <= n <= top:
                    out.add(str(type(net.network_address)(n)))
    return sorted(a for a in out if not ipaddress.ip_address(a).is_loopback)


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(text=brute_policies)
def test_a_naive_request_space_finds_nothing_the_classes_miss(target, text):
    try:
        build = compile_text(text, target)  # verified on the equivalence classes
    except MeshError as err:
        assert codes(err) <= {"MP301", "MP109", "MP110"}, text
        return
    graph = build.analysis.graph
    reader = get_reader(target)(documents(build.files), World.from_graph(graph))
    decider = Decider(graph, build.open_probes)
    rnd = random.Random(text)
    idents = [None, Identity("n", "a"), Identity("n", "b"), Identity("n", "s"), Identity("n", "other"),
              Identity("m", "x"), Identity("m", "y"), Identity("zz", "a")]
    callers = [Caller(i, ip) for i in idents for ip in naive_addresses(graph)]
    paths = naive_paths(graph)
    for svc in [s for s in graph.services if s.namespace == "n"]:
        for number in sorted({p.number for p in svc.ports} | {8080, 1}):
            port = svc.port(number)
            ops = [(m, p) for m in STD_METHODS for p in paths] if port and port.protocol.is_http else [(None, None)]
            for caller, (method, path) in [(c, o) for c in rnd.sample(callers, 3) for o in ops] + \
                    [(c, o) for c in callers for o in rnd.sample(ops, min(3, len(ops)))]:
                req = Request(caller, "n", svc.name, number, method, path)
                assert reader.decide(req) == decider.decide(req).allowed, f"{req}\n{text}"


def test_linkerd_refuses_to_manage_its_control_plane_namespace():
    from meshpolicy import pipeline
    from meshpolicy.diagnostics import MeshError
    from meshpolicy.source import SourceFile

    with pytest.raises(MeshError) as err:  # on every target: a system namespace (MP120, before any backend)
        pipeline.analyze([SourceFile("p.mesh", "namespace linkerd {\n  service web :80/http\n}\n")])
    [diag] = err.value.diagnostics
    assert diag.code == "MP120" and diag.span.line == 1
    assert "namespace 'linkerd' is Linkerd's control plane" in diag.message
