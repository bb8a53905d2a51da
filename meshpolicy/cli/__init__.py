"""The command line: one module per command, joined here. Exit codes are in :mod:`.common`.

A bad invocation (an unknown command or option, a missing argument, a value
given to a flag) is one line on stderr, ``meshpolicy: error: ...``, and exit
code 2: :class:`CommandLine` puts Click's errors in that form, the way the
commands' own usage errors are printed (:func:`.common.boundary`).
"""

from __future__ import annotations

import functools
import gc
import importlib
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from .common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE", "CommandLine", "app", "main"]

#: Click's exception classes, reached through Typer's public ``BadParameter`` (recent Typers vendor Click)
_CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
#: command name -> its module in this package; a module is imported only when its command runs (or for
#: ``--help``), so that ``meshpolicy targets`` does not pay for the build's imports (issue 12)
_COMMANDS: dict[str, str] = {name: name for name in
                             ("build", "check", "targets", "diff", "graph", "lint", "fmt", "verify", "explain")}
_COMMANDS["import"] = "importing"  # 'import' is a Python keyword: the module and its function say it otherwise
#: what a flag's value would look like: ``--check true`` is a mistake, not a path named "true"
_FLAG_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0"})


class CommandLine(TyperGroup):
    """The root command: Click's usage errors as one line ``meshpolicy: error: ...``, exit 2.

    Its commands are loaded on demand from :data:`_COMMANDS` (:func:`_load`).
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return _load(cmd_name) if cmd_name in _COMMANDS else None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        words = list(sys.argv[1:] if args is None else args)
        try:
            _refuse_flag_values(self, words)
            code = super().main(words, prog_name or "meshpolicy", complete_var, standalone_mode=False, **extra)
        except _CLICK_ERROR as exc:
            command = _command_of(words)
            _usage(_message(exc), command if command in _COMMANDS else None)
        except typer.Abort:
            typer.echo("meshpolicy: aborted", err=True)
            sys.exit(EXIT_FINDINGS)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


class Command(TyperCommand):
    """A command whose usage line reads ``build [OPTIONS] PATH...`` (Typer writes ``{PATH}...``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [piece[1:].replace("}", "", 1) if piece.startswith("{") else piece
                for piece in super().collect_usage_pieces(ctx)]


def _command_of(words: list[str]) -> str | None:
    """The command word: the root takes no option before it but ``--version`` and the completion ones."""
    return next((w for w in words if not w.startswith("-")), None)


def _message(exc: Exception) -> str:
    """Click's message; for an unknown option, its suggestions as a question."""
    close = sorted(getattr(exc, "possibilities", None) or ())
    if close and isinstance(getattr(exc, "message", None), str):
        either = " or ".join([", ".join(close[:-1]), close[-1]] if len(close) > 1 else close)
        return f"{exc.message} (did you mean {either}?)"  # type: ignore[attr-defined]
    return exc.format_message() if hasattr(exc, "format_message") else str(exc)


def _usage(message: str, command: str | None) -> NoReturn:
    """``meshpolicy: error: no such option: --foo; see 'meshpolicy build --help'``."""
    message = message.strip().rstrip(".")
    message = message[:1].lower() + message[1:]
    where = f"meshpolicy {command} --help" if command is not None else "meshpolicy --help"
    typer.echo(f"meshpolicy: error: {message}; see '{where}'", err=True)
    sys.exit(EXIT_USAGE)


def _refuse_flag_values(group: TyperGroup, words: list[str]) -> None:
    """``build --check true``: Click would read ``true`` as a path; say what is wrong instead."""
    name = _command_of(words) or ""
    command = group.get_command(None, name)  # type: ignore[arg-type]
    if command is None:
        return
    flags = {opt for p in command.params if getattr(p, "is_flag", False) for opt in p.opts}
    for flag, value in itertools.pairwise(words):
        if flag in flags and value.lower() in _FLAG_VALUES and not Path(value).exists():
            _usage(f"{flag} is a flag and takes no value (got {value!r}): write {flag} alone", name)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meshpolicy {__version__}")
        raise typer.Exit(EXIT_OK)


app = typer.Typer(
    name="meshpolicy",
    cls=CommandLine,
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Print meshpolicy's version and exit.")] = False,
) -> None:
    """Compile .mesh policy files to Istio or Linkerd security policy.

    \b
    Exit codes: 0 success; 1 policy errors, drift, lint findings, a change of access; 2 bad invocation.
    Shell completion: meshpolicy --install-completion (bash, zsh, fish, PowerShell).
    """
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        typer.echo(ctx.get_help())
        raise typer.Exit(EXIT_USAGE)


@functools.cache
def _load(name: str) -> Any:
    """The Click command of ``name``: its module imported now, turned into a command the way Typer does."""
    module = importlib.import_module(f".{_COMMANDS[name]}", __name__)
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    function = getattr(module, name, None) or getattr(module, f"{name}_")
    single.command(name=name, cls=Command, context_settings=getattr(module, "CONTEXT", None))(function)
    return typer.main.get_command(single)


#: the cyclic garbage collector's thresholds while a command runs (Python's own: 700, 10, 10). A build keeps
#: a large heap of long-lived, acyclic objects (syntax trees, the graph, the documents read back), which the
#: collector's frequent passes only walk: about a tenth of a large build's CPU time (docs/performance.md,
#: "The garbage collector"); cycles are still collected, after 100,000 allocations instead of 700
BATCH_THRESHOLDS = (100_000, 50, 100)


def batch_collector() -> None:
    """Set the collector for one command's run (:data:`BATCH_THRESHOLDS`); ``benchmarks/bench.py`` does the same."""
    gc.set_threshold(*BATCH_THRESHOLDS)


def main() -> None:
    batch_collector()
    app()
