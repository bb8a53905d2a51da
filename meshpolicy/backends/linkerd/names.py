"""Linkerd resource names: each says what the resource holds, and stays put while it is the same resource.

The scheme is written down in docs/targets/linkerd.md ("Names"). In short:

- Server ``SERVICE-PORT``; the probe route ``SERVICE-PORT-probes``;
- an HTTPRoute ``SERVICE-PORT-<its paths>-<digest>``: every path its matches name (``root`` for ``/``; a
  pattern without its ``*``)
  and a digest of those paths and of the rules it holds, each rule known by what it matches apart from
  its methods and callers (action, paths, gRPC targets) and by its place among the port's rules of that
  same shape. So adding a method or a caller to a rule keeps the name of a route that holds the same
  rules on the same paths; methods and callers are never in a route's name;
- a GRPCRoute ``SERVICE-PORT-<every service it matches>``;
- an AuthorizationPolicy: the name of its target (the callers it admits for their identity), or
  ``TARGET-networks`` (the callers it admits for their address, from a CIDR rule);
- a MeshTLSAuthentication / NetworkAuthentication: its first identity or network, ``-and-N-more``
  when it holds more, ``-with-exceptions`` for a network with ``except`` holes, and a digest of all of
  it (``any-identity``, ``any-network`` for the two fixed ones). They are shared by content.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...graph.model import Rule
from ..naming import digest, join
from .callers import EVERY_NETWORK, Identities, NetEntry, Term
from .plan import HttpRoute, PortPolicy

PROBES = "probes"


def rule_shape(rule: Rule) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """What a rule matches apart from its methods and its callers."""
    return (rule.action.value, tuple(str(p) for p in rule.paths), tuple(str(g) for g in rule.grpc))


def rule_keys(policy: PortPolicy) -> dict[Rule, tuple[object, ...]]:
    """Each rule of the port by its shape and its place among the port's rules of that shape (source order):
    unchanged when the rule gains or loses methods or callers."""
    seen: dict[tuple[str, tuple[str, ...], tuple[str, ...]], int] = {}
    keys: dict[Rule, tuple[object, ...]] = {}
    for rule in sorted(policy.rules, key=lambda r: r.origin):
        shape = rule_shape(rule)
        keys[rule] = (*shape, seen.get(shape, 0))
        seen[shape] = seen.get(shape, 0) + 1
    return keys


def http_route_name(policy: PortPolicy, route: HttpRoute, keys: dict[Rule, tuple[object, ...]]) -> str:
    if route.probe:
        return join(policy.server, PROBES)
    paths = sorted({m.path for m in route.matches})
    # a pattern (/a*, *.png) is named by its characters: 'static', 'png'
    slugs = [(p.strip("/*").strip(".-") if "*" in p else p.strip("/")) or "root" for p in paths]
    return join(policy.server, *slugs, digest([paths, sorted(keys[r] for r in route.rules)], 6))


def grpc_route_name(policy: PortPolicy, services: Sequence[str]) -> str:
    return join(policy.server, *services)


def route_part_name(name: str, part: int) -> str:
    """A route too large for one resource (the CRD's limits) is split: ``NAME``, ``NAME-part-2``, ..."""
    return name if part == 1 else join(name, "part", part)


def authorization_name(target: str, term: Term) -> str:
    return join(target, "networks") if term.by_network else target


def meshtls_name(identities: Identities, names: Sequence[str]) -> str:
    """``names``: the identity strings the resource holds."""
    if identities.mesh:  # every identity of any trust domain ('any' on a strict port), or of the policy's ('*')
        return "any-identity" if identities.foreign else "mesh-identity"
    listed = [f"{ns}-all" for ns in identities.namespaces] + [f"{ns}-{a}" for ns, a in identities.accounts]
    return join(listed[0], _more(len(listed)), digest(list(names), 6))


def network_name(networks: tuple[NetEntry, ...]) -> str:
    if networks == EVERY_NETWORK:
        return "any-network"
    holes = "with-exceptions" if any(excepts for _, excepts in networks) else ""
    return join(networks[0][0], _more(len(networks)), holes, digest([list(n) for n in networks], 6))


def _more(count: int) -> str:
    return f"and-{count - 1}-more" if count > 1 else ""
