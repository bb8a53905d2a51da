"""Caller sets as Linkerd can write them: unions of (identities AND networks) authorizations.

Linkerd has no deny action (../shared/targets/linkerd.md §0): an authorization
admits a client whose identity is in a MeshTLSAuthentication (or any client,
when it names none) and whose address is in a NetworkAuthentication (with
``except`` holes), and the authorizations of a route are OR'ed (§3.1). So an
allow-minus-deny set can be written only when the subtraction lands on those
shapes. :func:`callers` computes the set that LANGUAGE §3 gives one class of
requests and says why when Linkerd cannot hold it exactly.

Along the identity axis a caller is a mesh identity or a plaintext client;
along the network axis, an address. For allow sources A (identities) and Ca
(CIDRs) and deny sources D and Cd, the callers LANGUAGE §3 admits are::

    (A - D) x (every address - Cd)   U   (everyone - D) x (Ca - Cd)

Each half is one authorization when its identity part is a positive list
(accounts, ``*.NS`` suffixes, or ``*``) or everyone (unauthenticated).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...graph.model import Rule, Source, SourceKind

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: a NetworkAuthentication entry: (cidr, excepts)
NetEntry = tuple[str, tuple[str, ...]]

ROOTS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


@dataclass(frozen=True, slots=True, order=True)
class Identities:
    """A set of callers along the identity axis, in the shapes a MeshTLSAuthentication can hold."""

    plain: bool = False                              # plaintext (unauthenticated) clients
    mesh: bool = False                               # every identity of the policy's trust domain
    namespaces: tuple[str, ...] = ()                 # every identity of these namespaces
    accounts: tuple[tuple[str, str], ...] = ()       # (namespace, account)
    foreign: bool = False                            # identities of other trust domains (only 'any' has them)

    @classmethod
    def make(cls, plain: bool, mesh: bool, namespaces: Iterable[str] = (),
             accounts: Iterable[tuple[str, str]] = (), foreign: bool = False) -> Identities:
        if mesh:
            return cls(plain, True, foreign=foreign)
        nss = tuple(sorted(set(namespaces)))
        return cls(plain, False, nss, tuple(sorted({a for a in accounts if a[0] not in nss})), foreign)

    @classmethod
    def of(cls, sources: Iterable[Source]) -> Identities:
        """``*`` is every identity of the mesh's trust domain (LANGUAGE §2.3); ``any`` is every client at all."""
        sources = list(sources)
        plain = any(s.kind is SourceKind.ANY for s in sources)
        mesh = plain or any(s.kind is SourceKind.MESH for s in sources)
        return cls.make(plain, mesh,
                        (s.namespace for s in sources if s.kind is SourceKind.NAMESPACE),
                        ((s.namespace, s.account) for s in sources if s.kind is SourceKind.IDENTITY),
                        foreign=plain)

    @property
    def empty(self) -> bool:
        return not (self.plain or self.mesh or self.namespaces or self.accounts or self.foreign)

    @property
    def everyone(self) -> bool:
        return self.plain and self.mesh and self.foreign

    @property
    def writable(self) -> bool:
        """Linkerd admits plaintext clients only with 'unauthenticated', which admits every identity too;
        identities of other trust domains only with '*', which admits the policy's own too."""
        return (not self.plain or (self.mesh and self.foreign)) and (not self.foreign or self.mesh)

    def authenticated(self) -> Identities:
        return Identities(False, self.mesh, self.namespaces, self.accounts, self.foreign)

    def minus(self, other: Identities) -> Identities | None:
        """``self - other``, or ``None`` when the difference is not a list Linkerd can write."""
        plain = self.plain and not other.plain
        foreign = self.foreign and not other.foreign
        if other.mesh:
            return Identities.make(plain, False, foreign=foreign)
        if self.mesh:
            return (None if (other.namespaces or other.accounts)
                    else Identities.make(plain, True, foreign=foreign))
        namespaces = []
        for ns in self.namespaces:
            if ns in other.namespaces:
                continue
            if any(n == ns for n, _ in other.accounts):
                return None  # NS/* but one account of NS
            namespaces.append(ns)
        accounts = [a for a in self.accounts if a not in other.accounts and a[0] not in other.namespaces]
        return Identities.make(plain, False, namespaces, accounts, foreign)

    def __str__(self) -> str:
        if self.everyone:
            return "any"
        parts = (["plaintext clients"] if self.plain else []) + (["*"] if self.mesh else [])
        parts += ["identities of other trust domains"] if self.foreign else []
        parts += [f"{ns}/*" for ns in self.namespaces] + [f"{ns}/{a}" for ns, a in self.accounts]
        return ", ".join(parts) or "nobody"


EVERYONE = Identities(True, True, foreign=True)


