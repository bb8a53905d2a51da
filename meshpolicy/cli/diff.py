"""``meshpolicy diff``: what access a change grants and removes (docs/diff.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..diff import compare, git_sources, load
from ..graph.model import AccessGraph
from ..source import discover
from .common import EXIT_FINDINGS, Fail, boundary, choose
from .formatters import DIFF_FORMATS, render_diff

#: pictures of the change (meshpolicy/view/change.py, docs/graph.md)
PICTURES = ("mermaid", "html")


def diff(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="OLD NEW (files or folders); with --base, the policy's files or folders (default: .).")] = None,
    base: Annotated[str | None, typer.Option("--base", metavar="REV",
                                             help="Compare the working tree with git revision REV.")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT",
                                     help="text, markdown (a PR comment), json, or a picture: mermaid, html.")] = "text",
) -> None:
    """Show the access a change grants and removes: exit 0 when none changed, 1 when some did."""
    sources: dict = {}
    with boundary(lambda: sources):
        choose(fmt, DIFF_FORMATS + PICTURES, "--format")
        given: list[str | Path] = list(paths or [])
        if base is None:
            if len(given) != 2:
                raise Fail("give OLD and NEW (two files or folders), or --base REV [PATH...]")
            old, new = discover([given[0]]), discover([given[1]])
        else:
            given = given or [Path(".")]
            new = discover(given)
            old = git_sources(base, given)
        sources.update({s.name: s for s in old + new})
        before, after = load(old), load(new)
        result = compare(before, after)
        if fmt in PICTURES:
            typer.echo(_picture(before, after, fmt, *_names(given, base)), nl=False)
        else:
            typer.echo(render_diff(result, fmt), nl=False)
        if result.changed:
            raise typer.Exit(EXIT_FINDINGS)


def _names(given: list[str | Path], base: str | None) -> tuple[str, str]:
    if base is not None:
        return base, "the working tree"
    return Path(given[0]).as_posix(), Path(given[1]).as_posix()


def _picture(before: AccessGraph, after: AccessGraph, fmt: str, old_name: str, new_name: str) -> str:
    from ..view import change  # the pictures' code is loaded only when asked for

    picture = change.compare(before, after)
    if fmt == "mermaid":
        return change.render_mermaid(picture)
    return change.render_html(picture, old_name, new_name)
