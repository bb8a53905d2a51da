"""Parse ``.mesh`` text into syntax trees. The only package that imports lark."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from lark import Lark, Token
from lark.exceptions import UnexpectedInput

from ..diagnostics import Collector, MeshError
from ..errors import InternalError
from ..resources import grammar_dir
from ..source import SourceFile, Span
from . import ast
from .errors import to_diagnostic
from .tables import cache_option
from .transform import COMMENT, AstBuilder

__all__ = ["ast", "parse_file", "parse_file_with_comments", "parse_files", "parse_query", "parser"]

T = TypeVar("T")


#: the grammar's start rules: a policy file, and the question of ``meshpolicy explain``
STARTS = ["start", "query"]


@cache
def parser(strict: bool = False) -> Lark:
    """The tree-building parser: LALR, positions propagated, a Lark parse tree. The syntax tree is built by
    :func:`_inline_parser` (same grammar and lexer); this one is the benchmark's floor
    (benchmarks/bench.py) and makes the diagnostic of every syntax error (:func:`_syntax_error`).
    ``strict`` (tests) refuses grammar collisions."""
    return _open("strict" if strict else "plain", propagate_positions=True, strict=strict)


def _open(variant: str, **options: Any) -> Lark:
    """An LALR parser of the grammar with ``options``, its tables cached as ``variant`` (:mod:`.tables`)."""
    grammar = grammar_dir() / "mesh.lark"
    return Lark.open(str(grammar), parser="lalr", maybe_placeholders=False, start=STARTS,
                     cache=cache_option(grammar, variant), **options)


def parse_file(src: SourceFile) -> ast.File:
    """Parse one file; raises :class:`MeshError` with one diagnostic on a syntax error."""
    return _parse(src, _inline_parser())


@cache
def _inline_parser(layout: bool = False) -> Lark:
    """The parser that builds the syntax tree while it parses (``transformer=``, :class:`AstBuilder`).

    Same grammar and lexer as :func:`parser`; ``keep_all_tokens`` gives the callbacks every token, from
    which they take the spans. Its own tables in the cache: Lark hashes ``keep_all_tokens`` with the
    other options, and the callbacks are never in the cached file (Lark binds the current builder's
    methods when it loads the tables). ``layout``: the formatter's variant, whose lexer callbacks also
    collect comments and closing braces."""
    return _open("inline_layout" if layout else "inline", keep_all_tokens=True, transformer=_BUILDER,
                 lexer_callbacks={"_NL": _SINK, "COMMENT": _SINK, "RBRACE": _SINK} if layout else {})


#: the callbacks of both inline parsers; :data:`_PARSING` makes one parse at a time set its file
_BUILDER = AstBuilder()
_PARSING = threading.Lock()


def _parse(src: SourceFile, lark: Lark) -> ast.File:
    text = src.text if src.text.endswith("\n") else src.text + "\n"
    return ast.File(src.name, _build(src, lark, text, "start"))


def parse_query(src: SourceFile) -> ast.Query:
    """The question of ``meshpolicy explain`` (one line, ``src.text``), with the same parser and the same
    diagnostics as a policy file; raises :class:`MeshError` on a syntax error."""
    query: ast.Query = _build(src, _inline_parser(), src.text, "query")
    return query


def _build(src: SourceFile, lark: Lark, text: str, start: str) -> Any:
    with _PARSING:
        _BUILDER.begin(src.name, src.text)
        try:
            return lark.parse(text, start=start)
        except UnexpectedInput:
            pass
    raise _syntax_error(src, text, start)


def _syntax_error(src: SourceFile, text: str, start: str) -> MeshError:
    """The diagnostic of a text the inline parser refused, from the tree-building :func:`parser` (the same
    grammar): its error, and the parse states :func:`errors.to_diagnostic` matches examples against, are
    the ones every diagnostic has always been made from."""
    lark = parser()
    try:
        lark.parse(text, start=start)
    except UnexpectedInput as exc:
        return MeshError([to_diagnostic(exc, lark, src.name, src.text, start)])
    raise InternalError(f"{src.name}: the inline parser refused a text the tree parser accepts")


def parse_files(sources: list[SourceFile],
                parse: Callable[[SourceFile], T] = parse_file) -> list[T]:  # type: ignore[assignment]
    """Parse every file (with ``parse``); report the syntax errors of all files together."""
    out: list[T] = []
    collected = Collector()
    for src in sources:
        try:
            out.append(parse(src))
        except MeshError as err:
            collected.items.extend(err.diagnostics)
    collected.raise_if_errors()
    return out


# -- comments, for fmt ---------------------------------------------------------
# The grammar drops comments (`%ignore COMMENT`, and `_NL` swallows a trailing
# comment with its line break), so a second parser collects them with lexer
# callbacks (lark recipes: "Keeping track of comments"); the tree is the same.

class _Sink:
    """Where the callbacks of the layout parser put tokens; one parse at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: list[Token] = []

    def __call__(self, tok: Token) -> Token:
        self.tokens.append(tok)
        return tok


_SINK = _Sink()



def parse_file_with_comments(src: SourceFile) -> tuple[ast.File, ast.Layout]:
    """Parse one file like :func:`parse_file`, and also return its comments and closing-brace lines."""
    with _SINK.lock:
        _SINK.tokens = []
        try:
            tree = _parse(src, _inline_parser(layout=True))
        finally:
            tokens, _SINK.tokens = _SINK.tokens, []
    lines = src.text.splitlines()
    comments: dict[tuple[int, int], ast.Comment] = {}
    braces: list[int] = []
    for tok in tokens:
        if tok.type == "RBRACE":
            braces.append(tok.line or 0)
            continue
        for offset, piece in enumerate(str(tok).split("\n")):
            found = COMMENT.search(piece)
            if found is None:
                continue
            line = (tok.line or 0) + offset
            col = ((tok.column or 1) if offset == 0 else 1) + found.start()
            text = found.group().rstrip()
            before = lines[line - 1][: col - 1] if line <= len(lines) else ""
            span = Span(src.name, line, col, line, col + len(text))
            comments[(line, col)] = ast.Comment(text, span, not before.strip())
    return tree, ast.Layout(tuple(comments[k] for k in sorted(comments)), tuple(sorted(set(braces))))
