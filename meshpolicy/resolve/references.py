"""References (LANGUAGE §2.3): names looked up in their scope, groups expanded (cycles, unused
groups), and each reached reference turned into a source (who calls) or destination services (who is
called).

One method per kind of reference and role (``source_cidr``, ``destination_star``, ...); a new kind of
reference is one method for each role.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ..graph.model import EVERY_WORKLOAD, Service, Source, SourceKind
from ..parse import ast
from .base import Reported, Visitor
from .checks import cidr_problem
from .names import did_you_mean, name_problem

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reached:
    """A reference that is not a group, reached from a rule's list directly or through groups."""

    scope: str                        #: the namespace it is written in
    ref: ast.Ref
    service: tuple[str, str] | None   #: the key of a named service; None for wildcards, ``any`` and CIDRs
    top: ast.Ref                      #: the reference of the rule's list it was reached through

    @property
    def kind(self) -> str:
        """``service``, ``namespace`` (``NS/*``), ``star``, ``wide`` (``**``, ``NS/**``), ``any`` or ``cidr``."""
        if self.service is not None:
            return "service"
        return str(self.ref.kind) if self.ref.kind is not ast.RefKind.NAME else "namespace"

    @property
    def direct(self) -> bool:
        """Named in the rule itself, not through a group."""
        return self.ref is self.top


@dataclass(frozen=True, slots=True, order=True)
class EveryWorkload:
    """A ``NS/**`` destination: every workload of the namespace, declared or not (LANGUAGE §2.3)."""

    namespace: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, EVERY_WORKLOAD)

    def __str__(self) -> str:
        return f"{self.namespace}/{EVERY_WORKLOAD}"


#: a destination (a service, or every workload of a namespace), the reference of the rule that reached it,
#: and whether it was named directly
Destination = tuple[Service | EveryWorkload, ast.Ref, bool]


