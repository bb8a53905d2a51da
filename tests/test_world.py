"""The readers' world and the records each pod's selection finds, answered by label indexes instead of by
comparing every workload with every selector (issue 12, ``labels:N``): the same answers as the pairwise
definitions they replace, which are written out here as they were."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy.errors import InternalError
from meshpolicy.readers import istio as istio_reader
from meshpolicy.readers import linkerd as linkerd_reader
from meshpolicy.readers.base import Ambiguous
from meshpolicy.readers.world import UNDECLARED_LABELS, Selections, Workload, World

KEYS = ["app", "tier", "track"]
VALUES = ["a", "b", "c"]
labels_of = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
#: selectors may name a key no workload has
selectors = st.dictionaries(st.sampled_from([*KEYS, "zone"]), st.sampled_from(VALUES), max_size=3)


class ReadsAnySelector(World):
    """A world that reads every selector: the readers' tests ask which records apply to a pod, not which
    selectors the world can read exactly."""

    def selector_problem(self, namespace: str, selector: dict[str, str]) -> str | None:
        return None


def world_of(namespaces: list[list[dict[str, str]]], proven: bool = False, kind: type[World] = World) -> World:
    """Namespace ``nK`` with one declared workload per label set, then its undeclared one."""
    pods = []
    for n, label_sets in enumerate(namespaces):
        pods += [Workload(f"n{n}", f"w{i}", f"w{i}", tuple(sorted(labels.items())), ((8080, "http"),))
                 for i, labels in enumerate(label_sets)]
        pods.append(Workload(f"n{n}", None, "default", UNDECLARED_LABELS, ((8080, "http"),)))
    return kind("cluster.local", tuple(pods), proven)


worlds = st.lists(st.lists(labels_of, max_size=8), min_size=1, max_size=2)


def pairwise_problem(world: World, namespace: str, selector: dict[str, str]) -> str | None:
    """``World.selector_problem`` as it was: every declared workload compared with the selector."""
    declared = [w for w in world.in_namespace(namespace) if w.name is not None]
    if not selector or not world.in_namespace(namespace):
        return None
    if not any(all(selector.get(k) == v for k, v in w.labels) for w in declared):
        return f"the selector {selector} picks pods of no declared service in {namespace}"
    if world.selectors_proven and any(dict(w.labels) == selector for w in declared):
        return None
    for w in declared:
        labels = dict(w.labels)
        if not all(labels.get(k) == v for k, v in selector.items()) and \
                not any(k in labels and labels[k] != v for k, v in selector.items()):
            return f"the selector {selector} picks some pods of {namespace}/{w.name} and not others"
    return None


def carries(pod: Workload, selector: tuple[tuple[str, str], ...]) -> bool:
    labels = dict(pod.labels)
    return all(labels.get(k) == v for k, v in selector)


@settings(max_examples=300, deadline=None)
@given(worlds, st.lists(selectors, min_size=1, max_size=6), st.booleans())
def test_the_selector_problem_is_the_pairwise_one(namespaces, asked, proven):
    world = world_of(namespaces, proven)
    for selector in asked:
        for namespace in ("n0", "n1", "elsewhere"):
            assert world.selector_problem(namespace, selector) == pairwise_problem(world, namespace, selector)


@settings(max_examples=200, deadline=None)
@given(worlds, st.lists(selectors, min_size=1, max_size=6))
def test_a_selector_picks_the_workloads_that_carry_its_labels(namespaces, asked):
    world = world_of(namespaces)
    for selector in asked:
        pairs = tuple(selector.items())
        for namespace in ("n0", "n1", "elsewhere"):
            expected = [w for w in world.in_namespace(namespace) if carries(w, pairs)]
            assert world.selecting(namespace, pairs) == expected


@settings(max_examples=200, deadline=None)
@given(worlds, st.lists(st.tuples(st.sampled_from(["n0", "n1", "n9"]), st.none() | selectors), max_size=10))
def test_selections_give_each_pod_the_records_that_pick_it_in_their_order(namespaces, records):
    world = world_of(namespaces)
    scoped = [(ns, None if sel is None else tuple(sel.items())) for ns, sel in records]
    found = Selections(world, scoped, lambda r: r)
    for pod in world.workloads:
        assert found.of(pod) == [r for r in scoped
                                 if r[0] == pod.namespace and r[1] is not None and carries(pod, r[1])]


def test_a_workload_naming_a_label_key_twice_is_a_bug_not_a_guess():
    with pytest.raises(InternalError, match="twice"):
        World("cluster.local", (Workload("n", "w", "w", (("app", "a"), ("app", "b")), ()),))


def test_a_large_namespace_is_answered_without_comparing_every_pair():
    # the shape of the benchmark's labels:N; answered here as the pairwise scan answers it
    namespace = [{"app": f"s{i}", "tier": VALUES[i % 3]} if i % 2 else {"app": f"s{i}"} for i in range(3_000)]
    world = world_of([namespace])
    assert world.selector_problem("n0", {"app": "s7", "tier": "b"}) is None
    assert world.selector_problem("n0", {"tier": "b"}) == "the selector {'tier': 'b'} picks pods of no declared " \
        "service in n0"
    assert world.selector_problem("n0", {"app": "s8", "tier": "b"}) == (
        "the selector {'app': 's8', 'tier': 'b'} picks some pods of n0/w8 and not others")
    assert [w.name for w in world.selecting("n0", (("tier", "b"),))] == [f"w{i}" for i in range(1, 3_000, 6)]


# -- the readers: the records that apply to a pod, as the scans they replace found them ------------------------

def metadata(namespace: str, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace}


def match_labels(selector: dict[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(selector)}


istio_records = st.lists(st.tuples(st.sampled_from(["AuthorizationPolicy", "PeerAuthentication",
                                                     "RequestAuthentication"]),
                                   st.sampled_from(["n0", "n1", "istio-system"]), selectors,
                                   st.sampled_from(["ALLOW", "DENY"])), max_size=10)


def istio_docs(records: list[tuple[str, str, dict[str, str], str]]) -> list[dict[str, Any]]:
    docs = []
    for i, (kind, namespace, selector, action) in enumerate(records):
        if namespace == "istio-system" and kind != "PeerAuthentication":
            selector = {}  # the reader refuses a selector there (§2)
        spec: dict[str, Any] = {"selector": match_labels(selector)} if selector else {}
        if kind == "AuthorizationPolicy":
            spec |= {"action": action, "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}
        elif kind == "PeerAuthentication":
            spec |= {"mtls": {"mode": "STRICT" if action == "ALLOW" else "PERMISSIVE"}}
        else:
            spec |= {"jwtRules": [{"issuer": f"https://issuer{i}", "jwksUri": f"https://issuer{i}/keys"}]}
        api = "security.istio.io/v1"
        docs.append({"apiVersion": api, "kind": kind, "metadata": metadata(namespace, f"r{i}"), "spec": spec})
    return docs


@settings(max_examples=150, deadline=None)
@given(worlds, istio_records)
def test_istio_finds_the_policies_of_a_pod_as_the_scan_did(namespaces, records):
    world = world_of(namespaces, kind=ReadsAnySelector)
    reader = istio_reader.Reader(istio_docs(records), world)
    root = reader.root_namespace
    for pod in world.workloads:
        labels = dict(pod.labels)
        allow, deny = [], []
        for namespace in sorted({root, pod.namespace}):
            for p in reader.policies:
                if p.namespace == namespace and not p.targeted and istio_reader._subset(p.selector, labels):
                    (allow if p.action is istio_reader.Action.ALLOW else deny).append(p)
        assert reader.applicable(pod) == (allow, deny)
        assert reader._jwt(pod) == [ra for ra in reader.request_authentications
                                    if ra.namespace in (root, pod.namespace)
                                    and istio_reader._subset(ra.selector, labels)]
        workload = [p for p in reader.peer_authentications
                    if p.namespace == pod.namespace and p.selector and istio_reader._subset(p.selector, labels)]
        if len(workload) > 1:
            with pytest.raises(Ambiguous):
                reader.mtls_mode(pod, 8080)
        elif workload and workload[0].mode != "UNSET":
            assert reader._mtls(pod, 8080) == (workload[0].mode, workload[0])
        local = [p for p in reader.peer_authentications if p.namespace == pod.namespace and not p.selector]
        mesh = [p for p in reader.peer_authentications if p.namespace == root and not p.selector]
        if not workload and len(local) <= 1 and len(mesh) <= 1:
            # the namespace's PeerAuthentication, else the mesh's, else Istio's default (§12)
            expected = (local or mesh or [None])[0] if pod.namespace != root else (mesh or [None])[0]
            assert reader._mtls(pod, 8080) == ((expected.mode, expected) if expected else ("PERMISSIVE", None))


linkerd_records = st.lists(st.tuples(st.sampled_from(["Server", "HTTPRoute", "AuthorizationPolicy",
                                                      "ServerAuthorization"]),
                                     st.sampled_from(["n0", "n1"]), st.none() | selectors,
                                     st.sampled_from(["s0", "s1", "s2", "r0", "r1"]),
                                     st.sampled_from(["Server", "HTTPRoute", "Namespace"])), max_size=12)


def linkerd_docs(records: list[tuple[str, str, dict[str, str] | None, str, str]]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    servers = routes = 0
    for kind, namespace, selector, other, target in records:
        if kind == "Server":
            pick = {"podSelector": match_labels(selector)} if selector is not None else \
                {"externalWorkloadSelector": match_labels({})}
            docs.append({"apiVersion": "policy.linkerd.io/v1beta3", "kind": kind,
                         "metadata": {**metadata(namespace, f"s{servers}"), "labels": {"tier": VALUES[servers % 3]}},
                         "spec": {**pick, "port": 8080, "proxyProtocol": "HTTP/1"}})
            servers += 1
        elif kind == "HTTPRoute":
            parents = [{"group": "policy.linkerd.io", "kind": "Server", "name": name}
                       for name in dict.fromkeys([other, f"s{routes % 3}"])]
            docs.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
                         "metadata": metadata(namespace, f"r{routes}"),
                         "spec": {"parentRefs": parents, "rules": [{"matches": [{"path": {"type": "PathPrefix",
                                                                                          "value": "/"}}]}]}})
            routes += 1
        elif kind == "ServerAuthorization":
            server = {"name": other} if target == "Server" else {"selector": match_labels(selector or {})}
            docs.append({"apiVersion": "policy.linkerd.io/v1beta1", "kind": kind,
                         "metadata": metadata(namespace, f"a{len(docs)}"),
                         "spec": {"server": server, "client": {"unauthenticated": True}}})
        else:
            ref = {"group": "", "kind": "Namespace", "name": namespace} if target == "Namespace" else \
                {"group": "policy.linkerd.io" if target == "Server" else "gateway.networking.k8s.io",
                 "kind": target, "name": other}
            docs.append({"apiVersion": "policy.linkerd.io/v1alpha1", "kind": kind,
                         "metadata": metadata(namespace, f"p{len(docs)}"),
                         "spec": {"targetRef": ref, "requiredAuthenticationRefs": []}})
    return docs


@settings(max_examples=150, deadline=None)
@given(worlds, linkerd_records)
def test_linkerd_finds_the_servers_routes_and_policies_as_the_scan_did(namespaces, records):
    world = world_of(namespaces, kind=ReadsAnySelector)
    reader = linkerd_reader.Reader(linkerd_docs(records), world)
    found = reader.manifests
    for pod in world.workloads:
        assert reader._servers(pod) == [s for s in found.servers if s.namespace == pod.namespace and s.selects(pod)]
    for server in found.servers:
        assert reader._targeting_server(server) == [p for p in found.policies if p.namespace == server.namespace
                                                    and p.targets_server(server)]
        assert reader._authorizing(server) == [a for a in found.authorizations if a.namespace == server.namespace
                                               and a.targets_server(server)]
        assert reader._routes(server, "HTTPRoute") == [r for r in found.routes if r.namespace == server.namespace
                                                       and r.kind == "HTTPRoute" and r.attached_to(server)]
    for route in found.routes:
        assert reader._targeting_route(route) == [p for p in found.policies if p.namespace == route.namespace
                                                  and p.targets_route(route)]


def test_the_graph_finds_a_service_and_a_namespace_s_services_by_index():
    from helpers import compile_text

    graph = compile_text("namespace a {\n  service x :80/http\n  service y :80/http\n}\n"
                         "namespace b {\n  service x :80/http\n}\n", "istio").analysis.graph
    for svc in graph.services:
        assert graph.service(svc.key) is svc
    assert graph.service(("a", "z")) is None and graph.service(("c", "x")) is None
    assert [s.key for s in graph.services_in("a")] == [("a", "x"), ("a", "y")]
    assert [s.key for s in graph.services_in("b")] == [("b", "x")] and graph.services_in("c") == ()
