"""Syntax trees -> access graph: scoping, defaults, references and every check of LANGUAGE §2.

All errors of the stage are collected and raised together as one
:class:`~meshpolicy.diagnostics.MeshError`; warnings are returned with the graph.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..diagnostics import Collector, Diagnostic, Related
from ..graph.model import (
    DEFAULT_NAMESPACE,
    DEFAULT_TRUST_DOMAIN,
    AccessGraph,
    Action,
    Mtls,
    Namespace,
    Port,
    Rule,
    Service,
    Source,
    SourceKind,
)
from ..parse import ast
from ..source import Span
from .checks import (
    PROTOCOLS,
    cidr_problem,
    method_problem,
    parse_grpc,
    parse_path,
    port_problem,
)
from .names import DNS_SUBDOMAIN, did_you_mean, label_problem, name_problem

__all__ = ["Resolved", "resolve"]


@dataclass
class Resolved:
    graph: AccessGraph
    warnings: list[Diagnostic]


@dataclass
class _NsInfo:
    name: str
    external: bool
    first: Span
    origins: list[Span] = field(default_factory=list)
    mtls: Mtls | None = None
    mtls_span: Span | None = None


@dataclass
class _GroupInfo:
    namespace: str
    node: ast.Group
    used: bool = False


def resolve(files: list[ast.File]) -> Resolved:
    return _Resolver().run(files)


class _Resolver:
    def __init__(self) -> None:
        self.diag = Collector()
        self.trust_domain: tuple[str, Span] | None = None
        self.mesh_mtls: tuple[Mtls, Span] | None = None
        self.namespaces: dict[str, _NsInfo] = {}
        self.service_nodes: dict[tuple[str, str], ast.Service] = {}
        self.groups: dict[tuple[str, str], _GroupInfo] = {}
        self.rules: list[tuple[str, bool, ast.Rule]] = []  # (namespace, top level?, rule)
        self.services: dict[tuple[str, str], Service] = {}

    # -- pass 1: collect declarations ----------------------------------------
    def run(self, files: list[ast.File]) -> Resolved:
        for f in files:
            for stmt in f.statements:
                self._collect(stmt, None)
        for key, node in sorted(self.service_nodes.items()):
            svc = self._service(key[0], node)
            if svc is not None:
                self.services[key] = svc
        self._check_selectors()
        rules: list[Rule] = []
        for scope, top, node in self.rules:
            rules.extend(self._rule(scope, top, node))
        for info in self.groups.values():
            if not info.used:
                g = info.node
                self.diag.warning("MP105", f"group '{g.name.value}' is never used", g.name.span,
                                  "use it in a rule or remove it")
        self.diag.raise_if_errors()
        graph = AccessGraph(
            trust_domain=self.trust_domain[0] if self.trust_domain else DEFAULT_TRUST_DOMAIN,
            trust_domain_origin=self.trust_domain[1] if self.trust_domain else None,
            mesh_mtls=self.mesh_mtls[0] if self.mesh_mtls else Mtls.STRICT,
            mesh_mtls_origin=self.mesh_mtls[1] if self.mesh_mtls else None,
            namespaces=tuple(sorted(
                Namespace(n.name, n.external, n.mtls, n.mtls_span, tuple(sorted(n.origins)))
                for n in self.namespaces.values())),
            services=tuple(sorted(self.services.values())),
            rules=tuple(sorted(r for r in rules if r.action is not Action.NEVER)),
            invariants=tuple(sorted(r for r in rules if r.action is Action.NEVER)),
        )
        return Resolved(graph, self.diag.warnings())

    def _namespace(self, name: str, external: bool, span: Span) -> _NsInfo:
        info = self.namespaces.get(name)
        if info is None:
            info = self.namespaces[name] = _NsInfo(name, external, span)
        elif info.external != external:
            self.diag.error("MP102", f"namespace '{name}' is declared both external and managed", span,
                            "a namespace is external in every block or in none",
                            (Related(info.first, "first declared here"),))
        info.origins.append(span)
        return info

    def _check_name(self, word: ast.Word) -> bool:
        problem = name_problem(word.value)
        if problem:
            self.diag.error("MP101", problem[0], word.span, problem[1])
            return False
        return True

    def _collect(self, stmt: ast.Statement, scope: str | None) -> None:
        ns = scope or DEFAULT_NAMESPACE
        if isinstance(stmt, ast.TrustDomain):
            if scope is not None:
                self.diag.error("MP117", "trust-domain belongs at the top level, outside any namespace",
                                stmt.span)
            elif self.trust_domain is not None:
                self.diag.error("MP102", "trust-domain is declared twice", stmt.span,
                                "declare it once for the whole policy",
                                (Related(self.trust_domain[1], "first declared here"),))
            elif len(stmt.name.value) > 253 or not DNS_SUBDOMAIN.match(stmt.name.value):
                self.diag.error("MP115", f"invalid trust domain '{stmt.name.value}'", stmt.name.span,
                                "a trust domain is a DNS name such as cluster.local")
            else:
                self.trust_domain = (stmt.name.value, stmt.span)
        elif isinstance(stmt, ast.Mtls):
            if stmt.ports:
                self.diag.error("MP117", "'mtls ... on PORT' is a service attribute", stmt.ports[0].span,
                                "write it on the service: service NAME ... mtls permissive on PORT")
                return
            mode = Mtls(stmt.mode.value)
            if scope is None:
                if self.mesh_mtls is not None:
                    self.diag.error("MP102", "the mesh-wide mtls mode is declared twice", stmt.span,
                                    related=(Related(self.mesh_mtls[1], "first declared here"),))
                else:
                    self.mesh_mtls = (mode, stmt.span)
            else:
                info = self.namespaces[scope]
                if info.external:
                    self.diag.error("MP117", f"mtls has no effect in external namespace '{scope}'",
                                    stmt.span, "meshpolicy emits nothing for an external namespace")
                elif info.mtls_span is not None:
                    self.diag.error("MP102", f"the mtls mode of namespace '{scope}' is declared twice",
                                    stmt.span, related=(Related(info.mtls_span, "first declared here"),))
                else:
                    info.mtls, info.mtls_span = mode, stmt.span
        elif isinstance(stmt, ast.Namespace):
            if scope is not None:
                self.diag.error("MP117", "namespaces cannot be nested", stmt.span,
                                f"close namespace '{scope}' first")
                return
            if not self._check_name(stmt.name):
                return
            self._namespace(stmt.name.value, stmt.external, stmt.name.span)
            for inner in stmt.body:
                self._collect(inner, stmt.name.value)
        elif isinstance(stmt, ast.Service):
            if scope is None:
                self._namespace(DEFAULT_NAMESPACE, False, stmt.span)
            if not self._check_name(stmt.name):
                return
            key = (ns, stmt.name.value)
            if key in self.service_nodes:
                self.diag.error("MP102", f"service '{ns}/{stmt.name.value}' is declared twice", stmt.name.span,
                                "declare a service once; put all its attributes on that declaration",
                                (Related(self.service_nodes[key].name.span, "first declared here"),))
            elif key in self.groups:
                self.diag.error("MP102", f"'{ns}/{stmt.name.value}' is declared as a group and a service",
                                stmt.name.span, related=(Related(self.groups[key].node.name.span, "the group"),))
            else:
                self.service_nodes[key] = stmt
        elif isinstance(stmt, ast.Group):
            if not self._check_name(stmt.name):
                return
            key = (ns, stmt.name.value)
            other = self.groups.get(key)
            if other is not None or key in self.service_nodes:
                first = other.node.name.span if other else self.service_nodes[key].name.span
                self.diag.error("MP102", f"'{ns}/{stmt.name.value}' is declared twice", stmt.name.span,
                                related=(Related(first, "first declared here"),))
            else:
                self.groups[key] = _GroupInfo(ns, stmt)
        elif isinstance(stmt, ast.Rule):
            self.rules.append((ns, scope is None, stmt))

    # -- services --------------------------------------------------------------
    def _service(self, namespace: str, node: ast.Service) -> Service | None:
        name = node.name.value
        account = name
        labels: list[tuple[str, str]] | None = None
        ports: dict[int, Port] = {}
        probes: list[str] = []
        mode: Mtls | None = None
        port_modes: dict[int, Mtls] = {}
        seen: dict[str, Span] = {}
        pending_port_modes: list[tuple[ast.Word, Mtls]] = []
        ok = True

        def once(kind: str, span: Span) -> bool:
            if kind in seen:
                self.diag.error("MP102", f"service '{name}' sets {kind} twice", span,
                                related=(Related(seen[kind], "first set here"),))
                return False
            seen[kind] = span
            return True

        for attr in node.attrs:
            if isinstance(attr, ast.Account):
                if once("account", attr.span) and self._check_name(attr.name):
                    account = attr.name.value
                else:
                    ok = False
            elif isinstance(attr, ast.Labels):
                if not once("labels", attr.span):
                    ok = False
                    continue
                labels = []
                keys: set[str] = set()
                for item in attr.items:
                    key, _, value = item.value.partition("=")
                    problem = label_problem(key, value)
                    if problem:
                        self.diag.error("MP111", problem, item.span,
                                        "labels follow Kubernetes syntax: [prefix/]name=value")
                        ok = False
                    elif key in keys:
                        self.diag.error("MP111", f"label '{key}' is given twice", item.span)
                        ok = False
                    keys.add(key)
                    labels.append((key, value))
            elif isinstance(attr, ast.PortDecl):
                problem = port_problem(attr.number.value)
                if problem:
                    self.diag.error("MP107", problem, attr.number.span)
                    ok = False
                    continue
                proto_text = attr.protocol.value if attr.protocol else "http"
                proto = PROTOCOLS.get(proto_text)
                if proto is None:
                    self.diag.error("MP108", f"unknown protocol '{proto_text}'", attr.protocol.span,
                                    "a port's protocol is http, http2, grpc or tcp")
                    ok = False
                    continue
                number = int(attr.number.value)
                if number in ports:
                    self.diag.error("MP102", f"service '{name}' declares port {number} twice", attr.span)
                    ok = False
                    continue
                ports[number] = Port(number, proto)
            elif isinstance(attr, ast.Probes):
                for word in attr.paths:
                    match, problem, hint = parse_path(word.value)
                    if problem or match is None or match.kind != "exact":
                        self.diag.error("MP114", problem or f"probe path '{word.value}' must be an exact path",
                                        word.span, hint)
                        ok = False
                    elif word.value not in probes:
                        probes.append(word.value)
            elif isinstance(attr, ast.Mtls):
                value = Mtls(attr.mode.value)
                if attr.ports:
                    for word in attr.ports:
                        pending_port_modes.append((word, value))
                elif once("mtls", attr.span):
                    mode = value
                else:
                    ok = False
        for word, value in pending_port_modes:
            problem = port_problem(word.value)
            if problem:
                self.diag.error("MP107", problem, word.span)
                ok = False
            elif int(word.value) not in ports:
                self.diag.error("MP110", f"service '{name}' does not declare port {word.value}", word.span,
                                f"declare it first, e.g. :{word.value}/tcp")
                ok = False
            elif int(word.value) in port_modes:
                self.diag.error("MP102", f"the mtls mode of port {word.value} is set twice", word.span)
                ok = False
            else:
                port_modes[int(word.value)] = value
        if not ok:
            return None
        return Service(
            namespace=namespace,
            name=name,
            account=account,
            labels=tuple(sorted(labels if labels is not None else [("app", name)])),
            ports=tuple(sorted(ports.values())),
            probes=tuple(sorted(probes)),
            mtls=mode,
            port_mtls=tuple(sorted(port_modes.items())),
            origins=(node.span,),
        )

    def _check_selectors(self) -> None:
        """Two services of a namespace must select provably different pods.

        A pod carries at least its service's labels, so two selectors are disjoint only when they
        give one key different values; otherwise one pod can match both, and the policy (and
        Linkerd's one Server per pod port) of one service would also apply to the other.
        """
        by_ns: dict[str, list[Service]] = {}
        for svc in self.services.values():
            if not self.namespaces[svc.namespace].external:
                by_ns.setdefault(svc.namespace, []).append(svc)
        for services in by_ns.values():
            services.sort(key=lambda s: s.origins[0])
            for i, later in enumerate(services):
                for earlier in services[:i]:
                    a, b = dict(earlier.labels), dict(later.labels)
                    if any(k in b and b[k] != v for k, v in a.items()):
                        continue
                    self.diag.error(
                        "MP118",
                        f"the labels of '{earlier.name}' and '{later.name}' can select the same pod",
                        self.service_nodes[later.key].name.span,
                        "give both services one label key with different values (e.g. app=NAME, the default)",
                        (Related(self.service_nodes[earlier.key].name.span,
                                 f"'{earlier.name}' is declared here"),))
                    break

    # -- references ------------------------------------------------------------
    def _lookup(self, scope: str, ref: ast.Ref) -> tuple[str, tuple[str, str]] | None:
        """A name reference -> ('service'|'group', key), or None after reporting it."""
        ns, slash, name = ref.value.rpartition("/")
        ns = ns if slash else scope
        for part in ([ns] if slash else []) + [name]:
            problem = name_problem(part)
            if problem:
                self.diag.error("MP101", problem[0], ref.span, problem[1])
                return None
        key = (ns, name)
        if key in self.service_nodes:
            return ("service", key) if key in self.services else None
        if key in self.groups:
            return ("group", key)
        local = [n for (s, n) in list(self.service_nodes) + list(self.groups) if s == ns]
        hint = did_you_mean(name, local)
        if hint is None:
            elsewhere = [f"{s}/{n}" for (s, n) in self.service_nodes if n == name]
            hint = did_you_mean(f"{ns}/{name}", elsewhere) if elsewhere else None
        if hint is None and ns not in self.namespaces:
            hint = f"namespace '{ns}' declares nothing"
        what = f"'{name}'" if not slash else f"'{ns}/{name}'"
        self.diag.error("MP103", f"{what} is not declared" + ("" if slash else f" in namespace '{ns}'"),
                        ref.span, hint)
        return None

    def _walk(self, scope: str, refs: tuple[ast.Ref, ...],
              leaf: Callable[[str, ast.Ref, tuple[str, str] | None, ast.Ref], bool]) -> bool:
        """Visit every reference reached from ``refs`` through groups, depth first in written order.

        ``leaf(scope, ref, service, top)`` gets each reference that is not a group: ``service`` is the
        key of a named service (None for ``*``, ``NS/*``, ``any`` and CIDRs), ``top`` the reference of
        ``refs`` it was reached through; it returns False for an error. An explicit stack, not recursion,
        and each group expanded once per top reference: a chain of groups thousands deep, or one that
        names the next group twice at every level, is bad input, not a crash or an exponential walk.
        False when anything failed.
        """
        ok = True
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
            if ref.kind in ("any", "star", "cidr") or ref.value.endswith("/*"):
                ok = leaf(where, ref, None, top or ref) and ok
                continue
            found = self._lookup(where, ref)
            if found is None:
                ok = False
            elif found[0] == "service":
                ok = leaf(where, ref, found[1], top or ref) and ok
            elif (f"{found[1][0]}/{found[1][1]}", id(top or ref)) in done:
                continue
            else:
                inner = self._group(found[1], path, on_path)
                if inner is None:
                    ok = False
                else:
                    path.append(f"{found[1][0]}/{found[1][1]}")
                    on_path.add(path[-1])
                    stack.append((found[1][0], iter(inner), top or ref))
        return ok

    def _sources(self, scope: str, refs: tuple[ast.Ref, ...]) -> list[Source] | None:
        out: list[Source] = []

        def leaf(_where: str, ref: ast.Ref, service: tuple[str, str] | None, _top: ast.Ref) -> bool:
            if service is not None:
                svc = self.services[service]
                out.append(Source(SourceKind.IDENTITY, svc.namespace, svc.account))
            elif ref.kind == "any":
                out.append(Source(SourceKind.ANY))
            elif ref.kind == "star":
                out.append(Source(SourceKind.MESH))
            elif ref.kind == "cidr":
                problem = cidr_problem(ref.value)
                if problem:
                    self.diag.error("MP112", problem[0], ref.span, problem[1])
                    return False
                out.append(Source(SourceKind.CIDR, cidr=str(ipaddress.ip_network(ref.value))))
            else:
                ns = ref.value[:-2]
                problem = name_problem(ns)
                if problem:
                    self.diag.error("MP101", problem[0], ref.span, problem[1])
                    return False
                out.append(Source(SourceKind.NAMESPACE, namespace=ns))
            return True

        return out if self._walk(scope, refs, leaf) else None

    def _group(self, key: tuple[str, str], via: list[str], on_path: set[str]) -> tuple[ast.Ref, ...] | None:
        """The members of group ``key``, or None (MP104) when it is one of ``via`` (= ``on_path``), the groups
        being expanded around it."""
        info = self.groups[key]
        info.used = True
        label = f"{key[0]}/{key[1]}"
        if label in on_path:
            cycle = " -> ".join(via[via.index(label):] + [label])
            self.diag.error("MP104", f"group cycle: {cycle}", info.node.name.span,
                            "a group cannot contain itself, directly or through other groups")
            return None
        return info.node.refs

    def _destinations(self, scope: str, refs: tuple[ast.Ref, ...],
                      top_level: bool) -> list[tuple[Service, ast.Ref, bool]] | None:
        """Destination services, each with the reference that named it and whether it was named directly.

        A member reached through a group is named by the group's reference, not directly; inside a
        group, ``*`` means the services of the group's namespace.
        """
        out: list[tuple[Service, ast.Ref, bool]] = []

        def leaf(where: str, ref: ast.Ref, service: tuple[str, str] | None, top: ast.Ref) -> bool:
            direct = ref is top
            if ref.kind in ("any", "cidr"):
                self.diag.error("MP119", f"'{ref.value}' can only be a source, not a destination", ref.span,
                                "a destination is a service, a group, '*' or 'NS/*'")
                return False
            if ref.kind == "star":
                chosen = [s for s in self.services.values()
                          if not self.namespaces[s.namespace].external
                          and ((top_level and direct) or s.namespace == where)]
                if not chosen:
                    self.diag.error("MP103", "'*' names no declared service here", ref.span)
                    return False
                out.extend((s, top, False) for s in chosen)
                return True
            if service is None:  # NS/*
                ns = ref.value[:-2]
                info = self.namespaces.get(ns)
                if info is not None and info.external:
                    self.diag.error("MP106", f"namespace '{ns}' is external: it cannot be a destination",
                                    ref.span, "external namespaces only call; remove 'external' to protect it")
                    return False
                chosen = [s for s in self.services.values() if s.namespace == ns]
                if not chosen:
                    self.diag.error("MP103", f"namespace '{ns}' declares no service", ref.span,
                                    did_you_mean(ns, [n for n in self.namespaces]))
                    return False
                out.extend((s, top, False) for s in chosen)
                return True
            svc = self.services[service]
            if self.namespaces[svc.namespace].external:
                self.diag.error("MP106", f"'{svc}' is in external namespace '{svc.namespace}': "
                                "it cannot be a destination", ref.span,
                                "external namespaces only call; remove 'external' to protect it")
                return False
            out.append((svc, top, direct))
            return True

        return out if self._walk(scope, refs, leaf) else None

    # -- rules -----------------------------------------------------------------
    def _rule(self, scope: str, top: bool, node: ast.Rule) -> list[Rule]:
        sources = self._sources(scope, node.sources)
        dests = self._destinations(scope, node.destinations, top_level=top)
        methods: list[str] = []
        paths = []
        any_path = False
        grpc = []
        ok = sources is not None and dests is not None
        for word in node.methods:
            problem = method_problem(word.value)
            if problem and ((scope, word.value) in self.service_nodes or (scope, word.value) in self.groups):
                self.diag.error("MP113", problem[0], word.span,
                                f"'{word.value}' is a service or group: separate destinations with ','")
                ok = False
            elif problem:
                self.diag.error("MP113", problem[0], word.span, problem[1])
                ok = False
            elif word.value not in methods:
                methods.append(word.value)
        for word in node.paths:
            match, problem, hint = parse_path(word.value)
            if problem:
                self.diag.error("MP114", problem, word.span, hint)
                ok = False
            elif match is None:
                any_path = True
            elif match not in paths:
                paths.append(match)
        for word in node.grpc:
            match, problem = parse_grpc(word.value)
            if problem:
                self.diag.error("MP116", problem, word.span)
                ok = False
            elif match not in grpc:
                grpc.append(match)
        ports: list[tuple[int, ast.Word]] = []
        for word in node.ports:
            problem = port_problem(word.value)
            if problem:
                self.diag.error("MP107", problem, word.span)
                ok = False
            elif int(word.value) not in [p for p, _ in ports]:
                ports.append((int(word.value), word))
        if not ok:
            return []
        if any_path:
            paths = []
        http = bool(node.methods or node.paths or node.grpc)
        action = Action(node.action)
        out: list[Rule] = []
        # A service named directly must fit the rule; members of a group or wildcard that
        # declare none of the named ports (or no HTTP port, for an HTTP rule) are left out, and
        # it is an error only when a reference keeps no member at all.
        direct = {svc.key for svc, _, is_direct in dests if is_direct}
        kept: dict[ast.Ref, int] = {}
        seen: set[tuple[str, str]] = set()
        for svc, ref, _ in dests:
            kept.setdefault(ref, 0)
            if svc.key in seen:
                continue
            seen.add(svc.key)
            rule_ports = self._rule_ports(svc, ref, ports, http, svc.key in direct, action)
            if rule_ports is None:
                continue
            kept[ref] += 1
            out.append(Rule(
                destination=svc.key,
                action=action,
                origin=node.span,
                sources=tuple(sorted(set(sources))),
                ports=rule_ports,
                methods=tuple(sorted(methods)),
                paths=tuple(sorted(paths)),
                grpc=tuple(sorted(grpc)),
                text=node.text,
            ))
        for ref, count in kept.items():
            if count == 0 and not any(svc.key in direct for svc, r, _ in dests if r == ref):
                wanted = ", ".join(f":{n}" for n, _ in ports) if ports else "an HTTP port"
                self.diag.error("MP110", f"no service named by '{ref.value}' declares {wanted}"
                                + (" as an HTTP port" if ports and http else ""), ref.span,
                                "check the ports declared by its services")
        return out

    def _rule_ports(self, svc: Service, ref: ast.Ref, ports: list[tuple[int, ast.Word]], http: bool,
                    direct: bool, action: Action) -> tuple[int, ...] | None:
        """The ports a rule covers on ``svc``; ``None`` when it covers none (reported if ``direct``)."""
        what = "methods, paths or grpc"
        if not direct and not svc.ports and (ports or http) and action is not Action.ALLOW:
            # A member without ports serves every port: leaving it out of a deny (or never) rule would
            # leave its allow rules standing on exactly what the rule refuses (or forbids).
            limit = ", ".join(f":{n}" for n, _ in ports) if ports else "HTTP requests"
            self.diag.error("MP109" if http else "MP110",
                            f"'{svc}' (through '{ref.value}') declares no ports, so it serves every port: "
                            f"this {action.value} rule cannot be limited to {limit} on it", ref.span,
                            f"declare the ports '{svc.name}' serves, or leave it out of '{ref.value}'")
            return None
        if not direct:
            if ports:
                fit = tuple(sorted(n for n, _ in ports if svc.port(n) is not None
                                   and (not http or svc.port(n).protocol.is_http)))
            elif http:
                fit = tuple(p.number for p in svc.http_ports)
            else:
                return tuple(p.number for p in svc.ports)
            return fit or None
        if ports:
            ok = True
            for number, word in ports:
                port = svc.port(number)
                if port is None:
                    declared = ", ".join(f":{p.number}/{p.protocol.value}" for p in svc.ports) or "none"
                    self.diag.error("MP110", f"'{svc}' does not declare port {number}", word.span,
                                    f"its declared ports: {declared}")
                    ok = False
                elif http and not port.protocol.is_http:
                    self.diag.error("MP109", f"{what} need an HTTP port, but port {number} of '{svc}' is tcp",
                                    word.span, "remove the methods/paths, or name an http, http2 or grpc port")
                    ok = False
            return tuple(sorted(n for n, _ in ports)) if ok else None
        if http:
            numbers = tuple(p.number for p in svc.http_ports)
            if not numbers:
                self.diag.error("MP109", f"{what} need an HTTP port, but '{svc}' declares none", ref.span,
                                f"declare an HTTP port on '{svc.name}', e.g. :8080/http")
                return None
            return numbers
        return tuple(p.number for p in svc.ports)
