"""The readers as typed records: one error hierarchy, refusals at parse time, and a reader's bug stays a bug."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml
from helpers import compile_text

from meshpolicy import verify as verifier
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph.evaluate import Caller, Request
from meshpolicy.graph.model import Identity
from meshpolicy.output import writer
from meshpolicy.readers import READERS, Ambiguous, Malformed, ReaderError, Unmodelled, World, base, get_reader
from meshpolicy.readers import istio as istio_reader
from meshpolicy.readers import linkerd as linkerd_reader

SHOP = """
namespace shop {
  service frontend :8080/http
  service orders :8080/http :9090/tcp
  allow frontend -> orders GET,POST /api/* :8080
  allow frontend -> orders :9090
  allow 10.0.0.0/8 -> frontend :8080
  deny frontend -> orders DELETE /admin/* :8080
}
"""


def docs(build) -> list[dict]:
    return verifier.documents(build.files)


def refusal(build, target: str) -> str:
    """The MP501 message verification gives for ``build.files``."""
    with pytest.raises(MeshError) as err:
        verifier.verify(build.analysis.graph, build.files, target, build.open_probes)
    [diag] = err.value.diagnostics
    assert diag.code == "MP501"
    return diag.message


def replace_doc(build, kind: str, change, where=lambda doc: True) -> None:
    """Apply ``change(doc)`` (in place) to the first document of ``kind`` that ``where`` picks."""
    for path, text in build.files.items():
        if path == writer.KUSTOMIZATION:
            continue
        doc = yaml.safe_load(text)
        if doc["kind"] == kind and where(doc):
            doc = copy.deepcopy(doc)
            change(doc)
            build.files[path] = yaml.safe_dump(doc)
            return
    raise AssertionError(f"no {kind}")


def test_every_reader_shares_one_error_hierarchy():
    assert set(READERS) == {"istio", "linkerd"}
    for module in (istio_reader, linkerd_reader):
        assert module.Unmodelled is base.Unmodelled and module.Ambiguous is base.Ambiguous
        assert module.Malformed is base.Malformed
    assert all(issubclass(e, ReaderError) for e in (Unmodelled, Ambiguous, Malformed))


@pytest.mark.parametrize("target", sorted(READERS))
def test_a_bug_in_a_reader_is_a_traceback_not_an_mp501(target, monkeypatch):
    """verify catches ReaderError only: a KeyError inside a reader is the reader's bug and must surface."""
    build = compile_text(SHOP, target)
    reader = get_reader(target)

    def broken(self, request):
        raise KeyError("a reader bug")

    monkeypatch.setattr(reader, "decide", broken)
    with pytest.raises(KeyError, match="a reader bug"):
        verifier.verify(build.analysis.graph, build.files, target, build.open_probes)


@pytest.mark.parametrize("target", sorted(READERS))
def test_the_records_are_frozen(target):
    build = compile_text(SHOP, target)
    module = istio_reader if target == "istio" else linkerd_reader
    manifests = module.parse(docs(build), World.from_graph(build.analysis.graph))
    records = [r for field in dataclasses.fields(manifests) for r in getattr(manifests, field.name)]
    assert records
    for record in records:
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.name = "changed"


def test_istio_rules_are_parsed_into_sources_and_operations():
    build = compile_text(SHOP, "istio")
    manifests = istio_reader.parse(docs(build), World.from_graph(build.analysis.graph))
    [deny] = [p for p in manifests.policies if p.action is istio_reader.Action.DENY]
    [rule] = deny.rules
    [source] = rule.sources
    assert source.principals.values == ("cluster.local/ns/shop/sa/frontend",)
    [op] = rule.operations
    assert (op.ports.values, op.methods.values, op.paths.values) == (("8080",), ("DELETE",), ("/admin", "/admin/*"))


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["metadata"].pop("namespace"), "Malformed: AuthorizationPolicy metadata.namespace is missing"),
    (lambda d: d["spec"]["rules"][0]["to"][0]["operation"].update(ports=[8080]), "not a string"),
    (lambda d: d["spec"]["rules"][0]["from"][0]["source"].update(ipBlocks=["10.0.0.300/8"]), "not an IP address"),
    (lambda d: d["spec"]["rules"][0]["from"][0].pop("source"), "has no source"),
    (lambda d: d["spec"].update(rules={"from": []}), "rules is not a list"),
    (lambda d: d["spec"].update(provider={"name": "x"}), "Unmodelled: AuthorizationPolicy shop/orders-deny spec: field"),
    (lambda d: d["spec"]["rules"][0]["to"][0]["operation"].update(hosts=["a"]), "operation field hosts"),
    (lambda d: d["spec"].update(action="AUDIT"), "action AUDIT"),
    (lambda d: d.update(apiVersion="security.example.com/v1"), "API group 'security.example.com'"),
])
def test_istio_refuses_what_it_cannot_read_at_parse_time(change, expected):
    build = compile_text(SHOP, "istio")
    replace_doc(build, "AuthorizationPolicy", change, lambda d: (d.get("spec") or {}).get("action") == "DENY")
    message = refusal(build, "istio")
    assert "cannot evaluate the manifests" in message and expected in message, message


def test_istio_refuses_unknown_fields_of_a_peer_authentication():
    build = compile_text(SHOP, "istio")
    replace_doc(build, "PeerAuthentication", lambda d: d["spec"]["mtls"].update(mode="STRICTEST"))
    assert "is not one of UNSET, DISABLE, PERMISSIVE, STRICT" in refusal(build, "istio")


@pytest.mark.parametrize("kind, change, expected", [
    ("Server", lambda d: d["spec"].update(port="http"), "a port name"),
    ("Server", lambda d: d["spec"].update(proxyProtocol="SCTP"), "proxyProtocol 'SCTP'"),
    ("Server", lambda d: d["spec"].update(port=None), "port is not an integer"),
    ("NetworkAuthentication", lambda d: d["spec"]["networks"][0].update(cidr="not-a-cidr"), "not a CIDR block"),
    ("MeshTLSAuthentication", lambda d: d["spec"].update(identities=["a*b"]), "identity pattern 'a*b'"),
    ("AuthorizationPolicy", lambda d: d["spec"]["requiredAuthenticationRefs"].append(
        {"group": "example.com", "kind": "Thing", "name": "x"}), "authentication ref example.com/Thing"),
    ("HTTPRoute", lambda d: d["spec"]["rules"][0]["matches"][0].update(
        headers=[{"name": "x", "value": "1"}]), "header or query matches"),
    ("HTTPRoute", lambda d: d["spec"].update(hostnames=["a.example"]), "hostnames"),
    ("Namespace", lambda d: d["metadata"].pop("name"), "Namespace metadata.name is missing"),
])
def test_linkerd_refuses_what_it_cannot_read_at_parse_time(kind, change, expected):
    build = compile_text(SHOP, "linkerd")
    replace_doc(build, kind, change)
    message = refusal(build, "linkerd")
    assert "cannot evaluate the manifests" in message and expected in message, message


def test_linkerd_mentions_an_authentication_ref_whatever_the_case_of_its_kind():
    """The mesh matches ref kinds case-insensitively (§3.1): so does the request space."""
    build = compile_text(SHOP, "linkerd")
    graph = build.analysis.graph
    documents = docs(build)
    for d in documents:
        if d["kind"] == "AuthorizationPolicy":
            for ref in d["spec"]["requiredAuthenticationRefs"]:
                ref["kind"] = ref["kind"].lower()
        if d["kind"] == "MeshTLSAuthentication":
            d["spec"]["identities"].append("evil.shop.serviceaccount.identity.linkerd.cluster.local")
    reader = linkerd_reader.Reader(documents, World.from_graph(graph))
    assert Identity("shop", "evil") in reader.mentions("shop", "orders").identities
    evil = Request(Caller(Identity("shop", "evil"), "192.0.2.10"), "shop", "orders", 9090)
    assert reader.decide(evil)


def test_ambiguity_is_found_while_deciding():
    build = compile_text(SHOP, "linkerd")
    documents = docs(build)
    server = next(d for d in documents if d["kind"] == "Server" and d["spec"]["port"] == 9090)
    twin = copy.deepcopy(server)
    twin["metadata"]["name"] = "twin"
    reader = linkerd_reader.Reader(documents + [twin], World.from_graph(build.analysis.graph))
    with pytest.raises(Ambiguous):
        reader.decide(Request(Caller(Identity("shop", "frontend"), "192.0.2.10"), "shop", "orders", 9090))


@pytest.mark.parametrize("metadata", ["not a mapping", {"labels": ["istio-injection"]}])
def test_a_malformed_istio_namespace_is_refused_not_a_crash(metadata):
    build = compile_text(SHOP, "istio")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
    with pytest.raises(Malformed):
        istio_reader.Reader(docs(build) + [namespace], World.from_graph(build.analysis.graph))
