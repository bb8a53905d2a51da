"""Parse ``.mesh`` text into syntax trees. The only package that imports lark."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from lark import Lark, Token
from lark.exceptions import UnexpectedInput, VisitError

from ..diagnostics import Collector, MeshError
from ..resources import grammar_dir
from ..source import SourceFile, Span
from . import ast
from .errors import to_diagnostic
from .tables import cache_option
from .transform import COMMENT, ToAst

__all__ = ["ast", "parse_file", "parse_file_with_comments", "parse_files", "parse_query", "parser"]

T = TypeVar("T")


#: the grammar's start rules: a policy file, and the question of ``meshpolicy explain``
STARTS = ["start", "query"]


@cache
def parser(strict: bool = False) -> Lark:
    """The one parser: LALR, positions propagated. ``strict`` (tests) refuses grammar collisions."""
    grammar = grammar_dir() / "mesh.lark"
    return Lark.open(
        str(grammar),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        strict=strict,
        start=STARTS,
        cache=cache_option(grammar, "strict" if strict else "plain"),
    )


def parse_file(src: SourceFile) -> ast.File:
    """Parse one file; raises :class:`MeshError` with one diagnostic on a syntax error."""
    return _parse(src, parser())


def _parse(src: SourceFile, lark: Lark) -> ast.File:
    text = src.text if src.text.endswith("\n") else src.text + "\n"
    return ast.File(src.name, _transform(src, lark, text, "start"))


def parse_query(src: SourceFile) -> ast.Query:
    """The question of ``meshpolicy explain`` (one line, ``src.text``), with the same parser and the same
    diagnostics as a policy file; raises :class:`MeshError` on a syntax error."""
    query: ast.Query = _transform(src, parser(), src.text, "query")
    return query


def _transform(src: SourceFile, lark: Lark, text: str, start: str) -> Any:
    try:
        tree = lark.parse(text, start=start)
        return ToAst(src.name, src.text).transform(tree)
    except UnexpectedInput as exc:
        raise MeshError([to_diagnostic(exc, lark, src.name, src.text, start)]) from None
    except VisitError as exc:  # a transformer bug, not the user's: re-raise the original
        raise exc.orig_exc from None


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



@cache
def _layout_parser() -> Lark:
    grammar = grammar_dir() / "mesh.lark"
    return Lark.open(
        str(grammar),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=cache_option(grammar, "layout"),
        lexer_callbacks={"_NL": _SINK, "COMMENT": _SINK, "RBRACE": _SINK},
        start=STARTS,
    )


def parse_file_with_comments(src: SourceFile) -> tuple[ast.File, ast.Layout]:
    """Parse one file like :func:`parse_file`, and also return its comments and closing-brace lines."""
    with _SINK.lock:
        _SINK.tokens = []
        try:
            tree = _parse(src, _layout_parser())
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
