"""Pass 3: rules (LANGUAGE §2.4): sources, destinations, methods, paths, gRPC names and ports, then the
ports each destination service is covered on.

A rule's parts are resolved by one method each; a new part (request conditions, say) is one method and
one more field of :class:`~meshpolicy.graph.model.Rule`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..diagnostics import Related, shown
from ..graph.model import Action, Condition, ConditionKind, GrpcMatch, PathMatch, Protocol, Rule, Service
from ..parse import ast
from .base import Reported, Visitor
from .checks import is_port_name, method_problem, parse_grpc, port_name_problem, port_problem
from .conditions import claim_name_problem, header_name_problem, value_problem
from .names import did_you_mean
from .paths import parse_path
from .references import EveryWorkload, References

#: the order of a rule's conditions in the IR (and so in every output): jwt, claims, headers
_CONDITION_ORDER = (ConditionKind.JWT, ConditionKind.CLAIM, ConditionKind.HEADER)

#: a port a rule names, with the word that named it first
NamedPort = tuple[int, ast.Word]


@dataclass(frozen=True, slots=True)
class WrittenPorts:
    """A rule's PORTS as written: numbers (each once, with the word that named it first) and container port
    names (``:http``, docs/cluster.md), which stand for a number on each destination's pods."""

    numbers: list[NamedPort]
    names: list[ast.Word]

    def __bool__(self) -> bool:
        return bool(self.numbers or self.names)

    def text(self) -> str:
        return ", ".join([f":{n}" for n, _ in self.numbers] + [f":{w.value}" for w in self.names])


