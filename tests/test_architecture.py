"""The layering the design depends on, checked: the IR is blind to backends, backends to the grammar."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import yaml
from helpers import ROOT

from meshpolicy.output.templating import yaml_scalar
from meshpolicy.parse import parser

PACKAGE = ROOT / "meshpolicy"


def imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.add(("." * node.level) + (node.module or ""))
    return found


def test_the_ir_imports_no_backend_renderer_or_parser():
    bad = {m for m in imports(PACKAGE / "graph")
           if any(x in m for x in ("backends", "readers", "jinja2", "lark", "parse", "output", "resolve"))}
    assert bad == set()


def test_the_picture_is_drawn_from_the_ir_alone():
    bad = {m for m in imports(PACKAGE / "view")
           if any(x in m for x in ("backends", "readers", "jinja2", "lark", "parse", "output", "resolve", "verify"))}
    assert bad == set()


def test_backends_know_nothing_of_the_grammar():
    bad = {m for m in imports(PACKAGE / "backends") if any(x in m for x in ("parse", "lark", "resolve", "readers"))}
    assert bad == set()


def test_readers_are_independent_of_the_backends():
    bad = {m for m in imports(PACKAGE / "readers") if "backends" in m}
    assert bad == set()


def imported_names(path: Path) -> dict[str, set[str]]:
    """module (as written) -> the names a file imports from it."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.setdefault(("." * node.level) + (node.module or ""), set()).update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, set()).add("*")
    return found


def test_the_ir_cannot_import_a_backend_or_a_reader():
    """graph/ is the IR: no module of it may reach a target, however the import is spelled."""
    for path in sorted((PACKAGE / "graph").rglob("*.py")):
        for module in imported_names(path):
            parts = module.lstrip(".").split(".")
            assert not {"backends", "readers", "view", "verify", "cluster"} & set(parts), f"{path.name}: {module}"
            outside = module.startswith("..") and parts[0] not in ("source", "diagnostics", "errors")
            assert not outside, f"{path.name}: {module}"


#: what a reader may take from the IR: the request it decides and the values it reports, never how the
#: IR decides (a reader that reused the decider's matching would prove nothing by agreeing with it)
READER_MAY_IMPORT = {"..graph.evaluate": {"Request", "Caller", "Seen"}, "..graph.model": {"Identity", "AccessGraph"},
                     "..graph.space": {"Mentions"}}


def test_readers_share_the_base_module_and_not_the_deciders_logic():
    from meshpolicy.readers import READERS, base

    for target, name in READERS.items():
        path = PACKAGE / "readers" / f"{name.rsplit('.', 1)[1]}.py"
        names = imported_names(path)
        assert {"Unmodelled", "Ambiguous", "Malformed"} <= names.get(".base", set()), f"{target}: errors from .base"
        for module, taken in names.items():
            if module.startswith("..graph"):
                assert taken <= READER_MAY_IMPORT.get(module, set()), f"{target} imports {taken} from {module}"
        defined = [n.name for n in ast.walk(ast.parse(path.read_text()))
                   if isinstance(n, ast.ClassDef) and any(getattr(b, "id", "").endswith(("Error", "Exception"))
                                                          or getattr(b, "id", "") in ("Unmodelled", "Ambiguous")
                                                          for b in n.bases)]
        assert defined == [], f"{target} defines its own exceptions {defined}: they belong to readers/base.py"
        module = importlib.import_module(name)
        assert module.Unmodelled is base.Unmodelled and module.Ambiguous is base.Ambiguous
    for path in (PACKAGE / "readers").glob("*.py"):  # world.py and base.py: the shared part, the IR as values
        for module, taken in imported_names(path).items():
            if module.startswith("..graph"):
                assert taken <= READER_MAY_IMPORT.get(module, set()), f"{path.name} imports {taken} from {module}"


def test_every_exception_meshpolicy_defines_has_the_one_base():
    """The CLI's error boundary catches the kinds of meshpolicy.errors; a class outside them would escape it."""
    import importlib
    import inspect

    from meshpolicy.errors import MeshpolicyError

    defined = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__main__.py":  # runs the CLI when imported
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
            ".__init__"))
        defined += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                    if issubclass(obj, BaseException) and obj.__module__ == module.__name__]
    assert len(defined) >= 8  # MeshError, SourceError, OutputError, CrdError, QueryError, FormatError, ...
    assert [e.__qualname__ for e in defined if not issubclass(e, MeshpolicyError)] == []


def test_only_the_parse_package_imports_lark():
    for path in PACKAGE.rglob("*.py"):
        if "parse" in path.relative_to(PACKAGE).parts:
            continue
        assert "lark" not in imports_of(path), path


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.add((node.module or "").split(".")[0])
    return out


def test_grammar_has_no_collisions_in_strict_mode():
    parser(strict=True)  # lark refuses shift/reduce conflicts and regex collisions


HOSTILE = ['a: b\n- c', '"quoted" \'single\'', "{x: [1, 2]}", "# not a comment", "yes", "08080", "",
           "\u2028line\u2029sep", "tab\there", "--- \n...", "&anchor *alias !tag", "null"]


def test_hostile_values_survive_the_yaml_filters():
    for value in HOSTILE:
        assert yaml.safe_load(f"key: {yaml_scalar(value)}\n") == {"key": value}
    assert json.loads(yaml_scalar(8080)) == 8080


def test_the_cluster_checks_read_manifests_and_the_ir_only():
    """--cluster's package knows the IR and the diagnostics, never the grammar, a backend, a reader or the output."""
    bad = {m for m in imports(PACKAGE / "cluster")
           if any(x in m for x in ("parse", "lark", "resolve", "backends", "readers", "output", "jinja2"))}
    assert bad == set()
