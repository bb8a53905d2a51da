"""Every format of the picture, by name; ``svg`` runs Graphviz's ``dot`` on the DOT text."""

from __future__ import annotations

import shutil
import subprocess

from ..errors import UsageError
from . import dot, mermaid, page, record
from .model import View

FORMATS = ("dot", "mermaid", "json", "html", "svg")


class ToolMissing(UsageError):
    """A format needs a program that is not installed (or that failed)."""


def render(view: View, fmt: str, title: str = "meshpolicy access graph") -> str:
    """``view`` in format ``fmt``; ``title`` heads the HTML page."""
    if fmt == "dot":
        return dot.render(view)
    if fmt == "mermaid":
        return mermaid.render(view)
    if fmt == "json":
        return record.render(view)
    if fmt == "html":
        return page.render(view, title)
    if fmt == "svg":
        return svg(dot.render(view))
    raise ValueError(f"unknown format {fmt!r}")


def svg(text: str) -> str:
    """SVG from DOT text through Graphviz's ``dot -Tsvg``."""
    program = shutil.which("dot")
    if program is None:
        raise ToolMissing("--format svg needs Graphviz's dot program, which is not installed "
                          "(Debian and Ubuntu: apt-get install graphviz; macOS: brew install graphviz); "
                          "or write --format dot and render it elsewhere")
    done = subprocess.run([program, "-Tsvg"], input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise ToolMissing(f"Graphviz's dot failed (exit {done.returncode})" + (f": {said[-1]}" if said else ""))
    return done.stdout
