"""Linkerd 2.20: Namespace defaults, a Server per port, routes, authentications and AuthorizationPolicies.

How each construct is lowered, and why, is in docs/targets/linkerd.md; the facts about Linkerd it relies
on are cited from ../shared/targets/linkerd.md (sections as §N). One port at a time, in three steps:

- :mod:`.plan` (pure): the request classes the port's rules tell apart, the callers of each
  (:mod:`.callers`), and a route plan whose best match (:mod:`.matching`, §4.3) gives each its callers;
- :mod:`.check`: exact or refused, the replay of Linkerd's route choice over the plan (MP301);
- :mod:`.emit`: the resources of a checked plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ...errors import UsageError
from ...graph.evaluate import OpenProbes
from ...graph.model import (
    AccessGraph,
    Action,
    ConditionKind,
    Mode,
    Mtls,
    Namespace,
    Port,
    Protocol,
    Rule,
    Service,
    SourceKind,
)
from ...source import Span
from .. import SUMMARIES
from ..base import Backend as BaseBackend
from ..base import Resource
from ..namespaces import CHOICES, EMIT, SKIP, requirements_note
from . import authority as certificate_authority
from .check import check
from .emit import CONTROL_PLANE_NAMESPACE, ROUTE_APIS, Manifests, namespace_annotations
from .plan import (
    PROBED_PROTOCOLS,
    HttpRoutes,
    PortPlan,
    PortPolicy,
    ServerOnly,
    every_workload,
    is_every_workload,
    plan_port,
    probe_ports,
)

#: why a rule with conditions is refused, by whether it tests a token (True) or headers only (False)
_CONDITIONS_HINT = {
    True: "Linkerd has no JWT authorization: it authorizes by identity and network only (LANGUAGE §4, linkerd.md §3)",
    False: "Linkerd routes can match headers, but this build does not emit header matches yet: their route "
           "precedence is not proved (docs/targets/linkerd.md, 'Request conditions')",
}


class LinkerdBackend(BaseBackend):
    """Linkerd 2.20 (policy.linkerd.io v1beta3 Servers, Gateway API v1 routes)."""

    name = "linkerd"
    summary = SUMMARIES["linkerd"]

    def __init__(self, mode: Mode = Mode.ENFORCE, routes: str = "gateway", namespaces: str = EMIT) -> None:
        super().__init__(mode)
        if routes not in ROUTE_APIS:
            raise UsageError(f"routes must be one of {sorted(ROUTE_APIS)}, not {routes!r}")
        if namespaces not in CHOICES:
            raise UsageError(f"namespaces must be one of {', '.join(CHOICES)}, not {namespaces!r}")
        self.route_api = ROUTE_APIS[routes]
        self.access_policy = "audit" if mode == Mode.AUDIT else "deny"
        #: emit: a Namespace per managed namespace (its annotations carry the default deny); skip: a note
        self.namespaces = namespaces
        self._reported: set[tuple[str, Span | None]] = set()

    def reader_options(self) -> dict[str, Any]:
        """Without Namespaces in the output, verification reads every namespace as carrying what MP303 names."""
        if self.namespaces == SKIP:
            return {"assumed_namespace_annotations": dict(namespace_annotations(self.access_policy))}
        return {}

    def unsupported(self, construct: str, span: Span | None, hint: str | None = None) -> None:
        """As the base class, once per construct and place (a rule can reach several ports and classes)."""
        if (construct, span) not in self._reported:
            self._reported.add((construct, span))
            super().unsupported(construct, span, hint)

    #: ``lower`` is the mesh part and one part per managed namespace, each lowered from its slice of the graph
    #: (backends/base.py, docs/cache.md "Lowering by namespace"): every resource of a namespace's part lands in
    #: that namespace and selects, or is attached to, only its Servers and workloads (§2, §3.1, §4.1); routes and
    #: authentications are shared only within a namespace; the certificate authority is the mesh part's
    by_namespace = True

    def lower_mesh(self, graph: AccessGraph) -> list[Resource]:
        """The certificate authority's resources (in the control plane's namespace), from the mesh slice."""
        self._reported = set()
        if graph.authority is None:
            return []
        return certificate_authority.resources(graph.authority, graph.trust_domain, self.diag)

    def lower_namespace(self, graph: AccessGraph, ns: Namespace) -> list[Resource]:
        """Namespace ``ns``, from its slice: its Namespace, a Server per port, and the routes, authorizations and
        authentications of those Servers, all in ``ns``, sorted by (kind, name). The rules of ``ns`` already hold,
        resolved, the identities of their callers in other namespaces, so nothing else of the graph is read.
        MP314 is given here, once every port of ``ns`` is in: a route is shared only by Servers of ``ns``."""
        self._reported = set()  # a part's diagnostics depend on its slice alone, not on the parts before it
        if ns.name == CONTROL_PLANE_NAMESPACE:
            # the control plane's own namespace: a deny default and injection there would cut off the
            # policy controller and identity service every meshed pod depends on (§1, §3.2)
            self.unsupported(f"managing namespace '{CONTROL_PLANE_NAMESPACE}' (Linkerd's control plane)",
                             ns.origins[0] if ns.origins else None,
                             "declare its services in an external namespace if they only call")
            return []
        manifests = Manifests(graph.trust_domain, self.access_policy, self.route_api)
        audited: list[PortPolicy] = []   # MP314, once every port is in: routes are shared across Servers
        if self.namespaces == EMIT:
            manifests.namespace(ns)
        else:
            requirements_note(self.diag, ns, annotations=namespace_annotations(self.access_policy),
                              why="Linkerd enforces policy only on meshed pods, and a port without a Server "
                              "falls back to the pod's default inbound policy (linkerd.md §0.1, §1)")
        for policy in self._wide_policies(graph, ns.name):
            if not self._conditions(policy):
                self._port(manifests, policy, audited)
        for svc in graph.services_in(ns.name):
            if not svc.ports:
                self._portless(svc, graph.rules_for(svc.key))
            for policy in port_policies(graph, svc):
                if not self._conditions(policy):
                    self._port(manifests, policy, audited)
        resources = manifests.resources()
        for policy in audited:
            self._audit_note(policy, manifests.routes_of(policy.service.namespace, policy.server))
        return resources

    def install_values(self, graph: AccessGraph) -> dict[str, dict[str, Any]]:
        if graph.authority is None:
            return {}
        return {"linkerd-control-plane": certificate_authority.install_values(graph.authority)}

    def _conditions(self, policy: PortPolicy) -> bool:
        """Refuse the request conditions of a port's rules (LANGUAGE 4: Linkerd has no JWT authorization);
        True when the port is refused."""
        refused = False
        for rule in policy.rules:
            if rule.conditions:
                refused = True
                self.unsupported("a rule with request conditions ('if ...')", rule.origin, _CONDITIONS_HINT[
                    any(c.kind is not ConditionKind.HEADER for c in rule.conditions)])
        return refused

    def _audit_note(self, policy: PortPolicy, routes: list[tuple[str, str]]) -> None:
        """MP314: audit mode admits what no authorization admits, but a request matching no route is 404 first."""
        svc = policy.service
        names = ", ".join(f"{kind} {name}" for kind, name in routes)
        self.diag.note("MP314", f"--mode audit: on Server {svc.namespace}/{policy.server} requests that match none "
                       f"of its routes ({names}) still get 404", svc.origins[0] if svc.origins else None,
                       "Linkerd picks a route before it checks authorization, and accessPolicy: audit does not "
                       "turn a 404 into an allow (linkerd.md §4.3); audit does not cover those requests")

    def open_probes(self, graph: AccessGraph) -> OpenProbes:
        """Every HTTP/1 and HTTP/2 port of a service with probes: by our probe route once the port has
        routes, and by Linkerd's own probe route (from 0.0.0.0/0 and ::/0 by default) before (§5)."""
        managed = {ns.name for ns in graph.managed_namespaces}
        return frozenset((svc.namespace, svc.name, number)
                         for svc in graph.services if svc.namespace in managed
                         for number in probe_ports(svc))

    def _port(self, manifests: Manifests, policy: PortPolicy, audited: list[PortPolicy]) -> None:
        """Plan, check, emit; a port the check refuses emits nothing. ``audited``: the ports that get MP314."""
        plan = plan_port(policy)
        if is_every_workload(policy.service) and isinstance(plan, ServerOnly) and not policy.port.protocol.is_http:
            # a ``**`` port no rule looks inside: its protocol is the workloads' own, so Linkerd detects it; with
            # Server-level authorizations only, HTTP and other traffic are decided alike (§0.6, §0.7, §6)
            plan = replace(plan, proxy_protocol="unknown")
        refusals = check(plan)
        for refusal in refusals:
            self.unsupported(refusal.construct, refusal.span, refusal.hint)
        if refusals:
            return
        if manifests.port(plan) and self.mode == Mode.AUDIT:
            audited.append(policy)
        if loses_probe_route(plan) and is_every_workload(policy.service):
            self.diag.note("MP304", f"port {policy.port.number} of every workload of namespace "
                           f"'{policy.service.namespace}' ('**') has routes: kubelet probes of that port, if a pod "
                           "has any, will be refused (404 or 403)", policy.rules[0].origin,
                           "Linkerd drops its own probe route once a port has routes (linkerd.md §5), and the "
                           "policy does not know the probes of workloads it does not declare")
        elif loses_probe_route(plan):
            svc = policy.service
            self.diag.note("MP304", f"port {policy.port.number} of '{svc}' has routes and '{svc}' declares no "
                           "probes: kubelet probes of that port will be refused (404 or 403) and its pods never "
                           "become Ready", svc.origins[0] if svc.origins else None,
                           "Linkerd drops its own probe route once a port has routes (linkerd.md §5); declare "
                           "the pod's httpGet probe paths with 'probes /PATH' so that meshpolicy opens them")
        if isinstance(plan, HttpRoutes) and policy.probes:
            svc = policy.service
            self.diag.note("MP302", f"probe paths {', '.join(policy.probes)} of '{svc}' are open to "
                           f"unauthenticated GET requests from any address on port {policy.port.number}",
                           svc.origins[0] if svc.origins else None,
                           "Linkerd drops its own probe route once a port has routes (linkerd.md §5), "
                           "so meshpolicy adds one")

    def _wide_policies(self, graph: AccessGraph, namespace: str) -> Iterator[PortPolicy]:
        """The ports of the namespace's ``NS/**`` rules, each one Server selecting every pod of the namespace
        (``matchLabels: {}``, §2), where that is exact; MP301 with the reason everywhere else
        (docs/targets/linkerd.md, "Every workload of a namespace")."""
        wide = graph.wide_rules(namespace)
        why = "'{target}' (every workload of namespace '" + namespace + "', declared or not)"
        ports: set[int] = set()
        for rule in wide:
            what = why.format(target=rule.target)
            if rule.action is not Action.ALLOW:
                self.unsupported(f"a deny rule on {what}", rule.origin,
                                 "Linkerd has no deny action (linkerd.md §0); a namespace-wide Server's routes cannot "
                                 "refuse for every workload without also refusing what other rules allow there")
            elif not rule.ports:
                self.unsupported(f"every port of {what}", rule.origin,
                                 "a Server selects one port, and a port without one falls back to each pod's default "
                                 "inbound policy (linkerd.md §1, §2): give the rule its ports (:N)")
            else:
                ports.update(rule.ports)
        http = set(graph.wide_http_ports(namespace))
        for number in sorted(ports):
            rules = tuple(r for r in wide if r.action is Action.ALLOW and number in r.ports)
            declaring = [svc for svc in graph.services_in(namespace) if svc.port(number) is not None]
            if declaring:
                for rule in rules:
                    self.unsupported(f"port {number} of {why.format(target=rule.target)}", rule.origin,
                                     f"{', '.join(map(str, declaring))} also declare{'s' if len(declaring) == 1 else ''} "
                                     f"it: a namespace-wide Server would select the same pod port as {declaring[0]}'s "
                                     "Server, and Linkerd keeps only the oldest (linkerd.md §2); name a port that no "
                                     "declared service of the namespace declares")
                continue
            modes = {graph.mtls_for(None, namespace, number)} | {
                graph.mtls_for(svc, namespace, number) for svc in graph.services_in(namespace)}
            plaintext = any(src.kind in (SourceKind.ANY, SourceKind.CIDR) for r in rules for src in r.sources)
            if len(modes) > 1 and plaintext:
                # where every source needs an identity, the mode decides nothing: plaintext is refused either way
                for rule in rules:
                    self.unsupported(f"port {number} of {why.format(target=rule.target)}", rule.origin,
                                     "its workloads have different mTLS modes there and the rules admit plaintext "
                                     "clients ('any' or a CIDR), but one Server's authorizations decide the port on "
                                     "every pod it selects (linkerd.md §0.4): make the modes agree")
                continue
            protocol = Protocol.HTTP if number in http else Protocol.TCP
            origins = tuple(sorted({r.origin for r in rules}))
            yield PortPolicy(every_workload(namespace, origins), Port(number, protocol), rules,
                             modes == {Mtls.STRICT} or not plaintext, ())

    def _portless(self, svc: Service, rules: tuple[Rule, ...]) -> None:
        # A Server selects one port (§2); "every port" of a workload has no Server to hang on, and the
        # default policy is per pod, not per workload we could name (§1).
        for rule in rules:
            if rule.action is Action.ALLOW:
                self.unsupported(f"a rule for '{svc}', which declares no ports (every port)", rule.origin,
                                 "declare the ports it serves, e.g. service NAME :8080/http")


