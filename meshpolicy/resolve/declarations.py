"""Pass 1: every statement into the tables (LANGUAGE §2): trust domain, mTLS modes, namespaces,
services, groups and rules, with their names checked and every second declaration reported.

A new statement is one ``visit_<Node>`` method here (and, if it makes IR of its own, a pass that reads
what this one stored).
"""

from __future__ import annotations

from ..diagnostics import Related, shown
from ..graph.model import DEFAULT_NAMESPACE, Issuer, Mtls
from ..parse import ast
from ..source import Span
from . import authority
from .base import GroupInfo, NamespaceInfo, Reported, Visitor
from .conditions import url_problem
from .names import DNS_SUBDOMAIN, name_problem
from .system import owner


class Declarations(Visitor):
    def files(self, files: list[ast.File]) -> None:
        for f in files:
            self.resolve_each(f.statements, self.visit, None)
        self.wide_namespaces()
        self.check_system_namespaces()

    def mark_wide(self, scope: str | None, refs: tuple[ast.Ref, ...]) -> None:
        """Note the namespaces that ``NS/**`` (or ``**`` inside a block) names: they are managed (LANGUAGE §2.1).

        Invalid names are left to the reference's own diagnostic (MP101); top-level ``**`` names no namespace."""
        for ref in refs:
            if ref.kind is not ast.RefKind.WIDE:
                continue
            ns = ref.value[:-3] if ref.value != "**" else scope
            if ns is not None and name_problem(ns) is None:
                self.tables.wide.setdefault(ns, ref.span)

    def wide_namespaces(self) -> None:
        """A namespace named only by ``NS/**`` is managed without a block of its own."""
        for name, span in self.tables.wide.items():
            info = self.tables.namespaces.get(name)
            if info is None:
                info = self.tables.namespaces[name] = NamespaceInfo(name, False, span, [span])
            if info.wide is None:
                info.wide = span

    def check_system_namespaces(self) -> None:
        """A namespace that declares services is managed: never one of Kubernetes' or a mesh's own (MP120)."""
        first_service: dict[str, ast.Service] = {}
        for (ns, _), node in self.tables.service_nodes.items():
            first_service.setdefault(ns, node)
        for name, info in self.tables.namespaces.items():
            whose = owner(name)
            if whose is not None and not info.external and name not in first_service and info.wide is not None:
                self.diag.error("MP120", f"namespace '{name}' is {whose}: a policy cannot manage it", info.wide,
                                f"'{name}/**' would put every workload of it under a default deny; "
                                f"to name its workloads as callers, use '{name}/*' as a source")
                continue
            if whose is None or info.external or name not in first_service:
                continue
            self.diag.error("MP120", f"namespace '{name}' is {whose}: a policy cannot manage it", info.first,
                            "to name its workloads as callers, declare it external: "
                            f"namespace {name} external {{ ... }}",
                            (Related(first_service[name].name.span,
                                     "a service declared here would put it under a default deny"),))

    def namespace(self, name: str, external: bool, span: Span) -> NamespaceInfo:
        """The namespace ``name``, declared (or opened again) at ``span``."""
        info = self.tables.namespaces.get(name)
        if info is None:
            info = self.tables.namespaces[name] = NamespaceInfo(name, external, span)
        elif info.external != external:
            self.diag.error("MP102", f"namespace '{name}' is declared both external and managed", span,
                            "a namespace is external in every block or in none",
                            (Related(info.first, "first declared here"),))
        info.origins.append(span)
        return info

    # -- one method per statement; ``scope`` is the enclosing namespace, None at top level ------------
    def visit_TrustDomain(self, stmt: ast.TrustDomain, scope: str | None) -> None:
        if scope is not None:
            self.fail("MP117", "trust-domain belongs at the top level, outside any namespace", stmt.span)
        if self.tables.trust_domain is not None:
            self.fail("MP102", "trust-domain is declared twice", stmt.span, "declare it once for the whole policy",
                      (Related(self.tables.trust_domain[1], "first declared here"),))
        if len(stmt.name.value) > 253 or not DNS_SUBDOMAIN.match(stmt.name.value):
            self.fail("MP115", f"invalid trust domain '{shown(stmt.name.value)}'", stmt.name.span,
                      "a trust domain is a DNS name such as cluster.local")
        self.tables.trust_domain = (stmt.name.value, stmt.span)

    def visit_Mtls(self, stmt: ast.Mtls, scope: str | None) -> None:
        if stmt.ports:
            self.fail("MP117", "'mtls ... on PORT' is a service attribute", stmt.ports[0].span,
                      "write it on the service: service NAME ... mtls permissive on PORT")
        mode = Mtls(stmt.mode.value)
        if scope is None:
            if self.tables.mesh_mtls is not None:
                self.fail("MP102", "the mesh-wide mtls mode is declared twice", stmt.span,
                          related=(Related(self.tables.mesh_mtls[1], "first declared here"),))
            self.tables.mesh_mtls = (mode, stmt.span)
            return
        info = self.tables.namespaces[scope]
        if info.external:
            self.fail("MP117", f"mtls has no effect in external namespace '{scope}'", stmt.span,
                      "meshpolicy emits nothing for an external namespace")
        if info.mtls_span is not None:
            self.fail("MP102", f"the mtls mode of namespace '{scope}' is declared twice", stmt.span,
                      related=(Related(info.mtls_span, "first declared here"),))
        info.mtls, info.mtls_span = mode, stmt.span

    def visit_Namespace(self, stmt: ast.Namespace, scope: str | None) -> None:
        if scope is not None:
            self.fail("MP117", "namespaces cannot be nested", stmt.span, f"close namespace '{scope}' first")
        name = self.check_name(stmt.name)
        self.namespace(name, stmt.external, stmt.name.span)
        self.resolve_each(stmt.body, self.visit, name)

    def visit_Service(self, stmt: ast.Service, scope: str | None) -> None:
        if scope is None:
            self.namespace(DEFAULT_NAMESPACE, False, stmt.span)
        ns = scope or DEFAULT_NAMESPACE
        name = self.check_name(stmt.name)
        key = (ns, name)
        if key in self.tables.service_nodes:
            self.fail("MP102", f"service '{ns}/{name}' is declared twice", stmt.name.span,
                      "declare a service once; put all its attributes on that declaration",
                      (Related(self.tables.service_nodes[key].name.span, "first declared here"),))
        if key in self.tables.groups:
            self.fail("MP102", f"'{ns}/{name}' is declared as a group and a service", stmt.name.span,
                      related=(Related(self.tables.groups[key].node.name.span, "the group"),))
        self.tables.service_nodes[key] = stmt

    def visit_Group(self, stmt: ast.Group, scope: str | None) -> None:
        ns = scope or DEFAULT_NAMESPACE
        key = (ns, self.check_name(stmt.name))
        other = self.tables.groups.get(key)
        if other is not None or key in self.tables.service_nodes:
            first = other.node.name.span if other else self.tables.service_nodes[key].name.span
            self.fail("MP102", f"'{ns}/{stmt.name.value}' is declared twice", stmt.name.span,
                      related=(Related(first, "first declared here"),))
        self.tables.groups[key] = GroupInfo(ns, stmt)
        self.mark_wide(ns, stmt.refs)

    def visit_Issuer(self, stmt: ast.Issuer, scope: str | None) -> None:
        """``issuer NAME ISSUER_URL [jwks JWKS_URL]``: top level only, one name once (LANGUAGE 2.4)."""
        try:
            self.issuer(stmt, scope)
        except Reported:
            self.tables.broken_issuers.add(stmt.name.value)
            raise

    def issuer(self, stmt: ast.Issuer, scope: str | None) -> None:
        if scope is not None:
            self.fail("MP117", "issuer belongs at the top level, outside any namespace", stmt.span,
                      "issuer names are global: declare it once at the top level of any file")
        name = self.check_name(stmt.name)
        if name in self.tables.issuers:
            self.fail("MP102", f"issuer '{name}' is declared twice", stmt.name.span,
                      "declare an issuer once for the whole policy",
                      (Related(self.tables.issuers[name][1].name.span, "first declared here"),))
        for word, what in ((stmt.url, "issuer URL"), (stmt.jwks, "jwks URL")):
            if word is not None and (problem := url_problem(word.value, what)):
                self.fail("MP140", problem[0], word.span, problem[1])
        issuer = Issuer(name, stmt.url.value, stmt.jwks.value if stmt.jwks else "", stmt.span)
        self.tables.issuers[name] = (issuer, stmt)

    def visit_Rule(self, stmt: ast.Rule, scope: str | None) -> None:
        """Rules are resolved once every service and group is known (:mod:`.rules`)."""
        self.tables.rules.append((scope or DEFAULT_NAMESPACE, scope is None, stmt))
        self.mark_wide(scope, stmt.destinations)

    def visit_Authority(self, stmt: ast.Authority, scope: str | None) -> None:
        """The mesh's certificate authority: once, at top level (:mod:`.authority` reads its settings)."""
        declared = authority.read(stmt, self.diag)  # every problem of its settings, wherever it stands
        if scope is not None:
            self.fail("MP702", "authority belongs at the top level, outside any namespace", stmt.span,
                      f"the certificate authority is the whole mesh's: move it out of namespace '{scope}'")
        if self.tables.authority is not None:
            self.fail("MP702", "authority is declared twice", stmt.span, "declare it once for the whole policy",
                      (Related(self.tables.authority[0].span, "first declared here"),))
        self.tables.authority = (stmt, declared)
