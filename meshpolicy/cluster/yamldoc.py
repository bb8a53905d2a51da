"""YAML documents with line numbers, built from the parser's events: bounded, linear, no aliases.

PyYAML's composer would expand an alias to a shared node (a "billion laughs" document then
takes exponential time to walk) and recurses once per nesting level. Here the C parser's event
stream (a state machine, no recursion) is turned into plain values by an explicit stack:

- an alias is refused (Kubernetes manifests never need one; ``kubectl`` output has none);
- nesting deeper than :data:`MAX_DEPTH` is refused;
- every mapping is a :class:`Map` (a ``dict``) that knows its line and the line of each key,
  every sequence a :class:`Seq` (a ``list``) that knows its line and the line of each item.

Scalars get the types of YAML 1.1 as PyYAML's safe loader resolves them (``"8080"`` a string,
``8080`` an int, ``true`` a bool, ``~`` None).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import yaml

from ..errors import MeshpolicyError

MAX_DEPTH = 64  # the output folder's bound too (output/folder.py, which only checks the events, builds nothing)

try:  # the C parser when PyYAML was built with libyaml (the wheels are), the Python one otherwise
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_SCALAR, _MAP_START, _SEQ_START = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
_MAP_END, _SEQ_END = yaml.MappingEndEvent, yaml.SequenceEndEvent
#: plain scalars already resolved (keys and common values repeat in every manifest); bounded
_PLAIN: dict[str, Any] = {}
_PLAIN_MAX = 50_000


Where = tuple[int, int, int, int]  # line, column, end line, end column (1-based, end exclusive)


class Map(dict):
    """A mapping with its line and the line of each key (1-based), and where each scalar value sits."""

    __slots__ = ("col", "key_lines", "line", "value_at")

    def __init__(self, line: int, col: int) -> None:
        super().__init__()
        self.line = line
        self.col = col
        self.key_lines: dict[Any, int] = {}
        self.value_at: dict[Any, Where] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def where(self, key: str) -> Where:
        """The scalar value of ``key`` (for a caret under it), else its key's line."""
        found = self.value_at.get(key)
        if found is not None:
            return found
        line = self.line_of(key)
        return (line, self.col, line, self.col)


class Seq(list):
    """A sequence with its line and the line of each item (1-based)."""

    __slots__ = ("col", "item_lines", "line")

    def __init__(self, line: int, col: int) -> None:
        super().__init__()
        self.line = line
        self.col = col
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class DocumentError(MeshpolicyError):
    """A document that cannot be read; ``line`` is where (1-based). ``fatal``: the rest of the file is lost."""

    def __init__(self, message: str, line: int, fatal: bool = False):
        super().__init__(message)
        self.line = line
        self.fatal = fatal


def documents(text: str) -> Iterator[tuple[int, Any] | DocumentError]:
    """Each document of ``text`` as (line, value), or a :class:`DocumentError` in its place.

    A syntax error ends the file (the parser cannot resume): it is yielded as a fatal error.
    """
    stack: list[list[Any]] = []  # frames: [container, pending key, key line, has key]
    root: Any = None
    doc_line = 1
    broken: DocumentError | None = None
    events = yaml.parse(text, Loader=_Loader)
    try:
        for event in events:
            kind = event.__class__  # one dispatch per event, the most frequent first (linear time, no recursion)
            if kind is _SCALAR:
                if broken is not None:
                    continue
                start, end = event.start_mark, event.end_mark
                line = start.line + 1 if start is not None else doc_line
                scalar = _scalar(cast(yaml.ScalarEvent, event))
                if not stack:
                    root = scalar
                elif not _attach(stack, scalar, line, (line, start.column + 1, end.line + 1, end.column + 1)
                                 if start is not None and end is not None else None):
                    broken = DocumentError("a mapping key must be a plain value", line)
            elif kind is _MAP_START or kind is _SEQ_START:
                if broken is not None:
                    continue
                start = event.start_mark
                line, col = (start.line + 1, start.column + 1) if start is not None else (doc_line, 1)
                if len(stack) >= MAX_DEPTH:
                    broken = DocumentError(f"nested more than {MAX_DEPTH} levels deep", line)
                    continue
                value: Any = Map(line, col) if kind is _MAP_START else Seq(line, col)
                if not _attach(stack, value, line, None):
                    broken = DocumentError("a mapping key must be a plain value", line)
                    continue
                stack.append([value, None, 0, False])
            elif kind is _MAP_END or kind is _SEQ_END:
                if broken is not None:
                    continue
                done = stack.pop()[0]
                if not stack:
                    root = done
            elif kind is yaml.DocumentStartEvent:
                stack, root, broken = [], None, None
                doc_line = event.start_mark.line + 1 if event.start_mark is not None else doc_line
            elif kind is yaml.DocumentEndEvent:
                yield broken if broken is not None else (doc_line, root)
            elif kind is yaml.AliasEvent and broken is None:
                line = event.start_mark.line + 1 if event.start_mark is not None else doc_line
                broken = DocumentError(f"YAML alias '*{cast(yaml.AliasEvent, event).anchor}' refused: manifests are read without "
                                       "aliases (no anchors expanded)", line)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = mark.line + 1 if mark is not None else doc_line
        yield DocumentError(f"not valid YAML: {exc.problem or exc.context}", where, fatal=True)
    except yaml.YAMLError as exc:  # a reader error (a control character) has no mark of this kind
        yield DocumentError(f"not valid YAML: {exc}", doc_line, fatal=True)


def _attach(stack: list[list[Any]], value: Any, line: int, where: Where | None) -> bool:
    """Put ``value`` into the innermost open container; False for a non-scalar mapping key."""
    if not stack:
        return True
    frame = stack[-1]
    parent = frame[0]
    if isinstance(parent, Seq):
        parent.append(value)
        parent.item_lines.append(line)
        return True
    if not frame[3]:
        if isinstance(value, (Map, Seq)):
            return False
        frame[1], frame[2], frame[3] = value, line, True
        return True
    key = frame[1]
    try:
        parent[key] = value
    except TypeError:  # an unhashable key cannot happen for scalars; kept defensive
        return False
    parent.key_lines[key] = frame[2]
    if where is not None:
        parent.value_at[key] = where
    frame[1], frame[3] = None, False
    return True


def _scalar(event: yaml.ScalarEvent) -> Any:
    tag = event.tag
    if tag is None and event.style in ("'", '"'):
        return event.value  # a quoted scalar is a string
    plain = tag is None and event.implicit[0]
    if plain:
        hit = _PLAIN.get(event.value, _PLAIN)
        if hit is not _PLAIN:
            return hit
    value = _construct(event, tag)
    if plain and len(_PLAIN) < _PLAIN_MAX:
        _PLAIN[event.value] = value
    return value


def _construct(event: yaml.ScalarEvent, tag: str | None) -> Any:
    if tag in (None, "!"):
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag == _STR:
        return event.value
    if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
               "tag:yaml.org,2002:null"):
        try:
            # the constructor's own method, not construct_object (which caches every node it sees)
            return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, event.value))
        except (ValueError, yaml.YAMLError):
            return event.value
    return event.value  # timestamps, binary and custom tags: their text is all a manifest check needs
