"""The build cache: what a rebuild may reuse, keyed on exactly what determines it (docs/cache.md).

Three kinds of results are kept, each under the hash of everything it depends on, the code of
meshpolicy itself included (:func:`code_digest`), so that a hit returns what computing would:

- ``parse``: a file's syntax tree, under its name, its text and the code;
- ``render``: a manifest's text, under the target and the whole backend ``Resource`` (every field,
  spec, origins and annotations included, generically: :mod:`.codec`);
- ``docs``/``docinfo``: the YAML documents of an emitted file, and which namespaces they are in and
  name, under its text;
- ``verify``: that the emitted files agree with the policy on every request to the destinations of one
  namespace, under the slice of the policy and of the files that decides them (:mod:`.verification`).

A cached build writes the same files and reports the same diagnostics as an uncached one; the
cache's own notes (MP850, MP851) are about the cache, never about the policy. :func:`open_cache`
never fails a build: a folder it cannot use gives a note and a build without cache.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..diagnostics import Diagnostic, Severity
from ..resources import grammar_dir, templates_dir
from . import codec
from .store import Refused, Store

if TYPE_CHECKING:
    from ..backends.base import Resource
    from ..parse import ast
    from ..source import SourceFile

T = TypeVar("T")

#: the folder under the per-user cache folder (parse/tables.py) that holds the build cache
SUBFOLDER = "build"
_PACKAGE = Path(__file__).resolve().parent.parent


def default_folder() -> Path | None:
    """``$MESHPOLICY_CACHE_DIR/build`` (empty: no cache), else ``$XDG_CACHE_HOME/meshpolicy/build``,
    else ``~/.cache/meshpolicy/build``: next to the parser's tables."""
    from ..parse.tables import cache_dir

    folder = cache_dir()
    return folder / SUBFOLDER if folder is not None else None


@cache
def code_digest() -> str:
    """A hash of meshpolicy's code and data (every file of the package, the grammar, the templates) and
    of the versions of Python and of the libraries whose behaviour reaches a result."""
    from importlib.metadata import version

    import yaml

    digest = hashlib.sha256()
    roots = [_PACKAGE, grammar_dir(), templates_dir()]
    for root in dict.fromkeys(roots):  # a wheel holds grammar and templates inside the package
        for path in sorted(root.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            for part in (path.relative_to(root).as_posix().encode(), path.read_bytes()):
                digest.update(len(part).to_bytes(8, "big") + part)
    versions = (sys.version, version("lark"), version("jinja2"), yaml.__version__,
                str(getattr(yaml, "__with_libyaml__", False)))
    digest.update("\0".join(versions).encode())
    return digest.hexdigest()


class BuildCache:
    """One build's use of a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.code = code_digest()

    def key(self, kind: str, *parts: Any) -> str | None:
        """The key of a ``kind`` result depending on ``parts`` (and the code); None when a part cannot be
        encoded, and the result is then computed without the cache."""
        try:
            return codec.digest(kind, self.code, *parts)
        except codec.Unencodable:
            return None

    def cached(self, kind: str, key: str | None, compute: Callable[[], T],
               keep: Callable[[T], bool] | None = None) -> T:
        """The value stored under ``key``, or ``compute()``, stored unless ``keep`` says not to (a failure
        returned as a value). Only what ``compute`` returns is stored: an exception (a syntax error, a failed
        self-check) passes through and nothing is kept."""
        if key is not None:
            payload = self.store.get(kind, key)
            if payload is not None:
                try:
                    value: T = codec.loads(payload)
                    return value
                except codec.Undecodable:
                    self.store.ignore(kind, key)
        value = compute()
        if key is not None and (keep is None or keep(value)):
            try:
                self.store.put(kind, key, codec.dumps(value))
            except codec.Unencodable:
                pass
        return value

    def parse(self, src: SourceFile) -> ast.File:
        from ..parse import parse_file

        return self.cached("parse", self.key("parse", src.name, src.text), lambda: parse_file(src))

    def render(self, target: str, res: Resource) -> str:
        from ..output.templating import render

        return self.cached("render", self.key("render", target, res), lambda: render(target, res))

    def notes(self) -> list[Diagnostic]:
        """MP851 when entries were ignored; closes the store (the size bound is kept here)."""
        self.store.close()
        ignored = self.store.stats.ignored
        if not ignored:
            return []
        return [Diagnostic("MP851", Severity.NOTE,
                           f"{ignored} entr{'y' if ignored == 1 else 'ies'} of the build cache {self.store.root} "
                           "could not be authenticated or read, and were ignored and rebuilt",
                           hint="entries are checked before use, so the output is the same; a cache folder "
                           "copied from elsewhere or written by another version causes this (docs/cache.md)")]


def open_cache(folder: Path | None) -> tuple[BuildCache | None, list[Diagnostic]]:
    """The cache in ``folder`` (None: no cache), or None and note MP850 when the folder cannot be used."""
    if folder is None:
        return None, []
    try:
        return BuildCache(Store(folder)), []
    except Refused as exc:
        return None, [Diagnostic("MP850", Severity.NOTE, f"the build cache is not used: {exc}",
                                 hint="the build runs without it and gives the same result; use a folder "
                                 "of your own (--cache-dir DIR) or --no-cache (docs/cache.md)")]


def folder_option(cache_dir: Path | None, no_cache: bool) -> Path | None:
    """The cache folder of the command-line options ``--cache-dir`` and ``--no-cache``."""
    if no_cache:
        return None
    if cache_dir is not None:
        return cache_dir
    return default_folder()


__all__ = ["BuildCache", "code_digest", "default_folder", "folder_option", "open_cache"]
