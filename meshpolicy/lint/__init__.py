"""``meshpolicy lint``: findings about a policy that compiles but may not say what its authors mean.

One function per rule, registered by code (:mod:`.registry`); the rules are
documented one by one in docs/lint.md. A finding on a line can be silenced
with a comment on that line, or alone on the line above it:
``# lint: ignore ML001`` (several codes: ``# lint: ignore ML001, ML007``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..cluster import Manifests
from ..cluster import check as check_cluster
from ..cluster.ports import PortNames
from ..diagnostics import Collector, Diagnostic
from ..errors import UsageError
from ..parse import ast, parse_file_with_comments, parse_files
from ..resolve import resolve
from ..source import SourceFile
from . import certificates, conditions, coverage, grpc, identity, mtls, probes, scope  # noqa: F401 - importing a rule module registers its rules
from .context import Context
from .registry import RULES, LintRule

__all__ = ["RULES", "LintRule", "lint", "select"]

_IGNORE = re.compile(r"#\s*lint:\s*ignore\b(.*)")


def select(disable: Iterable[str] = ()) -> list[LintRule]:
    """The rules to run: all but those named (by code or name); raises ``UsageError`` for an unknown one."""
    off = set()
    for item in disable:
        found = [r.code for r in RULES.values() if item in (r.code, r.name)]
        if not found:
            raise UsageError(f"--disable: unknown lint rule {item!r} (see 'meshpolicy lint --help')")
        off.update(found)
    return [RULES[code] for code in sorted(RULES) if code not in off]


def lint(sources: list[SourceFile], disable: Iterable[str] = (), manifests: Manifests | None = None,
         target: str | None = None) -> list[Diagnostic]:
    """Lint a whole policy; raises :class:`~meshpolicy.diagnostics.MeshError` when it does not compile.

    With ``manifests`` (``--cluster``) the findings of the policy against its workloads (MP601-MP613,
    docs/cluster.md) are part of the result, and their errors stop the lint as compile errors do."""
    rules = select(disable)
    parsed = parse_files(sources, parse_file_with_comments)
    files = [tree for tree, _ in parsed]
    layouts = {tree.name: layout for tree, layout in parsed}
    resolved = resolve(files, selectors_by_pods=manifests is not None,
                       port_names=None if manifests is None else PortNames(manifests.cluster))
    against: list[Diagnostic] = []
    if manifests is not None:
        collected = Collector()
        collected.items = manifests.diagnostics + check_cluster(resolved.graph, manifests.cluster, target)
        collected.raise_if_errors()
        against = collected.items
    ctx = Context(files, layouts, resolved.graph, resolved.warnings)
    ignored = _ignored(layouts)
    found = [d for r in rules for d in r.run(ctx)
             if d.span is None or d.code not in ignored.get((d.span.file, d.span.line), ())]
    return sorted(found + against, key=Diagnostic.sort_key)


def _ignored(layouts: dict[str, ast.Layout]) -> dict[tuple[str, int], set[str]]:
    """(file, line) -> codes silenced there by ``# lint: ignore CODE`` comments."""
    out: dict[tuple[str, int], set[str]] = {}
    for name, layout in layouts.items():
        for comment in layout.comments:
            m = _IGNORE.search(comment.text)
            if m:
                line = comment.span.line + (1 if comment.own_line else 0)
                out.setdefault((name, line), set()).update(re.findall(r"ML\d{3}", m.group(1)))
    return out