def port_policies(graph: AccessGraph, svc: Service) -> Iterator[PortPolicy]:
    """What decides each declared port of ``svc``: the input of planning."""
    rules = graph.rules_for(svc.key)
    probed = probe_ports(svc)
    for port in svc.ports:
        strict = graph.mtls_for(svc, svc.namespace, port.number) is Mtls.STRICT
        yield PortPolicy(svc, port, tuple(r for r in rules if port.number in r.ports), strict,
                         svc.probes if port.number in probed else ())


def loses_probe_route(plan: PortPlan) -> bool:
    """An HTTP/1 or HTTP/2 port that gets routes while its service declares no probes: Linkerd's own probe
    route is gone (§5) and meshpolicy opens no probe path, so the kubelet's probes of it are refused."""
    policy = plan.port
    return isinstance(plan, HttpRoutes) and not policy.service.probes and policy.port.protocol in PROBED_PROTOCOLS


def ports_losing_probes(graph: AccessGraph) -> list[PortPolicy]:
    """Every port of the policy that :func:`loses_probe_route` on Linkerd (build note MP304; lint uses it)."""
    return [policy for ns in graph.managed_namespaces if ns.name != CONTROL_PLANE_NAMESPACE
            for svc in graph.services_in(ns.name) for policy in port_policies(graph, svc)
            if loses_probe_route(plan_port(policy))]

