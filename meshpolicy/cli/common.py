"""What every command shares: exit codes, the error boundary, and diagnostic output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Mapping

import typer

from ..diagnostics import Diagnostic, MeshError, Severity, render_text
from ..output.crds import CrdError
from ..output.writer import OutputError
from ..source import SourceError, SourceFile, discover

#: the policy compiled (and, with --check, the output is up to date)
EXIT_OK = 0
#: the policy has errors, an invariant is violated, or --check found drift
EXIT_FINDINGS = 1
#: bad invocation: unknown option or target, unreadable path, unusable --crds or --out folder
EXIT_USAGE = 2


class Fail(Exception):
    """End a command with a message on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def emit_diagnostics(diagnostics: list[Diagnostic], sources: Mapping[str, SourceFile], fmt: str = "human") -> None:
    if not diagnostics:
        return
    if fmt == "json":
        typer.echo(json.dumps([d.to_dict() for d in diagnostics], indent=2), err=True)
        return
    for diag in diagnostics:
        typer.echo(render_text(diag, sources), err=True)
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
    if errors:
        typer.echo(f"{errors} error(s), {warnings} warning(s)", err=True)


@contextmanager
def boundary(sources: Callable[[], Mapping[str, SourceFile]] = dict, fmt: str = "human") -> Iterator[None]:
    """The one place where failures become messages and exit codes; no traceback for bad input."""
    try:
        yield
    except MeshError as err:
        emit_diagnostics(err.diagnostics, sources(), fmt)
        raise typer.Exit(EXIT_FINDINGS) from None
    except (SourceError, CrdError, OutputError) as err:
        typer.echo(f"meshpolicy: error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except Fail as err:
        typer.echo(f"meshpolicy: {err}", err=True)
        raise typer.Exit(err.code) from None


def read_policy(paths: list, sources: dict):
    """Discover and analyze the policy; ``sources`` is filled first, so that errors show their lines."""
    from .. import pipeline  # the CLI's one way in; imported late to keep this module light

    files = discover(list(paths))
    sources.update({s.name: s for s in files})
    return pipeline.analyze(files)


def choose(value: str, allowed: list[str] | tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise Fail(f"error: {option} must be one of: {', '.join(allowed)} (got {value!r})")
    return value


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
