"""Paths (LANGUAGE §2.4; docs/language.md, "Paths"): what a written path may hold, so that every target
admits it and means by it exactly what it says.

A path is written in RFC 3986 path characters only, with valid percent escapes, and at most
:data:`MAX_LENGTH` characters: the intersection of what the meshes' admission accepts (the Gateway API's
path rules, which Linkerd's routes carry; Istio's webhook, which refuses ``{`` and ``}`` outside its path
templates) and of what no proxy rewrites before matching (dot segments, ``//``, encoded slashes, escapes of
unreserved characters, lower-case escapes). One bad path would otherwise make the whole object that holds
it (every deny rule of a service, every refused route of a port) fail admission.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from itertools import takewhile

from ..diagnostics import shown
from ..graph.model import PathKind, PathMatch
from ..source import Span

#: Gateway API ``HTTPPathMatch.value`` maxLength (the CRD of both HTTPRoute groups Linkerd reads)
MAX_LENGTH = 1024
#: RFC 3986 ``unreserved``: an escape of one of these is decoded by normalizing proxies (RFC 3986 §6.2.2.2)
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
#: RFC 3986 ``pchar`` and ``/``, without ``*`` (the language's wildcard), ``,`` (its list separator) and ``%``
#: (an escape, checked on its own)
ALLOWED = UNRESERVED | frozenset("!$&'()+;=:@/")
ALLOWED_TEXT = "letters, digits and - . _ ~ ! $ & ' ( ) + ; = : @ /"
_HEX = frozenset("0123456789ABCDEF")


@dataclass(frozen=True, slots=True)
class PathProblem:
    """Why a path is refused: a message, a hint, and where (an offset into the path, or the whole path)."""

    message: str
    hint: str | None = None
    at: int | None = None
    width: int = 1

    def span_in(self, span: Span) -> Span:
        """Where to put the caret, given the span of the whole path."""
        return span if self.at is None else span.part(self.at, self.width)


def parse_path(text: str) -> tuple[PathMatch | None, PathProblem | None]:
    """``/a/b`` exact, ``/a/b/*`` prefix, ``/a/b*`` character prefix, ``*SUFFIX`` suffix, ``/*`` any (no
    match: ``None``), or the first problem."""
    problem = _characters(text) or _shape(text)
    if problem is not None:
        return None, problem
    if text == "/*":
        return None, None
    if text.startswith("*"):
        return PathMatch(PathKind.SUFFIX, text.removeprefix("*")), None
    if text.endswith("/*"):
        return PathMatch(PathKind.PREFIX, text.removesuffix("/*")), None
    if text.endswith("*"):
        return PathMatch(PathKind.STARTS, text.removesuffix("*")), None
    return PathMatch(PathKind.EXACT, text), None


def percent_encoded(ch: str) -> str:
    """``{`` -> ``%7B``; a non-ASCII character -> the escapes of its UTF-8 bytes."""
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def _invalid(text: str, why: str, hint: str | None = None, at: int | None = None, width: int = 1) -> PathProblem:
    return PathProblem(f"invalid path '{shown(text)}': {why}", hint, at, width)


def _characters(text: str) -> PathProblem | None:
    """The first character the language does not admit, with a caret on it."""
    for i, ch in enumerate(text):
        if ch == "%":
            problem = _escape(text, i)
            if problem is not None:
                return problem
        elif ch == "*":
            if not _wildcard_at(text, i):
                return _invalid(text, "'*' may only begin a path (*SUFFIX) or end it (/prefix* or /prefix/*)",
                                "write /prefix/* for a path and everything under it, /prefix* for every path "
                                "that starts with those characters, *SUFFIX for every path that ends with them",
                                i)
        elif ch == "?":
            return _invalid(text, "a query string never takes part in matching", "remove the '?...' part", i,
                            len(text) - i)
        elif ch == "#":
            return _invalid(text, "'#' starts a fragment, which a client never sends",
                            "remove the '#...' part; a comment needs white space before its '#'", i, len(text) - i)
        elif ch == "\\":
            return _invalid(text, "it contains '\\'", "write a normalized absolute path", i)
        elif ch not in ALLOWED:
            return _invalid(text, f"'{shown(ch)}' is not allowed in a path",
                            f"a path holds {ALLOWED_TEXT} only; write any other character percent-encoded "
                            f"('{shown(ch)}' is {percent_encoded(ch)})", i)
    return None


def _wildcard_at(text: str, i: int) -> bool:
    """A ``*`` may begin a suffix pattern or end a prefix pattern, never both, and nowhere else (LANGUAGE §2.4)."""
    return (i == 0 and len(text) > 1) or (i == len(text) - 1 and text.startswith("/"))


def _escape(text: str, i: int) -> PathProblem | None:
    """A ``%`` at ``i``: two upper-case hex digits, neither an encoded slash nor an unreserved character."""
    digits = text[i + 1:i + 3]
    if len(digits) < 2 or any(d not in string.hexdigits for d in digits):
        return _invalid(text, f"'{shown(text[i:i + 3])}' is not a percent escape",
                        "a '%' starts an escape of two hex digits, such as %20; write '%' itself as %25", i,
                        1 + len(list(takewhile(string.hexdigits.__contains__, digits))))
    if digits.upper() in ("2F", "5C"):
        return _invalid(text, f"it contains '{text[i:i + 3]}'", "write a normalized absolute path", i, 3)
    if any(d not in _HEX for d in digits):
        return _invalid(text, f"'{text[i:i + 3]}' is written with lower-case hex digits",
                        f"write %{digits.upper()}: proxies that normalize paths upper-case escapes", i, 3)
    decoded = chr(int(digits, 16))
    if decoded in UNRESERVED:
        return _invalid(text, f"'{text[i:i + 3]}' encodes '{decoded}', which needs no escape",
                        f"write '{decoded}' itself: proxies that normalize paths decode it", i, 3)
    return None


def _shape(text: str) -> PathProblem | None:
    """Absolute (or a suffix), normalized, and short enough for every target.

    Of a suffix pattern the part before its first ``/`` ends some segment, and of a character prefix the
    part after its last ``/`` begins one: only the whole segments between are checked for dot segments.
    """
    suffix = text.startswith("*")
    if not suffix and not text.startswith("/"):
        return _invalid(text, "a path starts with '/'", "write *SUFFIX for every path that ends with SUFFIX")
    if len(text) > MAX_LENGTH:
        return PathProblem(f"invalid path '{shown(text[:40])}...': it is longer than {MAX_LENGTH} characters",
                           f"the Gateway API admits paths of at most {MAX_LENGTH} characters", 0, 1)
    body = text.removeprefix("*") if suffix else text.removesuffix("/*")
    if text.endswith("/*") and body.endswith("/"):
        return _invalid(text, "'//' before '*'", "write /prefix/* for a prefix")
    starts = not suffix and not text.endswith("/*") and text.endswith("*")
    body = body.removesuffix("*")
    segments = body.split("/")[1:]
    for i, seg in enumerate(segments):
        if seg == "" and i < len(segments) - 1:
            return _invalid(text, "it contains '//'", "write a normalized absolute path")
        partial = starts and i == len(segments) - 1   # /a/.* also takes /a/.well-known
        if seg in (".", "..") and not partial:
            return _invalid(text, "it contains a dot segment", "write a normalized absolute path")
    return None
