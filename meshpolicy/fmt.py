"""``meshpolicy fmt``: one canonical layout for ``.mesh`` files (docs/fmt.md).

The layout is rebuilt from the syntax tree, so it cannot depend on how a file
was spaced; comments come back from the layout parser (lexer callbacks, since
the grammar drops them). What it does:

- two spaces of indentation per block; one space between words and around
  ``->`` and ``=``; no trailing white space; a file ends with one line break;
- lists of references, paths and gRPC names are joined with ``", "``; lists
  of methods, labels, probes and ports with ``","`` (as LANGUAGE.md writes
  them: ``allow a, b -> c GET,POST /x, /y :80,443``);
- a service block holds one attribute per line, an inline service stays
  inline; statements and attributes keep their order;
- a comment keeps its text and its place: on its own line (indented with its
  block) or after code, two spaces after it;
- blank lines between statements are kept, at most one in a row, never at
  the start or the end of a block or of the file.

Formatting must never change meaning: :func:`format_source` re-parses its
output and refuses it (:class:`FormatError`, a bug) unless the syntax tree,
positions aside, and the comments are the same.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from .errors import InternalError
from .parse import ast, parse_file_with_comments
from .source import SourceFile

__all__ = ["FormatError", "format_source", "shape"]

INDENT = "  "
TRAILING_GAP = "  "


class FormatError(InternalError):
    """The formatted text would not mean what the input meant: a bug in fmt, never the user's."""


def format_source(src: SourceFile) -> str:
    """The canonical text of ``src``; raises :class:`~meshpolicy.diagnostics.MeshError` on a syntax error."""
    tree, layout = parse_file_with_comments(src)
    text = _Printer(src, layout).file(tree)
    again, again_layout = parse_file_with_comments(SourceFile(src.name, text))
    if shape(again) != shape(tree):
        raise FormatError(f"{src.name}: formatting would change the syntax tree")
    if [c.text for c in again_layout.comments] != [c.text for c in layout.comments]:
        raise FormatError(f"{src.name}: formatting would lose or move a comment")
    return text


def shape(node: Any) -> Any:
    """A syntax tree without positions (and without the raw rule text): what fmt must preserve."""
    if isinstance(node, tuple):
        return tuple(shape(n) for n in node)
    if isinstance(node, ast.Word):
        return node.value
    if is_dataclass(node):
        return (type(node).__name__,) + tuple(
            shape(getattr(node, f.name)) for f in fields(node) if f.name not in ("span", "text"))
    return node


# -- text of each construct ----------------------------------------------------

def _refs(refs: tuple[ast.Ref, ...]) -> str:
    return ", ".join(r.value for r in refs)


def _words(words: tuple[ast.Word, ...], sep: str = ",") -> str:
    return sep.join(w.value for w in words)


def _mtls(node: ast.Mtls) -> str:
    return f"mtls {node.mode.value}" + (f" on {_words(node.ports)}" if node.ports else "")


def _attr(node: ast.Attr) -> str:
    if isinstance(node, ast.Account):
        return f"account {node.name.value}"
    if isinstance(node, ast.Labels):
        return f"labels {_words(node.items)}"
    if isinstance(node, ast.PortDecl):
        return f":{node.number.value}" + (f"/{node.protocol.value}" if node.protocol else "")
    if isinstance(node, ast.Probes):
        return f"probes {_words(node.paths)}"
    return _mtls(node)


def _rule(node: ast.Rule) -> str:
    parts = [node.action, _refs(node.sources), "->", _refs(node.destinations)]
    if node.methods:
        parts.append(_words(node.methods))
    if node.paths:
        parts.append(_words(node.paths, ", "))
    if node.grpc:
        parts.append("grpc " + _words(node.grpc, ", "))
    if node.ports:
        parts.append(":" + _words(node.ports))
    if node.conditions:
        parts.append("if " + ", ".join(_condition(c) for c in node.conditions))
    return " ".join(parts)


def _condition(node: ast.Condition) -> str:
    """``header NAME=VALUE``, ``header NAME``, ``jwt ISSUER`` or ``claim NAME=VALUE``, as written."""
    return f"{node.kind.value} {node.key.value}" + (f"={node.value.value}" if node.value else "")


