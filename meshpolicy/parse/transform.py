"""The syntax tree built while Lark parses: one callback per grammar rule, no parse tree.

:class:`AstBuilder` is the ``transformer=`` of the LALR parsers of :mod:`meshpolicy.parse`: Lark calls
its method for a rule each time the parser reduces that rule, with the rule's children (the tokens and
the values returned for its sub-rules), and keeps the return value as the child of the rule above. No
``Tree`` is built and no tree is walked afterwards (docs/performance.md, "The parse stage").

The parser is made with ``keep_all_tokens=True``, so a rule's children are *all* its tokens, keywords,
punctuation and the line break ``_NL`` included: a node's span is then taken from its first and last
token, as ``propagate_positions`` would compute it (Lark refuses ``v_args(meta=True)`` in an inline
transformer). A statement's span is clipped to its first line (it ends with the line break), exactly as
before; ``tests/test_parse_inline.py`` compares every tree with the former parse-tree-then-transform path.
Builds nodes only: no lookup, no validation.
"""

from __future__ import annotations

import re
from typing import Any

from lark import Token

from ..source import Span
from . import ast

#: a comment: a '#' after white space or at the start of a line (grammar/mesh.lark, COMMENT)
COMMENT = re.compile(r"(?<!\S)#[^\r\n]*")


def code_of(line: str) -> str:
    """A source line without its comment (a '#' inside a word is not one)."""
    found = COMMENT.search(line)
    return line[:found.start()] if found else line


Word, Ref, NAME = ast.Word, ast.Ref, ast.RefKind.NAME

#: a token from the lexer (``lark.Token``), whose positions the lexer always sets (Lark types them optional)
Tok = Any


