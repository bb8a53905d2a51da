"""Values to JSON and back, for cache keys and cache entries: generic over the project's frozen dataclasses.

Two uses, one encoding:

- :func:`digest` hashes a canonical encoding of a value: every field of every dataclass reachable from it
  (``compare=False`` fields too), enums by class and value, tuples, lists, dicts *in order* (a dict's order
  reaches the output) and sets sorted. A field someone adds to the IR tomorrow is part of the key without
  anyone touching this module, which is the point: a key that misses a dependency is the bug to fear.
- :func:`dumps` / :func:`loads` store a value and read it back. Reading constructs only the classes of
  :data:`ALLOWED` (dataclasses and enums of the syntax tree, the IR and a backend's resources) and JSON's
  own values: never pickle, so that a forged or foreign entry can at worst be refused, never run code.

A value of any other type cannot be encoded (:class:`Unencodable`): the caller then computes without
the cache rather than guess.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Any

from ..errors import MeshpolicyError


class Unencodable(MeshpolicyError):
    """A value of a type the codec does not know (the caller computes it uncached); local to the cache."""


class Undecodable(MeshpolicyError):
    """An entry that does not decode to the values the codec writes (it is ignored); local to the cache."""


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@cache
def allowed() -> dict[str, type]:
    """The classes an entry may construct, by module-qualified name: the syntax tree, the IR, a backend's
    ``Resource``, diagnostics and a rendered part of a lowering (imported here, late, so that importing the
    codec stays cheap)."""
    from .. import diagnostics, source
    from ..backends import base
    from ..graph import model
    from ..parse import ast
    from . import lowering

    out: dict[str, type] = {}
    for module in (ast, model, source, base, diagnostics, lowering):
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__ and \
                    (dataclasses.is_dataclass(value) or issubclass(value, Enum)):
                out[_name(value)] = value
    return out


@cache
def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@cache
def _late(cls: type) -> frozenset[str]:
    """The fields ``__init__`` does not take (``init=False``): set after construction."""
    return frozenset(f.name for f in dataclasses.fields(cls) if not f.init)


# -- encoding ------------------------------------------------------------------
# An encoding is ``[CLASSES, BODY]``: CLASSES the module-qualified names of the dataclasses and enums the
# body holds, BODY the value. JSON scalars stand for themselves; a dataclass is a JSON array headed by the
# index of its class in CLASSES, then every field in order; any other container is an array headed by a tag:
# ["t", ...] tuple, ["l", ...] list, ["d", k1, v1, ...] dict, ["s", ...] frozenset and ["S", ...] set (sorted
# when canonical), ["e", CLASS, value] enum member. The class table keeps each name once per entry: a syntax
# tree's entry is a fifth of what it was with the names in every node (issue 12: decoding the syntax trees
# of unchanged files was a third of a cached rebuild), and it is read once, not per node.


def encode(value: Any, canonical: bool = False) -> Any:
    """``value`` as JSON-able data (``[CLASSES, BODY]``); ``canonical``: sets sorted, so that equal values
    encode equally (a set's items are ordered by their own encoding, with a class table of their own, so
    that the order in which a set yields them reaches neither the body nor the class table)."""
    classes: dict[type, int] = {}
    plain = _PLAIN

    def walk(value: Any) -> Any:
        kind: type = type(value)
        if kind is tuple:
            return ["t", *[v if type(v) in plain else walk(v) for v in value]]
        index = classes.get(kind)
        if index is None:
            fields = _getter(kind)
            if fields is not None:
                index = classes[kind] = len(classes)
        else:
            fields = _getter(kind)
        if fields is not None:  # a dataclass: its class, then every field
            return [index, *[v if type(v) in plain else walk(v) for v in fields(value)]]
        if kind in plain:
            return value
        if kind is dict:
            out: list[Any] = ["d"]
            for k, v in value.items():
                out.append(k if type(k) in plain else walk(k))
                out.append(v if type(v) in plain else walk(v))
            return out
        if kind is list:
            return ["l", *[v if type(v) in plain else walk(v) for v in value]]
        if isinstance(value, Enum):  # a StrEnum is a str, an IntEnum an int: their class is kept
            if kind not in classes:
                classes[kind] = len(classes)
            return ["e", classes[kind], walk(value.value)]
        if kind in (set, frozenset):
            items = list(value)
            if canonical:
                items.sort(key=lambda item: _text(encode(item, True)))
            return ["s" if kind is frozenset else "S", *[v if type(v) in plain else walk(v) for v in items]]
        raise Unencodable(f"a {kind.__name__}")  # a named tuple, a subclass of a scalar, any other type

    body = walk(value)
    return [[_name(cls) for cls in classes], body]


@cache
def _getter(cls: type) -> Callable[[Any], tuple] | None:
    """The getter of all the fields of a dataclass, as a tuple; None for any other class."""
    if not dataclasses.is_dataclass(cls):
        return None
    names = _fields(cls)
    if not names:
        return lambda _: ()
    getter = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda value: (getter(value),)
    return getter


#: exactly these types, not their subclasses (a lark Token is a str that would come back a plain one)
_SCALARS = frozenset({str, bool, int, float})
#: what stands for itself in an encoding
_PLAIN = _SCALARS | {type(None)}


def _text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=True)


def decode(data: Any) -> Any:
    """The value :func:`encode` encoded; raises :class:`Undecodable` on anything else."""
    if type(data) is not list or len(data) != 2 or type(data[0]) is not list:
        raise Undecodable("not an encoded value")
    table = []
    for name in data[0]:
        cls = _class(name)
        table.append((cls, *_dataclass_named(name)) if dataclasses.is_dataclass(cls) else (cls, -1, frozenset()))
    return _decoder(table)(data[1])


def _decoder(table: list[tuple[type, int, frozenset[str]]]) -> Callable[[Any], Any]:
    """The decoding of one entry's body over its class table: (class, number of fields or -1 for an enum,
    the ``init=False`` fields). One closure, its names local: the syntax trees of a rebuild are about a
    million nodes at 5,000 services."""
    plain = _PLAIN
    classes = len(table)

    def decode(data: Any) -> Any:
        if type(data) is not list:
            if type(data) in plain:
                return data
            raise Undecodable("not an encoded value")
        if not data:
            raise Undecodable("not an encoded value")
        head = data[0]
        if type(head) is int:
            if not 0 <= head < classes:
                raise Undecodable("a class the entry does not name")
            cls, size, late = table[head]
            if size != len(data) - 1:  # an enum's class has size -1
                raise Undecodable("not a dataclass of the fields it names")
            values = [v if type(v) in plain else decode(v) for v in data[1:]]
            try:
                if not late:
                    return cls(*values)
                named = dict(zip(_fields(cls), values, strict=True))
                made = cls(**{k: v for k, v in named.items() if k not in late})
            except (TypeError, ValueError) as exc:
                raise Undecodable(str(exc)) from None
            for name in late:
                object.__setattr__(made, name, named[name])
            return made
        if head == "t":
            if len(data) == 1:  # most tuple fields of a syntax tree are empty
                return ()
            return tuple([v if type(v) in plain else decode(v) for v in data[1:]])
        if head == "l":
            return [v if type(v) in plain else decode(v) for v in data[1:]]
        if head == "e":
            return enum(data)
        if head == "d":
            if len(data) % 2 != 1:
                raise Undecodable("a dict with a key and no value")
            items = [v if type(v) in plain else decode(v) for v in data[1:]]
            return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}
        if head == "s":
            return frozenset(_hashable(decode(v)) for v in data[1:])
        if head == "S":
            return {_hashable(decode(v)) for v in data[1:]}
        raise Undecodable("not an encoded value")

    def enum(data: list) -> Enum:
        if len(data) != 3 or type(data[1]) is not int or not 0 <= data[1] < classes:
            raise Undecodable("not an enum member")
        cls = table[data[1]][0]
        if not issubclass(cls, Enum):
            raise Undecodable("not an enum member")
        value = decode(data[2])
        try:
            member: Enum = cls._value2member_map_[value]  # the member's value, as Enum's own lookup
            if type(member.value) is type(value):  # 1 == True: a bool is not an int's member
                return member
        except (KeyError, TypeError):
            pass
        try:
            return cls(value)
        except ValueError as exc:
            raise Undecodable(str(exc)) from None

    return decode


@cache
def _dataclass_named(name: str) -> tuple[int, frozenset[str]]:
    """The number of fields of the allowed dataclass of that name, and its ``init=False`` ones."""
    cls = allowed()[name]
    return len(_fields(cls)), _late(cls)


def _class(name: Any) -> type:
    found = allowed().get(name) if isinstance(name, str) else None
    if found is None:
        raise Undecodable(f"{name!r} is not a class an entry may hold")
    return found


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        raise Undecodable("an unhashable key") from None
    return value


def dumps(value: Any) -> bytes:
    """An entry's payload: ``value`` encoded, as UTF-8 JSON."""
    return _text(encode(value)).encode()


def loads(payload: bytes) -> Any:
    """The value of :func:`dumps`' ``payload``; raises :class:`Undecodable` on anything else."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Undecodable(str(exc)) from None
    try:
        return decode(data)
    except RecursionError:
        raise Undecodable("nested too deep") from None


def digest(*parts: Any) -> str:
    """The SHA-256 (hex) of the canonical encoding of ``parts``: a cache key."""
    return hashlib.sha256(_text(encode(parts, canonical=True)).encode()).hexdigest()
