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
    """The classes an entry may construct, by module-qualified name: the syntax tree, the IR and a
    backend's ``Resource`` (imported here, late, so that importing the codec stays cheap)."""
    from .. import source
    from ..backends import base
    from ..graph import model
    from ..parse import ast

    out: dict[str, type] = {}
    for module in (ast, model, source, base):
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
# JSON scalars stand for themselves; every container is a JSON array headed by a tag:
# ["t", ...] tuple, ["l", ...] list, ["d", k1, v1, ...] dict, ["s", ...] set (sorted when canonical),
# ["e", class, value] enum member, ["c", class, field1, field2, ...] dataclass (every field, in order).

def encode(value: Any, canonical: bool = False) -> Any:
    """``value`` as JSON-able data; ``canonical``: sets sorted, so that equal values encode equally."""
    kind: type = type(value)
    if kind in _PLAIN:
        return value
    if kind is tuple:
        return ["t", *_each(value, canonical)]
    if kind is dict:
        out: list[Any] = ["d"]
        for k, v in value.items():
            out.append(k if type(k) in _PLAIN else encode(k, canonical))
            out.append(v if type(v) in _PLAIN else encode(v, canonical))
        return out
    if kind is list:
        return ["l", *_each(value, canonical)]
    shape = _shape(kind)
    if shape is not None:  # a dataclass: its name, then every field
        head, fields = shape
        return [*head, *_each(fields(value), canonical)]
    if isinstance(value, Enum):  # a StrEnum is a str, an IntEnum an int: their class is kept
        return ["e", _name(kind), encode(value.value, canonical)]
    if kind in (set, frozenset):
        items = _each(value, canonical)
        if canonical:
            items.sort(key=_text)
        return ["s" if kind is frozenset else "S", *items]
    raise Unencodable(f"a {kind.__name__}")  # a named tuple, a subclass of a scalar, any other type


def _each(values: Any, canonical: bool) -> list[Any]:
    return [v if type(v) in _PLAIN else encode(v, canonical) for v in values]


@cache
def _shape(cls: type) -> tuple[tuple[str, str], Callable[[Any], tuple]] | None:
    """A dataclass' head (``"c"``, its name) and the getter of all its fields; None for any other class."""
    if not dataclasses.is_dataclass(cls):
        return None
    names = _fields(cls)
    getter = operator.attrgetter(*names) if names else (lambda _: ())
    if len(names) == 1:
        one = getter
        return ("c", _name(cls)), lambda value: (one(value),)
    return ("c", _name(cls)), getter


#: exactly these types, not their subclasses (a lark Token is a str that would come back a plain one)
_SCALARS = frozenset({str, bool, int, float})
#: what stands for itself in an encoding
_PLAIN = _SCALARS | {type(None)}


def _text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=True)


def decode(data: Any) -> Any:
    """The value :func:`encode` encoded; raises :class:`Undecodable` on anything else."""
    if type(data) is not list:
        if type(data) in _PLAIN:
            return data
        raise Undecodable("not an encoded value")
    try:
        decoder = _DECODERS[data[0]]
    except (IndexError, KeyError, TypeError):
        raise Undecodable("not an encoded value") from None
    return decoder(data)


def _dict(data: list) -> dict:
    if len(data) % 2 != 1:
        raise Undecodable("a dict with a key and no value")
    items = _decoded(data)
    return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}


def _enum(data: list) -> Enum:
    cls = _class(data[1]) if len(data) == 3 else None
    if cls is None or not issubclass(cls, Enum):
        raise Undecodable("not an enum member")
    try:
        return cls(decode(data[2]))
    except ValueError as exc:
        raise Undecodable(str(exc)) from None


def _dataclass(data: list) -> Any:
    found = _dataclass_named(data[1]) if len(data) >= 2 and type(data[1]) is str else None
    if found is None or found[1] != len(data) - 2:
        raise Undecodable("not a dataclass of the fields it names")
    cls, _, late = found
    values = _decoded(data, 2)
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


@cache
def _dataclass_named(name: str) -> tuple[type, int, frozenset[str]] | None:
    """The allowed dataclass of that name, its number of fields and its ``init=False`` ones; None if none."""
    cls = allowed().get(name)
    if cls is None or not dataclasses.is_dataclass(cls):
        return None
    return cls, len(_fields(cls)), _late(cls)


def _decoded(data: list, start: int = 1) -> list[Any]:
    """The decoded items of ``data`` from ``start``: JSON scalars as they are, the rest through :func:`decode`."""
    return [v if type(v) in _PLAIN else decode(v) for v in data[start:]]


_DECODERS: dict[str, Callable[[list], Any]] = {
    "t": lambda data: tuple(_decoded(data)),
    "l": _decoded,
    "d": _dict,
    "s": lambda data: frozenset(_hashable(decode(v)) for v in data[1:]),
    "S": lambda data: {_hashable(decode(v)) for v in data[1:]},
    "e": _enum,
    "c": _dataclass,
}


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