def _key(net: Network) -> tuple[int, int, int]:
    return (net.version, int(net.network_address), net.prefixlen)


def _inside(inner: Network, outer: Network) -> bool:
    """``inner`` is ``outer`` or a subnet of it (of the same IP version)."""
    return (inner.version == outer.version
            and int(outer.network_address) <= int(inner.network_address)
            and int(inner.broadcast_address) <= int(outer.broadcast_address))


def _maximal(nets: Iterable[Network]) -> list[Network]:
    """The networks not inside another one of the list, sorted."""
    unique = sorted(set(nets), key=_key)
    return [n for n in unique if not any(o != n and _inside(n, o) for o in unique)]


def networks_minus(bases: Iterable[Network], holes: Iterable[Network]) -> tuple[NetEntry, ...]:
    """``bases - holes`` as NetworkAuthentication entries (each ``except`` strictly inside its cidr, §3.3)."""
    holes = _maximal(holes)
    out: list[NetEntry] = []
    for base in _maximal(bases):
        if any(_inside(base, h) for h in holes):
            continue
        inside = [str(h) for h in holes if _inside(h, base)]
        out.append((str(base), tuple(inside)))
    return tuple(out)


EVERY_NETWORK: tuple[NetEntry, ...] = networks_minus(ROOTS, ())


@dataclass(frozen=True, slots=True, order=True)
class Term:
    """One authorization: the identity part AND the network part (§3.1: AND across refs).

    ``by_network``: the term admits clients for their address (an allowed CIDR), not for their
    identity; it names the AuthorizationPolicy only, never which callers the term admits.
    """

    identities: Identities
    networks: tuple[NetEntry, ...]
    by_network: bool = field(default=False, compare=False)


#: a caller set: the OR of its terms (§3.1: OR across policies); () is nobody
Callers = tuple[Term, ...]
NOBODY: Callers = ()
ANYBODY: Callers = (Term(EVERYONE, EVERY_NETWORK),)


@dataclass(frozen=True, slots=True)
class Unwritable:
    """Why a caller set cannot be written on Linkerd, and the deny rules that carve it."""

    reason: str
    rules: tuple[Rule, ...]


def _cidrs(sources: Iterable[Source]) -> list[Network]:
    return [s.network for s in sources if s.kind is SourceKind.CIDR]


def callers(allows: Iterable[Rule], denies: Iterable[Rule], strict: bool) -> Callers | Unwritable:
    """The callers LANGUAGE §3 admits for one class of requests, as Linkerd terms.

    ``strict``: the port refuses plaintext, so no term may be unauthenticated
    (a CIDR rule becomes identity AND network).
    """
    allows, denies = list(allows), list(denies)
    allow_sources = [s for r in allows for s in r.sources]
    deny_sources = [s for r in denies for s in r.sources]
    allowed, denied = Identities.of(allow_sources), Identities.of(deny_sources)
    denied_networks = _cidrs(deny_sources)
    # (A - D) x (every address - Cd): the allowed identities, from anywhere but the denied networks
    identity_callers = allowed.minus(denied)
    undenied_networks = networks_minus(ROOTS, denied_networks)
    # (everyone - D) x (Ca - Cd): anybody not denied, from the allowed networks
    allowed_networks = networks_minus(_cidrs(allow_sources), denied_networks)
    network_callers = EVERYONE.minus(denied) if allowed_networks else Identities()
    culprits = tuple(r for r in denies if any(s.kind is not SourceKind.CIDR for s in r.sources))
    if identity_callers is None or network_callers is None:
        what = str(allowed if identity_callers is None else EVERYONE)
        return Unwritable(f"a MeshTLSAuthentication lists identities or '*'; it cannot hold '{what}' "
                          f"except '{denied}'", culprits)
    if strict:
        identity_callers, network_callers = identity_callers.authenticated(), network_callers.authenticated()
    for part, label in ((identity_callers, allowed), (network_callers, EVERYONE)):
        if not part.writable and part.plain:
            return Unwritable(f"an unauthenticated authorization admits every mesh identity too, so the "
                              f"plaintext clients of '{label}' cannot be admitted without '{denied}'", culprits)
        if not part.writable:
            return Unwritable(f"a MeshTLSAuthentication lists the identities of other trust domains only with "
                              f"'*', which admits the mesh's own too, so '{label}' cannot be admitted without "
                              f"'{denied}'", culprits)
    terms: list[Term] = []
    if not identity_callers.empty and undenied_networks:
        terms.append(Term(identity_callers, undenied_networks))
    if not network_callers.empty and allowed_networks and network_callers != identity_callers:
        terms.append(Term(network_callers, allowed_networks, by_network=True))
    return tuple(sorted(terms))
