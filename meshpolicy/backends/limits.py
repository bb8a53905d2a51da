"""The Kubernetes limits every emitted object must respect, and the bounded provenance annotation.

Figures (docs/limits.md has the sources and what a user sees at each):

- The API server refuses an object whose annotations (keys and values) exceed
  256 KiB in total (``TotalAnnotationSizeLimitB`` in
  ``k8s.io/apimachinery/pkg/api/validation/objectmeta.go``).
- ``kubectl apply`` without ``--server-side`` (and Argo CD, by default) copies
  the whole object, as JSON, into the ``kubectl.kubernetes.io/last-applied-configuration``
  annotation: so an object that is larger than that annotation limit cannot be
  applied that way.
- etcd refuses a request over 1.5 MiB (``--max-request-bytes``, default
  1.5 MiB, etcd.io "System limits"); the API server decodes request bodies of up
  to 3 MiB (``MaxRequestBodyBytes`` in ``k8s.io/apiserver/pkg/server/config.go``,
  twice etcd's figure because JSON is converted before it is stored).

meshpolicy keeps every object within the tightest of these, the client-side
apply bound, and fills an object that can be split (where several objects mean
the same as one) only up to :data:`SPLIT_BUDGET`, half of it.
"""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any

KIB = 1024
#: the API server's limit on the total size of an object's annotations (keys and values, bytes)
ANNOTATIONS_LIMIT = 256 * KIB
#: etcd's default request limit, the largest object the API server can store
ETCD_REQUEST_LIMIT = 1536 * KIB
#: the annotation kubectl's client-side apply writes, holding the object as JSON
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: how far a backend fills an object it can split into several equivalent ones (JSON bytes)
SPLIT_BUDGET = 128 * KIB
#: the provenance annotation's budget (UTF-8 bytes): a longer list of lines is summarised
SOURCE_LIMIT = 1024


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON, as kubectl sends it (UTF-8)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode())


def source_text(lines: list[tuple[str, int]], limit: int = SOURCE_LIMIT) -> str:
    """``FILE:LINE, ...`` for the sorted (file, line) pairs; past ``limit`` bytes a summary that is not
    longer (for any limit of 64 bytes or more).

    The summary gives each file once with its lines as runs (``a.mesh:3-7,12``: 3 to 7 are all
    origins), in order and as many as fit, then what it leaves out: ``(+40 more lines in 2 files)``.
    The same lines always give the same text.
    """
    if not lines:
        return "built-in default"
    full = ", ".join(f"{f}:{n}" for f, n in lines)
    if len(full.encode()) <= limit:
        return full
    runs = [(name, first, last) for name, group in groupby(lines, key=lambda fl: fl[0])
            for first, last in _ranges([n for _, n in group])]
    text = _summary(runs, 0, len(lines))
    for k in range(1, len(runs) + 1):
        longer = _summary(runs, k, len(lines))
        if len(longer.encode()) > limit:
            break
        text = longer
    return text


def _summary(runs: list[tuple[str, int, int]], k: int, total: int) -> str:
    """The first ``k`` runs, grouped by file, and how many lines and files the rest holds."""
    entries: list[str] = []
    for name, group in groupby(runs[:k], key=lambda r: r[0]):
        entries.append(f"{name}:" + ",".join(str(a) if a == b else f"{a}-{b}" for _, a, b in group))
    shown = sum(b - a + 1 for _, a, b in runs[:k])
    rest_files = len({name for name, _, _ in runs[k:]})
    tail = _tail(total - shown, rest_files)
    return ", ".join(entries) + (f" {tail}" if entries and tail else tail)


def _tail(lines: int, files: int) -> str:
    if not lines:
        return ""
    return f"(+{lines} more line{'s' if lines != 1 else ''} in {files} file{'s' if files != 1 else ''})"


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted line numbers as (first, last) runs of consecutive lines."""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out