class Rules(Visitor):
    #: what makes the rule being resolved an HTTP rule, for the messages of MP109
    http_parts = "methods, paths or grpc"

    def rules(self) -> list[Rule]:
        out: list[Rule] = []
        for scope, top, node in self.tables.rules:
            try:
                out.extend(self.rule(scope, top, node))
            except Reported:
                pass
        return out

    def rule(self, scope: str, top: bool, node: ast.Rule) -> list[Rule]:
        refs = References(self.tables, self.diag)
        sources, dests, methods, paths, grpc, ports, conditions = self.all_of(
            lambda: refs.sources(scope, node.sources),
            lambda: refs.destinations(scope, node.destinations, top_level=top),
            lambda: self.resolve_all(node.methods, self.method, scope),
            lambda: self.paths(node.paths),
            lambda: self.resolve_all(node.grpc, self.grpc),
            lambda: self.ports(node.ports, next((r for r in node.destinations if r.kind is ast.RefKind.WIDE), None)),
            lambda: self.conditions(node),
        )
        http = bool(node.methods or node.paths or node.grpc or node.conditions)
        self.http_parts = "methods, paths or grpc" if node.methods or node.paths or node.grpc else "request conditions"
        action = Action(node.action)
        # A service named directly must fit the rule; members of a group or wildcard that declare none of
        # the named ports (or no HTTP port, for an HTTP rule) are left out, and it is an error only when a
        # reference keeps no member at all.
        direct = {svc.key for svc, _, is_direct in dests if is_direct}
        kept: dict[ast.Ref, int] = {}
        seen: set[tuple[str, str]] = set()
        out: list[Rule] = []
        failed = False
        for svc, ref, _ in dests:
            kept.setdefault(ref, 0)
            if svc.key in seen:
                continue
            seen.add(svc.key)
            covered: tuple[int, ...] | None
            try:
                if isinstance(svc, EveryWorkload):
                    covered = self.wide_ports(svc, ref, ports, http)
                else:
                    on_svc = self.ports_on(svc, ports, svc.key in direct)
                    covered = None if on_svc is None else self.covered_ports(svc, ref, on_svc, http,
                                                                            svc.key in direct, action,
                                                                            grpc=bool(node.grpc))
            except Reported:
                failed = True
                continue
            if covered is None:
                continue
            kept[ref] += 1
            out.append(Rule(
                destination=svc.key,
                action=action,
                origin=node.span,
                sources=tuple(sorted(set(sources))),
                ports=covered,
                methods=tuple(sorted(set(methods))),
                paths=tuple(sorted(set(paths))),
                grpc=tuple(sorted(set(grpc))),
                text=node.text,
                conditions=conditions,
            ))
        for ref, count in kept.items():
            if count == 0 and not any(svc.key in direct for svc, r, _ in dests if r == ref):
                wanted = ports.text() if ports else "a grpc port" if node.grpc else "an HTTP port"
                self.diag.error("MP110", f"no service named by '{ref.value}' declares {wanted}"
                                + (" as an HTTP port" if ports and http else ""), ref.span,
                                "check the ports declared by its services")
        if failed:
            raise Reported
        return out

    # -- one method per part of a rule -----------------------------------------------------------------
    def method(self, word: ast.Word, scope: str) -> str:
        problem = method_problem(word.value)
        if problem:
            code, message, hint = problem
            key = (scope, word.value)
            if key in self.tables.service_nodes or key in self.tables.groups:
                self.fail(code, message, word.span,
                          f"'{word.value}' is a service or group: separate destinations with ','")
            self.fail(code, message, word.span, hint)
        return word.value

    def paths(self, words: tuple[ast.Word, ...]) -> list[PathMatch]:
        """The paths of a rule; none (any path) when one of them is ``/*``."""
        matches = self.resolve_all(words, self.path)
        return [] if None in matches else [m for m in matches if m is not None]

    def path(self, word: ast.Word) -> PathMatch | None:
        match, problem = parse_path(word.value)
        if problem:
            self.fail("MP114", problem.message, problem.span_in(word.span), problem.hint)
        return match

    def grpc(self, word: ast.Word) -> GrpcMatch:
        match, problem = parse_grpc(word.value)
        if problem or match is None:
            self.fail("MP116", problem or f"invalid gRPC name '{word.value}'", word.span)
        return match

    def ports(self, words: tuple[ast.Word, ...], wide: ast.Ref | None = None) -> WrittenPorts:
        """The ports a rule names, in written order, each once (with the word that named it first); ``wide``:
        the rule's ``**`` destination, where a container port's name cannot stand (MP153)."""
        first: dict[int, ast.Word] = {}
        names: dict[str, ast.Word] = {}
        for number, word in self.resolve_all(words, self.port, wide):
            if number is None:
                names.setdefault(word.value, word)
            else:
                first.setdefault(number, word)
        return WrittenPorts(list(first.items()), list(names.values()))

    def port(self, word: ast.Word, wide: ast.Ref | None = None) -> tuple[int | None, ast.Word]:
        """A number, or (``None``) a container port name, which needs the manifests of ``--cluster``."""
        if is_port_name(word.value):
            problem = port_name_problem(word.value)
            if problem:
                self.fail("MP107", problem, word.span)
            if wide is not None:
                self.no_port_name(wide, word)
            if self.tables.port_names is None:
                self.fail("MP614", f"':{word.value}' is a container port's name, which only the workloads' "
                          "manifests can turn into a number", word.span,
                          "pass the manifests with --cluster, or write the container port's number (:N)")
            return (None, word)
        problem = port_problem(word.value)
        if problem:
            self.fail("MP107", problem, word.span)
        return (int(word.value), word)

    def conditions(self, node: ast.Rule) -> tuple[Condition, ...]:
        """The request conditions of a rule (LANGUAGE 2.4), sorted, each once; a ``claim`` needs a ``jwt``
        in the same rule, and conditions that can never hold together are an error."""
        found = self.resolve_all(node.conditions, self.condition)
        jwts = [(c, w) for c, w in zip(found, node.conditions, strict=True) if c.kind is ConditionKind.JWT]
        claim = next((w for c, w in zip(found, node.conditions, strict=True) if c.kind is ConditionKind.CLAIM), None)
        if claim is not None and not jwts:
            self.fail("MP144", f"'claim {claim.key.value}=...' needs a 'jwt ISSUER' condition in the same rule",
                      claim.span, "a claim is read from the token of the issuer the rule names, e.g. "
                      f"if jwt ISSUER, claim {claim.key.value}={claim.value.value if claim.value else 'VALUE'}")
        if len({c.value for c, _ in jwts}) > 1:
            self.fail("MP145", "a request carries one token, of one issuer: this rule's jwt conditions can never "
                      "all hold", jwts[1][1].span, "write one rule per issuer",
                      (Related(jwts[0][1].span, "the other issuer"),))
        values: dict[tuple[ConditionKind, str], tuple[Condition, ast.Condition]] = {}
        for cond, word in zip(found, node.conditions, strict=True):
            if cond.kind is not ConditionKind.HEADER:
                continue
            other = values.setdefault((cond.kind, cond.name), (cond, word))
            if other[0].value is not None and cond.value is not None and other[0].value != cond.value:
                self.fail("MP145", f"header '{cond.name}' cannot be both '{other[0].value}' and '{cond.value}'",
                          word.span, "write one rule per value: rules are OR'ed, conditions AND'ed",
                          (Related(other[1].span, "the other value"),))
        # the order they read best in: the token, its claims, then headers
        return tuple(sorted(set(found), key=lambda c: (_CONDITION_ORDER.index(c.kind), c.name, c.value or "")))

    def condition(self, node: ast.Condition) -> Condition:
        key, value = node.key.value, node.value.value if node.value else None
        if node.kind is ast.ConditionKind.JWT:
            issuer = self.tables.issuers.get(key)
            if issuer is None:
                if key in self.tables.broken_issuers:
                    raise Reported
                hint = did_you_mean(key, list(self.tables.issuers)) or "declare it at the top level: issuer NAME https://..."
                self.fail("MP141", f"unknown issuer '{shown(key)}'", node.key.span, hint)
            return Condition(ConditionKind.JWT, key, issuer[0].url)
        problem = (header_name_problem(key) if node.kind is ast.ConditionKind.HEADER else claim_name_problem(key))
        if problem:
            self.fail("MP142", problem[0], node.key.span, problem[1])
        if value is not None and (problem := value_problem(value, node.kind.value)):
            self.fail("MP143", problem[0], node.value.span if node.value else node.span, problem[1])
        if node.kind is ast.ConditionKind.HEADER:
            return Condition(ConditionKind.HEADER, key.lower(), value)
        return Condition(ConditionKind.CLAIM, key, value)

    def ports_on(self, svc: Service, written: WrittenPorts, direct: bool) -> list[NamedPort] | None:
        """The numbers of a rule's ports on ``svc``: each name resolved through its pods. ``None``: a member of a
        group or wildcard none of whose pods has any of the names, and no number written: left out."""
        if not written.names or self.tables.port_names is None:
            return written.numbers
        first = dict(written.numbers)
        for word in written.names:
            found = self.tables.port_names.number(svc, word.value)
            if found.number is not None:
                first.setdefault(found.number, word)
            elif not (found.absent and not direct):
                self.fail("MP615" if found.absent else "MP616", found.message, word.span, found.hint, found.related)
        return list(first.items()) or None

    def no_port_name(self, wide: ast.Ref, word: ast.Word) -> None:
        self.fail("MP153", f"'{wide.value}' covers workloads the policy does not declare: port ':{word.value}' "
                  "needs a number", word.span, "a container port's name is resolved on a declared service's pods "
                  f"(--cluster); write the port number for '{wide.value}'")

    # -- the ports a rule covers on each destination ----------------------------------------------------
    def wide_ports(self, every: EveryWorkload, ref: ast.Ref, written: WrittenPorts, http: bool) -> tuple[int, ...]:
        """The ports of a ``NS/**`` rule (LANGUAGE §2.4): the ones it names, on every workload of NS whether or
        not it declares them (taken as HTTP on those that do not); none named: every port, unless the rule
        looks inside HTTP requests, which needs named ports (MP151); a declared ``tcp`` port there is MP152.
        A container port's name (``:http``) stands for a number on each pod: no number for workloads the
        policy does not declare (MP153)."""
        for word in written.names:  # a ``**`` reached through a group
            self.no_port_name(ref, word)
        ports = written.numbers
        if http and not ports:
            self.fail("MP151", f"'{ref.value}' covers workloads the policy does not declare: a rule with methods, "
                      "paths or grpc must name its ports", ref.span,
                      f"give the HTTP ports, e.g. '{ref.value} ... :8080'; on undeclared workloads they are "
                      "taken to be HTTP")
        if http:
            for number, word in ports:
                for svc in self.tables.services.values():
                    port = svc.port(number) if svc.namespace == every.namespace else None
                    if port is not None and not port.protocol.is_http:
                        self.fail("MP152", f"methods, paths or grpc need an HTTP port, but '{svc}' (covered by "
                                  f"'{ref.value}') declares port {number} tcp", word.span,
                                  f"name another port, or declare :{number} on '{svc.name}' as http, http2 "
                                  "or grpc")
        return tuple(sorted(n for n, _ in ports))

    def covered_ports(self, svc: Service, ref: ast.Ref, ports: list[NamedPort], http: bool, direct: bool,
                      action: Action, grpc: bool = False) -> tuple[int, ...] | None:
        """The ports a rule covers on ``svc``; ``None`` when a member of a group or wildcard is left out.
        Without ports a ``grpc`` rule covers the ``grpc`` ports only (LANGUAGE §2.4, version 2)."""
        if not direct:
            return self.member_ports(svc, ref, ports, http, action, grpc)
        if ports:
            self.resolve_all(ports, self.named_port, svc, http)
            return tuple(sorted(n for n, _ in ports))
        if grpc:
            numbers = tuple(p.number for p in svc.ports if p.protocol is Protocol.GRPC)
            if not numbers:
                declared = ", ".join(f":{p.number}/{p.protocol.value}" for p in svc.ports) or "none"
                self.fail("MP131", f"a grpc rule without ports covers the grpc ports of '{svc}', and it declares "
                          "none", ref.span, f"name the port the gRPC service is served on (its declared ports: "
                          f"{declared}), or declare it :PORT/grpc")
            return numbers
        if http:
            numbers = tuple(p.number for p in svc.http_ports)
            if not numbers:
                self.fail("MP109", f"{self.http_parts} need an HTTP port, but '{svc}' declares none", ref.span,
                          f"declare an HTTP port on '{svc.name}', e.g. :8080/http")
            return numbers
        return tuple(p.number for p in svc.ports)

    def named_port(self, named: NamedPort, svc: Service, http: bool) -> None:
        """A port that a rule names on a service it names directly: declared, and HTTP for an HTTP rule."""
        number, word = named
        said = f"{number} (its pods' port '{word.value}')" if is_port_name(word.value) else str(number)
        port = svc.port(number)
        if port is None:
            declared = ", ".join(f":{p.number}/{p.protocol.value}" for p in svc.ports) or "none"
            self.fail("MP110", f"'{svc}' does not declare port {said}", word.span,
                      f"its declared ports: {declared}")
        if http and not port.protocol.is_http:
            self.fail("MP109", f"{self.http_parts} need an HTTP port, but port {said} of '{svc}' is tcp",
                      word.span, "remove the conditions, or name an http, http2 or grpc port"
                      if self.http_parts == "request conditions" else
                      "remove the methods/paths, or name an http, http2 or grpc port")

    def member_ports(self, svc: Service, ref: ast.Ref, ports: list[NamedPort], http: bool,
                     action: Action, grpc: bool = False) -> tuple[int, ...] | None:
        """The ports a rule covers on a member of a group or wildcard; ``None``: left out."""
        if not svc.ports and (ports or http) and action is not Action.ALLOW:
            # A member without ports serves every port: leaving it out of a deny (or never) rule would
            # leave its allow rules standing on exactly what the rule refuses (or forbids).
            limit = ", ".join(f":{n}" for n, _ in ports) if ports else "HTTP requests"
            self.fail("MP109" if http else "MP110",
                      f"'{svc}' (through '{ref.value}') declares no ports, so it serves every port: "
                      f"this {action.value} rule cannot be limited to {limit} on it", ref.span,
                      f"declare the ports '{svc.name}' serves, or leave it out of '{ref.value}'")
        if ports:
            fit = tuple(sorted(n for n, _ in ports
                               if (port := svc.port(n)) is not None and (not http or port.protocol.is_http)))
        elif grpc:
            fit = tuple(p.number for p in svc.ports if p.protocol is Protocol.GRPC)
        elif http:
            fit = tuple(p.number for p in svc.http_ports)
        else:
            return tuple(p.number for p in svc.ports)
        return fit or None
