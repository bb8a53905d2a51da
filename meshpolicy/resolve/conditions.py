"""Value checks for request conditions and issuers (LANGUAGE 2.4): header and claim names, values, URLs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..diagnostics import shown

#: RFC 7230 section 3.2.6: a header name is a token (also Gateway API's HTTPHeaderName)
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: a claim name: letters, digits, '_', '.', ':' and '-' (no brackets, which Istio reads as nesting)
CLAIM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
#: a header value: visible ASCII (the lexer already stops at white space and ',')
HEADER_VALUE = re.compile(r"^[\x21-\x7e]+$")
#: the longest header name Gateway API admits (HTTPHeaderName)
MAX_HEADER_NAME = 256


def header_name_problem(name: str) -> tuple[str, str] | None:
    if len(name) > MAX_HEADER_NAME or not HEADER_NAME.match(name):
        return (f"invalid header name '{shown(name)}'",
                "a header name is an HTTP token (RFC 7230): letters, digits and !#$%&'*+-.^_`|~")
    return None


def claim_name_problem(name: str) -> tuple[str, str] | None:
    if not CLAIM_NAME.match(name):
        return (f"invalid claim name '{shown(name)}'",
                "a claim name is letters, digits, '_', '.', ':' and '-', such as groups or scope")
    return None


def value_problem(value: str, what: str) -> tuple[str, str] | None:
    """A header or claim value: exact, so never beginning or ending with '*' (LANGUAGE 2.4)."""
    if value.startswith("*") or value.endswith("*"):
        return (f"a {what} value may not begin or end with '*': '{shown(value)}'",
                "conditions compare exact values; a target would read a leading or trailing '*' as a pattern")
    if what == "header" and not HEADER_VALUE.match(value):
        return (f"invalid header value '{shown(value)}'", "a header value here is visible ASCII characters")
    return None


def url_problem(text: str, what: str) -> tuple[str, str] | None:
    """An ``https://HOST[:PORT][/PATH]`` URL, without credentials or a fragment."""
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError:
        url, port = None, None
    hint = f"write the {what} as https://HOST/PATH, such as https://accounts.google.com"
    if url is None or url.scheme != "https" or not url.hostname:
        return f"invalid {what} '{shown(text)}': it must be an https URL", hint
    if url.username is not None or url.fragment or "#" in text or (port is not None and not 0 < port < 65536):
        return f"invalid {what} '{shown(text)}'", hint + " (no credentials, no fragment)"
    return None
