"""Locate the grammar and template folders, installed or in a source checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(installed: str, checkout: str) -> Path:
    inside = resources.files("meshpolicy").joinpath(installed)
    if inside.is_dir():
        return Path(str(inside))
    return _PACKAGE.parent / checkout


def grammar_dir() -> Path:
    """``grammar/`` at the top of a checkout, ``meshpolicy/_grammar`` in a wheel."""
    return _find("_grammar", "grammar")


def templates_dir() -> Path:
    """``templates/`` at the top of a checkout, ``meshpolicy/_templates`` in a wheel."""
    return _find("_templates", "templates")
