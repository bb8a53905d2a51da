"""The wheel carries the grammar and the templates: install it in a fresh venv and build the example."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest
from helpers import ROOT

#: builds a wheel and installs it in a fresh virtual environment (tens of seconds): the full suite only
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(ROOT)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = (work / "dist").glob("*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    done = subprocess.run([str(pip), "install", "--quiet", str(wheel)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return env_dir


def test_wheel_contains_grammar_and_templates(installed):
    import zipfile

    [wheel] = (installed.parent / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "meshpolicy/_grammar/mesh.lark" in names
    assert "meshpolicy/_templates/istio/authorizationpolicy.yaml.j2" in names
    # graph's JSON Schema and the HTML page's assets
    assert {"meshpolicy/view/graph.schema.json", "meshpolicy/view/page/graph.html", "meshpolicy/view/page/graph.js",
            "meshpolicy/view/page/graph.css"} <= set(names)


def test_installed_cli_builds_the_example_like_the_checkout(installed, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    done = subprocess.run([str(installed / "bin" / "meshpolicy"), "build", "examples/shop", "--target", "istio",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    from meshpolicy import pipeline

    expected = pipeline.build(["examples/shop"], "istio").files
    got = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert got == expected