class AstBuilder:
    """Lark's inline callbacks for ``grammar/mesh.lark``; one file at a time (:meth:`begin`).

    Each method is named after a rule (or its alias) and receives that rule's children as Lark reduces
    it; a rule marked ``?`` with one child is that child (Lark does not call the method). The children
    lists below are written out rule by rule, keywords included (``keep_all_tokens``)."""

    def __init__(self) -> None:
        self.file = ""
        self.lines: list[str] = []

    def begin(self, file: str, text: str) -> None:
        """Set the file the next parse reads: its display name, and its lines for the spans of statements."""
        self.file = file
        self.lines = text.splitlines()

    # -- helpers ---------------------------------------------------------
    def _span(self, first: Tok, last: Tok) -> Span:
        """From ``first`` to the end of ``last`` (a token, or a word or reference made of one), clipped to the
        first line: a statement ends with its line break, a block with its closing line."""
        return self._region(first.line, first.column, last)

    def _region(self, line: int, col: int, last: Tok) -> Span:
        if isinstance(last, (ast.Word, ast.Ref)):
            end_line, end_col = last.span.end_line, last.span.end_col
        else:
            end_line, end_col = last.end_line, last.end_column
        if end_line == line:
            return Span(self.file, line, col, end_line, end_col)
        lines = self.lines
        text = lines[line - 1] if line <= len(lines) else ""
        end = len(code_of(text).rstrip()) + 1
        return Span(self.file, line, col, line, max(end, col + 1))

    def _word(self, tok: Tok) -> ast.Word:
        return Word(str(tok), Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column))

    def _words(self, tokens: list[Tok]) -> tuple[ast.Word, ...]:
        file = self.file
        return tuple([Word(str(t), Span(file, t.line, t.column, t.end_line, t.end_column)) for t in tokens])

    def _port(self, tok: Tok) -> ast.Word:
        """``:8080`` -> ``8080``, its span without the colon."""
        return Word(str(tok)[1:], Span(self.file, tok.line, tok.column + 1, tok.end_line, tok.end_column))

    # -- statements ------------------------------------------------------
    def start(self, c: list[Any]) -> tuple[ast.Statement, ...]:  # _NL? statement*
        return tuple(s for s in c if not isinstance(s, Token))

    def trust_domain(self, c: list[Any]) -> ast.TrustDomain:  # "trust-domain" NAME _NL
        return ast.TrustDomain(self._word(c[1]), self._span(c[0], c[-1]))

    def mtls_stmt(self, c: list[Any]) -> ast.Mtls:  # mtls _NL
        return c[0]

    def mtls(self, c: list[Any]) -> ast.Mtls:  # "mtls" MTLS_MODE mtls_ports?
        ports = c[2] if len(c) > 2 else ()
        return ast.Mtls(self._word(c[1]), ports, self._span(c[0], ports[-1] if ports else c[1]))

    def mtls_ports(self, c: list[Any]) -> tuple[ast.Word, ...]:  # "on" NUMBER ("," NUMBER)*
        return self._words(c[1::2])

    def namespace(self, c: list[Any]) -> ast.Namespace:  # "namespace" NAME EXTERNAL? "{" _NL statement* "}" _NL
        external = c[2].type == "EXTERNAL"
        body = tuple(s for s in c[2:] if not isinstance(s, Token))
        return ast.Namespace(self._word(c[1]), external, body, self._span(c[0], c[-1]))

    def service(self, c: list[Any]) -> ast.Service:  # "service" NAME attr* _NL
        return ast.Service(self._word(c[1]), tuple(c[2:-1]), False, self._span(c[0], c[-1]))

    def service_block(self, c: list[Any]) -> ast.Service:  # "service" NAME attr* "{" _NL (attr+ _NL)* "}" _NL
        attrs = tuple(a for a in c[2:] if not isinstance(a, Token))
        return ast.Service(self._word(c[1]), attrs, True, self._span(c[0], c[-1]))

    def account(self, c: list[Any]) -> ast.Account:  # "account" NAME
        return ast.Account(self._word(c[1]), self._span(c[0], c[1]))

    def labels(self, c: list[Any]) -> ast.Labels:  # "labels" LABEL ("," LABEL)*
        return ast.Labels(self._words(c[1::2]), self._span(c[0], c[-1]))

    def port_decl(self, c: list[Any]) -> ast.PortDecl:  # PORT_PROTO | PORT
        tok = c[0]
        value, file, line, col = str(tok), self.file, tok.line, tok.column
        number, _, proto = value[1:].partition("/")
        num = Word(number, Span(file, line, col + 1, line, col + 1 + len(number)))
        protocol = None
        if tok.type == "PORT_PROTO":
            begin = col + 2 + len(number)
            protocol = Word(proto, Span(file, line, begin, line, begin + max(len(proto), 1)))
        return ast.PortDecl(num, protocol, self._span(tok, tok))

    def probes(self, c: list[Any]) -> ast.Probes:  # "probes" PATH ("," PATH)*
        return ast.Probes(self._words(c[1::2]), self._span(c[0], c[-1]))

    def group(self, c: list[Any]) -> ast.Group:  # "group" NAME "=" ref ("," ref)* _NL
        return ast.Group(self._word(c[1]), tuple(c[3:-1:2]), self._span(c[0], c[-1]))

    def authority(self, c: list[Any]) -> ast.Authority:  # "authority" AUTHORITY_WORD* _NL
        """Words as written, except that a comma list is one word whatever its spacing (``a, b`` is ``a,b``)."""
        words: list[ast.Word] = []
        for word in self._words(c[1:-1]):
            if words and (words[-1].value.endswith(",") or word.value.startswith(",")):
                first = words.pop()
                span = Span(first.span.file, first.span.line, first.span.col, word.span.end_line, word.span.end_col)
                word = Word(first.value + word.value, span)
            words.append(word)
        return ast.Authority(tuple(words), self._span(c[0], c[-1]))

    # -- rules -----------------------------------------------------------
    def rule(self, c: list[Any]) -> ast.Rule:  # ACTION refs "->" refs rule_tail conditions? _NL
        action, tail, last, lines, file = c[0], c[4], c[-1], self.lines, self.file
        line, col = action.line, action.column
        code = code_of(lines[line - 1]) if line <= len(lines) else ""
        if last.end_line == line:  # never (a rule ends with its line break): _span, without a second code_of
            span = Span(file, line, col, line, last.end_column)
        else:
            span = Span(file, line, col, line, max(len(code.rstrip()) + 1, col + 1))
        return ast.Rule(str(action), c[1], c[3], tail.get("methods", ()), tail.get("paths", ()),
                        tail.get("grpc", ()), tail.get("ports", ()), span, code.strip(), c[5] if len(c) > 6 else ())

    def refs(self, c: list[Any]) -> tuple[ast.Ref, ...]:  # ref ("," ref)*
        return tuple(c[::2])

    def _ref(self, kind: ast.RefKind, tok: Tok) -> ast.Ref:
        return Ref(kind, str(tok), Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column))

    def address_ref(self, c: list[Any]) -> ast.Ref:
        return self._ref(ast.RefKind.ADDRESS, c[0])

    def name_ref(self, c: list[Any]) -> ast.Ref:  # the most frequent node: written out
        tok = c[0]
        return Ref(NAME, str(tok), Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column))

    def star_ref(self, c: list[Any]) -> ast.Ref:
        return self._ref(ast.RefKind.STAR, c[0])

    def any_ref(self, c: list[Any]) -> ast.Ref:
        return self._ref(ast.RefKind.ANY, c[0])

    def cidr_ref(self, c: list[Any]) -> ast.Ref:
        return self._ref(ast.RefKind.CIDR, c[0])

    def wide_ref(self, c: list[Any]) -> ast.Ref:
        return self._ref(ast.RefKind.WIDE, c[0])

    def rule_tail(self, c: list[Any]) -> dict[str, tuple[ast.Word, ...]]:  # methods? paths? ports?
        return dict(c)

    def grpc_tail(self, c: list[Any]) -> dict[str, tuple[ast.Word, ...]]:  # grpc ports?
        return dict(c)

    def methods(self, c: list[Any]) -> tuple[str, tuple[ast.Word, ...]]:  # NAME ("," NAME)*
        return ("methods", self._words(c[::2]))

    def paths(self, c: list[Any]) -> tuple[str, tuple[ast.Word, ...]]:  # PATH ("," PATH)*
        return ("paths", self._words(c[::2]))

    def grpc(self, c: list[Any]) -> tuple[str, tuple[ast.Word, ...]]:  # "grpc" NAME ("," NAME)*
        return ("grpc", self._words(c[1::2]))

    def ports(self, c: list[Any]) -> tuple[str, tuple[ast.Word, ...]]:
        # (PORT | PORT_NAME) ("," (PORT | NUMBER | PORT_NAME | NAME))*: ':8080' is the number 8080
        return ("ports", tuple([self._port(t) if t.startswith(":") else self._word(t) for t in c[::2]]))

    # -- request conditions and issuers (LANGUAGE 2.4) ------------------------------
    def conditions(self, c: list[Any]) -> tuple[ast.Condition, ...]:  # "if" condition ("," condition)*
        return tuple(c[1::2])

    def header_condition(self, c: list[Any]) -> ast.Condition:  # "header" COND_KEY ("=" COND_VALUE)?
        value = self._word(c[3]) if len(c) > 2 else None
        return ast.Condition(ast.ConditionKind.HEADER, self._word(c[1]), value, self._span(c[0], c[-1]))

    def jwt_condition(self, c: list[Any]) -> ast.Condition:  # "jwt" NAME
        return ast.Condition(ast.ConditionKind.JWT, self._word(c[1]), None, self._span(c[0], c[-1]))

    def claim_condition(self, c: list[Any]) -> ast.Condition:  # "claim" COND_KEY "=" COND_VALUE
        return ast.Condition(ast.ConditionKind.CLAIM, self._word(c[1]), self._word(c[3]), self._span(c[0], c[-1]))

    def issuer(self, c: list[Any]) -> ast.Issuer:  # "issuer" NAME URL ("jwks" URL)? _NL
        jwks = self._word(c[4]) if len(c) > 4 else None
        return ast.Issuer(self._word(c[1]), self._word(c[2]), jwks, self._span(c[0], c[-1]))

    # -- the question of explain ---------------------------------------------------
    def query(self, c: list[Any]) -> ast.Query:  # caller "->" ref query_tail
        caller, _, destination, (words, last) = c
        span = self._region(caller.span.line, caller.span.col, last if last is not None else destination)
        return ast.Query(caller, destination, words.get("NAME"), words.get("PATH"), words.get("grpc"),
                         words.get("port"), span)

    def query_tail(self, c: list[Any]) -> tuple[dict[str, ast.Word], Tok | None]:
        # NAME? PATH? (PORT | PORT_NAME)?: the words by their token's type, and the last token (None: none)
        words = {}
        for tok in c:
            if tok.type in ("PORT", "PORT_NAME"):
                words["port"] = self._port(tok)
            else:
                words[tok.type] = self._word(tok)
        return words, (c[-1] if c else None)

    def query_grpc(self, c: list[Any]) -> tuple[dict[str, ast.Word], Tok]:  # "grpc" NAME (PORT | PORT_NAME)?
        words = {"grpc": self._word(c[1])}
        if len(c) > 2:
            words["port"] = self._port(c[2])
        return words, c[-1]

