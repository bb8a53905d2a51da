"""Property-based tests: random valid policies verify cleanly on every target, and random requests
get the same decision from the reference decider and from each target's reader.

Policies are generated as .mesh text (services, groups, wildcards, CIDRs, methods, overlapping paths,
gRPC, deny rules and mTLS modes at every level). Runs are derandomized so CI is reproducible.
"""

from __future__ import annotations

import pytest
from helpers import documents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy import pipeline
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError
from meshpolicy.graph.evaluate import Caller, Request, decide
from meshpolicy.graph.model import Identity
from meshpolicy.readers import World, get_reader
from meshpolicy.source import SourceFile

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PORTS = [(8080, "http"), (9090, "tcp"), (8443, "grpc"), (8081, "http2")]
NAMES = ["web", "api", "db"]
CIDRS = ["10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16", "2001:db8::/32"]
METHODS = ["GET", "POST", "DELETE"]
PATHS = ["/api", "/api/*", "/api/orders/*", "/apix", "/healthz"]
GRPC = ["pkg.v1.Svc/Get", "pkg.v1.Svc", "pkg.v1.Other/Put"]
ADDRESSES = ["10.1.2.3", "10.2.0.1", "192.168.1.1", "192.0.2.10", "2001:db8::1", "3fff::1"]
REQ_PATHS = ["/", "/api", "/api/", "/api/orders", "/api/orders/1", "/apix", "/apiX", "/healthz",
             "/pkg.v1.Svc/Get", "/pkg.v1.Svc/Put", "/pkg.v1.Other/Put", "/other"]
REQ_METHODS = ["GET", "POST", "DELETE", "PUT"]


@st.composite
def policies(draw):
    """A valid policy: (text, {namespace: {service: [(port, proto)]}})."""
    spaces = draw(st.lists(st.sampled_from(["alpha", "beta"]), min_size=1, max_size=2, unique=True))
    external = draw(st.booleans())
    lines: list[str] = []
    mesh_mode = draw(st.sampled_from([None, "strict", "permissive"]))
    if mesh_mode:
        lines.append(f"mtls {mesh_mode}")
    layout: dict[str, dict[str, list[tuple[int, str]]]] = {}
    for ns in spaces:
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        layout[ns] = {}
        for name in names:
            layout[ns][name] = sorted(draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=2, unique=True)))
    for ns in spaces:
        body = [f"namespace {ns} {{"]
        mode = draw(st.sampled_from([None, "strict", "permissive"]))
        if mode:
            body.append(f"  mtls {mode}")
        for name, ports in layout[ns].items():
            attrs = " ".join(f":{n}/{p}" for n, p in ports)
            if any(p == "http" for _, p in ports) and draw(st.booleans()):
                attrs += " probes /healthz"
            svc_mode = draw(st.sampled_from([None, "strict", "permissive"]))
            if svc_mode:
                attrs += f" mtls {svc_mode}"
            if draw(st.booleans()):
                attrs += f" mtls {draw(st.sampled_from(['strict', 'permissive']))} on {ports[0][0]}"
            body.append(f"  service {name} {attrs}")
        local = list(layout[ns])
        sources = local + [f"{o}/{n}" for o in spaces for n in layout[o] if o != ns] + [
            f"{o}/*" for o in spaces + ["gamma"]] + ["*", "any"] + CIDRS + (["ext/bot"] if external else [])
        group = len(local) > 1 and draw(st.booleans())
        if group:
            body.append(f"  group grp = {', '.join(local)}")
            sources.append("grp")
        for _ in range(draw(st.integers(1, 5))):
            action = draw(st.sampled_from(["allow", "allow", "deny"]))
            who = ", ".join(draw(st.lists(st.sampled_from(sources), min_size=1, max_size=2, unique=True)))
            dest = draw(st.sampled_from(local))
            ports = layout[ns][dest]
            http_ports = [n for n, p in ports if p != "tcp"]
            tail = ""
            if http_ports and draw(st.booleans()):
                if any(p == "grpc" for _, p in ports) and draw(st.booleans()):
                    tail = " grpc " + ", ".join(draw(st.lists(st.sampled_from(GRPC), min_size=1, max_size=2,
                                                              unique=True)))
                else:
                    methods = draw(st.lists(st.sampled_from(METHODS), max_size=2, unique=True))
                    paths = draw(st.lists(st.sampled_from(PATHS), max_size=2, unique=True))
                    tail = (" " + ",".join(methods) if methods else "") + (" " + ", ".join(paths) if paths else "")
                    if not methods and not paths:
                        tail = " GET"
                if draw(st.booleans()):
                    tail += f" :{draw(st.sampled_from(http_ports))}"
            else:
                if draw(st.booleans()):
                    tail = f" :{draw(st.sampled_from([n for n, _ in ports]))}"
                elif group and draw(st.booleans()):
                    dest = draw(st.sampled_from(["grp", "*"]))
            body.append(f"  {action} {who} -> {dest}{tail}")
        if group and not any(" grp" in b or "grp," in b for b in body[-5:]):
            body.append(f"  allow grp -> {local[0]}")
        body.append("}")
        lines += body
    if external:
        lines += ["namespace ext external {", "  service bot", "}"]
    return "\n".join(lines) + "\n", layout


def compile_or_refuse(text: str, target: str):
    """The build, or None when the target refuses a construct (MP301): failing closed is fine."""
    try:
        return pipeline.lower(pipeline.analyze([SourceFile("gen.mesh", text)]), target)
    except MeshError as err:
        codes = {d.code for d in err.diagnostics if d.severity.value == "error"}
        if codes <= {"MP301"}:
            return None
        raise AssertionError(f"{codes} for:\n{text}\n" + "\n".join(d.message for d in err.diagnostics)) from None


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@SETTINGS
@given(policy=policies())
def test_random_policies_verify_cleanly(target, policy):
    """``lower`` verifies by default: an MP501 here is a backend (or reader) bug, with its counterexample."""
    text, _ = policy
    compile_or_refuse(text, target)


@st.composite
def policy_and_requests(draw):
    text, layout = draw(policies())
    callers = [None, Identity("gamma", "x"), Identity("ext", "bot")] + [
        Identity(ns, name) for ns in layout for name in layout[ns]] + [Identity(ns, "unlisted") for ns in layout]
    reqs = []
    for _ in range(draw(st.integers(5, 25))):
        ns = draw(st.sampled_from(sorted(layout)))
        name = draw(st.sampled_from(sorted(layout[ns])))
        ports = layout[ns][name]
        number, proto = draw(st.sampled_from(ports + [(7777, "tcp")]))
        caller = Caller(draw(st.sampled_from(callers)), draw(st.sampled_from(ADDRESSES)))
        if proto == "tcp":
            reqs.append(Request(caller, ns, name, number))
        else:
            reqs.append(Request(caller, ns, name, number, draw(st.sampled_from(REQ_METHODS)),
                                draw(st.sampled_from(REQ_PATHS))))
    return text, reqs


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@SETTINGS
@given(case=policy_and_requests())
def test_random_requests_agree_between_decider_and_reader(target, case):
    text, reqs = case
    build = compile_or_refuse(text, target)
    if build is None:
        return
    graph = build.analysis.graph
    reader = get_reader(target)(documents(build.files), World.from_graph(graph))
    for req in reqs:
        expected = decide(graph, req, build.open_probes).allowed
        assert reader.decide(req) == expected, f"{req}: decider {'allows' if expected else 'refuses'}\n{text}"
