"""``--cluster`` on two real applications (examples/): their published manifests and the policy written
for them are clean; every mismatch of issue 13 planted into either side is reported with both places,
the ``.mesh`` line and the manifest line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import ROOT
from test_cluster import findings

EXAMPLES = ROOT / "examples"
APPS = {"online-boutique": "online-boutique.mesh", "emojivoto": "emojivoto.mesh"}
#: emojivoto's published Namespace leaves injection to 'linkerd inject'; this is what its overlay adds
EMOJIVOTO_INJECTED = ("  name: emojivoto\n", "  name: emojivoto\n  annotations:\n    linkerd.io/inject: enabled\n")


def copy(app: str, tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / app, tmp_path / app)
    return tmp_path / app


def plant(folder: Path, file: str, old: str, new: str, count: int = 1) -> None:
    path = folder / file
    text = path.read_text()
    assert text.count(old) >= count, f"{file} no longer holds {old!r}"
    path.write_text(text.replace(old, new, count) if count == 1 else text.replace(old, new))


@pytest.mark.parametrize("app", sorted(APPS))
def test_the_published_manifests_and_the_policy_are_clean(app):
    found, failed = findings(EXAMPLES / app / APPS[app], [EXAMPLES / app / "manifests"])
    assert (found, failed) == ([], False)


def test_emojivoto_is_clean_for_linkerd_once_its_namespace_asks_for_injection(tmp_path):
    folder = copy("emojivoto", tmp_path)
    plant(folder, "manifests/ns.yml", *EMOJIVOTO_INJECTED)
    assert findings(folder / APPS["emojivoto"], [folder / "manifests"], "linkerd") == ([], False)


def test_emojivoto_as_published_is_not_injected_on_linkerd():
    found, failed = findings(EXAMPLES / "emojivoto" / APPS["emojivoto"], [EXAMPLES / "emojivoto" / "manifests"],
                             "linkerd")
    assert failed and [d.code for d in found] == ["MP607"]


CRONJOB_VOTE_BOT = """apiVersion: batch/v1
kind: CronJob
metadata: {name: vote-once, namespace: emojivoto}
spec:
  jobTemplate:
    spec:
      template:
        metadata:
          labels: {app: vote-bot}
        spec:
          containers: [{name: bot, image: x}]
