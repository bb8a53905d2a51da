"""``meshpolicy fmt``: rewrite ``.mesh`` files in the canonical layout (docs/fmt.md)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..diagnostics import MeshError
from ..fmt import FormatError, format_source
from ..source import SourceFile, discover
from .common import EXIT_FINDINGS, boundary
from .formatters import emit_diagnostics


def fmt(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Files or folders (every *.mesh below); '-' reads stdin.")],
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if a file is not formatted.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Write nothing; print what would change as a diff.")] = False,
) -> None:
    """Format .mesh files in place: one canonical layout, comments kept, meaning unchanged."""
    sources: dict = {}
    with boundary(lambda: sources):
        if [str(p) for p in paths] == ["-"]:
            src = sources["<stdin>"] = SourceFile("<stdin>", sys.stdin.read())
            typer.echo(format_source(src), nl=False)
            return
        files = discover(list(paths))
        changed, broken = [], False
        for src in files:
            try:
                text = format_source(src)
            except MeshError as err:
                emit_diagnostics(err.diagnostics, {src.name: src})
                broken = True
                continue
            except FormatError as err:  # a bug: say so, and leave the file alone
                typer.echo(f"meshpolicy: internal error: {err}; the file was left unchanged", err=True)
                broken = True
                continue
            if text == src.text:
                continue
            changed.append(src.name)
            if diff:
                typer.echo("".join(difflib.unified_diff(src.text.splitlines(True), text.splitlines(True),
                                                        f"a/{src.name}", f"b/{src.name}")), nl=False)
            elif check:
                typer.echo(f"would reformat {src.name}")
            else:
                Path(src.name).write_text(text, encoding="utf-8")
                typer.echo(f"reformatted {src.name}")
        verb = "would be reformatted" if check or diff else "reformatted"
        typer.echo(f"{len(changed)} file(s) {verb}, {len(files) - len(changed)} unchanged", err=True)
        if broken or ((check or diff) and changed):
            raise typer.Exit(EXIT_FINDINGS)