class References(Visitor):
    # -- lookup and groups -----------------------------------------------------------------------------
    def lookup(self, scope: str, ref: ast.Ref) -> tuple[str, tuple[str, str]]:
        """A name reference -> ('service'|'group', key)."""
        t = self.tables
        ns, slash, name = ref.value.rpartition("/")
        ns = ns if slash else scope
        for part in ([ns] if slash else []) + [name]:
            problem = name_problem(part)
            if problem:
                self.fail("MP101", problem[0], ref.span, problem[1])
        key = (ns, name)
        if key in t.service_nodes:
            if key not in t.services:
                raise Reported  # its declaration failed, and said so
            return ("service", key)
        if key in t.groups:
            return ("group", key)
        local = [n for (s, n) in list(t.service_nodes) + list(t.groups) if s == ns]
        hint = did_you_mean(name, local)
        if hint is None:
            elsewhere = [f"{s}/{n}" for (s, n) in t.service_nodes if n == name]
            hint = did_you_mean(f"{ns}/{name}", elsewhere) if elsewhere else None
        if hint is None and ns not in t.namespaces:
            hint = f"namespace '{ns}' declares nothing"
        what = f"'{name}'" if not slash else f"'{ns}/{name}'"
        self.fail("MP103", f"{what} is not declared" + ("" if slash else f" in namespace '{ns}'"), ref.span, hint)

    def group(self, key: tuple[str, str], via: list[str], on_path: set[str]) -> tuple[ast.Ref, ...]:
        """The members of group ``key``; MP104 when it is one of ``via`` (= ``on_path``), the groups being
        expanded around it."""
        info = self.tables.groups[key]
        info.used = True
        label = f"{key[0]}/{key[1]}"
        if label in on_path:
            cycle = " -> ".join(via[via.index(label):] + [label])
            self.fail("MP104", f"group cycle: {cycle}", info.node.name.span,
                      "a group cannot contain itself, directly or through other groups")
        return info.node.refs

    def report_unused_groups(self) -> None:
        for info in self.tables.groups.values():
            if not info.used:
                g = info.node
                self.diag.warning("MP105", f"group '{g.name.value}' is never used", g.name.span,
                                  "use it in a rule or remove it")

    def walk(self, scope: str, refs: tuple[ast.Ref, ...], leaf: Callable[[Reached], list[T]]) -> list[T]:
        """``leaf`` of every reference reached from ``refs`` through groups, depth first in written order.

        An explicit stack, not recursion, and each group expanded once per top reference: a chain of groups
        thousands deep, or one that names the next group twice at every level, is bad input, not a crash or
        an exponential walk. Every failure is reported; :class:`Reported` at the end if any.
        """
        out: list[T] = []
        failed = False
        path: list[str] = []  # the groups being expanded, outermost first (a cycle is one of them again)
        on_path: set[str] = set()
        done: set[tuple[str, int]] = set()  # (group, id of its top reference): expanding it again adds nothing
        stack: list[tuple[str, Iterator[ast.Ref], ast.Ref | None]] = [(scope, iter(refs), None)]
        while stack:
            where, pending, top = stack[-1]
            ref = next(pending, None)
            if ref is None:
                stack.pop()
                if path and len(stack) == len(path):
                    on_path.discard(path[-1])
                    done.add((path.pop(), id(top)))
                continue
            try:
                if ref.kind is not ast.RefKind.NAME or ref.value.endswith("/*"):
                    out.extend(leaf(Reached(where, ref, None, top or ref)))
                    continue
                kind, key = self.lookup(where, ref)
                label = f"{key[0]}/{key[1]}"
                if kind == "service":
                    out.extend(leaf(Reached(where, ref, key, top or ref)))
                elif (label, id(top or ref)) not in done:
                    inner = self.group(key, path, on_path)
                    path.append(label)
                    on_path.add(label)
                    stack.append((key[0], iter(inner), top or ref))
            except Reported:
                failed = True
        if failed:
            raise Reported
        return out

    # -- sources: who calls ----------------------------------------------------------------------------
    def sources(self, scope: str, refs: tuple[ast.Ref, ...]) -> list[Source]:
        return self.walk(scope, refs, lambda reached: getattr(self, "source_" + reached.kind)(reached))

    def source_service(self, reached: Reached) -> list[Source]:
        assert reached.service is not None
        svc = self.tables.services[reached.service]
        return [Source(SourceKind.IDENTITY, svc.namespace, svc.account)]

    def source_namespace(self, reached: Reached) -> list[Source]:
        ref = reached.ref
        ns = ref.value[:-2]
        problem = name_problem(ns)
        if problem:
            self.fail("MP101", problem[0], ref.span, problem[1])
        return [Source(SourceKind.NAMESPACE, namespace=ns)]

    def source_star(self, reached: Reached) -> list[Source]:
        return [Source(SourceKind.MESH)]

    def source_any(self, reached: Reached) -> list[Source]:
        return [Source(SourceKind.ANY)]

    def source_wide(self, reached: Reached) -> list[Source]:
        ref = reached.ref
        ns = ref.value[:-3] if ref.value != "**" else reached.scope
        self.fail("MP150", f"'{ref.value}' can only be a destination, not a source", ref.span,
                  f"as a source, '{ns}/*' is any authenticated workload of namespace {ns}, declared or not")

    def source_cidr(self, reached: Reached) -> list[Source]:
        ref = reached.ref
        problem = cidr_problem(ref.value)
        if problem:
            self.fail("MP112", problem[0], ref.span, problem[1])
        return [Source(SourceKind.CIDR, cidr=str(ipaddress.ip_network(ref.value)))]

    # -- destinations: who is called -------------------------------------------------------------------
    def destinations(self, scope: str, refs: tuple[ast.Ref, ...], top_level: bool) -> list[Destination]:
        """Destination services, each with the reference that named it and whether it was named directly.

        A member reached through a group is named by the group's reference, not directly; inside a group,
        ``*`` means the services of the group's namespace.
        """
        return self.walk(scope, refs,
                         lambda reached: getattr(self, "destination_" + reached.kind)(reached, top_level))

    def destination_service(self, reached: Reached, top_level: bool) -> list[Destination]:
        assert reached.service is not None
        svc = self.tables.services[reached.service]
        if self.tables.namespaces[svc.namespace].external:
            self.fail("MP106", f"'{svc}' is in external namespace '{svc.namespace}': it cannot be a destination",
                      reached.ref.span, "external namespaces only call; remove 'external' to protect it")
        return [(svc, reached.top, reached.direct)]

    def destination_namespace(self, reached: Reached, top_level: bool) -> list[Destination]:
        ref = reached.ref
        ns = ref.value[:-2]
        info = self.tables.namespaces.get(ns)
        if info is not None and info.external:
            self.fail("MP106", f"namespace '{ns}' is external: it cannot be a destination", ref.span,
                      "external namespaces only call; remove 'external' to protect it")
        chosen = [s for s in self.tables.services.values() if s.namespace == ns]
        if not chosen:
            self.fail("MP103", f"namespace '{ns}' declares no service", ref.span,
                      did_you_mean(ns, list(self.tables.namespaces)))
        return [(s, reached.top, False) for s in chosen]

    def destination_star(self, reached: Reached, top_level: bool) -> list[Destination]:
        t = self.tables
        chosen = [s for s in t.services.values()
                  if not t.namespaces[s.namespace].external
                  and ((top_level and reached.direct) or s.namespace == reached.scope)]
        if not chosen:
            self.fail("MP103", "'*' names no declared service here", reached.ref.span)
        return [(s, reached.top, False) for s in chosen]

    def destination_wide(self, reached: Reached, top_level: bool) -> list[Destination]:
        """``NS/**``: every workload of NS; ``**``: of the enclosing namespace, or at top level (named in the
        rule itself) of every managed namespace (LANGUAGE §2.3)."""
        ref, t = reached.ref, self.tables
        if ref.value != "**":
            ns = ref.value[:-3]
            problem = name_problem(ns)
            if problem:
                self.fail("MP101", problem[0], ref.span, problem[1])
            chosen = [ns]
        elif top_level and reached.direct:
            chosen = sorted({n for n, info in t.namespaces.items() if not info.external
                             and (info.wide is not None or any(s == n for s, _ in t.service_nodes))})
            if not chosen:
                self.fail("MP103", "'**' names no managed namespace here", ref.span,
                          "at top level '**' is every workload of every managed namespace; declare a service "
                          "or name one as 'NS/**'")
        else:
            chosen = [reached.scope]
        for ns in chosen:
            info = t.namespaces.get(ns)
            if info is not None and info.external:
                self.fail("MP106", f"namespace '{ns}' is external: it cannot be a destination", ref.span,
                          "external namespaces only call; remove 'external' to protect it")
        return [(EveryWorkload(ns), reached.top, reached.direct) for ns in chosen]

    def destination_any(self, reached: Reached, top_level: bool) -> list[Destination]:
        self.fail("MP119", f"'{reached.ref.value}' can only be a source, not a destination", reached.ref.span,
                  "a destination is a service, a group, '*' or 'NS/*'")

    destination_cidr = destination_any