---
"""
#: (app, target, [(file, old, new, count)], code, manifest file that the finding names)
PLANTS = {
    # --- the policy is wrong --------------------------------------------------------------------------------
    "boutique-mesh-service-port": ("online-boutique", None, [
        ("online-boutique.mesh", "service frontend :8080/http", "service frontend :80/http", 1),
        ("online-boutique.mesh", "allow any -> frontend :8080", "allow any -> frontend :80", 1)],
        "MP605", "frontend.yaml"),
    "boutique-mesh-labels": ("online-boutique", None, [
        ("online-boutique.mesh", "service cartservice :7070/grpc", "service cartservice labels app=cart :7070/grpc", 1)],
        "MP602", "cartservice.yaml"),
    "boutique-mesh-account": ("online-boutique", None, [
        ("online-boutique.mesh", "service paymentservice :50051/grpc",
         "service paymentservice account boutique-payment :50051/grpc", 1)],
        "MP604", "paymentservice.yaml"),
    "boutique-mesh-probes": ("online-boutique", "linkerd", [
        ("online-boutique.mesh", " probes /_healthz", "", 1)], "MP606", "frontend.yaml"),
    "boutique-mesh-two-services-one-pod": ("online-boutique", None, [
        ("online-boutique.mesh", "  service loadgenerator\n",
         "  service loadgenerator\n  service load labels app=loadgenerator account loadgenerator\n", 1)],
        "MP611", "loadgenerator.yaml"),
    "emojivoto-mesh-labels": ("emojivoto", None, [
        ("emojivoto.mesh", "labels app=web-svc", "labels app=web", 1)], "MP602", "web.yml"),
    "emojivoto-mesh-account": ("emojivoto", None, [
        ("emojivoto.mesh", "service web account web ", "service web account web-svc ", 1)], "MP604", "web.yml"),
    "emojivoto-mesh-service-port": ("emojivoto", None, [
        ("emojivoto.mesh", "app=web-svc :8080/http", "app=web-svc :80/http", 1),
        ("emojivoto.mesh", "-> web GET,POST :8080", "-> web GET,POST :80", 1),
        ("emojivoto.mesh", "-> web GET :8080", "-> web GET :80", 1)], "MP605", "web.yml"),
    "emojivoto-mesh-grpc-port": ("emojivoto", None, [
        ("emojivoto.mesh", ":8080/grpc :8801/http\n  service voting", ":8080/grpc :8802/http\n  service voting", 1)],
        "MP605", "emoji.yml"),
    # --- the manifests are wrong ----------------------------------------------------------------------------
    "boutique-manifest-probe-path": ("online-boutique", "linkerd", [
        ("manifests/frontend.yaml", 'path: "/_healthz"', 'path: "/_ready"', 1)], "MP606", "frontend.yaml"),
    "boutique-manifest-account": ("online-boutique", None, [
        ("manifests/cartservice.yaml", "serviceAccountName: cartservice", "serviceAccountName: cart", 1)],
        "MP604", "cartservice.yaml"),
    "boutique-manifest-container-port": ("online-boutique", None, [
        ("manifests/emailservice.yaml", "- containerPort: 8080", "- containerPort: 8081", 1)],
        "MP605", "emailservice.yaml"),
    "boutique-manifest-pod-labels": ("online-boutique", None, [
        ("manifests/adservice.yaml", "      labels:\n        app: adservice", "      labels:\n        app: ads", 1)],
        "MP602", "adservice.yaml"),
    "boutique-manifest-opt-out": ("online-boutique", "istio", [
        ("manifests/frontend.yaml", 'sidecar.istio.io/rewriteAppHTTPProbers: "true"',
         'sidecar.istio.io/rewriteAppHTTPProbers: "true"\n        sidecar.istio.io/inject: "false"', 1)],
        "MP608", "frontend.yaml"),
    "boutique-manifest-no-probe-rewrite": ("online-boutique", "istio", [
        ("online-boutique.mesh", " probes /_healthz", "", 1),
        ("manifests/frontend.yaml", 'sidecar.istio.io/rewriteAppHTTPProbers: "true"',
         'sidecar.istio.io/rewriteAppHTTPProbers: "false"', 1)], "MP606", "frontend.yaml"),
    "emojivoto-manifest-account": ("emojivoto", None, [
        ("manifests/emoji.yml", "      serviceAccountName: emoji\n", "", 1)], "MP604", "emoji.yml"),
    "emojivoto-manifest-container-port": ("emojivoto", None, [
        ("manifests/voting.yml", "- containerPort: 8801", "- containerPort: 9801", 1)], "MP605", "voting.yml"),
    "emojivoto-manifest-pod-labels": ("emojivoto", None, [
        ("manifests/web.yml", "      labels:\n        app: web-svc", "      labels:\n        app: web", 1)],
        "MP602", "web.yml"),
    "emojivoto-manifest-probe": ("emojivoto", "linkerd", [
        ("manifests/ns.yml", *EMOJIVOTO_INJECTED, 1),
        ("emojivoto.mesh", "allow any -> web GET :8080", "allow any -> web GET /api/* :8080", 1),
        ("manifests/web.yml", "        name: web-svc\n",
         "        name: web-svc\n        readinessProbe:\n          httpGet: {path: /ready, port: http}\n", 1)],
        "MP606", "web.yml"),
    "emojivoto-manifest-namespace": ("emojivoto", "linkerd", [], "MP607", "ns.yml"),
    "emojivoto-manifest-opt-out": ("emojivoto", "linkerd", [
        ("manifests/ns.yml", *EMOJIVOTO_INJECTED, 1),
        ("manifests/emoji.yml", "      labels:\n        app: emoji-svc\n",
         "      labels:\n        app: emoji-svc\n      annotations:\n        linkerd.io/inject: disabled\n", 1)],
        "MP608", "emoji.yml"),
    "emojivoto-manifest-job": ("emojivoto", "linkerd", [
        ("manifests/ns.yml", *EMOJIVOTO_INJECTED, 1),
        ("manifests/vote-bot.yml", "apiVersion: apps/v1\nkind: Deployment", "apiVersion: batch/v1\nkind: Job", 1)],
        "MP609", "vote-bot.yml"),
    "emojivoto-manifest-two-kinds": ("emojivoto", None, [
        ("manifests/vote-bot.yml", "", CRONJOB_VOTE_BOT, 1)],
        "MP603", "vote-bot.yml"),
    "emojivoto-manifest-undeclared": ("emojivoto", None, [
        ("manifests/vote-bot.yml", "app: vote-bot", "app: vote-robot", 2)], "MP610", "vote-bot.yml"),
}


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_a_planted_mismatch_is_reported_with_both_places(name, tmp_path):
    app, target, edits, code, manifest = PLANTS[name]
    folder = copy(app, tmp_path)
    for file, old, new, count in edits:
        plant(folder, file, old, new, count)
    found, _ = findings(folder / APPS[app], [folder / "manifests"], target)
    hits = [d for d in found if d.code == code]
    assert hits, f"{code} not reported; found {[(d.code, d.message) for d in found]}"
    places = {Path(d.span.file).name for d in hits} | {Path(r.span.file).name for d in hits for r in d.related}
    assert manifest in places, places
    assert APPS[app] in places, places
