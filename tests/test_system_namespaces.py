"""System namespaces (issue 9, defect 4): a policy never manages Kubernetes' or a mesh's own namespaces.

`kube-system` declared with services got `linkerd.io/inject: enabled` and a default deny. Every namespace
of SYSTEM_NAMESPACES is refused as managed (declaring services, hence a destination) with MP120; its
workloads can still be named as callers, from an external block or as `NS/*`.
"""

from __future__ import annotations

import pytest

from meshpolicy import pipeline
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError, render_text
from meshpolicy.resolve.system import SYSTEM_NAMESPACES
from meshpolicy.source import SourceFile

#: the documented names (docs/language.md, decision 14)
DOCUMENTED = {"kube-system", "kube-public", "kube-node-lease", "istio-system", "linkerd", "linkerd-viz",
              "linkerd-jaeger", "linkerd-multicluster", "linkerd-smi", "linkerd-cni"}


def test_the_list_holds_every_documented_system_namespace():
    assert set(SYSTEM_NAMESPACES) == DOCUMENTED


def test_the_reproducer_is_refused_with_a_hint():
    src = SourceFile("policy.mesh", "namespace kube-system {\n  service coredns :53/tcp\n}\n"
                                    "namespace shop {\n  service web :8080/http\n  allow kube-system/coredns -> web\n}\n")
    with pytest.raises(MeshError) as err:
        pipeline.analyze([src])
    assert "\n".join(render_text(d, {src.name: src}) for d in err.value.diagnostics) == (
        "policy.mesh:1:11: error[MP120]: namespace 'kube-system' is Kubernetes' own: a policy cannot manage it\n"
        " 1 | namespace kube-system {\n"
        "   |           ^^^^^^^^^^^\n"
        "  = policy.mesh:2:11: a service declared here would put it under a default deny\n"
        " 2 |   service coredns :53/tcp\n"
        "   |           ^^^^^^^\n"
        "  = hint: to name its workloads as callers, declare it external: namespace kube-system external { ... }")


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_system_namespace_is_refused_as_managed(name):
    src = SourceFile("p.mesh", f"namespace {name} {{\n  service x :8080/http\n}}\n")
    with pytest.raises(MeshError) as err:
        pipeline.analyze([src])
    assert [d.code for d in err.value.diagnostics] == ["MP120"]


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_callers_in_system_namespaces_stay_allowed(name, target):
    text = (f"namespace {name} external {{\n  service agent\n}}\nnamespace shop {{\n  service web :8080/http\n"
            f"  allow {name}/agent -> web\n  allow {name}/* -> web GET /metrics :8080\n}}\n")
    build = pipeline.lower(pipeline.analyze([SourceFile("p.mesh", text)]), target)
    assert not any(path.startswith(f"{name}/") for path in build.files)
