"""A container port named in a rule (``allow web -> orders :http``) with ``--cluster`` (docs/cluster.md,
"Named ports"): it means exactly the number every selected pod gives the name, and nothing else.

The rendered diagnostics of each failure are snapshots of the ``tests/cluster/named-port*`` cases
(tests/test_cluster.py) and of ``tests/cases/services/named-port-without-cluster.mesh``."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TESTS, invoke

from meshpolicy import pipeline
from meshpolicy.backends import TARGETS
from meshpolicy.cluster import read
from meshpolicy.cluster.model import Container, ContainerPort, Workload
from meshpolicy.cluster.ports import number_of
from meshpolicy.diagnostics import MeshError
from meshpolicy.source import SourceFile, Span

CASE = TESTS / "cluster" / "named-port"
#: the case's policy with every port name replaced by the number the manifests give it
BY_NUMBER = {"GET,POST /api/* :http": "GET,POST /api/* :8081", ":redis,9090": ":6379,9090",
             "Payments :grpc": "Payments :8443", "/metrics :metrics": "/metrics :9090"}


def numbered(text: str) -> str:
    for named, number in BY_NUMBER.items():
        assert named in text
        text = text.replace(named, number)
    assert ":http\n" not in text and ":metrics\n" not in text
    return text


def analysis(text: str, manifests: Path | None = CASE / "manifests") -> pipeline.Analysis:
    """The policy ``text`` under the case's file name (the source annotation names it), against ``manifests``."""
    return pipeline.analyze([SourceFile("policy.mesh", text)], None if manifests is None else read([str(manifests)]))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_named_port_builds_byte_for_byte_what_its_number_builds(target):
    named = (CASE / "policy.mesh").read_text()
    by_name = pipeline.lower(analysis(named), target).files
    by_number = pipeline.lower(analysis(numbered(named)), target).files
    assert by_name == by_number
    assert by_number == pipeline.lower(analysis(numbered(named), None), target).files  # the number needs no manifests


def test_a_named_port_means_the_number_on_each_destination_and_leaves_out_a_member_without_it():
    rules = {(r.destination[1], r.origin.line): r.ports for r in analysis((CASE / "policy.mesh").read_text()).graph.rules}
    assert rules == {
        ("orders", 9): (8081,),
        ("orders", 10): (6379, 9090),
        ("payments", 11): (8443,),
        ("orders", 12): (9090,),  # 'backends' through ':metrics': payments names no port 'metrics', so it is left out
    }


def test_a_group_none_of_whose_members_has_the_name_is_mp110():
    text = (CASE / "policy.mesh").read_text().replace("/metrics :metrics", "/metrics :admin")
    with pytest.raises(MeshError) as err:
        analysis(text)
    [diag] = err.value.diagnostics
    assert (diag.code, diag.message) == ("MP110", "no service named by 'backends' declares :admin as an HTTP port")


def test_without_cluster_every_command_that_resolves_says_how_to_give_the_number(monkeypatch, tmp_path):
    monkeypatch.chdir(CASE)
    for command in (["check"], ["lint"], ["graph"], ["build", "-t", "istio", "-o", tmp_path / "out"]):
        result = invoke([*command, "policy.mesh"], code=1)
        assert "error[MP614]: ':http' is a container port's name" in result.output, command
        assert "hint: pass the manifests with --cluster, or write the container port's number (:N)" in result.output
    assert not (tmp_path / "out").exists()
    assert "MP614" not in invoke(["lint", "policy.mesh", "--cluster", "manifests"], code=None).output


def test_explain_means_by_a_port_name_what_a_rule_means(monkeypatch):
    monkeypatch.chdir(CASE)
    result = invoke(["explain", "policy.mesh", "--cluster", "manifests", "shop/web", "->", "shop/orders", "GET",
                     "/api/x", ":http"])
    assert "-> shop/orders:8081 GET /api/x\nallowed" in result.output
    assert "note:    port 'http' is 8081: the container port of that name" in result.output


def pod(name: str, *ports: tuple[int, str], init: bool = False) -> Workload:
    span = Span("m.yaml", 1, 1, 1, 2)
    container = Container("main", tuple(ContainerPort(n, p, "TCP", span) for n, p in ports), init=init)
    return Workload("shop", name, "Deployment", (("app", "orders"),), (), "orders", (container,), span)


@pytest.mark.parametrize(("pods", "number", "absent"), [
    ([pod("a", (8080, "http"))], 8080, False),
    ([pod("a", (8080, "http")), pod("b", (8080, "http"), (9090, "admin"))], 8080, False),
    ([pod("a", (8080, "http")), pod("b", (8081, "http"))], None, False),  # two numbers
    ([pod("a", (8080, "http")), pod("b", (8080, "web"))], None, False),   # one pod lacks it
    ([pod("a", (8080, "web"))], None, True),
    ([pod("a", (8080, "http"), init=True)], None, True),                  # an init container that has exited
    ([], None, True),                                                     # no pod at all
])
def test_a_name_is_one_number_only_where_every_pod_gives_it_that_number(pods, number, absent):
    found = number_of("http", pods, "'shop/orders'")
    assert (found.number, found.absent) == (number, absent)
    assert (found.message == "") == (number is not None)


def test_the_cluster_page_shows_what_check_prints_for_pods_that_disagree(monkeypatch):
    import re

    doc = (TESTS.parent / "docs" / "cluster.md").read_text()
    section = doc[doc.index("## Named ports"):doc.index("## Decisions")]
    shown = re.search(r"```console\n(.*?)```", section, re.DOTALL).group(1)
    monkeypatch.chdir(TESTS / "cluster" / "named-port-disagree")
    printed = invoke(["check", "policy.mesh", "--cluster", "manifests"], code=1).output
    assert printed == shown + "1 error(s), 0 warning(s)\n"


def test_fmt_keeps_names_as_written_in_a_form_that_reads_back(tmp_path):
    path = tmp_path / "p.mesh"
    path.write_text("namespace shop {\n  service web :8080/http\n  allow web  ->  web :redis,:admin\n"
                    "  allow web -> web GET :http,9090\n}\n")
    invoke(["fmt", path])
    formatted = path.read_text()
    assert "  allow web -> web :redis,admin\n  allow web -> web GET :http,9090\n" in formatted
    invoke(["fmt", "--check", path])


def test_mp605_names_the_number_to_write_with_the_port_s_protocol(tmp_path):
    """A Service port (80) written instead of the container port its targetPort names: the hint gives the number
    to write, and keeps the protocol (':8443' alone would make a gRPC port http)."""
    (tmp_path / "m.yaml").write_text("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: payments, namespace: shop}
spec:
  template:
    metadata: {labels: {app: payments}}
    spec:
      serviceAccountName: payments
      containers:
      - name: main
        ports: [{containerPort: 8443, name: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: payments, namespace: shop}
spec:
  selector: {app: payments}
  ports: [{port: 80, targetPort: grpc}]
""")
    with pytest.raises(MeshError) as err:
        analysis("namespace shop {\n  service payments :80/grpc\n}\n", tmp_path / "m.yaml")
    [diag] = [d for d in err.value.diagnostics if d.code == "MP605"]
    assert diag.hint is not None and diag.hint.startswith(
        "write :8443/grpc: the Kubernetes Service 'payments' forwards its port 80 to targetPort 8443 (named 'grpc')")
