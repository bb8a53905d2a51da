"""Parse ``.mesh`` text into syntax trees. The only package that imports lark."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import cache
from typing import TypeVar

from lark import Lark, Token
from lark.exceptions import UnexpectedInput, VisitError

from ..diagnostics import Collector, MeshError
from ..resources import grammar_dir
from ..source import SourceFile, Span
from . import ast
from .errors import to_diagnostic
from .tables import cache_option
from .transform import ToAst

__all__ = ["ast", "parse_file", "parse_file_with_comments", "parse_files", "parser"]

T = TypeVar("T")


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
        cache=cache_option(grammar, "strict" if strict else "plain"),
    )


def parse_file(src: SourceFile) -> ast.File:
    """Parse one file; raises :class:`MeshError` with one diagnostic on a syntax error."""
    return _parse(src, parser())


def _parse(src: SourceFile, lark: Lark) -> ast.File:
    text = src.text if src.text.endswith("\n") else src.text + "\n"
    try:
        tree = lark.parse(text)
        statements = ToAst(src.name, src.text).transform(tree)
    except UnexpectedInput as exc:
        raise MeshError([to_diagnostic(exc, lark, src.name, src.text)]) from None
    except VisitError as exc:  # a transformer bug, not the user's: re-raise the original
        raise exc.orig_exc from None
    return ast.File(src.name, statements)


def parse_files(sources: list[SourceFile], parse: Callable[[SourceFile], T] = parse_file) -> list[T]:
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
_COMMENT = re.compile(r"#[^\r\n]*")


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
            braces.append(tok.line)
            continue
        for offset, piece in enumerate(str(tok).split("\n")):
            found = _COMMENT.search(piece)
            if found is None:
                continue
            line = tok.line + offset
            col = (tok.column if offset == 0 else 1) + found.start()
            text = found.group().rstrip()
            before = lines[line - 1][: col - 1] if line <= len(lines) else ""
            span = Span(src.name, line, col, line, col + len(text))
            comments[(line, col)] = ast.Comment(text, span, not before.strip())
    return tree, ast.Layout(tuple(comments[k] for k in sorted(comments)), tuple(sorted(set(braces))))
