"""What a lint rule can look at: the syntax trees (with comments), the access graph, and indexes of both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar, cast

from ..diagnostics import Diagnostic
from ..errors import InternalError
from ..graph.model import DEFAULT_NAMESPACE, AccessGraph, Namespace, Rule, Service
from ..parse import ast
from ..source import Span

#: a kind of statement (``ast.Rule``, ``ast.Service``, ...)
N = TypeVar("N")


@dataclass(frozen=True, slots=True)
class Scoped(Generic[N]):
    """A syntax node with the namespace it sits in (``default`` at the top level)."""

    namespace: str
    top_level: bool
    node: N


@dataclass
class Context:
    files: list[ast.File]
    layouts: dict[str, ast.Layout]
    graph: AccessGraph
    warnings: list[Diagnostic] = field(default_factory=list)  # the resolver's
    memo: dict[str, Any] = field(default_factory=dict)                   # results rules share

    @cached_property
    def statements(self) -> list[Scoped[ast.Statement]]:
        """Every statement but namespaces, in source order, with its namespace."""
        out: list[Scoped[ast.Statement]] = []
        for f in self.files:
            for stmt in f.statements:
                if isinstance(stmt, ast.Namespace):
                    out.extend(Scoped(stmt.name.value, False, inner) for inner in stmt.body)
                else:
                    out.append(Scoped(DEFAULT_NAMESPACE, True, stmt))
        return out

    def nodes(self, kind: type[N]) -> list[Scoped[N]]:
        """The statements of one kind, with their namespaces."""
        return [cast(Scoped[N], s) for s in self.statements if isinstance(s.node, kind)]

    def service(self, key: tuple[str, str]) -> Service:
        """A service of the graph that the resolver has checked exists."""
        found = self.graph.service(key)
        if found is None:
            raise InternalError(f"lint: no service {key[0]}/{key[1]} in the resolved graph")
        return found

    def namespace(self, name: str) -> Namespace:
        """A namespace of the graph that the resolver has checked exists."""
        found = self.graph.namespace(name)
        if found is None:
            raise InternalError(f"lint: no namespace {name} in the resolved graph")
        return found

    @cached_property
    def services(self) -> dict[tuple[str, str], ast.Service]:
        return {(s.namespace, s.node.name.value): s.node for s in self.nodes(ast.Service)}

    @cached_property
    def groups(self) -> dict[tuple[str, str], ast.Group]:
        return {(s.namespace, s.node.name.value): s.node for s in self.nodes(ast.Group)}

    @cached_property
    def graph_rules(self) -> dict[Span, list[Rule]]:
        """Allow, deny and never rules of the graph by the rule line they came from (one per destination)."""
        out: dict[Span, list[Rule]] = {}
        for r in self.graph.rules + self.graph.invariants:
            out.setdefault(r.origin, []).append(r)
        return out

    def service_span(self, key: tuple[str, str]) -> Span | None:
        node = self.services.get(key)
        return node.name.span if node is not None else None

    def expand(self, scope: str, ref: ast.Ref) -> list[ast.Ref]:
        """A reference with groups replaced by their members (as the resolver scopes them), depth first,
        cycles cut; each group expanded once. An explicit stack: deep or doubling chains of groups are bad
        input, never a crash."""
        out: list[ast.Ref] = []
        expanded: set[tuple[str, str]] = set()
        stack: list[tuple[str, Iterator[ast.Ref]]] = [(scope, iter([ref]))]
        while stack:
            where, pending = stack[-1]
            member = next(pending, None)
            if member is None:
                stack.pop()
                continue
            if member.kind is not ast.RefKind.NAME or member.value.endswith("/*"):
                out.append(member)
                continue
            ns, slash, name = member.value.rpartition("/")
            key = (ns if slash else where, name)
            group = self.groups.get(key)
            if group is None:
                out.append(member)
            elif key not in expanded:  # a group met again (a cycle, or a second path to it) adds nothing new
                expanded.add(key)
                stack.append((key[0], iter(group.refs)))
        return out
