"""A finite request space that stands for every request the policy can tell apart.

Requests are grouped into equivalence classes: two requests that no rule,
mode or probe can distinguish get one representative. The space holds every
declared identity, an undeclared identity in every mentioned namespace, a
foreign identity, one address per region of the mentioned CIDRs (and one
outside them all), every declared port plus an undeclared one, every
mentioned method plus an unmentioned one, and for every mentioned path the
path, a child, a sibling sharing its prefix string and an unrelated path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from .evaluate import Caller, Request
from .model import AccessGraph, Identity, Rule, Service, SourceKind

_STANDARD_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
UNDECLARED_WORKLOAD_PORT = 8080


def _fresh(base: str, taken: set[str]) -> str:
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _region_points(networks: list, root) -> list[str]:
    """One address in each region cut out by nested-or-disjoint networks, plus the rest of ``root``."""
    nets = sorted(set(networks) | {root}, key=lambda n: (n.prefixlen, n.network_address))
    points: list[str] = []
    for net in nets:
        children = [c for c in nets if c != net and c.subnet_of(net)]
        # direct children only: those not inside another child
        direct = sorted((c for c in children if not any(c != o and c.subnet_of(o) for o in children)),
                        key=lambda c: c.network_address)
        cursor = int(net.network_address)
        end = int(net.broadcast_address)
        point = None
        for child in direct:
            if cursor < int(child.network_address):
                point = cursor
                break
            cursor = max(cursor, int(child.broadcast_address) + 1)
        else:
            if cursor <= end:
                point = cursor
        if net == root:
            # prefer a documentation address for "outside every network", when it is outside
            for doc in ("192.0.2.10", "198.51.100.10", "203.0.113.10", "3fff::10", "100::10"):
                addr = ipaddress.ip_address(doc)
                if addr.version == root.version and not any(addr in c for c in children):
                    point = int(addr)
                    break
        if point is not None:
            points.append(str(ipaddress.ip_address(point)))
    return points


def addresses(graph: AccessGraph) -> list[str]:
    """One representative address per CIDR region, for IPv4 and IPv6."""
    v4, v6 = [], []
    for rule in graph.rules + graph.invariants:
        for src in rule.sources:
            if src.kind is SourceKind.CIDR:
                (v4 if src.network.version == 4 else v6).append(src.network)
    out = _region_points(v4, ipaddress.ip_network("0.0.0.0/0"))
    if v6:
        out += _region_points(v6, ipaddress.ip_network("::/0"))
    return sorted(set(out), key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


def identities(graph: AccessGraph) -> list[Identity]:
    """Declared identities, one undeclared identity per mentioned namespace, and a foreign one."""
    declared = {svc.identity for svc in graph.services}
    namespaces = {ns.name for ns in graph.namespaces} | {i.namespace for i in declared}
    for rule in graph.rules + graph.invariants:
        for src in rule.sources:
            if src.kind in (SourceKind.IDENTITY, SourceKind.NAMESPACE):
                namespaces.add(src.namespace)
                if src.kind is SourceKind.IDENTITY:
                    declared.add(Identity(src.namespace, src.account))
    accounts = {i.account for i in declared}
    unlisted = _fresh("unlisted", accounts)
    out = set(declared)
    out.update(Identity(ns, unlisted) for ns in namespaces)
    out.add(Identity(_fresh("foreign", namespaces), "foreign"))
    return sorted(out)


def callers(graph: AccessGraph) -> list[Caller]:
    ips = addresses(graph)
    out = [Caller(None, ip) for ip in ips]
    out += [Caller(ident, ip) for ident in identities(graph) for ip in ips]
    return out


def methods(graph: AccessGraph) -> list[str]:
    mentioned = {m for r in graph.rules + graph.invariants for m in r.methods}
    mentioned |= {"GET", "POST"}  # probes and gRPC
    unmentioned = next((m for m in _STANDARD_METHODS if m not in mentioned), "PROPFIND")
    return sorted(mentioned | {unmentioned})


def paths_for(svc: Service, rules: list[Rule]) -> list[str]:
    out = {"/", "/unrelated"}
    for probe in svc.probes:
        out |= {probe, probe + "/x", probe + "X"}
    for rule in rules:
        for p in rule.paths:
            base = p.value
            out |= {base or "/", base + "/x", base + "X"}
            if p.kind == "prefix":
                out |= {base + "/"}
        for g in rule.grpc:
            out |= {f"/{g.service}/{g.method or 'Any'}", f"/{g.service}/Other", f"/{g.service}X/{g.method or 'Any'}",
                    f"/{g.service}"}
            if g.method:  # a GRPCRoute method match also takes /svc/Method/more (linkerd.md §4.3)
                out.add(f"/{g.service}/{g.method}/x")
    return sorted(out)


def ports_for(svc: Service) -> list[int]:
    if not svc.ports:
        return [UNDECLARED_WORKLOAD_PORT]
    numbers = {p.number for p in svc.ports}
    spare = next(n for n in (8080, 1, 65535, *range(2, 65535)) if n not in numbers)
    return sorted(numbers | {spare})


def requests(graph: AccessGraph) -> Iterator[Request]:
    """Every representative request to every managed namespace."""
    all_callers = callers(graph)
    all_methods = methods(graph)
    for ns in graph.managed_namespaces:
        for caller in all_callers:
            yield Request(caller, ns.name, None, UNDECLARED_WORKLOAD_PORT)
        for svc in graph.services_in(ns.name):
            rules = [r for r in graph.rules + graph.invariants if r.destination == svc.key]
            svc_paths = paths_for(svc, rules)
            for number in ports_for(svc):
                port = svc.port(number)
                for caller in all_callers:
                    if port is None or not port.protocol.is_http:
                        yield Request(caller, ns.name, svc.name, number)
                        continue
                    for method in all_methods:
                        for path in svc_paths:
                            yield Request(caller, ns.name, svc.name, number, method, path)
