"""The manifests an import reads: files, folders and ``-``, bounded like ``--cluster`` (docs/limits.md).

Every document keeps its file and line, so that a diagnostic about a resource points at it. The
YAML is read by :mod:`meshpolicy.cluster.yamldoc` (the C parser's events, no aliases, bounded
nesting, linear time); a file larger than :data:`MAX_BYTES`, a file that is not UTF-8, a document
that is not a Kubernetes object or a syntax error is an MP800 diagnostic with its place, and the
rest of the input is still read. Nothing here raises for bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.reader import MAX_BYTES, manifest_files, manifest_text
from ..cluster.yamldoc import DocumentError, Map, Seq, documents
from ..diagnostics import Diagnostic, Severity
from ..output.folder import MARKER, is_values
from ..source import SourceFile, Span

__all__ = ["MAX_BYTES", "Document", "Input", "read"]


@dataclass(frozen=True, slots=True)
class Document:
    """One Kubernetes object of the input: where it is and what it holds (a :class:`Map`)."""

    file: str
    line: int
    data: Map

    def plain(self) -> Any:
        """A deep copy of the object as plain dicts and lists (what the readers take)."""
        return _plain(self.data)

    @property
    def kind(self) -> str:
        kind = self.data.get("kind")
        return kind if isinstance(kind, str) else ""

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else "?"

    @property
    def namespace(self) -> str:
        meta = self.data.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        return ns if isinstance(ns, str) and ns else "default"

    @property
    def title(self) -> str:
        """``AuthorizationPolicy shop/orders``: how a diagnostic names the resource."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.kind != "Namespace" else f"Namespace {self.name}"

    def span(self, obj: Any = None, key: str | None = None) -> Span:
        """Where ``key`` of ``obj`` (a mapping of this document) sits; the document's first line otherwise."""
        if isinstance(obj, Map) and key is not None:
            line, col, end_line, end_col = obj.where(key)
            return Span(self.file, line, col, end_line, end_col)
        if isinstance(obj, (Map, Seq)):
            return Span(self.file, obj.line, obj.col, obj.line, obj.col)
        return Span(self.file, self.data.line, self.data.col, self.data.line, self.data.col)


    def locate(self, spot: str) -> Span:
        """Where a field of ``spec`` is, written ``rules[2].to[0].operation.paths``; as near as it exists."""
        obj: Any = self.data.get("spec")
        best = self.span(self.data, "spec") if "spec" in self.data else self.span()
        for name, index in re.findall(r"(\w+)(?:\[(\d+)\])?", spot):
            if not isinstance(obj, Map) or name not in obj:
                break
            best = self.span(obj, name)
            obj = obj[name]
            if index:
                i = int(index)
                if not isinstance(obj, Seq) or i >= len(obj):
                    break
                line = obj.line_of(i)
                item = obj[i]
                col = item.col if isinstance(item, (Map, Seq)) else obj.col
                best = Span(self.file, line, col, line, col)
                obj = item
        return best


@dataclass
class Input:
    documents: list[Document] = field(default_factory=list)
    sources: dict[str, SourceFile] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _problem(out: Input, name: str, line: int, message: str) -> None:
    out.diagnostics.append(Diagnostic("MP800", Severity.ERROR, message, Span(name, line, 1, line, 1),
                                      "the document is left out of the import: nothing it allows is imported"))


def read(paths: list[str]) -> Input:
    """Every object of ``paths`` (files, folders: every .yaml, .yml and .json below; ``-``: stdin).

    Raises :class:`SourceError` (a usage error) only for a path that does not exist or cannot be listed.
    """
    found = manifest_files(paths, keep=lambda folder, child: not _install_values(folder, child))
    out = Input()
    for name in sorted(found):
        text = manifest_text(name, found[name], lambda n, line, message: _problem(out, n, line, message))
        if text is None:
            continue
        out.sources[name] = SourceFile(name, text)
        for item in documents(text):
            if isinstance(item, DocumentError):
                _problem(out, name, item.line, str(item.args[0]))
                continue
            line, value = item
            if value is None:
                continue
            _objects(out, name, line, value)
    return out


def _install_values(folder: Path, child: Path) -> bool:
    """A meshpolicy output folder's install values (``_values/CHART.yaml`` starting with the marker,
    docs/output.md): Helm values, not Kubernetes objects, so not read."""
    if not is_values(child.relative_to(folder).as_posix()):
        return False
    with open(child, "rb") as fh:
        return fh.read(len(MARKER) + 1) == (MARKER + "\n").encode()


def _objects(out: Input, name: str, line: int, value: Any) -> None:
    if not isinstance(value, Map):
        _problem(out, name, line, "not a Kubernetes object: a document must be a mapping")
        return
    kind = value.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(value.get("items"), Seq):
        items = value["items"]
        for index, item in enumerate(items):
            _objects(out, name, items.line_of(index), item)
        return
    if not isinstance(kind, str) or not isinstance(value.get("apiVersion"), str):
        _problem(out, name, value.line, "not a Kubernetes object: no kind or apiVersion")
        return
    out.documents.append(Document(name, value.line, value))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
