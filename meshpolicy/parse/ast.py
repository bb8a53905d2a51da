"""Syntax nodes, one per grammar rule, each with the span it came from.

The nodes only record what was written; meaning (scopes, defaults, checks)
is the resolver's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..source import Span


@dataclass(frozen=True, slots=True)
class Word:
    """A token as written, with its position."""

    value: str
    span: Span


class RefKind(StrEnum):
    """What a reference in a rule or group is, as written."""

    NAME = "name"    # a service, a group, NS/ACCOUNT...
    STAR = "star"    # *: any authenticated workload (NS/* is a NAME ending in /*)
    ANY = "any"      # any client at all
    CIDR = "cidr"    # a network
    ADDRESS = "address"  # an IPv6 address: only as the caller of explain's question (an IPv4 one is a NAME)
    WIDE = "wide"    # ** or NS/**: every workload of a namespace, declared or not (a destination only)


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference in a rule or group."""

    kind: RefKind
    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class TrustDomain:
    name: Word
    span: Span


@dataclass(frozen=True, slots=True)
class Mtls:
    mode: Word
    ports: tuple[Word, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Account:
    name: Word
    span: Span


@dataclass(frozen=True, slots=True)
class Labels:
    items: tuple[Word, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class PortDecl:
    number: Word
    protocol: Word | None
    span: Span


@dataclass(frozen=True, slots=True)
class Probes:
    paths: tuple[Word, ...]
    span: Span


Attr = Account | Labels | PortDecl | Probes | Mtls


@dataclass(frozen=True, slots=True)
class Service:
    name: Word
    attrs: tuple[Attr, ...]
    block: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Group:
    name: Word
    refs: tuple[Ref, ...]
    span: Span


class ConditionKind(StrEnum):
    """What a request condition (``if ...``) tests, as written."""

    HEADER = "header"  # header NAME=VALUE, or header NAME (value None: present)
    JWT = "jwt"        # jwt ISSUER (key: the issuer's name)
    CLAIM = "claim"    # claim NAME=VALUE


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of a rule's ``if`` list: ``key`` is the header, issuer or claim name."""

    kind: ConditionKind
    key: Word
    value: Word | None
    span: Span


@dataclass(frozen=True, slots=True)
class Issuer:
    """``issuer NAME ISSUER_URL [jwks JWKS_URL]`` (LANGUAGE 2.4)."""

    name: Word
    url: Word
    jwks: Word | None
    span: Span


@dataclass(frozen=True, slots=True)
class Rule:
    action: str
    sources: tuple[Ref, ...]
    destinations: tuple[Ref, ...]
    methods: tuple[Word, ...]
    paths: tuple[Word, ...]
    grpc: tuple[Word, ...]
    ports: tuple[Word, ...]
    span: Span
    text: str
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Namespace:
    name: Word
    external: bool
    body: tuple[Statement, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Authority:
    """``authority SOURCE KEY VALUE ...`` as written: the words after the keyword, paired by the resolver."""

    words: tuple[Word, ...]
    span: Span


Statement = TrustDomain | Mtls | Namespace | Service | Group | Rule | Issuer | Authority


@dataclass(frozen=True, slots=True)
class Query:
    """The question of ``meshpolicy explain`` (the grammar's ``query`` rule): one request as written.

    ``caller`` is a reference (``kind`` ``name``, ``star``, ``any``, ``cidr``) or an ``address``; ``grpc`` is
    ``SERVICE/METHOD`` in place of ``method`` and ``path``; ``port`` is the number without its ``:``."""

    caller: Ref
    destination: Ref
    method: Word | None
    path: Word | None
    grpc: Word | None
    port: Word | None
    span: Span


@dataclass(frozen=True, slots=True)
class File:
    name: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True)
class Comment:
    """A ``#`` comment as written (without the line break); ``own_line`` when no code precedes it."""

    text: str
    span: Span
    own_line: bool


@dataclass(frozen=True, slots=True)
class Layout:
    """What the syntax tree leaves out and ``fmt`` keeps: comments and the lines of closing braces."""

    comments: tuple[Comment, ...]
    closing_braces: tuple[int, ...]
