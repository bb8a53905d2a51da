"""The reference the parser is compared with: the former parse-tree-then-transform path.

Until issue 12 the project parsed in two steps: Lark built a parse tree with ``propagate_positions``, and
this ``Transformer`` (then ``meshpolicy/parse/transform.py``) turned it into the syntax tree. The parser
now builds the syntax tree while it parses (``AstBuilder``); ``tests/test_parse_inline.py`` checks that
both give equal trees and the same diagnostics. Kept as it was, on purpose: do not "fix" it to match."""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from meshpolicy.diagnostics import MeshError
from meshpolicy.parse import ast, parser
from meshpolicy.parse.errors import to_diagnostic
from meshpolicy.parse.transform import code_of
from meshpolicy.source import SourceFile, Span


def reference_parse(src: SourceFile) -> ast.File:
    """``parse_file`` as it was: the parse tree of :func:`meshpolicy.parse.parser`, then :class:`ToAst`."""
    text = src.text if src.text.endswith("\n") else src.text + "\n"
    return ast.File(src.name, _transform(src, text, "start"))


def reference_query(src: SourceFile) -> ast.Query:
    """``parse_query`` as it was."""
    query: ast.Query = _transform(src, src.text, "query")
    return query


def _transform(src: SourceFile, text: str, start: str) -> Any:
    lark = parser()
    try:
        tree = lark.parse(text, start=start)
        return ToAst(src.name, src.text).transform(tree)
    except UnexpectedInput as exc:
        raise MeshError([to_diagnostic(exc, lark, src.name, src.text, start)]) from None
    except VisitError as exc:
        raise exc.orig_exc from None


