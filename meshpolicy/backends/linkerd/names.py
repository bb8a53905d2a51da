"""Linkerd resource names: each says what the resource holds, and stays put while it is the same resource.

The scheme is written down in docs/targets/linkerd.md ("Names"). In short:

- Server ``SERVICE-PORT``;
- a route is shared by every Server of its namespace that needs one of the same content (§4.1), so it is
  named by that content alone, never by the Servers it is attached to: an HTTPRoute
  ``<its paths>-<digest>`` (every path its matches name, ``root`` for ``/``, a pattern by its characters),
  the probe route ``probes-<its paths>-<digest>``, a GRPCRoute ``<its services>-<digest>``, the digest
  covering the whole content (kind, matches with their methods, callers); more than 32 Servers:
  ``NAME``, ``NAME-servers-2``, ...; more matches than one resource holds: ``NAME-part-2``, ...;
- an AuthorizationPolicy: the name of its target (the callers it admits for their identity), or
  ``TARGET-networks`` (the callers it admits for their address, from a CIDR rule);
- a MeshTLSAuthentication / NetworkAuthentication: its first identity or network, ``-and-N-more``
  when it holds more, ``-with-exceptions`` for a network with ``except`` holes, and a digest of all of
  it (``any-identity``, ``any-network`` for the two fixed ones). They are shared by content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple

from ..naming import digest, join
from .callers import EVERY_NETWORK, Callers, Identities, NetEntry, Term
from .plan import GrpcServiceRoute, HttpRoute

PROBES = "probes"
#: hex digits of a route's content digest: routes are named per namespace (thousands on a large mesh), so
#: 40 bits keep an accidental clash improbable; a clash is an internal error, never a merged route
ROUTE_DIGEST = 10


def _callers(callers: Callers) -> list[object]:
    """The callers as they decide the route's AuthorizationPolicies (names included: ``by_network``)."""
    return [[astuple(term), term.by_network] for term in callers]


def _slug(path: str) -> str:
    """A path in a name: its segments; a pattern (/a*, *.png) by its characters ('static', 'png')."""
    return (path.strip("/*").strip(".-") if "*" in path else path.strip("/")) or "root"


def http_route_name(route: HttpRoute) -> str:
    """``<paths>-<digest>`` (``probes-<paths>-<digest>`` for the probe route): from the route's content alone,
    so every Server whose port needs this route shares it (docs/targets/linkerd.md, "Names")."""
    paths = sorted({m.path for m in route.matches})
    content = ["HTTPRoute", route.probe, [[m.path_type, m.path, m.method] for m in route.matches],
               _callers(route.callers)]
    return join(*([PROBES] if route.probe else []), *map(_slug, paths), digest(content, ROUTE_DIGEST))


def grpc_route_name(route: GrpcServiceRoute) -> str:
    """``<services>-<digest>``: from the route's content alone, as :func:`http_route_name`."""
    return join(*route.services, digest(["GRPCRoute", list(route.services), _callers(route.callers)],
                                        ROUTE_DIGEST))


def route_servers_name(name: str, group: int) -> str:
    """A route shared by more Servers than one resource names (the CRD's 32 parentRefs): ``NAME``,
    ``NAME-servers-2``, ... over the Servers in sorted order."""
    return name if group == 1 else join(name, "servers", group)


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
