"""Parse ``.mesh`` text into syntax trees. The only package that imports lark."""

from __future__ import annotations

from functools import lru_cache

from lark import Lark
from lark.exceptions import UnexpectedInput, VisitError

from ..diagnostics import Collector, MeshError
from ..resources import grammar_dir
from ..source import SourceFile
from . import ast
from .errors import to_diagnostic
from .transform import ToAst

__all__ = ["ast", "parse_file", "parse_files", "parser"]


@lru_cache(maxsize=None)
def parser(strict: bool = False) -> Lark:
    """The one parser: LALR, positions propagated. ``strict`` (tests) refuses grammar collisions."""
    return Lark.open(
        str(grammar_dir() / "mesh.lark"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        strict=strict,
    )


def parse_file(src: SourceFile) -> ast.File:
    """Parse one file; raises :class:`MeshError` with one diagnostic on a syntax error."""
    text = src.text if src.text.endswith("\n") else src.text + "\n"
    try:
        tree = parser().parse(text)
        statements = ToAst(src.name, src.text).transform(tree)
    except UnexpectedInput as exc:
        raise MeshError([to_diagnostic(exc, parser(), src.name, src.text)]) from None
    except VisitError as exc:  # a transformer bug, not the user's: re-raise the original
        raise exc.orig_exc from None
    return ast.File(src.name, statements)


def parse_files(sources: list[SourceFile]) -> list[ast.File]:
    """Parse every file; report the syntax errors of all files together."""
    out: list[ast.File] = []
    collected = Collector()
    for src in sources:
        try:
            out.append(parse_file(src))
        except MeshError as err:
            collected.items.extend(err.diagnostics)
    collected.raise_if_errors()
    return out
