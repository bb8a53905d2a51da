"""Lark's parse errors -> diagnostics that say what was expected, with a caret."""

from __future__ import annotations

import re
from typing import Any

from lark import Lark
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from ..diagnostics import Diagnostic, Severity, shown
from ..source import Span
from .transform import code_of

KEYWORDS = frozenset(
    ["trust-domain", "mtls", "strict", "permissive", "on", "namespace", "external", "service", "account", "labels", "probes", "group", "allow", "deny", "never", "any", "grpc",
     "if", "header", "jwt", "claim", "issuer", "jwks"]
)

# Human descriptions of terminals, for "expected one of ...".
_DESCRIBE = {
    "NAME": "a name",
    "_NL": "end of line",
    "$END": "end of file",
    "PATH": "a path such as /api/*",
    "PORT": "a port such as :8080",
    "PORT_NAME": "a container port's name such as :http",
    "PORT_PROTO": "a port such as :8080/http",
    "NUMBER": "a port number",
    "CIDR": "a CIDR such as 10.0.0.0/8",
    "LABEL": "a label such as app=orders",
    "STAR": "'*'",
    "ANY": "'any'",
    "MTLS_MODE": "'strict' or 'permissive'",
    "ACTION": "'allow', 'deny' or 'never'",
    "EXTERNAL": "'external'",
    "AUTHORITY_WORD": "a setting of 'authority'",
    "COND_KEY": "a header or claim name such as x-tenant",
    "COND_VALUE": "a value such as acme",
    "URL": "a URL such as https://accounts.google.com",
}

# Labelled bad inputs (lark's match_examples): parser state -> named message and hint.
_EXAMPLES: dict[tuple[str, str], list[str]] = {
    ("missing '->' between sources and destinations",
     "write the rule as: allow SOURCES -> DESTINATIONS [METHODS] [PATHS] [PORTS]"): [
        "allow a b\n", "allow a, b c\n", "deny a b\n", "never a b\n", "allow a\n",
    ],
    ("a rule needs at least one destination after '->'",
     "name the called service, e.g. allow frontend -> orders"): [
        "allow a ->\n",
    ],
    ("ports in a rule are written ':PORT' or ':PORT,PORT'",
     "remove the protocol: the destination's declaration says it"): [
        "allow a -> b :80/http\n",
    ],
}


def _character(exc: UnexpectedCharacters, text: str) -> str:
    """The character the lexer stopped at."""
    pos = exc.pos_in_stream or 0
    return text[pos] if pos < len(text) else "?"


def _match_example(parser: Lark, exc: UnexpectedInput) -> tuple[str, str] | None:
    try:
        examples: dict[Any, list[str]] = dict(_EXAMPLES)
        return exc.match_examples(lambda text: parser.parse(text, start="start"), examples, use_accepts=True)
    except Exception:  # noqa: BLE001 # pragma: no cover - a failing example table must not hide the real error
        return None


def _describe(name: str, parser: Lark) -> str:
    if name in _DESCRIBE:
        return _DESCRIBE[name]
    for term in parser.terminals:
        if term.name == name and term.pattern.type == "str":
            return f"'{term.pattern.value}'"
    return name.lower()


def _open_block(text: str) -> tuple[str, str, int] | None:
    """The innermost block that is still open at the end of ``text``."""
    stack: list[tuple[str, str, int]] = []
    for number, line in enumerate(text.splitlines(), 1):
        code = code_of(line).strip()
        m = re.match(r"(namespace|service)\s+(\S+).*\{$", code)
        if m:
            stack.append((m.group(1), m.group(2), number))
        elif code == "}" and stack:
            stack.pop()
    return stack[-1] if stack else None


#: what a question of ``meshpolicy explain`` looks like (the grammar's ``query`` rule)
QUESTION = "FROM -> TO [METHOD] [PATH] [:PORT]"


#: the loose words of request conditions and issuers (grammar/mesh.lark), likewise a last resort elsewhere
_CONDITION_WORDS = frozenset({"COND_KEY", "COND_VALUE", "URL"})


def _loose_word(exc: UnexpectedInput) -> bool:
    """A token of ``authority``'s loose words met outside that statement: the lexer's last resort (its
    priority is below every other terminal's), so its first character is one no other terminal takes."""
    return isinstance(exc, UnexpectedToken) and (exc.token.type == "AUTHORITY_WORD" or (
        exc.token.type in _CONDITION_WORDS and exc.token.type not in exc.expected))