class ToAst(Transformer):
    def __init__(self, file: str, text: str):
        super().__init__()
        self.file = file
        self.lines = text.splitlines()

    # -- helpers ---------------------------------------------------------
    def _span(self, meta) -> Span:
        """The node's span, clipped to its first line (statements end with a newline token)."""
        if meta.end_line == meta.line:
            return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)
        text = self.lines[meta.line - 1] if meta.line <= len(self.lines) else ""
        end = len(code_of(text).rstrip()) + 1
        return Span(self.file, meta.line, meta.column, meta.line, max(end, meta.column + 1))

    def _word(self, tok: Token) -> ast.Word:
        return ast.Word(str(tok), self._token_span(tok))

    def _token_span(self, tok: Token) -> Span:
        """Where a token stands (the lexer always sets its positions)."""
        return Span(self.file, tok.line or 0, tok.column or 0, tok.end_line or 0, tok.end_column or 0)

    def _words(self, items) -> tuple[ast.Word, ...]:
        return tuple(self._word(t) for t in items if isinstance(t, Token))

    # -- statements ------------------------------------------------------
    def start(self, items):
        return tuple(items)

    @v_args(meta=True)
    def trust_domain(self, meta, items):
        return ast.TrustDomain(self._word(items[0]), self._span(meta))

    def mtls_stmt(self, items):
        return items[0]

    @v_args(meta=True)
    def mtls(self, meta, items):
        ports = items[1] if len(items) > 1 else ()
        return ast.Mtls(self._word(items[0]), ports, self._span(meta))

    def mtls_ports(self, items):
        return self._words(items)

    @v_args(meta=True)
    def namespace(self, meta, items):
        name = self._word(items[0])
        external = len(items) > 1 and isinstance(items[1], Token) and items[1].type == "EXTERNAL"
        body = tuple(i for i in items[1:] if not isinstance(i, Token))
        return ast.Namespace(name, external, body, self._span(meta))

    @v_args(meta=True)
    def service(self, meta, items):
        return ast.Service(self._word(items[0]), tuple(items[1:]), False, self._span(meta))

    @v_args(meta=True)
    def service_block(self, meta, items):
        return ast.Service(self._word(items[0]), tuple(items[1:]), True, self._span(meta))

    @v_args(meta=True)
    def account(self, meta, items):
        return ast.Account(self._word(items[0]), self._span(meta))

    @v_args(meta=True)
    def labels(self, meta, items):
        return ast.Labels(self._words(items), self._span(meta))

    @v_args(meta=True)
    def port_decl(self, meta, items):
        tok = items[0]
        word = self._word(tok)
        number, _, proto = word.value[1:].partition("/")
        sp = word.span
        num = ast.Word(number, Span(sp.file, sp.line, sp.col + 1, sp.line, sp.col + 1 + len(number)))
        protocol = None
        if tok.type == "PORT_PROTO":
            start = sp.col + 2 + len(number)
            protocol = ast.Word(proto, Span(sp.file, sp.line, start, sp.line, start + max(len(proto), 1)))
        return ast.PortDecl(num, protocol, self._span(meta))

    @v_args(meta=True)
    def probes(self, meta, items):
        return ast.Probes(self._words(items), self._span(meta))

    @v_args(meta=True)
    def group(self, meta, items):
        return ast.Group(self._word(items[0]), tuple(items[1:]), self._span(meta))

    @v_args(meta=True)
    def authority(self, meta, items):
        """Words as written, except that a comma list is one word whatever its spacing (``a, b`` is ``a,b``)."""
        words: list[ast.Word] = []
        for word in self._words(items):
            if words and (words[-1].value.endswith(",") or word.value.startswith(",")):
                first = words.pop()
                span = Span(first.span.file, first.span.line, first.span.col, word.span.end_line, word.span.end_col)
                word = ast.Word(first.value + word.value, span)
            words.append(word)
        return ast.Authority(tuple(words), self._span(meta))

    # -- rules -----------------------------------------------------------
    @v_args(meta=True)
    def rule(self, meta, items):
        action, sources, dests, tail, *rest = items
        conditions = rest[0] if rest else ()
        text = code_of(self.lines[meta.line - 1]).strip() if meta.line <= len(self.lines) else ""
        return ast.Rule(str(action), sources, dests, tail.get("methods", ()), tail.get("paths", ()),
                        tail.get("grpc", ()), tail.get("ports", ()), self._span(meta), text,
                        conditions if isinstance(conditions, tuple) else ())

    def refs(self, items):
        return tuple(items)

    def _ref(self, kind: ast.RefKind, items: list[Token]) -> ast.Ref:
        return ast.Ref(kind, str(items[0]), self._token_span(items[0]))

    def address_ref(self, items):
        return self._ref(ast.RefKind.ADDRESS, items)

    def name_ref(self, items):
        return self._ref(ast.RefKind.NAME, items)

    def star_ref(self, items):
        return self._ref(ast.RefKind.STAR, items)

    def any_ref(self, items):
        return self._ref(ast.RefKind.ANY, items)

    def cidr_ref(self, items):
        return self._ref(ast.RefKind.CIDR, items)

    def wide_ref(self, items):
        return self._ref(ast.RefKind.WIDE, items)

    # -- request conditions and issuers (LANGUAGE 2.4) ------------------------------
    def conditions(self, items):
        return tuple(items)

    @v_args(meta=True)
    def header_condition(self, meta, items):
        value = self._word(items[1]) if len(items) > 1 else None
        return ast.Condition(ast.ConditionKind.HEADER, self._word(items[0]), value, self._span(meta))

    @v_args(meta=True)
    def jwt_condition(self, meta, items):
        return ast.Condition(ast.ConditionKind.JWT, self._word(items[0]), None, self._span(meta))

    @v_args(meta=True)
    def claim_condition(self, meta, items):
        return ast.Condition(ast.ConditionKind.CLAIM, self._word(items[0]), self._word(items[1]), self._span(meta))

    @v_args(meta=True)
    def issuer(self, meta, items):
        jwks = self._word(items[2]) if len(items) > 2 else None
        return ast.Issuer(self._word(items[0]), self._word(items[1]), jwks, self._span(meta))

    # -- the question of explain ---------------------------------------------------
    @v_args(meta=True)
    def query(self, meta, items):
        caller, destination, tail = items
        return ast.Query(caller, destination, tail.get("NAME"), tail.get("PATH"), tail.get("grpc"),
                         tail.get("port"), self._span(meta))

    def query_tail(self, items):
        words = {t.type: self._word(t) for t in items}
        for kind in ("PORT", "PORT_NAME"):
            if kind in words:
                words["port"] = self._port(words.pop(kind))
        return words

    def query_grpc(self, items):
        out = {"grpc": self._word(items[0])}
        if len(items) > 1:
            out["port"] = self._port(self._word(items[1]))
        return out

    @staticmethod
    def _port(word: ast.Word) -> ast.Word:
        """``:8080`` -> ``8080``, with its span."""
        sp = word.span
        return ast.Word(word.value[1:], Span(sp.file, sp.line, sp.col + 1, sp.end_line, sp.end_col))

    def rule_tail(self, items):
        return dict(items)

    def grpc_tail(self, items):
        return dict(items)

    def methods(self, items):
        return ("methods", self._words(items))

    def paths(self, items):
        return ("paths", self._words(items))

    def grpc(self, items):
        return ("grpc", self._words(items))

    def ports(self, items):
        return ("ports", tuple(self._port(w) if w.value.startswith(":") else w for w in self._words(items)))
