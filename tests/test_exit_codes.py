"""Every cell of the per-command table in docs/exit-codes.md, through the CLI as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, invoke, require_tool

POLICY = """\
namespace shop {
  service web :8080/http
  service api :8080/http :9090/tcp probes /healthz
  allow web -> api GET /api/*
  never web -> api DELETE
}
"""
#: lint finds permissive mTLS here (ML001); POLICY itself has no finding
PERMISSIVE = "mtls permissive\n" + POLICY

DOC = (ROOT / "docs" / "exit-codes.md").read_text()

# The CRD of AuthorizationPolicy with a spec that has no fields: every emitted policy fails (MP402).
EMPTY_SPEC_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "authorizationpolicies.security.istio.io"},
    "spec": {"group": "security.istio.io", "names": {"kind": "AuthorizationPolicy"}, "scope": "Namespaced",
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {"selector": {"type": "object"}}}}}}}]},
}


class Env:
    """A policy folder, an output built from it, and the odd files that make usage errors."""

    def __init__(self, root: Path):
        self.root = root
        self.monkeypatch: pytest.MonkeyPatch | None = None
        self.policy = root / "policy"
        self.policy.mkdir()
        (self.policy / "shop.mesh").write_text(POLICY)
        self.out = root / "out"
        self.file = root / "notes.txt"
        self.file.write_text("not a folder\n")
        self.empty = root / "empty"
        self.empty.mkdir()

    def write(self, name: str, text: str) -> Path:
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        (folder / "p.mesh").write_text(text)
        return folder

    def built(self, target: str = "istio") -> Path:
        invoke(["build", self.policy, "-t", target, "-o", self.out])
        return self.out

    def write_yaml(self, text: str) -> Path:
        path = self.root / "manifests.yaml"
        path.write_text(text)
        return path

    def errors(self) -> Path:
        return self.write("errors", "service web :8080/http\nallow nobody -> web\n")

    def violated(self) -> Path:
        return self.write("violated", POLICY.replace("never web -> api DELETE", "never web -> api GET"))

    def not_utf8(self) -> Path:
        folder = self.root / "latin1"
        folder.mkdir(exist_ok=True)
        (folder / "p.mesh").write_bytes("# caf\xe9\n".encode("latin-1"))
        return folder


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def crds_without_spec_fields(env: Env) -> Path:
    folder = env.root / "crds"
    folder.mkdir()
    (folder / "ap.yaml").write_text(yaml.safe_dump(EMPTY_SPEC_CRD))
    return folder


def drifted(env: Env) -> list:
    env.built()
    (env.policy / "shop.mesh").write_text(POLICY.replace("GET /api/*", "GET,POST /api/*"))
    return ["build", env.policy, "-t", "istio", "-o", env.out, "--check"]


def widened_output(env: Env) -> list:
    """A managed Istio policy edited by hand to allow every caller: verify must find it."""
    out = env.built()
    path = out / "shop" / "authorizationpolicy-api-allow.yaml"
    doc = yaml.safe_load(path.read_text())
    del doc["spec"]["rules"][0]["from"]
    path.write_text(yaml.safe_dump(doc))
    return ["verify", env.policy, "-t", "istio", "-o", out]


def unreadable_output(env: Env) -> list:
    out = env.built()
    (out / "shop" / "x.yaml").write_text(
        "kind: AuthorizationPolicy\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: meshpolicy\nspec: 5\n")
    return ["verify", env.policy, "-t", "istio", "-o", out]


def foreign_kustomization(env: Env) -> list:
    env.out.mkdir()
    (env.out / "kustomization.yaml").write_text("resources: [mine.yaml]\n")
    return ["build", env.policy, "-t", "istio", "-o", env.out]


def service_without_ports_on_linkerd(env: Env) -> list:
    return ["build", env.write("noports", "service web\nservice api :80/http\nallow api -> web\n"),
            "-t", "linkerd", "-o", env.out]


def object_beyond_the_limits(env: Env) -> list:
    callers = ", ".join(f"team{i}/*" for i in range(9000))
    return ["build", env.write("huge", f"service web :80/http\nallow {callers} -> web\n"),
            "-t", "linkerd", "-o", env.out]


def policy_edit(old: str, new: str):
    def make(env: Env) -> list:
        changed = env.write("new", POLICY.replace(old, new))
        return ["diff", env.policy, changed]
    return make


def git_repo(env: Env) -> None:
    require_tool("git", "diff --base reads the old policy with git show")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "policy"]):
        subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=env.root,
                       check=True, capture_output=True)


def not_on_path(env: Env, program: str) -> bool:
    """Hide ``program`` from the command (PATH without it); true once done."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep) if not (Path(d) / program).exists()]
    assert env.monkeypatch is not None
    env.monkeypatch.setenv("PATH", os.pathsep.join(keep))
    return True


def split_rule(env: Env) -> Path:
    """Istio's classic split rule (from and to in two entries): import finds it (ML060)."""
    return env.write_yaml(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: orders, namespace: default}\n"
        "spec:\n  selector: {matchLabels: {app: orders}}\n  rules:\n  - from:\n    - source: {principals: "
        "[cluster.local/ns/default/sa/frontend]}\n  - to:\n    - operation: {methods: [GET], ports: ['8080']}\n")


def fmt_unformatted(env: Env, *options: str) -> list:
    return ["fmt", *options, env.write("ugly", "service   web :8080/http\n")]


CASES = {
    "build": {
        0: {
            "built": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out],
            "built for linkerd": lambda e: ["build", e.policy, "-t", "linkerd", "-o", e.out],
            "--check up to date": lambda e: (e.built(), ["build", e.policy, "-t", "istio", "-o", e.out, "--check"])[1],
        },
        1: {
            "policy errors": lambda e: ["build", e.errors(), "-t", "istio", "-o", e.out],
            "violated never": lambda e: ["build", e.violated(), "-t", "istio", "-o", e.out],
            "MP301": service_without_ports_on_linkerd,
            "MP404": object_beyond_the_limits,
            "--crds validation": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out,
                                            "--crds", crds_without_spec_fields(e)],
            "--check drift": drifted,
        },
        2: {
            "unknown option": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out, "--bogus"],
            "a value after a flag": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out, "--check", "true"],
            "no path": lambda e: ["build", "-t", "istio", "-o", e.out],
            "missing --target": lambda e: ["build", e.policy, "-o", e.out],
            "missing value": lambda e: ["build", e.policy, "-o", e.out, "-t"],
            "unknown target": lambda e: ["build", e.policy, "-t", "consul", "-o", e.out],
            "unknown mode": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out, "--mode", "dry"],
            "unknown format": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out, "--format", "xml"],
            "--linkerd-routes on istio": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out,
                                                    "--linkerd-routes", "policy"],
            "bad --linkerd-routes": lambda e: ["build", e.policy, "-t", "linkerd", "-o", e.out,
                                               "--linkerd-routes", "v1"],
            "--istio-root-namespace on linkerd": lambda e: ["build", e.policy, "-t", "linkerd", "-o", e.out,
                                                           "--istio-root-namespace", "mesh-root"],
            "bad --istio-root-namespace": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out,
                                                     "--istio-root-namespace", "Mesh_Root"],
            "missing path": lambda e: ["build", e.root / "nope", "-t", "istio", "-o", e.out],
            "no .mesh file": lambda e: ["build", e.empty, "-t", "istio", "-o", e.out],
            "not UTF-8": lambda e: ["build", e.not_utf8(), "-t", "istio", "-o", e.out],
            "--crds missing": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out, "--crds", e.root / "nope"],
            "--crds a file": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out, "--crds", e.file],
            "--crds without CRDs": lambda e: ["build", e.policy, "-t", "istio", "-o", e.out, "--crds", e.empty],
            "--out a file": lambda e: ["build", e.policy, "-t", "istio", "-o", e.file],
            "--out under a file": lambda e: ["build", e.policy, "-t", "istio", "-o", e.file / "out"],
            "--out the working folder": lambda e: ["build", e.policy, "-t", "istio", "-o", "."],
            "--check --out a file": lambda e: ["build", e.policy, "-t", "istio", "-o", e.file, "--check"],
            "foreign file in --out": foreign_kustomization,
        },
    },
    "check": {
        0: {"compiles": lambda e: ["check", e.policy]},
        1: {"policy errors": lambda e: ["check", e.errors()],
            "violated never": lambda e: ["check", e.violated()]},
        2: {"missing path": lambda e: ["check", e.root / "nope.mesh"],
            "unknown format": lambda e: ["check", e.policy, "--format", "xml"],
            "no path": lambda e: ["check"]},
    },
    "verify": {
        0: {"agrees": lambda e: ["verify", e.policy, "-t", "istio", "-o", e.built()],
            "agrees (linkerd)": lambda e: ["verify", e.policy, "-t", "linkerd", "-o", e.built("linkerd")]},
        1: {"counterexamples": widened_output,
            "output that cannot be evaluated": unreadable_output,
            "policy errors": lambda e: ["verify", e.errors(), "-t", "istio", "-o", e.built()]},
        2: {"--out not a folder": lambda e: ["verify", e.policy, "-t", "istio", "-o", e.file],
            "unknown target": lambda e: ["verify", e.policy, "-t", "consul", "-o", e.built()],
            "missing --out": lambda e: ["verify", e.policy, "-t", "istio"]},
    },
    "explain": {
        0: {"allowed": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", "GET", "/api/x"],
            "refused": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", "DELETE", "/api/x"],
            "with --target": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", "-t", "linkerd"]},
        1: {"policy errors": lambda e: ["explain", e.errors(), "default/web", "->", "default/web"]},
        2: {"no arrow": lambda e: ["explain", e.policy, "shop/web", "shop/api"],
            "FROM not declared": lambda e: ["explain", e.policy, "shop/nobody", "->", "shop/api"],
            "TO not declared": lambda e: ["explain", e.policy, "shop/web", "->", "shop/nobody"],
            "not one caller": lambda e: ["explain", e.policy, "*", "->", "shop/api"],
            "bad port": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", ":70000"],
            "two methods": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", "GET", "PUT"],
            "METHOD on a TCP port": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", "GET", ":9090"],
            "--out without --target": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", "-o", e.out],
            "bad --ip": lambda e: ["explain", e.policy, "shop/web", "->", "shop/api", "--ip", "300.1.1.1"]},
    },
    "diff": {
        0: {"no change": lambda e: ["diff", e.policy, e.write("same", POLICY.replace("web -> api", "web  ->  api"))]},
        1: {"access changed": policy_edit("GET /api/*", "GET,POST /api/*"),
            "a note (trust domain)": policy_edit("namespace shop {", "trust-domain example.org\nnamespace shop {"),
            "policy errors": lambda e: ["diff", e.policy, e.errors()]},
        2: {"one path": lambda e: ["diff", e.policy],
            "unknown format": lambda e: ["diff", e.policy, e.policy, "--format", "xml"],
            "bad --base revision": lambda e: (git_repo(e), ["diff", "--base", "no-such-rev", e.policy])[1],
            "--base outside git": lambda e: ["diff", "--base", "HEAD", e.policy]},
    },
    "graph": {
        0: {"drawn": lambda e: ["graph", e.policy],
            "to a file": lambda e: ["graph", e.policy, "-o", e.root / "shop.json"],
            "focused": lambda e: ["graph", e.policy, "--service", "shop/api", "--namespace", "shop"]},
        1: {"policy errors": lambda e: ["graph", e.errors()],
            "violated never": lambda e: ["graph", e.violated()],
            "MP301 with --target": lambda e: ["graph", service_without_ports_on_linkerd(e)[1], "-t", "linkerd"]},
        2: {"unknown format": lambda e: ["graph", e.policy, "--format", "png"],
            "unknown service": lambda e: ["graph", e.policy, "--service", "nobody"],
            "unknown namespace": lambda e: ["graph", e.policy, "--namespace", "nowhere"],
            "unknown target": lambda e: ["graph", e.policy, "--target", "consul"],
            "svg without Graphviz": lambda e: (not_on_path(e, "dot"), ["graph", e.policy, "--format", "svg"])[1],
            "-o a folder": lambda e: ["graph", e.policy, "-o", e.empty],
            "--linkerd-routes on istio": lambda e: ["graph", e.policy, "-t", "istio", "--linkerd-routes", "policy"],
            "missing path": lambda e: ["graph", e.root / "nope"]},
    },
    "lint": {
        0: {"no finding": lambda e: ["lint", e.policy]},
        1: {"findings": lambda e: ["lint", e.write("permissive", PERMISSIVE)],
            "policy errors": lambda e: ["lint", e.errors()]},
        2: {"unknown rule": lambda e: ["lint", e.policy, "--disable", "ML999"],
            "unknown format": lambda e: ["lint", e.policy, "--format", "xml"],
            "missing path": lambda e: ["lint", e.root / "nope"]},
    },
    "fmt": {
        0: {"rewritten": fmt_unformatted,
            "--check canonical": lambda e: ["fmt", "--check", e.policy],
            "--diff canonical": lambda e: ["fmt", "--diff", e.policy]},
        1: {"--check would change": lambda e: fmt_unformatted(e, "--check"),
            "--diff would change": lambda e: fmt_unformatted(e, "--diff"),
            "syntax error": lambda e: ["fmt", e.write("broken", "namespace shop {\n  allow ->\n}\n")]},
        2: {"missing path": lambda e: ["fmt", e.root / "nope"],
            "not UTF-8": lambda e: ["fmt", e.not_utf8()],
            "unknown option": lambda e: ["fmt", "--write", e.policy]},
    },
    "import": {
        0: {"proved equal": lambda e: ["import", e.built(), "--from", "istio", "-o", e.root / "imported.mesh"]},
        1: {"findings": lambda e: ["import", split_rule(e), "--from", "istio"],
            "unreadable manifest": lambda e: ["import", e.write_yaml("a: &a [x]\nb: *a\n"), "--from", "istio"]},
        2: {"unknown mesh": lambda e: ["import", e.built(), "--from", "consul"],
            "missing --from": lambda e: ["import", e.built()],
            "missing path": lambda e: ["import", e.root / "nope", "--from", "istio"],
            "root namespace on linkerd": lambda e: ["import", e.built(), "--from", "linkerd",
                                                    "--istio-root-namespace", "mesh"]},
    },
    "targets": {
        0: {"always": lambda e: ["targets"]},
        2: {"an argument": lambda e: ["targets", "istio"]},
    },
}


@pytest.mark.parametrize("command, code, case", [
    pytest.param(command, code, case, id=f"{command}-{code}-{case}")
    for command, codes in CASES.items() for code, cases in codes.items() for case in cases])
def test_documented_exit_code(env, monkeypatch, command, code, case):
    monkeypatch.chdir(env.root)
    env.monkeypatch = monkeypatch  # diff --base asks git about the working folder
    args = CASES[command][code][case](env)
    result = invoke(args, code=code)
    if code == 1 and command != "fmt" or command == "fmt" and case == "syntax error":
        assert re.search(r"error\[M[PL]\d{3}\]|warning\[ML\d{3}\]|access changed", result.output), result.output
    if code == 2:  # one line, ``meshpolicy: error: ...`` (Click's errors too), or MP401 as a diagnostic
        # (after the build's notes: an Istio build notes the injection label its namespaces need, MP303)
        output = re.sub(r"(?m)^\S.*: note\[MP303\]: .*\n(?: .*\n)*", "", result.output)
        assert re.fullmatch(r"meshpolicy: error: [^\n]+\n|error\[MP401\]: [^\n]+\n1 error\(s\), 0 warning\(s\)\n"
                            # explain's question is read by the grammar: the line, then its located diagnostic
                            r"|meshpolicy: error: the question does not read\n<question>:1:\d+: error\[MP001\]: "
                            r"[^\n]+\n( [^\n]*\n){2}(  = hint: [^\n]+\n)?1 error\(s\), 0 warning\(s\)\n",
                            output), result.output


def documented() -> dict[str, set[int]]:
    """command -> the codes the per-command table gives a meaning for."""
    table = DOC.split("Per command:", 1)[1]
    out = {}
    for row in re.findall(r"^\| `(\w+)` \|(.*)\|$", table, re.MULTILINE):
        cells = [c.strip() for c in row[1].split("|")]
        out[row[0]] = {code for code, cell in enumerate(cells) if cell}
    return out


def test_the_table_and_the_tests_name_the_same_commands_and_codes():
    import typer

    from meshpolicy.cli import app

    commands = set(typer.main.get_command(app).list_commands(None))  # type: ignore[attr-defined]
    assert set(documented()) == commands
    assert {command: set(codes) for command, codes in CASES.items()} == documented()
