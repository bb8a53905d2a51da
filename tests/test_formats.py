"""Every output format of diagnostics (human, json, github, sarif) for lint, check and build."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import ROOT, invoke

from meshpolicy.cli.formatters import FORMATS, github, render, sarif
from meshpolicy.diagnostics import CODES, LINT_CODES, Diagnostic, Related, Severity
from meshpolicy.source import SourceFile, Span

SHOP = "examples/shop"
VIOLATED = "tests/cases/never/violated.mesh"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    """File names in the output are relative to the working folder: run from the repository root."""
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("fmt", FORMATS)
def test_lint_snapshot(fmt, snapshot_yaml):
    result = invoke(["lint", SHOP, "--format", fmt], code=1)
    assert result.stderr == ""
    assert result.stdout == snapshot_yaml


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_errors_snapshot(fmt, snapshot_yaml):
    result = invoke(["check", VIOLATED, "--format", fmt], code=1)
    assert result.stdout == ""
    assert result.stderr == snapshot_yaml


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_errors_in_every_format(fmt, tmp_path):
    result = invoke(["build", VIOLATED, "--target", "istio", "--out", tmp_path / "out", "--format", fmt], code=1)
    assert "MP201" in result.stderr
    assert not (tmp_path / "out").exists()
    if fmt in ("json", "sarif"):
        json.loads(result.stderr)


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_warnings_in_every_format(fmt, tmp_path):
    policy = tmp_path / "p.mesh"
    policy.write_text("service a :80/http\nservice b :80/http\ngroup unused = a\nallow a -> b\n")
    result = invoke(["build", policy, "--target", "istio", "--out", tmp_path / "out", "--format", fmt])
    assert "MP105" in result.stderr
    assert "wrote" in result.stdout
    if fmt == "github":
        assert any(line.startswith("::warning file=") for line in result.stderr.splitlines())


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_drift_in_every_format(fmt, tmp_path):
    policy = tmp_path / "p.mesh"
    policy.write_text("service a :80/http\nservice b :80/http\nallow a -> b\n")
    out = tmp_path / "out"
    invoke(["build", policy, "--target", "istio", "--out", out])
    invoke(["build", policy, "--target", "istio", "--out", out, "--check", "--format", fmt])
    policy.write_text("service a :80/http\nservice b :80/http\nallow a -> b GET\n")
    result = invoke(["build", policy, "--target", "istio", "--out", out, "--check", "--format", fmt], code=1)
    assert '+              - "GET"' in result.stdout  # the drift itself, as a diff
    expected = {"human": f"error[MP403]: {out.as_posix()} is out of date\n",
                "github": f"::error title=meshpolicy MP403::{out.as_posix()} is out of date%0Ahint: ",
                "json": '"code": "MP403"', "sarif": '"ruleId": "MP403"'}[fmt]
    assert expected in result.stderr


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text,code", [
    ("allow a b\n", "MP001"),
    ("namespace shop {\n  service a\n", "MP002"),
    ("service a\nservice a\n", "MP102"),
    ("service a :0/http\n", "MP107"),
    ("service a :80/xml\n", "MP108"),
    ("service a :80/tcp\nservice b\nallow b -> a GET\n", "MP109"),
    ("service a\nallow 10.0.0.1/8 -> a\n", "MP112"),
    ("\ufeffservice a \x00\n", "MP001"),
])
def test_check_malformed_policy_in_every_format(tmp_path, fmt, text, code):
    policy = tmp_path / "p.mesh"
    policy.write_text(text, encoding="utf-8")
    result = invoke(["check", policy, "--format", fmt], code=1)
    assert code in result.stderr
    if fmt in ("json", "sarif"):
        json.loads(result.stderr)


@pytest.mark.parametrize("command", ["lint", "check", "build"])
def test_unknown_format(command, tmp_path):
    args = [command, SHOP, "--format", "xml"]
    if command == "build":
        args += ["--target", "istio", "--out", tmp_path]
    assert "--format must be one of: human, json, github, sarif (got 'xml')" in invoke(args, code=2).stderr


def test_json_is_to_dict():
    result = invoke(["lint", SHOP, "--format", "json"], code=1)
    records = json.loads(result.stdout)
    assert records and all({"code", "severity", "message", "file", "line", "column"} <= set(r) for r in records)
    assert {r["code"] for r in records} <= set(LINT_CODES)


# -- SARIF ---------------------------------------------------------------------------------------

def test_sarif_structure():
    log = json.loads(invoke(["lint", SHOP, "--format", "sarif"], code=1).stdout)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "meshpolicy"
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids == sorted({r["ruleId"] for r in run["results"]})
    assert set(ids) <= set(LINT_CODES)
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["results"]
    for result in run["results"]:
        assert result["level"] in ("error", "warning", "note")
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"].startswith("examples/shop/")
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        region = physical["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        assert (region["endLine"], region["endColumn"]) >= (region["startLine"], region["startColumn"])
        for related in result.get("relatedLocations", []):
            assert related["physicalLocation"]["region"]["startLine"] >= 1 and related["message"]["text"]


def test_sarif_of_nothing_is_still_a_log():
    log = sarif([])
    assert log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"] == []


def test_sarif_rules_describe_compiler_and_lint_codes():
    records = [Diagnostic(code, Severity.ERROR, "m").to_dict() for code in ("ML004", "MP201", "MP001")]
    rules = sarif(records)["runs"][0]["tool"]["driver"]["rules"]
    assert [(r["id"], r["shortDescription"]["text"], r["defaultConfiguration"]["level"]) for r in rules] == [
        ("MP001", CODES["MP001"], "error"), ("MP201", CODES["MP201"], "error"),
        ("ML004", LINT_CODES["ML004"], "warning")]


def test_sarif_without_a_span_has_no_location():
    [result] = sarif([Diagnostic("MP402", Severity.ERROR, "schema says no").to_dict()])["runs"][0]["results"]
    assert "locations" not in result and result["ruleId"] == "MP402"


# -- GitHub annotations --------------------------------------------------------------------------

def test_github_escapes_data_and_properties():
    diag = Diagnostic("ML004", Severity.WARNING, "100% sure,\nreally", Span("a,b:c.mesh", 3, 5, 3, 9),
                      hint="do: this")
    assert github(diag.to_dict()) == (
        "::warning file=a%2Cb%3Ac.mesh,line=3,endLine=3,col=5,endColumn=9,title=meshpolicy ML004"
        "::100%25 sure,%0Areally%0Ahint: do: this")


def test_github_leaves_out_columns_of_a_span_over_several_lines():
    """The runner refuses col/endColumn when line and endLine differ (actions/runner#4167)."""
    diag = Diagnostic("MP002", Severity.ERROR, "not closed", Span("a.mesh", 1, 5, 3, 2))
    assert github(diag.to_dict()) == "::error file=a.mesh,line=1,endLine=3,title=meshpolicy MP002::not closed"


def test_github_keeps_related_places_in_the_message():
    diag = Diagnostic("MP201", Severity.ERROR, "violated", Span("a.mesh", 2, 1, 2, 5),
                      related=(Related(Span("a.mesh", 1, 1, 1, 5), "allowed by: allow a -> b"),))
    assert github(diag.to_dict()).endswith("::violated%0Aa.mesh:1: allowed by: allow a -> b")


def test_github_note_is_a_notice_and_spanless_is_fine():
    assert github(Diagnostic("MP105", Severity.NOTE, "n").to_dict()) == "::notice title=meshpolicy MP105::n"


def test_human_is_render_text():
    src = SourceFile("a.mesh", "service a\n")
    diag = Diagnostic("ML003", Severity.WARNING, "m", Span("a.mesh", 1, 9, 1, 10),
                      related=(Related(Span("a.mesh", 1, 1, 1, 8), "here"),))
    assert render([diag], {"a.mesh": src}, "human") == (
        "a.mesh:1:9: warning[ML003]: m\n 1 | service a\n   |         ^\n"
        "  = a.mesh:1:1: here\n 1 | service a\n   | ^^^^^^^\n")


# -- the pre-commit hooks ------------------------------------------------------------------------

def test_pre_commit_hooks():
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"meshpolicy-fmt", "meshpolicy-lint", "meshpolicy-build"}
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["name"] and hook["entry"].startswith("meshpolicy ")
    assert hooks["meshpolicy-fmt"]["entry"] == "meshpolicy fmt"
    assert hooks["meshpolicy-lint"]["entry"] == "meshpolicy lint"
    assert hooks["meshpolicy-lint"]["pass_filenames"] is False
    assert hooks["meshpolicy-build"]["entry"] == "meshpolicy build --check"
    assert hooks["meshpolicy-build"]["pass_filenames"] is False
    # the entries run: each is a command with these options
    invoke(hooks["meshpolicy-fmt"]["entry"].split()[1:] + ["--check", "tests/cases/basics/minimal.mesh"])
    invoke(hooks["meshpolicy-lint"]["entry"].split()[1:] + ["tests/cases/linkerd/probes.mesh"])
