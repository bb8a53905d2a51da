"""Findings of the adversarial review of issue 11's constructs (docs/security-review.md): each test reproduces
one way a build could allow more than LANGUAGE section 3 says, or let verify pass a wrong build."""

from __future__ import annotations

import pytest
from helpers import compile_errors, compile_text, documents

from meshpolicy import pipeline, verify
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph.evaluate import Caller, Request, decide
from meshpolicy.graph.model import Identity
from meshpolicy.readers import World, get_reader
from meshpolicy.source import SourceFile

HOST_DENY = """namespace shop {
  service frontend :8080/http
  service orders :8080/http
  allow frontend -> orders :8080
  deny frontend -> orders :8080 if header Host=evil.example
}
"""


def test_istio_refuses_a_condition_on_the_host_header():
    # Envoy keeps HTTP/1's Host as the pseudo-header ':authority' (envoy source/common/http/headers.h:
    # Host{":authority"}, HostLegacy{"host"}); a header matcher named 'host' finds nothing (istio/istio#23083).
    # Emitted as request.headers[host], this deny would never fire: frontend's requests with Host
    # evil.example would be allowed.
    out = compile_errors(HOST_DENY, "istio")
    assert "policy.mesh:5:3: error[MP301]: a condition on header 'host' cannot be expressed exactly on target " \
           "'istio'" in out
    assert "istio/istio#23083" in out
    allow = HOST_DENY.replace("  deny frontend -> orders :8080 if header Host=evil.example\n", "") \
        .replace("allow frontend -> orders :8080", "allow frontend -> orders :8080 if header host")
    assert "error[MP301]: a condition on header 'host'" in compile_errors(allow, "istio")


def test_verify_catches_a_host_header_condition_that_envoy_never_matches():
    # A reader that shares the backend's belief (request.headers[host] sees the Host header) proves nothing:
    # hand verify the policy as the backend emitted it before the fix (the same YAML with the key
    # request.headers[host]) and check that the reader sees the deny never firing.
    graph = pipeline.analyze([SourceFile("policy.mesh", HOST_DENY)]).graph
    build = compile_text(HOST_DENY.replace("if header Host=evil.example", "if header x-h=evil.example"))
    files = {path: text.replace("request.headers[x-h]", "request.headers[host]") for path, text in build.files.items()}
    assert files != build.files
    reader = get_reader("istio")(documents(files), World.from_graph(graph))
    frontend = Caller(Identity("shop", "frontend"), "10.1.2.3")
    request = Request(frontend, "shop", "orders", 8080, "GET", "/", (("host", "evil.example"),), None)
    assert reader.decide(request) is True  # Envoy: the deny does not fire
    assert decide(graph, request).allowed is False  # LANGUAGE section 3: the deny rule matches
    assert verify.verify(graph, files, "istio", build.open_probes) != []


ENVOY_SANITIZED = ["X-Forwarded-For", "x-forwarded-proto", "referer", "x-envoy-internal", "x-envoy-not-yet-named"]


@pytest.mark.parametrize("name", ["x-request-id", "X-Forwarded-Client-Cert", *ENVOY_SANITIZED])
def test_istio_refuses_conditions_on_headers_the_sidecar_sets(name):
    # The inbound sidecar generates x-request-id where it is absent (and replaces it on requests from outside
    # its internal addresses, istio/istio#10875) and sets x-forwarded-client-cert from the peer certificate,
    # both before authorization: 'allow ... if header x-request-id' would let in requests without the header.
    text = HOST_DENY.replace("  deny frontend -> orders :8080 if header Host=evil.example\n", "") \
        .replace("allow frontend -> orders :8080", f"allow frontend -> orders :8080 if header {name}")
    out = compile_errors(text, "istio")
    assert f"policy.mesh:4:3: error[MP301]: a condition on header '{name.lower()}' cannot be expressed exactly" in out


@pytest.mark.parametrize("name", ["x-request-id", *(n.lower() for n in ENVOY_SANITIZED)])
def test_the_istio_reader_refuses_to_read_conditions_on_headers_the_sidecar_sets(name):
    text = HOST_DENY.replace("  deny frontend -> orders :8080 if header Host=evil.example\n", "") \
        .replace("allow frontend -> orders :8080", "allow frontend -> orders :8080 if header x-h")
    graph = pipeline.analyze([SourceFile("policy.mesh", text.replace("x-h", name))]).graph
    build = compile_text(text)
    files = {path: t.replace("request.headers[x-h]", f"request.headers[{name}]") for path, t in build.files.items()}
    assert files != build.files
    with pytest.raises(MeshError) as err:
        verify.verify(graph, files, "istio", build.open_probes)
    assert "the sidecar sets this header before authorization" in str(err.value.diagnostics[0].message)
