"""The review-workflow docs show what the commands really do."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, invoke, require_tool

from meshpolicy.fmt import format_source
from meshpolicy.lint import lint
from meshpolicy.pipeline import analyze, lower
from meshpolicy.source import SourceFile

DOCS = ROOT / "docs"


def blocks(text: str, lang: str = "") -> list[str]:
    """The fenced code blocks whose info string is ``lang``."""
    out, current, info = [], None, ""
    for line in text.splitlines(True):
        if line.startswith("```"):
            if current is None:
                current, info = [], line[3:].strip()
            else:
                if info == lang:
                    out.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return out


def getting_started_sources(doc: str) -> list[SourceFile]:
    mesh = doc.split("`policy/mesh.mesh`", 1)[1]
    return [SourceFile("policy/mesh.mesh", blocks(mesh)[0]),
            SourceFile("policy/shop.mesh", blocks(mesh.split("`policy/shop.mesh`", 1)[1])[0])]


@pytest.mark.parametrize("target", ["istio", "linkerd"])
def test_getting_started_policy_is_canonical_clean_and_builds_the_listed_files(target):
    doc = (DOCS / "getting-started.md").read_text()
    sources = getting_started_sources(doc)
    for src in sources:
        assert format_source(src) == src.text
    assert lint(sources) == []
    files = lower(analyze(sources), target).files
    listed = [line for block in blocks(doc) for line in block.splitlines() if line.startswith(f"deploy/{target}/")]
    assert listed, f"getting-started.md lists no deploy/{target}/ files"
    assert sorted(f"deploy/{target}/{path}" for path in files) == sorted(listed)


def transcript(doc: str) -> list[tuple[str, str]]:
    """Every ``$ command`` of the ``console`` blocks, with the output shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for block in blocks(doc, "console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
    return [(command, "".join(line + "\n" for line in out)) for command, out in steps]


def _untimed(output: str) -> str:
    """A build's ``verified in 0.04 s`` line: the page shows a time, never this machine's."""
    return re.sub(r"^verified in \d+\.\d\d s:", "verified in N s:", output, flags=re.MULTILINE)


def test_getting_started_commands_print_what_the_page_shows(tmp_path, monkeypatch):
    """Replay the page: its policy, the typo of step 4, the commit and the edit of step 7."""
    require_tool("git", "the page replays a git workflow")
    doc = (DOCS / "getting-started.md").read_text()
    monkeypatch.chdir(tmp_path)
    for src in getting_started_sources(doc):
        Path(src.name).parent.mkdir(exist_ok=True)
        Path(src.name).write_text(src.text)
    shop = Path("policy/shop.mesh")
    original = shop.read_text()
    edit = blocks(doc.split("## 7.", 1)[1])[0].strip()
    ran = 0
    for command, shown in transcript(doc):
        args = shlex.split(command, comments=True)
        if args[:2] == ["git", "commit"]:  # the page commits before changing the policy
            for git in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "policy"]):
                subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *git], check=True)
            continue
        if args[0] != "meshpolicy":
            continue
        typo = re.search(r"^ (\d+) \|(.*)$", shown, re.MULTILINE) if "error[MP103]" in shown else None
        if typo:  # the mistake of step 4, on the line the page shows
            lines = original.splitlines(True)
            lines[int(typo.group(1)) - 1] = typo.group(2)[1:] + "\n"
            shop.write_text("".join(lines))
        if args[1] == "diff":  # step 7's edit: the rule it shows replaces the rule it changes
            prefix = edit.split(" /", 1)[0].rsplit(",", 1)[0]
            assert prefix in original
            shop.write_text("".join(edit + "\n" if line.strip().startswith(prefix) else line
                                    for line in original.splitlines(True)))
        result = invoke(args[1:], code=None)
        assert _untimed(result.output) == _untimed(shown), f"$ {command}"
        failed = "error[" in shown or shown.startswith("access changed")
        assert result.exit_code == (1 if failed else 0), f"$ {command}"
        if typo:
            shop.write_text(original)
        ran += 1
    assert ran >= 8


def test_ci_workflow_and_pre_commit_config_parse_and_use_the_shipped_hooks():
    doc = (DOCS / "ci.md").read_text()
    workflow, sarif_steps, config = [yaml.safe_load(b) for b in blocks(doc, "yaml")]
    runs = [step.get("run", "") for step in workflow["jobs"]["policy"]["steps"]]
    assert any("--target istio" in r and "--check" in r for r in runs)
    assert any("--target linkerd" in r and "--check" in r for r in runs)
    assert any("meshpolicy diff --base" in r and "--format markdown" in r for r in runs)
    assert [s.get("uses", "").split("@")[0] for s in sarif_steps][-1] == "github/codeql-action/upload-sarif"
    shipped = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for repo in config["repos"] for h in repo["hooks"]} == shipped


def test_gitops_manifests_parse_and_never_override_namespaces():
    for block in blocks((DOCS / "gitops.md").read_text(), "yaml"):
        for doc in yaml.safe_load_all(block):
            spec = doc["spec"]
            assert "targetNamespace" not in spec
            assert "namespace" not in spec.get("destination", {})



