"""Shared test helpers: compiling cases, reading the shared schemas, comparing semantics."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from meshpolicy import pipeline
from meshpolicy.diagnostics import MeshError, render_text
from meshpolicy.graph.evaluate import decide
from meshpolicy.graph.space import requests
from meshpolicy.readers import World, get_reader
from meshpolicy.source import SourceFile

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CASES = TESTS / "cases"
SCHEMAS_ENV = "MESHPOLICY_SCHEMAS"


def case_paths() -> list[Path]:
    return sorted(CASES.rglob("*.mesh"))


def case_id(path: Path) -> str:
    return path.relative_to(CASES).with_suffix("").as_posix().replace("/", ".")


def expected_errors(path: Path, target: str | None = None) -> list[str]:
    """Codes in ``# expect-error: MPxxx`` (every target) and ``# expect-error[TARGET]: MPxxx`` header lines;
    without ``target``, only the errors of the policy itself (before any backend)."""
    found = re.findall(r"^# expect-error(?:\[([a-z]+)\])?: (MP\d+)", path.read_text(), re.MULTILINE)
    return [code for only, code in found if only in ("", target)]


def builds(target: str) -> list[Path]:
    """The cases that compile for ``target``."""
    return [p for p in case_paths() if not expected_errors(p, target)]


def source(path: Path) -> SourceFile:
    return SourceFile(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))


def compile_text(text: str, target: str = "istio", mode: str = "enforce", name: str = "test.mesh", **options):
    return pipeline.lower(pipeline.analyze([SourceFile(name, text)]), target, mode, **options)


def compile_case(path: Path, target: str, mode: str = "enforce", **options):
    return pipeline.lower(pipeline.analyze([source(path)]), target, mode, **options)


def errors_text(err: MeshError, sources: list[SourceFile]) -> str:
    by_name = {s.name: s for s in sources}
    return "\n".join(render_text(d, by_name) for d in err.diagnostics) + "\n"


def compile_errors(text: str, target: str = "istio", name: str = "policy.mesh") -> str:
    """The rendered diagnostics of a policy that must fail to build for ``target``."""
    src = SourceFile(name, text)
    with pytest.raises(MeshError) as err:
        pipeline.lower(pipeline.analyze([src]), target)
    return errors_text(err.value, [src]).rstrip("\n")


def snapshot_text(files: dict[str, str]) -> str:
    """All files of a build as one multi-document YAML text, each headed by its path."""
    return "".join(f"--- # {path}\n{text}" for path, text in sorted(files.items()))


def documents(files: dict[str, str]) -> list[dict]:
    """The Kubernetes objects of a build: neither the kustomization nor the install values (``_values/``)."""
    docs = []
    for path, text in sorted(files.items()):
        if path == "kustomization.yaml" or path.startswith("_values/"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d is not None)
    return docs


def require_tool(name: str, why: str) -> str:
    """The path of a real tool a test drives; skip with a reason where it is absent, fail in CI (CI=true)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI: {why}")
        pytest.skip(f"{name} is not installed: {why}")
    return path


def schemas_root() -> Path:
    """``../shared/schemas``, from the environment; skip with a reason when unset (CI always sets it)."""
    value = os.environ.get(SCHEMAS_ENV)
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{SCHEMAS_ENV} is not set, but CI must validate against the shared schemas")
        pytest.skip(f"{SCHEMAS_ENV} is not set: point it at ../shared/schemas to validate manifests "
                    "against the upstream CRD schemas (.ci/run does)")
    root = Path(value)
    if not root.is_dir():
        pytest.fail(f"{SCHEMAS_ENV}={value} is not a folder")
    return root


def as_json(doc: dict) -> dict:
    """YAML -> JSON as kubectl does (integer map keys become strings)."""
    return json.loads(json.dumps(doc, default=str))


# -- the CLI, as a user runs it ------------------------------------------------------

def invoke(args, code: int | None = 0, input: str | None = None):
    """Run ``meshpolicy ARGS`` in-process; assert the exit code and that no traceback escaped."""
    from typer.testing import CliRunner

    from meshpolicy.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"meshpolicy {' '.join(map(str, args))} raised {result.exception!r}") \
            from result.exception
    assert "Traceback" not in result.output
    if code is None:
        return result
    assert result.exit_code == code, (
        f"meshpolicy {' '.join(map(str, args))}: exit {result.exit_code}, expected {code}\n{result.output}")
    return result


def graph_shape(graph) -> tuple:
    """An access graph without positions or rule texts: what a change of layout must leave equal."""
    from dataclasses import fields, is_dataclass

    from meshpolicy.source import Span

    def strip(value):
        if isinstance(value, Span):
            return None
        if isinstance(value, tuple):
            items = [strip(v) for v in value]
            # collections of IR objects are sorted by position when built: sort them again without it
            return tuple(sorted(items, key=repr)) if all(is_dataclass(v) for v in value) else tuple(items)
        if is_dataclass(value):
            return (type(value).__name__,) + tuple(
                strip(getattr(value, f.name)) for f in fields(value)
                if not f.name.endswith(("origin", "origins")) and f.name != "text")
        return value
    return strip(graph)


def disagreements(build, target: str, **reader_options) -> list[str]:
    graph = build.analysis.graph
    reader = get_reader(target)(documents(build.files), World.from_graph(graph), **reader_options)
    out = []
    for req in requests(graph, getattr(reader, "mentions", None)):
        expected = decide(graph, req, build.open_probes).allowed
        if reader.decide(req) != expected:
            out.append(f"{req}: decider {'allows' if expected else 'refuses'}, {target} YAML "
                       f"{'refuses' if expected else 'allows'}")
    return out


def proved_or_refused(text: str, target: str) -> None:
    """A (random) policy either builds into YAML whose reader agrees with the decider on the whole request space,
    or is refused by the target with MP301 alone: never another error, never a build that means something else."""
    try:
        build = compile_text(text, target)
    except MeshError as err:
        assert {d.code for d in err.diagnostics if d.severity.value == "error"} == {"MP301"}, text
        return
    assert disagreements(build, target) == [], text
