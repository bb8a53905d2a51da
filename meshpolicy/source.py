"""Source files, spans and discovery of ``*.mesh`` files.

A :class:`Span` is where something came from; every diagnostic and every
IR object carries spans so that errors and the emitted provenance
annotations can point back at ``file:line:col``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A region of a source file; lines and columns count from 1."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def part(self, offset: int, width: int = 1) -> Span:
        """The ``width`` characters at ``offset`` of a one-line span (a caret on one character of a word)."""
        col = self.col + offset
        return Span(self.file, self.line, col, self.line, col + max(width, 1))

    @property
    def short(self) -> str:
        """``file:line``, the form used in provenance annotations."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One ``.mesh`` file: its display name and its text."""

    name: str
    text: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return ""


class SourceError(UsageError):
    """A path given on the command line cannot be read (a usage error)."""


def discover(paths: list[str | Path]) -> list[SourceFile]:
    """Read every ``.mesh`` file named by ``paths`` (files or folders).

    The result is sorted by display name so that the order in which files are
    given never changes anything downstream.
    """
    found: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                for child in sorted(path.rglob("*.mesh")):
                    if child.is_file():
                        found[_display(child)] = child
            elif path.is_file():
                found[_display(path)] = path
            else:
                raise SourceError(f"no such file or folder: {raw}")
        except OSError as exc:  # a name too long, a folder we may not list: the user's path, not a bug
            raise SourceError(f"{raw}: cannot read ({exc.strerror or exc})") from exc
    if not found:
        raise SourceError("no .mesh files found in: " + ", ".join(str(p) for p in paths))
    files = []
    for name in sorted(found):
        try:
            text = found[name].read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{name}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except OSError as exc:
            raise SourceError(f"{name}: cannot read ({exc.strerror})") from exc
        files.append(SourceFile(name, text))
    return files


def _display(path: Path) -> str:
    """A stable, machine-independent name: relative to the working folder when possible."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()