def table_codes(path, prefix: str) -> set[str]:
    """Codes that head a row of a table in ``path``: ``| MP101 | ...``."""
    return set(re.findall(rf"^\| ({prefix}\d{{3}}) \|", path.read_text(), re.MULTILINE))


def test_every_diagnostic_code_is_documented_and_every_documented_code_exists():
    from meshpolicy.diagnostics import CODES, IMPORT_CODES, LINT_CODES

    documented = table_codes(DOCS / "diagnostics.md", "MP") | table_codes(DOCS / "lint.md", "ML")
    assert documented == set(CODES) | set(LINT_CODES) | set(IMPORT_CODES)
    # and the code says no code the tables do not know
    used = {code for path in (ROOT / "meshpolicy").rglob("*.py")
            for code in re.findall(r"[\"'](M[PL]\d{3})[\"']", path.read_text())}
    assert used <= documented


def test_architecture_table_names_every_module_and_package_and_nothing_else():
    doc = (DOCS / "architecture.md").read_text()
    first_cells = re.findall(r"^\| ([^|]+) \|", doc.split("| package or module |", 1)[1], re.MULTILINE)
    named = {name for cell in first_cells for name in re.findall(r"`([\w]+(?:\.py|/))`", cell)}
    package = ROOT / "meshpolicy"
    real = {p.name + ("/" if p.is_dir() else "") for p in package.iterdir()
            if (p.suffix == ".py" and not p.name.startswith("__")) or (p / "__init__.py").is_file()}
    assert named == real
    for name in ("Reader(docs, world", "decide(request)", "mentions(namespace, service)", "explain(request)",
                 "Unmodelled", "Ambiguous", "READERS", "TARGETS"):
        assert name in doc.split("## Adding a target", 1)[1], name


def test_verify_page_shows_what_verify_prints_for_the_misplaced_dash(tmp_path, monkeypatch):
    doc = (DOCS / "verify.md").read_text()
    [policy] = [b for b in blocks(doc) if b.startswith("namespace shop {")]
    [(command, shown)] = transcript(doc)
    monkeypatch.chdir(tmp_path)
    Path("shop.mesh").write_text(policy)
    invoke(["build", "shop.mesh", "--target", "istio", "--out", "out"])
    emitted = Path("out/shop/authorizationpolicy-orders-allow.yaml")
    assert emitted.read_text().count("\n      to:\n") == 1
    emitted.write_text(emitted.read_text().replace("\n      to:\n", "\n    - to:\n"))
    assert invoke(shlex.split(command)[1:], code=1).output == shown


def test_lint_page_shows_what_lint_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for src in getting_started_sources((DOCS / "getting-started.md").read_text()):
        Path(src.name).parent.mkdir(exist_ok=True)
        Path(src.name).write_text(src.text.replace("allow * -> frontend GET", "allow any -> frontend GET"))
    [(command, shown), *_] = transcript((DOCS / "lint.md").read_text())
    assert invoke(shlex.split(command)[1:], code=1).output == shown


def test_diff_page_shows_what_diff_prints_for_the_change_it_describes(tmp_path, monkeypatch):
    require_tool("git", "the page replays a git workflow")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples" / "shop", "policy")
    shop = Path("policy/shop.mesh")
    deny = "  deny  * -> orders DELETE"
    assert deny in shop.read_text()
    shop.write_text(shop.read_text().replace(deny, "  deny  payments/* -> orders /api/admin/*\n" + deny))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"], ["update-ref", "refs/remotes/origin/main",
                                                                           "HEAD"]):
        subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], check=True)
    lines = [line for line in shop.read_text().splitlines(True)
             if not line.strip().startswith("allow frontend -> payments grpc payments.v1.Payments/Charge")]
    widened = [re.sub(r"allow payments/\* -> orders GET\b.*", "allow payments/* -> orders GET,POST", line)
               for line in lines]
    assert widened != lines
    shop.write_text("".join(widened))
    [(command, shown), *_] = transcript((DOCS / "diff.md").read_text())
    assert invoke(shlex.split(command)[1:], code=1).output == shown


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_of_the_docs_resolve():
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and file.suffix == ".md":
                anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", file.read_text(), re.MULTILINE)}
                if anchor not in anchors:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_quick_start_has_two_commands_and_ci_runs_the_second_one_step_at_a_time():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line for block in blocks(quick, "sh") for line in block.splitlines() if not line.startswith("#")]
    assert len(commands) == 2 and commands[0].endswith("--target istio --out out/istio")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    steps = commands[1].split(" && ")
    assert steps[-1].endswith("pytest -n auto")
    at = [ci.index(step) for step in steps]  # each step a line of its own: 'set -e' stops at any of them
    assert at == sorted(at)
    assert ci[1:].count("set -euo pipefail") == 1 and ci[-1] == 'echo "== CI passed"'
    assert at[-2] < ci.index(".venv/bin/ruff check .") < ci.index(".venv/bin/mypy") < at[-1]  # types, lint, tests
    fast = readme.split("## Tests", 1)[1].split("\n## ", 1)[0]
    assert 'pytest -m "not slow" -n auto' in fast
