"""Issue 12, the parse stage: the syntax tree built while Lark parses equals the former tree-then-transform one.

``meshpolicy.parse`` builds the tree with Lark's inline ``transformer=`` (``AstBuilder``, no parse tree); the
reference is the former path, a parse tree from ``parser()`` turned into the syntax tree by the former
``ToAst`` (``tests/reference_ast.py``). Both must give equal trees (and the same Python types: a lark
``Token`` is a ``str`` and compares equal to one) for every corpus case, example and generated mesh, and
the same diagnostics for every text that does not parse."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, case_paths, source
from reference_ast import reference_parse, reference_query

from meshpolicy.diagnostics import MeshError
from meshpolicy.errors import InternalError
from meshpolicy.parse import _inline_parser, ast, parse_file, parse_file_with_comments, parse_files, parse_query
from meshpolicy.parse.transform import AstBuilder
from meshpolicy.source import SourceFile, Span

EXAMPLES = sorted((ROOT / "examples").rglob("*.mesh"))
CORPUS = case_paths() + EXAMPLES


def _bench():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(parse, src):
    """The tree, or the diagnostics of a text that does not parse."""
    try:
        return parse(src)
    except MeshError as err:
        return err.diagnostics


def _types(value, path="tree"):
    """Every leaf of a syntax tree with its exact type: an equal tree of other types (a Token for a str)
    is still a different tree."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield path, type(value).__name__
        for f in dataclasses.fields(value):
            yield from _types(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple | list):
        yield path, type(value).__name__
        for i, item in enumerate(value):
            yield from _types(item, f"{path}[{i}]")
    else:
        yield path, type(value).__name__


def assert_same(src: SourceFile) -> None:
    expected, got = _outcome(reference_parse, src), _outcome(parse_file, src)
    assert got == expected
    assert list(_types(got)) == list(_types(expected))


@pytest.mark.parametrize("path", CORPUS, ids=[p.relative_to(ROOT).as_posix() for p in CORPUS])
def test_every_corpus_case_and_example_parses_to_the_same_tree(path):
    src = source(path)
    assert_same(src)
    assert parse_file_with_comments(src)[0] == reference_parse(src)  # the formatter's parser too


@pytest.mark.parametrize("case", ["mesh:120", "callers:30", "ports:40", "labels:40", "paths:40"])
def test_generated_meshes_parse_to_the_same_tree(case):
    sources = _bench().sources_of(case)
    assert parse_files(sources) == [reference_parse(s) for s in sources]
    for src in sources[:3]:
        assert list(_types(parse_file(src))) == list(_types(reference_parse(src)))


def test_the_trees_hold_only_the_projects_types():
    """No lark object (Tree, Token) anywhere: a value is a str, a span a Span."""
    for path in CORPUS:
        for where, kind in _types(parse_file(source(path))):
            assert kind not in ("Tree", "Token"), where


def test_spans_of_statements_are_clipped_to_their_first_line():
    text = ("namespace shop {  # a comment\n"
            "  service orders :8080/http {\n"
            "    account orders-sa\n"
            "  }\n"
            "  allow frontend -> orders GET /api/*, /x :8080   # why\n"
            "}\n")
    tree = parse_file(SourceFile("f.mesh", text))
    ns = tree.statements[0]
    assert isinstance(ns, ast.Namespace)
    assert ns.span == Span("f.mesh", 1, 1, 1, 17)
    service, rule = ns.body
    assert service.span == Span("f.mesh", 2, 3, 2, 30)
    assert service.attrs[1].span == Span("f.mesh", 3, 5, 3, 22)  # an attribute: its own tokens
    assert rule.span == Span("f.mesh", 5, 3, 5, 48)
    assert rule.text == "allow frontend -> orders GET /api/*, /x :8080"
    assert rule.ports[0] == ast.Word("8080", Span("f.mesh", 5, 44, 5, 48))


# Words and marks a mutation inserts: keywords, punctuation, every kind of token, and stray characters.
_INSERTS = ["->", ",", "{", "}", "=", ":8080", ":80/http", ":http", "GET", "/x", "*.png", "*", "**", "ns/**",
            "any", "10.0.0.0/8", "::1", "allow", "deny", "never", "service", "namespace", "group g =", "labels a=b",
            "account", "probes", "mtls strict", "on 80", "external", "if", "header x-a=b", "jwt", "claim c=d",
            "issuer", "https://x", "jwks", "authority", "grpc", "trust-domain", "#c", " #c", "\n", "\n\n", "@", "\t",
            "x#y", "}\n"]


