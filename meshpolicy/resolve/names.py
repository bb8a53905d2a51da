"""Name rules: DNS-1123 labels, keywords, label syntax, and "did you mean"."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from ..diagnostics import shown
from ..parse.errors import KEYWORDS

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
METHOD = re.compile(r"^[A-Z][A-Z0-9_-]*$")
GRPC_SERVICE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
GRPC_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@lru_cache(maxsize=1 << 16)  # a pure function asked once per reference: 128,000 times at 5,000 services (issue 12)
def name_problem(name: str) -> tuple[str, str | None] | None:
    """Why ``name`` is not a valid name, with a hint; ``None`` when it is valid."""
    if name in KEYWORDS:
        return f"'{name}' is a keyword and cannot be used as a name", "choose another name"
    if len(name) > 63:
        return f"name '{shown(name[:20])}...' is longer than 63 characters", None
    if not DNS_LABEL.match(name):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        hint = "names are DNS-1123 labels: lowercase letters, digits and '-', starting and ending with a letter or digit"
        if suggestion and DNS_LABEL.match(suggestion) and suggestion != name:
            hint += f"; did you mean '{suggestion}'?"
        return f"invalid name '{shown(name)}'", hint
    return None


def label_problem(key: str, value: str) -> str | None:
    """Kubernetes label syntax: ``[prefix/]name=value``."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return f"invalid label key prefix '{shown(prefix)}': it must be a DNS subdomain"
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        return f"invalid label key '{shown(key)}'"
    if value and (len(value) > 63 or not LABEL_NAME.match(value)):
        return f"invalid label value '{shown(value)}'"
    return None


def did_you_mean(word: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
