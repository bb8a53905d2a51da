"""The same input gives the same bytes: across runs, file orders, file splits and hash seeds."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from helpers import ROOT

from meshpolicy import pipeline
from meshpolicy.backends import TARGETS
from meshpolicy.source import SourceFile

EXAMPLE = ROOT / "examples" / "shop"


def statements(text: str) -> list[str]:
    """Top-level statements (a block with its body counts as one), comments dropped."""
    out, current, depth = [], [], 0
    for line in text.splitlines():
        code = line.split("#", 1)[0].rstrip()
        if not code.strip():
            continue
        current.append(code)
        depth += code.count("{") - code.count("}")
        if depth == 0:
            out.append("\n".join(current) + "\n")
            current = []
    return out


def example_statements() -> list[str]:
    return [s for f in sorted(EXAMPLE.glob("*.mesh")) for s in statements(f.read_text())]


def build(files: list[SourceFile], target: str) -> dict[str, str]:
    return pipeline.lower(pipeline.analyze(files), target).files


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_repeated_runs_are_byte_identical(target):
    files = [SourceFile(p.name, p.read_text()) for p in sorted(EXAMPLE.glob("*.mesh"))]
    first = build(files, target)
    for _ in range(3):
        assert build(files, target) == first


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_statement_order_and_file_split_do_not_matter(target, seed):
    """Shuffle the top-level statements, spread them over files in any order: same output, same
    provenance (which is per file and line, so we compare everything but the source annotation)."""
    stmts = example_statements()
    reference = build([SourceFile("all.mesh", "".join(stmts))], target)
    rng = random.Random(seed)
    rng.shuffle(stmts)
    cut = sorted(rng.sample(range(1, len(stmts)), 2))
    parts = [stmts[: cut[0]], stmts[cut[0]: cut[1]], stmts[cut[1]:]]
    files = [SourceFile(f"part{i}.mesh", "".join(p)) for i, p in enumerate(parts)]
    rng.shuffle(files)
    shuffled = build(files, target)

    def strip(files: dict[str, str]) -> dict[str, str]:
        return {k: "\n".join(l for l in v.splitlines() if "meshpolicy.io/source" not in l) for k, v in files.items()}

    assert strip(shuffled) == strip(reference)


@pytest.mark.slow
def test_file_order_on_the_command_line_does_not_matter(tmp_path):
    outs = []
    names = sorted(p.name for p in EXAMPLE.glob("*.mesh"))
    for order in (names, list(reversed(names))):
        out = tmp_path / f"out{len(outs)}"
        subprocess.run([sys.executable, "-m", "meshpolicy", "build", *order, "-t", "istio", "-o", str(out)],
                       cwd=EXAMPLE, check=True, capture_output=True)
        outs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outs[0] == outs[1]


@pytest.mark.slow
def test_output_does_not_depend_on_the_hash_seed(tmp_path):
    outs = []
    for seed in ("0", "12345"):
        out = tmp_path / f"out{seed}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "meshpolicy", "build", ".", "-t", "istio", "-o", str(out)],
                       cwd=EXAMPLE, check=True, capture_output=True, env=env)
        outs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outs[0] == outs[1]