def _mutants(text: str, rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        at = rng.randrange(len(text) + 1)
        kind = rng.randrange(4)
        if kind == 0:  # insert a word or a mark
            out.append(text[:at] + rng.choice(_INSERTS) + text[at:])
        elif kind == 1:  # cut a few characters
            out.append(text[:at] + text[at + rng.randint(1, 6):])
        elif kind == 2:  # drop a line
            lines = text.splitlines(keepends=True)
            del lines[rng.randrange(len(lines))]
            out.append("".join(lines))
        else:  # end the file early
            out.append(text[:at])
    return out


@pytest.mark.parametrize("path", CORPUS, ids=[p.relative_to(ROOT).as_posix() for p in CORPUS])
def test_broken_texts_get_the_same_diagnostics_or_the_same_tree(path):
    """Random edits of each case (seeded by its name): the same tree, or the same syntax errors."""
    src = source(path)
    rng = random.Random(src.name)
    refused = 0
    for text in _mutants(src.text, rng, 12):
        mutant = SourceFile(src.name, text)
        assert_same(mutant)
        refused += not isinstance(_outcome(parse_file, mutant), ast.File)
    assert refused  # the edits do break texts: the comparison covered the error path


QUESTIONS = ["shop/frontend -> shop/orders", "shop/frontend->shop/orders GET", "a -> b GET /x :8080",
             "a -> b /x", "a -> b :http", "a -> b grpc pkg.Svc/Get :9090", "a -> b grpc pkg.Svc/Get",
             "2001:db8::1 -> shop/legacy :7000", "10.1.2.3 -> b", "10.0.0.0/8 -> b", "* -> b", "any -> b",
             "ns/* -> b GET", "a -> ns/** GET",
             # do not read
             "a ->", "a -> b GET PUT", "a -> b :8080 GET", "a -> b GET /a /b", "a b", "-> b", "", "a -> b {",
             "a -> b grpc", "a -> b @", "a, c -> b", "a -> b #x"]


@pytest.mark.parametrize("question", QUESTIONS)
def test_explains_questions_read_the_same(question):
    src = SourceFile("<question>", question)
    expected, got = _outcome(reference_query, src), _outcome(parse_query, src)
    assert got == expected
    assert list(_types(got)) == list(_types(expected))


def test_every_rule_of_the_grammar_has_a_callback():
    """A rule without a method would come out as a lark Tree: every rule the parser reduces (not Lark's own
    ``__`` helpers, not a ``?rule`` that stands for its one child) is a method of the builder."""
    names = {rule.alias or rule.origin.name for rule in _inline_parser().rules
             if not rule.origin.name.startswith("_") and not (rule.options.expand1 and not rule.alias)}
    assert names and sorted(n for n in names if not callable(getattr(AstBuilder, n, None))) == []


def test_a_text_only_the_inline_parser_refuses_is_a_bug_not_a_diagnostic(monkeypatch):
    """The diagnostic of a syntax error comes from the tree parser; should it accept the text, the two
    parsers disagree: an internal error, never a silent pass or a made-up message."""
    from meshpolicy import parse

    class Accepting:
        def parse(self, text, start):
            return None

    monkeypatch.setattr(parse, "parser", lambda: Accepting())
    with pytest.raises(InternalError, match="inline parser refused"):
        parse_file(SourceFile("f.mesh", "allow a b\n"))


_PROBE = """
import json, sys
import meshpolicy.parse.transform as transform
if sys.argv[1] == "patched":  # a changed builder: the cached tables must not bring the old callbacks back
    transform.AstBuilder.name_ref = lambda self, c: transform.Ref(transform.NAME, "PATCHED", transform.Span("", 1, 1, 1, 1))
from meshpolicy.parse import parse_file, parse_file_with_comments, parse_query
from meshpolicy.source import SourceFile
src = SourceFile("f.mesh", open(sys.argv[2]).read())
print(json.dumps([repr(parse_file(src)), repr(parse_file_with_comments(src)),
                  repr(parse_query(SourceFile("<question>", "a -> b GET /x :80")))]))
"""


def _probe(mode: str, path: Path, cache: str) -> list[str]:
    env = {**os.environ, "MESHPOLICY_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", _PROBE, mode, str(path)], capture_output=True, text=True,
                          check=True, env=env)
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_the_cached_tables_give_the_same_trees_and_never_the_old_callbacks(tmp_path):
    path = ROOT / "examples" / "shop" / "shop.mesh"
    if not path.exists():
        path = EXAMPLES[0]
    cache = tmp_path / "cache"
    uncached = _probe("plain", path, "")
    assert _probe("plain", path, str(cache)) == uncached  # builds and writes the tables
    written = sorted(cache.iterdir())
    assert sorted(p.name.split("-")[1] for p in written) == ["inline", "inline_layout"]
    for p in written:
        os.utime(p, ns=(1, 1))
    assert _probe("plain", path, str(cache)) == uncached  # reads them
    assert [p.stat().st_mtime_ns for p in written] == [1, 1]  # read, not rebuilt
    patched = _probe("patched", path, str(cache))
    assert [p.stat().st_mtime_ns for p in written] == [1, 1]  # the same tables...
    assert "PATCHED" in patched[0] and patched != uncached  # ...with the callbacks of the builder of this run


@pytest.mark.parametrize("args", [["--services", "40", "--repeat", "2"], ["--services", "40", "--repeat", "1", "--no-gc"],
                                  ["--services", "40", "--repeat", "2", "--decode"]])
def test_the_parse_benchmark_prints_the_floor_the_parse_and_their_ratio(args):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "parse.py"), *args], capture_output=True,
                          text=True, check=True)
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 40 |"))
    cells = [float(cell) for cell in row.strip("| ").split(" | ")[1:]]
    assert len(cells) == (4 if "--decode" in args else 3) and all(c > 0 for c in cells)
    raw = next(line for line in done.stdout.splitlines() if line.startswith("<!-- floors"))
    runs = int(args[3])
    assert raw.count(",") == (3 if "--decode" in args else 2) * (runs - 1)  # every run of each, alternated
    assert ("collector off" in done.stdout) == ("--no-gc" in args)


def test_the_parse_benchmark_profiles_parse_files():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "parse.py"), "--profile", "40", "--top", "40"],
                          capture_output=True, text=True, check=True)
    assert "(parse_files)" in done.stdout and "(feed_token)" in done.stdout
