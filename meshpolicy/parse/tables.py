"""Where the parser's LALR tables are kept between runs, so that a command does not rebuild them.

Lark's ``cache=`` option pickles the analysed grammar to one file. Lark writes the SHA-256 of
(grammar text, parser options, Lark version, Python version) at the head of that file and rebuilds
when it differs; on top of that, the file's *name* here carries a hash of the grammar text, the
variant, and the Lark and Python versions, so a changed grammar never even opens an older table.
A missing, unwritable or read-only cache folder is not an error: Lark then builds the tables in
memory, as without a cache (docs/performance.md, "Parser tables").

The folder: ``$MESHPOLICY_CACHE_DIR`` when set (empty: no cache), else
``$XDG_CACHE_HOME/meshpolicy``, else ``~/.cache/meshpolicy``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import lark


def cache_dir() -> Path | None:
    """The per-user folder of the cached tables; None when caching is turned off."""
    configured = os.environ.get("MESHPOLICY_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshpolicy"


def cache_key(grammar: Path, variant: str) -> str:
    """A hash of what the tables depend on: the grammar's bytes, the variant, Lark's and Python's versions."""
    digest = hashlib.sha256()
    for part in (grammar.read_bytes(), variant.encode(), lark.__version__.encode(),
                 ".".join(map(str, sys.version_info[:2])).encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def cache_option(grammar: Path, variant: str) -> str | bool:
    """The value of Lark's ``cache=`` for ``grammar``: a file in :func:`cache_dir`, or False (no cache)."""
    folder = cache_dir()
    if folder is None:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        key = cache_key(grammar, variant)
    except OSError:
        return False
    return str(folder / f"lalr-{variant}-{key[:32]}.pickle")