def _issuer(node: ast.Issuer) -> str:
    return f"issuer {node.name.value} {node.url.value}" + (f" jwks {node.jwks.value}" if node.jwks else "")


def _line(stmt: ast.Statement) -> str:
    if isinstance(stmt, ast.TrustDomain):
        return f"trust-domain {stmt.name.value}"
    if isinstance(stmt, ast.Mtls):
        return _mtls(stmt)
    if isinstance(stmt, ast.Service):
        return " ".join([f"service {stmt.name.value}", *(_attr(a) for a in stmt.attrs)])
    if isinstance(stmt, ast.Group):
        return f"group {stmt.name.value} = {_refs(stmt.refs)}"
    if isinstance(stmt, ast.Issuer):
        return _issuer(stmt)
    if isinstance(stmt, ast.Authority):
        return " ".join(["authority", *(w.value for w in stmt.words)])
    assert isinstance(stmt, ast.Rule)
    return _rule(stmt)


# -- layout --------------------------------------------------------------------

class _Printer:
    """Emits lines in source order, placing each comment before the first construct that follows it."""

    def __init__(self, src: SourceFile, layout: ast.Layout):
        self.lines = src.text.splitlines()
        self.own = [c for c in layout.comments if c.own_line]
        self.trailing = {c.span.line: c.text for c in layout.comments if not c.own_line}
        self.braces = layout.closing_braces
        self.out: list[str] = []
        self.last = 0          # the last source line emitted
        self.fresh = True      # at the start of the file or of a block: no blank line

    def file(self, tree: ast.File) -> str:
        for stmt in tree.statements:
            self.statement(stmt, 0)
        self.comments_before(len(self.lines) + 1, 0)
        return "\n".join(self.out) + "\n" if self.out else ""

    def statement(self, stmt: ast.Statement, depth: int) -> int:
        """Emit one statement; return the source line where it ends."""
        line = stmt.span.line
        if isinstance(stmt, ast.Namespace):
            self.put(line, f"namespace {stmt.name.value}" + (" external" if stmt.external else "") + " {", depth, opens=True)
            end = line
            for inner in stmt.body:
                end = self.statement(inner, depth + 1)
            return self.close(end, depth)
        if isinstance(stmt, ast.Service) and stmt.block:
            self.put(line, f"service {stmt.name.value} {{", depth, opens=True)
            end = line
            for i, attr in enumerate(stmt.attrs):
                end = attr.span.line
                shares_line = i + 1 < len(stmt.attrs) and stmt.attrs[i + 1].span.line == end
                self.put(end, _attr(attr), depth + 1, trailing=not shares_line and end != line)
            return self.close(end, depth)
        self.put(line, _line(stmt), depth)
        return line

    def put(self, line: int, text: str, depth: int, trailing: bool = True, opens: bool = False) -> None:
        self.comments_before(line, depth)
        self.gap(line)
        comment = self.trailing.pop(line, None) if trailing else None
        self.out.append(INDENT * depth + text + (TRAILING_GAP + comment if comment else ""))
        self.last, self.fresh = max(self.last, line), opens

    def close(self, end: int, depth: int) -> int:
        """The ``}`` of a block whose last construct ends on line ``end``."""
        line = next(b for b in self.braces if b > end)
        self.comments_before(line, depth + 1)
        comment = self.trailing.pop(line, None)
        self.out.append(INDENT * depth + "}" + (TRAILING_GAP + comment if comment else ""))
        self.last, self.fresh = line, False
        return line

    def comments_before(self, line: int, depth: int) -> None:
        while self.own and self.own[0].span.line < line:
            comment = self.own.pop(0)
            self.gap(comment.span.line)
            self.out.append(INDENT * depth + comment.text)
            self.last, self.fresh = comment.span.line, False

    def gap(self, line: int) -> None:
        """One blank line where the source had at least one since the last line emitted."""
        if not self.fresh and any(not self.lines[i - 1].strip() for i in range(self.last + 1, line)):
            self.out.append("")
