"""The CLI end to end: build, --check, --crds, exit codes, output folder rules, check, targets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, invoke, require_tool, schemas_root

from meshpolicy.output import writer

EXAMPLE = ROOT / "examples" / "shop"


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    folder = tmp_path / "policy"
    shutil.copytree(EXAMPLE, folder)
    return folder


def test_build_writes_every_resource_and_a_kustomization(policy, tmp_path):
    out = tmp_path / "out"
    result = invoke(["build", policy, "--target", "istio", "--out", out])
    notes = re.findall(r"(?m)^\S.*: note\[MP303\]: namespace '(\S+)' is not emitted: .* istio-injection=enabled$",
                       result.output)
    assert notes == ["default", "shop"]  # no Namespace on Istio by default: the label each must carry
    assert re.fullmatch(
        r"(?:\S.*: note\[MP303\]: .*\n(?: .*\n)*)*verified in \d+\.\d\d s: read as istio reads it, the output decides every request as the policy does "
        r"\(--no-verify skips this\)\n"
        rf"wrote 12 manifests in 3 namespaces \(default, istio-system, shop\) and kustomization.yaml to {re.escape(str(out))} "
        r"\(target istio, mode enforce\)\n", result.output)
    files = tree(out)
    listed = yaml.safe_load(files["kustomization.yaml"])["resources"]
    assert sorted(listed) == sorted(p for p in files if p != "kustomization.yaml")
    for rel, data in files.items():
        if rel == "kustomization.yaml":
            continue
        doc = yaml.safe_load(data)
        ns, name = rel.split("/")
        assert ns == doc["metadata"]["namespace"]
        assert name == f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshpolicy"
        assert doc["metadata"]["annotations"]["meshpolicy.io/source"]


def test_output_passes_kubectl_kustomize(policy, tmp_path):
    require_tool("kubectl", "a generated output folder must pass 'kubectl kustomize OUT'")
    out = tmp_path / "out"
    invoke(["build", policy, "-t", "istio", "-o", out])
    done = subprocess.run(["kubectl", "kustomize", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("kind: AuthorizationPolicy") == 7


def test_check_passes_when_up_to_date_and_fails_with_a_diff_when_stale(policy, tmp_path):
    out = tmp_path / "out"
    invoke(["build", policy, "-t", "istio", "-o", out])
    invoke(["build", policy, "-t", "istio", "-o", out, "--check"], code=0)
    shop = policy / "shop.mesh"
    shop.write_text(shop.read_text().replace("allow frontend -> orders GET,POST :8080",
                                             "allow frontend -> orders GET :8080"))
    before = tree(out)
    result = invoke(["build", policy, "-t", "istio", "-o", out, "--check"], code=1)
    assert "--- a/shop/authorizationpolicy-orders-allow.yaml" in result.output
    assert '-              - "POST"' in result.output
    assert "out of date" in result.output
    assert tree(out) == before  # --check writes nothing


def test_one_rule_change_touches_only_its_files(policy, tmp_path):
    out = tmp_path / "out"
    invoke(["build", policy, "-t", "istio", "-o", out])
    before = tree(out)
    shop = policy / "shop.mesh"
    shop.write_text(shop.read_text().replace("allow frontend -> orders GET,POST :8080",
                                             "allow frontend -> orders GET :8080"))
    invoke(["build", policy, "-t", "istio", "-o", out])
    after = tree(out)
    assert before.keys() == after.keys()
    assert [p for p in after if after[p] != before[p]] == ["shop/authorizationpolicy-orders-allow.yaml"]


def test_crds_validation_passes_against_the_istio_crds(policy, tmp_path):
    crds = schemas_root() / "istio"
    invoke(["build", policy, "-t", "istio", "-o", tmp_path / "out", "--crds", crds], code=0)


def test_crds_validation_failure_writes_nothing(policy, tmp_path):
    src = schemas_root() / "istio" / "authorizationpolicies.security.istio.io.yaml"
    crd = yaml.safe_load(src.read_text())
    for version in crd["spec"]["versions"]:  # a CRD that no longer knows spec.action
        del version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["action"]
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "ap.yaml").write_text(yaml.safe_dump(crd))
    shutil.copy(schemas_root() / "istio" / "peerauthentications.security.istio.io.yaml", crds)
    out = tmp_path / "out"
    result = invoke(["build", policy, "-t", "istio", "-o", out, "--crds", crds], code=1)
    assert "error[MP402]" in result.output
    assert "shop/authorizationpolicy-orders-allow.yaml: AuthorizationPolicy/orders-allow /spec" in result.output
    assert "'action' was unexpected" in result.output
    assert not out.exists()


def test_crds_folder_without_crds_is_a_usage_error(policy, tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke(["build", policy, "-t", "istio", "-o", tmp_path / "o", "--crds", tmp_path / "empty"], code=2)
    assert "no CustomResourceDefinition found" in result.output
    invoke(["build", policy, "-t", "istio", "-o", tmp_path / "o", "--crds", tmp_path / "nope"], code=2)


def test_a_policy_error_leaves_the_previous_output_untouched(policy, tmp_path):
    out = tmp_path / "out"
    invoke(["build", policy, "-t", "istio", "-o", out])
    before = tree(out)
    (policy / "broken.mesh").write_text("allow nobody -> orders\n")
    result = invoke(["build", policy, "-t", "istio", "-o", out], code=1)
    assert "broken.mesh:1:7: error[MP103]: 'nobody' is not declared in namespace 'default'" in result.output
    assert tree(out) == before


def test_stale_managed_files_go_and_foreign_files_stay(policy, tmp_path):
    out = tmp_path / "out"
    invoke(["build", policy, "-t", "istio", "-o", out])
    stale = out / "shop" / "authorizationpolicy-old-rule.yaml"
    stale.write_text((out / "shop" / "authorizationpolicy-orders-allow.yaml").read_text())
    foreign = out / "shop" / "notes.yaml"
    foreign.write_text("kind: ConfigMap\nmetadata:\n  name: mine\n")
    readme = out / "README.md"
    readme.write_text("hand written\n")
    invoke(["build", policy, "-t", "istio", "-o", out])
    assert not stale.exists()
    assert foreign.read_text() == "kind: ConfigMap\nmetadata:\n  name: mine\n"
    assert readme.read_text() == "hand written\n"
    assert "notes.yaml" not in (out / "kustomization.yaml").read_text()


def test_a_foreign_kustomization_is_never_overwritten(policy, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "kustomization.yaml").write_text("resources: [mine.yaml]\n")
    result = invoke(["build", policy, "-t", "istio", "-o", out], code=2)
    assert "was not written by meshpolicy" in result.output
    assert (out / "kustomization.yaml").read_text() == "resources: [mine.yaml]\n"


MANAGED = "metadata:\n  name: {}\n  labels:\n    app.kubernetes.io/managed-by: meshpolicy\n"


def test_write_is_all_or_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"
    writer.write(out, {"a/x.yaml": MANAGED.format("old"), "kustomization.yaml": writer.kustomization(["a/x.yaml"])})
    before = tree(out)
    real_open = open
    calls = {"n": 0}

    def failing_open(path, *args, **kwargs):  # the disk fills up on the second file
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(OSError):
        writer.write(out, {"a/x.yaml": MANAGED.format("new"), "b/y.yaml": MANAGED.format("y"),
                           "kustomization.yaml": writer.kustomization(["a/x.yaml", "b/y.yaml"])})
    monkeypatch.undo()
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


def test_usage_errors_exit_2(policy, tmp_path):
    assert "must be one of: " in invoke(["build", policy, "-t", "nope", "-o", tmp_path / "o"], code=2).output
    # --mode is an enum: Typer checks it and names the choices
    wrong_mode = invoke(["build", policy, "-t", "istio", "-o", tmp_path / "o", "--mode", "x"], code=2).output
    assert "invalid value for '--mode'" in wrong_mode.lower() and "'x' is not one of 'enforce'" in wrong_mode
    assert "no such file or folder" in invoke(["build", tmp_path / "missing.mesh", "-t", "istio", "-o",
                                               tmp_path / "o"], code=2).output
    (tmp_path / "empty").mkdir()
    assert "no .mesh files found" in invoke(["check", tmp_path / "empty"], code=2).output
    invoke(["build", policy], code=2)  # --target and --out are required


def test_a_bug_is_not_dressed_as_a_usage_error(policy, tmp_path, monkeypatch):
    """An InternalError (a self-check failed) must end in a traceback, not in a one-line message and exit 2."""
    from typer.testing import CliRunner

    from meshpolicy.backends import get_backend
    from meshpolicy.cli import app
    from meshpolicy.errors import InternalError

    backend = get_backend("istio")
    real = backend.lower
    monkeypatch.setattr(backend, "lower", lambda self, graph: real(self, graph)[:1] * 2)
    monkeypatch.setattr(backend, "by_namespace", False)  # the pipeline calls lower
    result = CliRunner().invoke(app, ["build", str(policy), "-t", "istio", "-o", str(tmp_path / "o")])
    assert isinstance(result.exception, InternalError)
    assert "two resources with the same file name" in str(result.exception)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, code, diagnostics", [
    (b"\xff\xfe\x00garbage", 2, ["meshpolicy: error: {f}: not valid UTF-8 (invalid start byte at byte 0)"]),
    (b"allow", 1, ["{f}:1:6: error[MP001]"]),
    (b"namespace {", 1, ["{f}:1:11: error[MP001]"]),
    (b"}\n}\n", 1, ["{f}:1:1: error[MP001]"]),
    (b"service x :8080/http\r\nallow * -> x\r\n", 0, []),
    (b"\t\tservice\n", 1, ["{f}:1:10: error[MP001]"]),
    # a non-ASCII character is shown escaped (issue 9 item 8)
    ("service caf\u00e9 :80/http\n".encode(), 1, ["{f}:1:12: error[MP001]: unexpected character '\\xe9'"]),
    (b"allow a -> b :99999999999999999999\n", 1,
     ["{f}:1:7: error[MP103]", "{f}:1:12: error[MP103]", "{f}:1:15: error[MP107]: port 99999999999999999999 is out of range"]),
])
def test_malformed_input_is_a_located_diagnostic_never_a_traceback(tmp_path, content, code, diagnostics):
    f = tmp_path / "bad.mesh"
    f.write_bytes(content)
    result = invoke(["check", f], code=code)
    firsts = [line for line in result.output.splitlines() if re.match(r"\S+:\d+:\d+: |meshpolicy: ", line)]
    assert len(firsts) == len(diagnostics), result.output
    for line, expected in zip(firsts, diagnostics, strict=True):
        assert line.startswith(expected.format(f=f)), result.output


def test_crlf_files_compile(tmp_path):
    f = tmp_path / "p.mesh"
    f.write_bytes(b"service x :8080/http\r\nservice y :8080/http\r\nallow y -> x GET\r\n")
    invoke(["check", f], code=0)


def test_check_command(policy, tmp_path):
    assert "ok: 6 services" in invoke(["check", policy]).output
    (policy / "bad.mesh").write_text("service web :80/http\n")
    result = invoke(["check", policy], code=1)
    assert "error[MP102]: service 'default/web' is declared twice" in result.output


def test_check_json_format(policy):
    (policy / "bad.mesh").write_text("allow x -> web\n")
    result = invoke(["check", policy, "--format", "json"], code=1)
    import json
    [diag] = json.loads(result.output[result.output.index("["):])
    assert diag["code"] == "MP103" and diag["line"] == 1 and diag["column"] == 7


def test_targets_lists_every_backend():
    from meshpolicy.backends import TARGETS
    output = invoke(["targets"]).output
    for name in TARGETS:
        assert output.startswith(name) or f"\n{name}" in output


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "meshpolicy", "targets"], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    assert done.returncode == 0 and "istio" in done.stdout


def test_a_service_named_default_does_not_clash_with_namespace_resources(tmp_path):
    f = tmp_path / "p.mesh"
    f.write_text("service default :80/http mtls permissive\nservice x :80/http\nallow x -> default\n")
    out = tmp_path / "out"
    invoke(["build", f, "-t", "istio", "-o", out])
    assert (out / "default" / "peerauthentication-default.yaml").exists()
    assert (out / "default" / "peerauthentication-default-mtls.yaml").exists()


def test_one_analysis_lowers_for_every_target_without_mixing_their_notes():
    from meshpolicy import pipeline

    analysis = pipeline.analyze_paths([ROOT / "tests" / "cases" / "linkerd" / "probes.mesh"])
    before = list(analysis.diagnostics)
    linkerd = pipeline.lower(analysis, "linkerd")
    istio = pipeline.lower(analysis, "istio")
    assert analysis.diagnostics == before
    assert any(d.code == "MP302" for d in linkerd.diagnostics)
    assert not any(d.code == "MP302" for d in istio.diagnostics)


def test_build_without_verification_says_so_and_check_names_what_is_up_to_date(policy, tmp_path):
    out = tmp_path / "out"
    result = invoke(["build", policy, "-t", "linkerd", "-o", out, "--no-verify"])
    assert result.stdout == (f"wrote 25 manifests in 2 namespaces (default, shop) and kustomization.yaml to {out} "
                             "(target linkerd, mode enforce); not verified (--no-verify)\n")
    result = invoke(["build", policy, "-t", "linkerd", "-o", out, "--check", "--no-verify"])
    assert result.stdout == (f"{out} is up to date: 25 manifests in 2 namespaces (default, shop) and "
                             "kustomization.yaml (target linkerd, mode enforce); not verified (--no-verify)\n")


def test_the_summary_counts_the_namespaces_beyond_six(tmp_path):
    f = tmp_path / "p.mesh"
    f.write_text("".join(f"namespace n{i} {{\n  service s :80/http\n  allow s -> s\n}}\n" for i in range(8)))
    result = invoke(["build", f, "-t", "istio", "-o", tmp_path / "out", "--no-verify"])
    assert " in 8 namespaces (n0, n1, n2, n3, n4, n5 and 2 more) and kustomization.yaml" in result.stdout


def test_version_is_the_package_version():
    from importlib.metadata import version

    import meshpolicy

    assert invoke(["--version"]).stdout == f"meshpolicy {meshpolicy.__version__}\n"
    assert meshpolicy.__version__ == version("meshpolicy")


@pytest.mark.parametrize("args, message", [
    (["build", "p.mesh", "--zzz"], "no such option: --zzz; see 'meshpolicy build --help'"),
    (["build", "p.mesh", "--fo"],
     "no such option: --fo (did you mean --format, --mode or --out?); see 'meshpolicy build --help'"),
    (["build", "p.mesh", "-t", "istio", "-o", "out", "--check", "true"],
     "--check is a flag and takes no value (got 'true'): write --check alone; see 'meshpolicy build --help'"),
    (["fmt", "--check", "no", "p.mesh"],
     "--check is a flag and takes no value (got 'no'): write --check alone; see 'meshpolicy fmt --help'"),
    (["build"], "missing argument 'PATH'; see 'meshpolicy build --help'"),
    (["build", "p.mesh", "-t", "istio"], "missing option '--out' / '-o'; see 'meshpolicy build --help'"),
    (["build", "p.mesh", "-o", "out", "-t"], "option '-t' requires an argument; see 'meshpolicy build --help'"),
    (["frob"], "no such command 'frob'; see 'meshpolicy --help'"),
    (["--bogus"], "no such option: --bogus; see 'meshpolicy --help'"),
    (["lint", "p.mesh", "--disable", "ML999"],
     "--disable: unknown lint rule 'ML999' (see 'meshpolicy lint --help')"),
])
def test_a_bad_invocation_is_one_line_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    Path("p.mesh").write_text("service web :8080/http\nallow web -> web\n")
    result = invoke(args, code=2)
    assert (result.stdout, result.stderr) == ("", f"meshpolicy: error: {message}\n")


def test_a_file_named_like_a_flag_value_is_still_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("true").mkdir()
    Path("true/p.mesh").write_text("service web :8080/http\nallow web -> web\n")
    invoke(["fmt", "--check", "true"], code=0)


def test_the_installed_entry_point_prints_one_line_for_a_bad_invocation():
    done = subprocess.run([sys.executable, "-m", "meshpolicy", "build", "--zzz"], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", "meshpolicy: error: no such option: --zzz; see 'meshpolicy build --help'\n")


def test_no_command_prints_the_help_and_exits_2():
    result = invoke([], code=2)
    assert result.stdout.startswith("Usage: meshpolicy [OPTIONS] COMMAND [ARGS]...\n")
    assert "meshpolicy --install-completion" in result.stdout and "  build " in result.stdout
    assert "\u256d" not in result.stdout  # plain help, no Rich box
    assert invoke(["build", "--help"]).stdout.startswith("Usage: meshpolicy build [OPTIONS] PATH...\n")


@pytest.mark.slow
def test_shell_completion_completes_commands_and_options():
    script = subprocess.run([sys.executable, "-m", "meshpolicy", "--show-completion", "bash"], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert script.returncode == 0 and "_MESHPOLICY_COMPLETE=complete_bash" in script.stdout
    for words, cword, expected in (("meshpolicy bu", "1", "build"), ("meshpolicy build --ta", "2", "--target")):
        env = dict(os.environ, _MESHPOLICY_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=cword)
        done = subprocess.run([sys.executable, "-m", "meshpolicy"], capture_output=True, text=True, cwd=ROOT, env=env,
                              check=False)
        assert (done.returncode, done.stdout.split()) == (0, [expected])


def test_the_exit_codes_page_shows_what_a_bad_invocation_prints(policy, monkeypatch):
    page = (ROOT / "docs" / "exit-codes.md").read_text()
    [block] = re.findall(r"```console\n(.*?)```", page, re.DOTALL)
    steps = re.findall(r"^\$ (.*)\n((?:[^$].*\n)*)", block, re.MULTILINE)
    monkeypatch.chdir(policy.parent)
    assert len(steps) == 2
    for command, shown in steps:
        args = command.split()
        assert args[0] == "meshpolicy"
        result = invoke(args[1:], code=2)
        assert (result.stdout, result.stderr) == ("", shown), command