def to_diagnostic(exc: UnexpectedInput, parser: Lark, file: str, text: str, start: str = "start") -> Diagnostic:
    """The diagnostic of a syntax error in a policy file (``start``) or in explain's question (``query``)."""
    line = max(getattr(exc, "line", 1) or 1, 1)
    col = max(getattr(exc, "column", 1) or 1, 1)
    if isinstance(exc, UnexpectedToken) and _loose_word(exc):
        return _unexpected_character(str(exc.token)[0], file, line, col, start)
    if start == "query":
        return _query_diagnostic(exc, parser, file, text, line, col)

    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        block = _open_block(text)
        if block:
            kind, name, opened = block
            lines = text.splitlines()
            span = Span(file, opened, 1, opened, len(lines[opened - 1]) + 1)
            return Diagnostic("MP002", Severity.ERROR,
                              f"{kind} '{shown(name)}' opened at line {opened} is not closed", span,
                              "add a line holding only '}' at the end of the block")
        last = len(text.splitlines()) or 1
        return Diagnostic("MP001", Severity.ERROR, "unexpected end of file",
                          Span(file, last, 1, last, 2))

    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(_character(exc, text), file, line, col, start)

    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    value = str(tok)
    width = max(len(value), 1) if tok.type != "_NL" else 1
    span = Span(file, line, col, line, col + width)
    named = _match_example(parser, exc)
    if named is not None:
        return Diagnostic("MP001", Severity.ERROR, named[0], span, named[1])
    if tok.type == "_NL":
        got = "end of line"
    else:
        got = f"'{shown(value)}'"
    expected = sorted({_describe(e, parser) for e in exc.expected})
    message = f"unexpected {got}"
    if expected:
        message += ", expected " + (expected[0] if len(expected) == 1 else
                                    "one of " + ", ".join(expected))
    hint = None
    if value in KEYWORDS and "NAME" in exc.expected:
        hint = f"'{value}' is a keyword and cannot be used as a name"
    elif any(_describe(e, parser) == "'->'" for e in exc.expected):
        hint = "write the rule as: allow SOURCES -> DESTINATIONS [METHODS] [PATHS] [PORTS]"
    elif value in ("{", "}"):
        hint = "'{' ends the line that opens a block, and '}' stands alone on its own line"
    elif tok.type in ("NAME", "PATH") and "PORT" in exc.expected and "COMMA" in exc.expected:
        hint = ("separate the items of a list with ','; a rule's parts come in the order "
                "METHODS, PATHS, PORTS")
    elif tok.type in ("NAME", "PATH") and "COMMA" in exc.expected:
        hint = "a rule's parts come in the order METHODS, PATHS, PORTS"
    return Diagnostic("MP001", Severity.ERROR, message, span, hint)


def _unexpected_character(ch: str, file: str, line: int, col: int, start: str) -> Diagnostic:
    span = Span(file, line, col, line, col + 1)
    hint: str | None = None
    if start == "query":
        hint = f"write the question as {QUESTION}"
    elif ch == "{":
        hint = "a '{' must end the line that opens a namespace or service block"
    elif ch == "}":
        hint = "a '}' must stand alone on its line"
    elif ch == "=":
        hint = "labels are written 'labels key=value,key=value'"
    elif ch == "#":
        hint = "a '#' starts a comment only after white space: put a space before it, or remove it"
    return Diagnostic("MP001", Severity.ERROR, f"unexpected character '{shown(ch)}'", span, hint)


def _expected(exc: UnexpectedToken, parser: Lark) -> str:
    expected = sorted({"end of the question" if "END" in e.upper() else _describe(e, parser) for e in exc.expected})
    if not expected:
        return ""
    return ", expected " + (expected[0] if len(expected) == 1 else "one of " + ", ".join(expected))


def _query_diagnostic(exc: UnexpectedInput, parser: Lark, file: str, text: str, line: int, col: int) -> Diagnostic:
    """A question that does not read: the same message and caret as in a policy, with the question's hints."""
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(_character(exc, text), file, line, col, "query")
    if isinstance(exc, UnexpectedEOF) or not isinstance(exc, UnexpectedToken):
        end = len(text) + 1
        return Diagnostic("MP001", Severity.ERROR, "unexpected end of the question", Span(file, 1, end, 1, end + 1),
                          f"write the question as {QUESTION}")
    tok = exc.token
    if tok.type == "$END":
        end = len(text.splitlines()[0]) + 1 if text.strip() else 1
        span, got = Span(file, 1, end, 1, end + 1), "end of the question"
    else:
        width = 1 if tok.type == "_NL" else max(len(str(tok)), 1)
        span = Span(file, line, col, line, col + width)
        got = "end of line" if tok.type == "_NL" else f"'{shown(str(tok))}'"
    if any(_describe(e, parser) == "'->'" for e in exc.expected):
        hint = f"write the question as {QUESTION} (quote '->' in the shell)"
    elif tok.type in ("NAME", "PATH", "PORT", "GRPC") and tok.type not in exc.expected:
        hint = "a question names one request: its parts come once each, in the order METHOD, PATH, :PORT " \
               "(or grpc SERVICE/METHOD, :PORT)"
    else:
        hint = f"write the question as {QUESTION}"
    return Diagnostic("MP001", Severity.ERROR, f"unexpected {got}{_expected(exc, parser)}", span, hint)
