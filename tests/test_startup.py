"""Issue 12, the instant CLI: light commands import only what they need; the LALR tables are cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshpolicy.parse import tables

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"

#: what neither ``check`` nor ``targets`` may load: the schema validator, templates, the backends'
#: lowering, the verifier and its readers, the view package
HEAVY = ("jsonschema", "jinja2", "meshpolicy.backends.istio", "meshpolicy.backends.linkerd",
         "meshpolicy.verify", "meshpolicy.readers", "meshpolicy.view", "meshpolicy.output.templating",
         "meshpolicy.cluster")

_PROBE = """
import json, sys
sys.argv = ["meshpolicy", *sys.argv[1:]]
from meshpolicy.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True,
                          env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


@pytest.mark.parametrize(("args", "heavy"), [(("check", str(SHOP)), HEAVY),
                                             (("targets",), (*HEAVY, "lark", "yaml", "meshpolicy.parse"))],
                         ids=["check", "targets"])
def test_light_commands_do_not_import_what_they_do_not_need(args, heavy):
    code, modules = _modules_after(*args)
    assert code == 0
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))
    assert loaded == []


def test_build_still_imports_what_it_needs(tmp_path):
    code, modules = _modules_after("build", "--target", "istio", "--out", str(tmp_path / "out"), str(SHOP))
    assert code == 0
    assert {"jinja2", "meshpolicy.backends.istio", "meshpolicy.verify"} <= modules


def test_the_table_cache_key_follows_the_grammar(tmp_path):
    grammar = tmp_path / "mesh.lark"
    grammar.write_text((ROOT / "grammar" / "mesh.lark").read_text())
    before = tables.cache_key(grammar, "plain")
    assert tables.cache_key(grammar, "strict") != before  # each variant its own file
    grammar.write_text(grammar.read_text() + "\n// one more line\n")
    assert tables.cache_key(grammar, "plain") != before


def test_the_parser_uses_its_cache_and_a_changed_grammar_never_reads_a_stale_one(tmp_path, monkeypatch):
    from lark import Lark

    monkeypatch.setenv("MESHPOLICY_CACHE_DIR", str(tmp_path / "cache"))
    grammar = tmp_path / "g.lark"
    grammar.write_text('start: "a"\n')

    def make() -> Lark:
        return Lark.open(str(grammar), parser="lalr", cache=tables.cache_option(grammar, "plain"))

    make()
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1  # written on the first run
    os.utime(files[0], ns=(1, 1))
    assert make().parse("a")
    assert files[0].stat().st_mtime_ns == 1  # read, not rebuilt: Lark rewrites the file only when it builds
    grammar.write_text('start: "b"\n')  # a changed grammar: another file, the old table unused
    changed = make()
    assert changed.parse("b")
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_the_project_parser_writes_its_tables_to_the_cache(tmp_path):
    env = {**_env(), "MESHPOLICY_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):
        code, _modules = _modules_after("check", str(SHOP), env=env)
        assert code == 0
    assert [p.name.split("-")[1] for p in (tmp_path / "cache").iterdir()] == ["inline"]  # the tree parser: errors only


@pytest.mark.parametrize("kind", ["unwritable", "not a folder", "off"])
def test_an_unusable_cache_falls_back_silently(tmp_path, kind):
    if kind == "unwritable":
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
    elif kind == "not a folder":
        folder = tmp_path / "file"
        folder.write_text("")
    env = {**_env(), "MESHPOLICY_CACHE_DIR": "" if kind == "off" else str(folder)}
    done = subprocess.run([sys.executable, "-m", "meshpolicy", "check", str(SHOP)], check=False,
                          capture_output=True, text=True, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("ok: ")


def _env() -> dict[str, str]:
    return dict(os.environ)
