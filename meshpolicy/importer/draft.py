"""The policy an import is writing: namespaces, services and rules, before they become ``.mesh`` text.

A translator (:mod:`.istio`, :mod:`.linkerd`) fills a :class:`Draft` from the manifests; the
draft names its services (after their labels, or after the workloads of ``--cluster``), renders
itself as ``.mesh`` text with a map from each rule's line back to the rule (so that the proof can
name and drop a rule), and the proof (:mod:`.prove`) drops rules it finds too wide. A dropped
rule stays in the text as an ``# import:`` comment, with why.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, Severity, shown
from ..graph.model import SourceKind
from ..resolve.names import label_problem, name_problem
from ..resolve.paths import parse_path
from ..source import Span

#: LANGUAGE §2.4: the closed set of HTTP methods
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
#: the destination of a rule that covers every workload of its namespace, declared or not (LANGUAGE §2.3)
WIDE = "**"
#: the service that makes a namespace managed where no selector stands for a service
PLACEHOLDER = "other-workloads"
#: label keys that name an application, in the order a service is named after them
NAME_KEYS = ("app", "app.kubernetes.io/name", "k8s-app", "name", "component", "app.kubernetes.io/component")


@dataclass(frozen=True, slots=True, order=True)
class Src:
    """A caller the way a rule names one: an identity, ``NS/*``, ``*``, ``any`` or a CIDR."""

    kind: SourceKind
    namespace: str = ""
    account: str = ""
    cidr: str = ""

    def covers(self, other: Src) -> bool:
        """Whether every caller ``other`` names is one this names (identities and wildcards only)."""
        if self.kind == SourceKind.ANY:
            return True
        if self.kind == SourceKind.MESH:
            return other.kind in (SourceKind.MESH, SourceKind.NAMESPACE, SourceKind.IDENTITY)
        if self.kind == SourceKind.NAMESPACE:
            return other.kind in (SourceKind.NAMESPACE, SourceKind.IDENTITY) and other.namespace == self.namespace
        if self.kind == SourceKind.CIDR:
            if other.kind != SourceKind.CIDR:
                return False
            mine, theirs = ipaddress.ip_network(self.cidr), ipaddress.ip_network(other.cidr)
            return mine.version == theirs.version and theirs.subnet_of(mine)  # type: ignore[arg-type]
        return self == other


ANY = Src(SourceKind.ANY)
MESH = Src(SourceKind.MESH)


def identity(namespace: str, account: str) -> Src:
    return Src(SourceKind.IDENTITY, namespace, account)


def every_in(namespace: str) -> Src:
    return Src(SourceKind.NAMESPACE, namespace)


def cidr(text: str) -> Src:
    return Src(SourceKind.CIDR, cidr=str(ipaddress.ip_network(text, strict=False)))


def meet(a: Src, b: Src) -> Src | None:
    """The callers both name (identities and wildcards), None when none."""
    if a.covers(b):
        return b
    if b.covers(a):
        return a
    return None


def minimal(sources: list[Src]) -> tuple[Src, ...]:
    """The sources, without those another one covers, sorted."""
    unique = sorted(set(sources))
    return tuple(s for s in unique if not any(o != s and o.covers(s) for o in unique))


@dataclass
class Service:
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]
    account: str
    origin: Span | None = None
    ports: dict[int, str] = field(default_factory=dict)      # number -> http, http2, grpc or tcp
    mtls: str | None = None                                   # strict or permissive
    port_mtls: dict[int, str] = field(default_factory=dict)
    probes: tuple[str, ...] = ()
    caller_only: bool = False                                 # named only as a caller
    comment: str = ""
    described: bool = False                                   # ports and probes from --cluster's workloads

    def declare(self, port: int, protocol: str) -> None:
        """Declare a port; HTTP wins over tcp (a port some rule tests HTTP on is an HTTP port)."""
        known = self.ports.get(port)
        if known is None or (known == "tcp" and protocol != "tcp"):
            self.ports[port] = protocol

    @property
    def http_ports(self) -> list[int]:
        return sorted(p for p, proto in self.ports.items() if proto != "tcp")

    @property
    def tcp_ports(self) -> list[int]:
        return sorted(p for p, proto in self.ports.items() if proto == "tcp")


@dataclass
class Rule:
    action: str                       # allow or deny
    sources: tuple[Src, ...]
    namespace: str
    service: str
    origin: Span                      # the manifest line it comes from
    resource: str                     # "AuthorizationPolicy shop/orders"
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()       # as written in .mesh: /a or /a/*
    grpc: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    comments: list[str] = field(default_factory=list)
    dropped: str = ""                 # why the proof dropped it ("" = kept)
    conditions: tuple[str, ...] = ()  # as written after 'if': header x=y, jwt NAME, claim k=v

    @property
    def is_http(self) -> bool:
        return bool(self.methods or self.paths or self.grpc or self.conditions)

    @property
    def key(self) -> tuple:
        return (self.namespace, self.service, self.action, self.sources, self.methods, self.paths, self.grpc,
                self.ports, self.conditions)


@dataclass
class Draft:
    target: str
    trust_domain: str = "cluster.local"
    mesh_mtls: str | None = None
    namespaces: dict[str, str | None] = field(default_factory=dict)   # managed namespace -> its mtls mode
    services: dict[tuple[str, str], Service] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    findings: list[Diagnostic] = field(default_factory=list)
    cluster: Any = None               # the workloads of --cluster (meshpolicy.cluster.model.Cluster), when given
    issuers: dict[str, tuple[str, str]] = field(default_factory=dict)   # JWT issuer URL -> (name, jwks URL or "")

    def issuer(self, url: str, jwks: str = "") -> str:
        """The name of the issuer of ``url`` (declared on first use, after its host)."""
        if url not in self.issuers:
            host = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url).split("/")[0].split(":")[0]
            taken = {name for name, _ in self.issuers.values()}
            self.issuers[url] = (fresh(_dns(host) or "issuer", taken), jwks)
        elif jwks and not self.issuers[url][1]:
            self.issuers[url] = (self.issuers[url][0], jwks)
        return self.issuers[url][0]

    # -- diagnostics ----------------------------------------------------------------------------------------
    def narrowed(self, span: Span | None, resource: str, what: str, hint: str | None = None) -> None:
        """MP801: what the import could not write exactly, and how it narrowed it (never wider)."""
        self._add(Diagnostic("MP801", Severity.WARNING, shown(f"{resource}: {what}"), span, hint))

    def note(self, code: str, span: Span | None, message: str, hint: str | None = None) -> None:
        self._add(Diagnostic(code, Severity.NOTE, shown(message), span, hint))

    def finding(self, code: str, span: Span | None, message: str, hint: str | None = None) -> None:
        diag = Diagnostic(code, Severity.WARNING, shown(message), span, hint)
        if diag not in self.findings:
            self.findings.append(diag)

    def _add(self, diag: Diagnostic) -> None:
        if diag not in self.diagnostics:
            self.diagnostics.append(diag)

    # -- services ---------------------------------------------------------------------------------------------
    def in_namespace(self, namespace: str) -> list[Service]:
        return sorted((s for s in self.services.values() if s.namespace == namespace), key=lambda s: s.name)

    def managed(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def add_service(self, namespace: str, labels: tuple[tuple[str, str], ...], origin: Span | None,
                    name: str | None = None, account: str | None = None, caller_only: bool = False) -> Service:
        taken = {s.name for s in self.in_namespace(namespace)}
        pods = self.workloads(namespace, labels) if name is None else []
        if pods:  # --cluster: named after the workload, with its account, ports and probes
            accounts = {w.account for w in pods}
            name = pods[0].name if len(pods) == 1 and name_problem(pods[0].name) is None else None
            account = accounts.pop() if len(accounts) == 1 and name_problem(next(iter({w.account for w in pods}))) \
                is None else account
        name = fresh(name or name_for(labels), taken)
        svc = Service(namespace, name, labels, account or name, origin, caller_only=caller_only)
        self.services[(namespace, name)] = svc
        for w in pods:
            self._describe(svc, w)
        return svc

    def workloads(self, namespace: str, labels: tuple[tuple[str, str], ...]) -> list[Any]:
        """The workloads of --cluster whose pods carry ``labels`` (none without --cluster)."""
        if self.cluster is None or not labels:
            return []
        return [w for w in self.cluster.workloads_in(namespace) if set(labels) <= set(w.labels)]

    def add_selected(self, namespace: str, selected: dict[tuple[tuple[str, str], ...], Any], field_name: str,
                     resource: str) -> None:
        """One service per selector of ``namespace`` the language can tell apart (``selected``: selector -> the
        first document that holds it), fewest labels first; a selector sharing pods with an accepted one is
        left to it. Without any, a placeholder service keeps the namespace managed."""
        accepted: list[tuple[tuple[str, str], ...]] = []
        for selector in sorted(selected, key=lambda s: (len(s), s)):
            doc = selected[selector]
            problem = labels_problem(selector)
            if problem is not None:
                self.narrowed(doc.span(), doc.title, f"{field_name}: {problem}")
                continue
            if self.cluster is not None and not self.workloads(namespace, selector):
                self.finding("ML064", doc.span(), f"{doc.title}: its selector "
                             f"{','.join(f'{k}={v}' for k, v in selector)} matches no workload of {namespace} in "
                             "--cluster: it protects nothing today",
                             "check the labels against the workloads' pod templates")
            if all(disjoint(selector, a) for a in accepted):
                accepted.append(selector)
                self.add_service(namespace, selector, doc.span())
        if not accepted:
            svc = self.add_service(namespace, (("app", PLACEHOLDER),), None, PLACEHOLDER)
            svc.comment = (f"stands for the namespace's workloads: no {resource} selects one, and a namespace is "
                           "managed when it declares a service")

    def _describe(self, svc: Service, workload: Any) -> None:
        """Ports (protocol from the Kubernetes Service port's name, as Istio selects it) and HTTP probes."""
        svc.described = True
        for container in workload.containers:
            if not container.runs:
                continue
            for port in container.ports:
                if port.protocol != "TCP":
                    continue
                svc.declare(port.number, self._protocol(workload, port))
            for probe in container.probes:
                number = probe.port if isinstance(probe.port, int) else workload.named_port(probe.port)
                if number is not None and path_ok(probe.path) and "*" not in probe.path:
                    svc.probes = tuple(sorted(set(svc.probes) | {probe.path}))
                    svc.declare(number, "http")

    def _protocol(self, workload: Any, port: Any) -> str:
        for kube in self.cluster.services if self.cluster is not None else ():
            if kube.namespace != workload.namespace or not kube.selector or \
                    not set(kube.selector) <= set(workload.labels):
                continue
            for sp in kube.ports:
                if sp.target in (port.number, port.name) and sp.name:
                    for prefix in ("grpc", "http2", "http"):
                        if sp.name == prefix or sp.name.startswith(prefix + "-"):
                            return prefix
                    return "tcp"
        return "tcp"

    def by_labels(self, namespace: str, labels: tuple[tuple[str, str], ...]) -> Service | None:
        return next((s for s in self.in_namespace(namespace) if s.labels == labels and not s.caller_only), None)

    def caller(self, namespace: str, account: str) -> Service:
        """The service whose identity is ``namespace/account``: a declared one, or one declared to name it."""
        found = [s for s in self.in_namespace(namespace) if s.account == account]
        if found:
            return next((s for s in found if s.name == account), found[0])
        pods = [w for w in self.cluster.workloads_in(namespace) if w.account == account] if self.cluster else []
        others = [s.labels for s in self.in_namespace(namespace)]
        for pod in pods[:1]:
            # the fewest of its labels that no other service can share: a naming key alone where it does
            labels = next((((k, v),) for k, v in pod.labels if k in NAME_KEYS
                           and all(dict(o).get(k, v) != v for o in others)), pod.labels)
            if not all(any(dict(o).get(k, v) != v for k, v in labels) for o in others) or \
                    labels_problem(labels) is not None or name_problem(pod.name) is not None:
                break
            svc = self.add_service(namespace, labels, pod.origin, pod.name, account, caller_only=True)
            self._describe(svc, pod)
            return svc
        if self.managed(namespace):
            # a caller in a managed namespace: labels that no other service of the namespace can share
            taken = {s.name for s in self.in_namespace(namespace)}
            name = fresh(_dns(account) or "caller", taken)
            labels = dict.fromkeys({k for s in self.in_namespace(namespace) for k, _ in s.labels} | {"app"}, name)
            for s in self.in_namespace(namespace):
                for k, v in s.labels:
                    if labels[k] == v:
                        labels[k] = f"{name}-caller"
            svc = self.add_service(namespace, tuple(sorted(labels.items())), None, name, account, caller_only=True)
            svc.comment = "named by a rule as a caller; the manifests do not select it"
            return svc
        return self.add_service(namespace, (("app", _dns(account) or "caller"),), None, _dns(account) or "caller",
                                account, caller_only=True)

    # -- rendering ----------------------------------------------------------------------------------------
    def ref(self, src: Src, here: str) -> str:
        if src.kind == SourceKind.ANY:
            return "any"
        if src.kind == SourceKind.MESH:
            return "*"
        if src.kind == SourceKind.CIDR:
            return src.cidr
        if src.kind == SourceKind.NAMESPACE:
            return f"{src.namespace}/*"
        svc = self.caller(src.namespace, src.account)
        return svc.name if svc.namespace == here else f"{svc.namespace}/{svc.name}"

    def render(self, header: list[str]) -> tuple[str, dict[int, Rule]]:
        """The ``.mesh`` text and, for each rule's line, the rule."""
        for rule in self.rules:  # name every caller first: a caller may add a service
            for src in rule.sources:
                self.ref(src, rule.namespace)
        lines = [f"# {h}" if h else "#" for h in header]
        at: dict[int, Rule] = {}
        lines.append(f"trust-domain {self.trust_domain}")
        if self.mesh_mtls:
            lines.append(f"mtls {self.mesh_mtls}")
        used = {c.split(" ", 1)[1] for r in self.rules if not r.dropped for c in r.conditions if c.startswith("jwt ")}
        for url, (name, jwks) in sorted(self.issuers.items(), key=lambda kv: kv[1][0]):
            if name in used:
                lines.append(f"issuer {name} {url}" + (f" jwks {jwks}" if jwks else ""))
        spaces = sorted({s.namespace for s in self.services.values()} | set(self.namespaces))
        for ns in spaces:
            lines.append("")
            external = not self.managed(ns)
            lines.append(f"namespace {ns}{' external' if external else ''} {{")
            if not external and self.namespaces.get(ns):
                lines.append(f"  mtls {self.namespaces[ns]}")
            for svc in self.in_namespace(ns):
                if svc.comment:
                    lines.append(f"  # import: {svc.comment}")
                lines.append("  " + self._service(svc, external))
            for rule in sorted((r for r in self.rules if r.namespace == ns), key=_order):
                for comment in rule.comments:
                    lines.append(f"  # import: {comment}")
                text = self._rule(rule, ns)
                if rule.dropped:
                    lines.append(f"  # import: not imported ({rule.dropped}): {text}")
                    continue
                lines.append("  " + text)
                at[len(lines)] = rule
            lines.append("}")
        return "\n".join(lines) + "\n", at

    def _service(self, svc: Service, external: bool) -> str:
        words = [f"service {svc.name}"]
        if svc.account != svc.name:
            words.append(f"account {svc.account}")
        if not external:
            if svc.labels != (("app", svc.name),):
                words.append("labels " + ",".join(f"{k}={v}" for k, v in svc.labels))
            words += [f":{p}/{proto}" for p, proto in sorted(svc.ports.items())]
            if svc.probes:
                words.append("probes " + ",".join(svc.probes))
            if svc.mtls:
                words.append(f"mtls {svc.mtls}")
            by_mode: dict[str, list[int]] = {}
            for port, mode in sorted(svc.port_mtls.items()):
                by_mode.setdefault(mode, []).append(port)
            for mode, ports in sorted(by_mode.items()):
                words.append(f"mtls {mode} on {','.join(map(str, ports))}")
        return " ".join(words)

    def _rule(self, rule: Rule, here: str) -> str:
        words = [rule.action, ", ".join(self.ref(s, here) for s in rule.sources), "->", rule.service]
        if rule.grpc:
            words.append("grpc " + ",".join(rule.grpc))
        else:
            if rule.methods:
                words.append(",".join(rule.methods))
            if rule.paths:
                words.append(", ".join(rule.paths))
        if rule.ports:
            words.append(":" + ",".join(map(str, rule.ports)))
        if rule.conditions:
            words.append("if " + ", ".join(rule.conditions))
        return " ".join(words)


def _order(rule: Rule) -> tuple:
    return (rule.service, rule.action != "deny", rule.origin, rule.key)


# -- names and values the language admits --------------------------------------------------------------------

def _dns(text: str) -> str:
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return out


def name_for(labels: tuple[tuple[str, str], ...]) -> str:
    """A service name after its labels: ``app`` (or another naming key), else the values joined."""
    found = dict(labels)
    for key in NAME_KEYS:
        if key in found and _dns(found[key]):
            return _dns(found[key])
    return _dns("-".join(v for _, v in labels)) or "workload"


def fresh(base: str, taken: set[str]) -> str:
    if name_problem(base) is not None:
        base = f"{base}-svc" if name_problem(f"{base}-svc") is None else "workload"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[:60]}-{n}"
    return name


def disjoint(a: tuple[tuple[str, str], ...], b: tuple[tuple[str, str], ...]) -> bool:
    """Whether no pod can carry both label sets: they give one key different values."""
    other = dict(b)
    return any(k in other and other[k] != v for k, v in a)


def labels_problem(labels: tuple[tuple[str, str], ...]) -> str | None:
    """Why the language cannot write these labels (None: it can)."""
    for key, value in labels:
        problem = label_problem(key, value)
        if problem is not None:
            return problem
        if not re.fullmatch(r"[A-Za-z0-9_./-]+", key) or not re.fullmatch(r"[A-Za-z0-9_./:-]*", value):
            return f"the label {key}={value} holds a character a .mesh file cannot write"
    return None


def path_kind(path: str) -> str | None:
    """The kind of path the language reads ``path`` as (exact, prefix, starts, suffix), None if it refuses it
    (a pattern of language version 2 is refused where the resolver does not read it yet)."""
    match, problem = parse_path(path)
    if problem is not None:
        return None
    return "any" if match is None else str(match.kind)


def path_ok(path: str) -> bool:
    """Whether ``path`` (exact, or ``/a/*``) is a path the language admits."""
    return parse_path(path)[1] is None


def namespace_ok(name: str) -> bool:
    return name_problem(name) is None


def finish(out: Draft) -> None:
    """What a rule means once every port is known (LANGUAGE §2.4 against Istio §9 / Linkerd's Servers):

    - a rule with HTTP fields and no ports covers the HTTP ports; an ALLOW on a service without one
      cannot be written (not imported); a DENY also refuses every TCP port whole, as Istio does;
    - one rule written twice (two policies that say the same) is kept once.
    """
    kept: list[Rule] = []
    seen: set[tuple] = set()
    for rule in out.rules:
        if rule.service == WIDE:
            if rule.key not in seen:
                seen.add(rule.key)
                kept.append(rule)
            continue
        svc = out.services[(rule.namespace, rule.service)]
        if rule.is_http and not rule.ports:
            if rule.action == "allow" and not svc.http_ports:
                out.narrowed(rule.origin, rule.resource, f"a rule with methods or paths for {svc.namespace}/"
                             f"{svc.name}, which serves no port known to be HTTP: not imported",
                             "give --cluster the workloads' manifests, or name the port in the rule")
                continue
            if rule.action == "deny":
                if svc.tcp_ports or not svc.ports:
                    whole = Rule("deny", rule.sources, rule.namespace, rule.service, rule.origin, rule.resource,
                                 ports=tuple(svc.tcp_ports))  # Istio §9: HTTP fields and conditions dropped there
                    if not svc.ports:
                        out.narrowed(rule.origin, rule.resource, f"a DENY with methods or paths for {svc.namespace}/"
                                     f"{svc.name}, whose ports are not known: it refuses every request of its callers")
                    if whole.key not in seen:
                        seen.add(whole.key)
                        kept.append(whole)
                if not svc.http_ports:
                    continue
        if rule.key in seen:
            continue
        seen.add(rule.key)
        kept.append(rule)
    out.rules = kept


def method_ok(method: str) -> bool:
    """A method the language admits: one of :data:`METHODS` where the resolver already refuses others."""
    from ..resolve.checks import method_problem

    return method_problem(method) is None


def drop_placeholders(out: Draft) -> None:
    """A namespace a '**' rule names is managed (LANGUAGE §2.1): it needs no placeholder service."""
    wide = {r.namespace for r in out.rules if r.service == WIDE}
    for key, svc in list(out.services.items()):
        if svc.name == PLACEHOLDER and svc.labels == (("app", PLACEHOLDER),) and svc.namespace in wide:
            del out.services[key]
            out.rules = [r for r in out.rules if (r.namespace, r.service) != key]
