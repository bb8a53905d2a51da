"""What every pass of the resolver shares: the tables of declarations, and one way to fail.

Each pass is a :class:`Visitor` with one method per syntax node (``visit_Service``,
``visit_Labels``, ...), found by the node's class name as in jinja's ``NodeVisitor``.
A method that finds a problem calls :meth:`Visitor.fail`, which records the
diagnostic and raises :class:`Reported`: the node is dropped, and whoever iterates
over its siblings (:meth:`Visitor.resolve_all`, :meth:`Visitor.resolve_each`) goes
on with the next one, so that every error of the stage is reported at once and no
caller threads an ``ok`` flag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

from ..diagnostics import Collector, Related
from ..errors import MeshpolicyError
from ..graph.model import Authority, Issuer, Mtls, Service
from ..parse import ast
from ..source import Span
from .names import name_problem

T = TypeVar("T")
Item = TypeVar("Item")


class Reported(MeshpolicyError):
    """A diagnostic was recorded for the node being resolved: drop it, go on with its siblings.

    Control flow inside the resolver only: :func:`~meshpolicy.resolve.resolve` never lets it out."""


@dataclass
class NamespaceInfo:
    name: str
    external: bool
    first: Span
    origins: list[Span] = field(default_factory=list)
    mtls: Mtls | None = None
    mtls_span: Span | None = None
    #: where a rule first names it as ``NS/**`` (or ``**`` in its block), which makes it managed (LANGUAGE §2.1)
    wide: Span | None = None


@dataclass
class GroupInfo:
    namespace: str
    node: ast.Group
    used: bool = False


class PortNumber(Protocol):
    """What a container port name stands for on a service's pods (``cluster.ports.PortNumber``)."""

    @property
    def number(self) -> int | None: ...
    @property
    def absent(self) -> bool: ...  # no selected pod has a port of that name
    @property
    def message(self) -> str: ...
    @property
    def hint(self) -> str | None: ...
    @property
    def related(self) -> tuple[Related, ...]: ...


class PortNames(Protocol):
    """``:NAME`` in a rule's ports: resolved through the manifests of ``--cluster`` (``cluster.ports.PortNames``);
    the resolver knows nothing of the manifests themselves."""

    def number(self, service: Service, name: str) -> PortNumber: ...


@dataclass
class Tables:
    """What the passes build and read: declarations by key, then the resolved services."""

    trust_domain: tuple[str, Span] | None = None
    mesh_mtls: tuple[Mtls, Span] | None = None
    namespaces: dict[str, NamespaceInfo] = field(default_factory=dict)
    service_nodes: dict[tuple[str, str], ast.Service] = field(default_factory=dict)
    groups: dict[tuple[str, str], GroupInfo] = field(default_factory=dict)
    #: namespaces named as ``NS/**`` (or ``**`` in their block) by a rule or group, with the first place
    wide: dict[str, Span] = field(default_factory=dict)
    #: (namespace, at top level?, rule), in the order written
    rules: list[tuple[str, bool, ast.Rule]] = field(default_factory=list)
    #: the ``authority`` statement (node, and what it declares; None where it has errors)
    authority: tuple[ast.Authority, Authority | None] | None = None
    #: the services whose declaration resolved; a reference to any other one fails silently (already reported)
    services: dict[tuple[str, str], Service] = field(default_factory=dict)
    #: JWT issuers by name (LANGUAGE 2.4), with the statement that declared each
    issuers: dict[str, tuple[Issuer, ast.Issuer]] = field(default_factory=dict)
    #: names of issuers whose declaration failed: a rule naming one fails silently (already reported)
    broken_issuers: set[str] = field(default_factory=set)
    #: container port names in rules (``:http``), with ``--cluster``; ``None``: a name is an error (MP614)
    port_names: PortNames | None = None


class Visitor:
    """Base of every pass: the shared tables, the stage's collector and the failure helpers."""

    def __init__(self, tables: Tables, diag: Collector):
        self.tables = tables
        self.diag = diag

    def visit(self, node: object, *args: Any) -> Any:
        """``visit_<NodeClass>(node, *args)``: one method per syntax node."""
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise TypeError(f"{type(self).__name__} has no visit_{type(node).__name__}")
        return method(node, *args)

    def fail(self, code: str, message: str, span: Span | None, hint: str | None = None,
             related: tuple[Related, ...] = ()) -> NoReturn:
        """Report an error and drop the node being resolved."""
        self.diag.error(code, message, span, hint, related)
        raise Reported

    def resolve_all(self, items: Iterable[Item], resolve: Callable[..., T], *args: Any) -> list[T]:
        """``resolve(item, *args)`` for every item, every failure reported; :class:`Reported` if any failed."""
        out: list[T] = []
        failed = False
        for item in items:
            try:
                out.append(resolve(item, *args))
            except Reported:
                failed = True
        if failed:
            raise Reported
        return out

    def resolve_each(self, items: Iterable[Item], resolve: Callable[..., T], *args: Any) -> list[T]:
        """``resolve(item, *args)`` for every item; the ones that failed (already reported) are left out."""
        out: list[T] = []
        for item in items:
            try:
                out.append(resolve(item, *args))
            except Reported:
                pass
        return out

    def all_of(self, *steps: Callable[[], Any]) -> list[Any]:
        """Run every step in order, then :class:`Reported` if any failed: a node's parts all get checked."""
        return self.resolve_all(steps, _call)

    def check_name(self, word: ast.Word) -> str:
        """A DNS-1123 label that is not a keyword (MP101)."""
        problem = name_problem(word.value)
        if problem:
            self.fail("MP101", problem[0], word.span, problem[1])
        return word.value


def _call(step: Callable[[], T]) -> T:
    return step()
