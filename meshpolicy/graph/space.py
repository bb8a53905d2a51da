"""A finite request space that stands for every request the policy can tell apart.

Requests are grouped into equivalence classes, per destination: two requests
to one workload that none of its rules, modes or probes can tell apart get
one representative. For each destination the space holds every identity its
rules name, an undeclared identity in every namespace they mention (and in
the destination's own), a foreign identity, and plaintext callers; one
address per region cut by the CIDRs its rules name (and one outside them
all; none on loopback, where only the workload itself sends from and which
no rule may name); every declared port plus an undeclared one; every method its rules
name plus an unnamed one; and for every path its rules name the path, a
child, a sibling sharing its prefix string (``/api/ordersX``) and an
unrelated path (gRPC services and methods likewise).

Why this is complete: the reference decider (:mod:`.evaluate`) looks at a
request to a workload only through that workload's rules, its mTLS mode and
its probes, so any request is decided like its representative. A verifier
that evaluates emitted manifests can add what those manifests mention for a
workload (:class:`Mentions`), so that a value the output distinguishes but the
source does not (a hand-added principal, say) gets its own representative too:
a method pattern gets a method it matches, a suffix pattern a path under every
other candidate. What the world cannot stand for (selectors that pick pods it
does not have, HTTP on ports it does not declare) the readers refuse or read
the widest way (docs/verify.md).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ..errors import InternalError
from .evaluate import Caller, Request
from .model import (
    EVERY_WORKLOAD,
    AccessGraph,
    ConditionKind,
    GrpcMatch,
    Identity,
    PathKind,
    PathMatch,
    Rule,
    Service,
    SourceKind,
    Token,
    path_only,
)

#: one IP version at a time: a network only contains networks of its own version
_Network = TypeVar("_Network", ipaddress.IPv4Network, ipaddress.IPv6Network)

_STANDARD_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
UNDECLARED_WORKLOAD_PORT = 8080


@dataclass(frozen=True, slots=True)
class Mentions:
    """Values that may tell requests to one workload apart, beyond what its rules name.

    ``paths`` are raw patterns: ``/a`` (exact), ``/a*`` or ``/a/*`` (prefix), ``*x`` (suffix).
    """

    identities: frozenset[Identity] = frozenset()
    namespaces: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()
    methods: frozenset[str] = frozenset()
    paths: frozenset[str] = frozenset()
    ports: frozenset[int] = frozenset()
    #: every (ports, methods, paths) conjunction the manifests test (empty = any), when the reader knows
    #: them; None: the methods and paths above may be tested in any combination
    operations: frozenset[tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]] | None = None
    #: every set of identities the manifests test as one (a principals list), when the reader knows
    #: them; None: each identity above may be tested on its own
    identity_sets: frozenset[frozenset[Identity]] | None = None
    #: request conditions the manifests test (LANGUAGE 2.4): headers as (lower-case name, value or None for
    #: present), issuers by URL, claims as (name, value)
    headers: frozenset[tuple[str, str | None]] = frozenset()
    issuers: frozenset[str] = frozenset()
    claims: frozenset[tuple[str, str]] = frozenset()


NOTHING = Mentions()
MentionsFor = Callable[[str, "str | None"], Mentions]


def _fresh(base: str, *taken: Container[str]) -> str:
    """``base``, or ``base-N`` with the smallest N > 1, that none of ``taken`` holds."""
    name, n = base, 1
    while any(name in names for names in taken):
        n += 1
        name = f"{base}-{n}"
    return name


def _region_points(networks: Iterable[_Network], root: _Network) -> list[str]:
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
            # built from the root's class: ip_address(0) would be 0.0.0.0 even for ::/8
            points.append(str(type(root.network_address)(point)))
    return points


#: loopback sources: only the workload itself sends from them, so no caller of the model has one
#: (Linkerd always admits 127.0.0.1 and ::1, linkerd.md §0.2; the kernel drops them from the network)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def addresses(networks: Iterable) -> list[str]:
    """One representative address per region of ``networks``, IPv4 always, IPv6 when one is named.

    Loopback is cut out as a region of its own and then left out: a region is either inside it (no
    caller sends from there) or outside it, so every other region keeps a representative.
    """
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    out = _region_points(v4 + [LOOPBACK[0]], ipaddress.ip_network("0.0.0.0/0"))
    if v6:
        out += _region_points(v6 + [LOOPBACK[1]], ipaddress.ip_network("::/0"))
    out = [a for a in out if not any(ipaddress.ip_address(a) in lo for lo in LOOPBACK)]
    return sorted(set(out), key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


class Universe:
    """Names taken anywhere in the policy, so that "unlisted" and "foreign" stay fresh."""

    def __init__(self, graph: AccessGraph):
        self.rules: dict[tuple[str, str], list[Rule]] = {}
        for rule in graph.rules + graph.invariants:
            self.rules.setdefault(rule.destination, []).append(rule)
        self.accounts = {svc.account for svc in graph.services}
        self.namespaces = {ns.name for ns in graph.namespaces} | {svc.namespace for svc in graph.services}
        for rule in graph.rules + graph.invariants:
            for src in rule.sources:
                if src.kind in (SourceKind.IDENTITY, SourceKind.NAMESPACE):
                    self.namespaces.add(src.namespace)
                if src.kind is SourceKind.IDENTITY:
                    self.accounts.add(src.account)

    def covering(self, namespace: str, service: str | None) -> list[Rule]:
        """The rules and invariants of a workload (``service`` None: an undeclared one), ``NS/**`` ones included."""
        wide = self.rules.get((namespace, EVERY_WORKLOAD), [])
        return (self.rules.get((namespace, service), []) if service is not None else []) + wide

    def unlisted(self, taken: Iterable[str] = ()) -> str:
        """An account name no declared or named identity uses."""
        return _fresh("unlisted", self.accounts, set(taken))  # no copy of every account per destination

    def callers(self, own_namespace: str, rules: list[Rule], extra: Mentions) -> list[Caller]:
        """One caller per class of callers that the rules and ``extra`` cannot tell apart."""
        named = set(extra.identities)
        # namespaces a rule or the output names; the destination's own tells callers apart only then
        spaces = set(extra.namespaces) | {i.namespace for i in extra.identities}
        networks = set()
        for src in (s for r in rules for s in r.sources):
            if src.kind is SourceKind.IDENTITY:
                named.add(Identity(src.namespace, src.account))
            if src.kind in (SourceKind.IDENTITY, SourceKind.NAMESPACE):
                spaces.add(src.namespace)
            elif src.kind is SourceKind.CIDR:
                networks.add(src.network)
        namespaces = spaces | {own_namespace}
        for cidr in extra.networks:
            networks.add(ipaddress.ip_network(cidr, strict=False))
        unlisted = self.unlisted(i.account for i in extra.identities)
        foreign = _fresh("foreign", self.namespaces, namespaces)
        idents = sorted(named | {Identity(ns, unlisted) for ns in namespaces} | {Identity(foreign, "foreign")})
        ips = addresses(networks)
        nets = sorted(networks, key=lambda n: (n.version, n))
        addrs = {ip: tuple(ipaddress.ip_address(ip) in n for n in nets) for ip in ips}
        sets = {frozenset(Identity(s.namespace, s.account) for s in r.sources if s.kind is SourceKind.IDENTITY)
                for r in rules}
        sets |= extra.identity_sets if extra.identity_sets is not None else {frozenset([i]) for i in extra.identities}
        # which identity sets hold each identity, and which named namespace is its own: looked up, not tested
        # set by set (a test of every set for every caller was quadratic: issue 12, docs/performance.md)
        member_of: dict[Identity, list[int]] = {}
        for j, found in enumerate(sorted((s for s in sets if s), key=sorted)):
            for member in found:
                member_of.setdefault(member, []).append(j)
        space_at = {ns: j for j, ns in enumerate(sorted(spaces))}
        classes: dict[tuple, Caller] = {}
        for caller in [Caller(None, ip) for ip in ips] + [Caller(i, ip) for i in idents for ip in ips]:
            ident = caller.identity
            key = (ident is None, addrs[caller.ip], tuple(member_of.get(ident, ())) if ident is not None else (),
                   space_at.get(ident.namespace) if ident is not None else None)
            classes.setdefault(key, caller)  # callers no rule or mention tells apart: one stands for all
        return list(classes.values())


def methods_for(svc: Service, rules: list[Rule], extra: Mentions = NOTHING) -> list[str]:
    """The methods the rules name (GET for probes, POST for gRPC) plus one they do not."""
    named = {m for r in rules for m in r.methods} | {_method_example(m) for m in extra.methods if m != "*"}
    if svc.probes:
        named.add("GET")
    if any(r.grpc for r in rules):
        named.add("POST")
    unnamed = next((m for m in _STANDARD_METHODS if m not in named), "PROPFIND")
    return sorted(named | {unnamed})


def _method_example(pattern: str) -> str:
    """A method a pattern (``GET``, ``D*``, ``*CH``) matches: a standard one where it can, else its fixed part."""
    test = _method_test(pattern)
    return next((m for m in _STANDARD_METHODS if test(m)), pattern.strip("*"))


def _around(pattern: str) -> set[str]:
    """Representatives near one raw path pattern: itself, a child, a sibling and the bare prefix."""
    if pattern.startswith("*"):
        return {"/x" + pattern[1:], "/" + pattern[1:].lstrip("/")}
    base = pattern.rstrip("*")
    out = {base or "/", base + "x", base + "/x", base + "X"}
    if base.endswith("/") and len(base) > 1:
        out.add(base.rstrip("/"))
    return out


#: one primitive test of a path, looked up rather than evaluated (:class:`_PathTests`): (reading, kind, value),
#: the reading ``raw`` (the whole request target), ``path`` (without the query) or ``lower`` (that, lower-cased),
#: the kind ``eq``, ``starts``, ``ends`` (with ``value``) or ``nonempty``
Atom = tuple[str, str, str]
#: a path test: any of its atoms holds; () holds always
PathTest = tuple[Atom, ...]


def _pattern_tests(pattern: str) -> list[PathTest]:
    """A raw pattern read every way a mesh reads one.

    ``/a`` is exact; ``/a*`` and ``/a/*`` are a string prefix or a segment prefix
    (Istio's ``prefix*``, Gateway API's PathPrefix); ``*x`` is a suffix; ``*`` any path.
    """
    if pattern == "*":
        return [(("raw", "nonempty", ""),)]
    if pattern.startswith("*"):
        return [(("raw", "ends", pattern[1:]),)]
    if not pattern.endswith("*"):
        return [(("raw", "eq", pattern),)]
    base = pattern[:-1]
    seg = base.rstrip("/")
    return [(("raw", "starts", base),), (("raw", "eq", seg), ("raw", "starts", seg + "/"))]


def _path_match_test(m: PathMatch) -> PathTest:
    """:meth:`PathMatch.matches` as atoms."""
    if m.kind is PathKind.EXACT:
        return (("path", "eq", m.value),)
    if m.kind is PathKind.STARTS:
        return (("path", "starts", m.value),)
    if m.kind is PathKind.SUFFIX:
        return (("path", "ends", m.value),)
    return (("path", "eq", m.value), ("path", "starts", m.value + "/"))


def _grpc_test(g: GrpcMatch) -> PathTest:
    """:meth:`GrpcMatch.matches` as atoms."""
    return (("path", "eq", f"/{g.service}/{g.method}"),) if g.method else (("path", "starts", f"/{g.service}/"),)


class _PathTests:
    """Many path tests, each a disjunction of atoms (or, where a test is no such thing, a function), answered
    for one path by looking up its prefixes and suffixes in each reading instead of evaluating every test: the
    tests that hold for a path cost its length, not their number (a scan of every test for every candidate
    path was quadratic: issue 12, docs/performance.md). :meth:`holding` is exactly the set of tests ``i``
    for which the test holds."""

    def __init__(self) -> None:
        self.count = 0
        self.always: list[int] = []
        self.functions: list[tuple[int, Callable[[str], bool]]] = []
        self.tables: dict[tuple[str, str], dict[str, list[int]]] = {}

    def add(self, test: PathTest | Callable[[str], bool]) -> int:
        index = self.count
        self.count += 1
        if callable(test):
            self.functions.append((index, test))
        elif not test:
            self.always.append(index)
        for reading, kind, value in () if callable(test) else dict.fromkeys(test):
            self.tables.setdefault((reading, kind), {}).setdefault(value, []).append(index)
        return index

    def holding(self, path: str) -> set[int]:
        found = set(self.always)
        found.update(i for i, test in self.functions if test(path))
        readings = {"raw": path}
        if any(r != "raw" for r, _ in self.tables):
            readings["path"] = path_only(path)
            readings["lower"] = readings["path"].lower()
        for (reading, kind), table in self.tables.items():
            text = readings[reading]
            if kind == "eq":
                found.update(table.get(text, ()))
            elif kind == "nonempty":
                found.update(table.get("", ()) if text else ())
            elif kind == "starts":
                for i in range(len(text) + 1):
                    found.update(table.get(text[:i], ()))
            else:
                for i in range(len(text) + 1):
                    found.update(table.get(text[i:], ()))
        return found


def _method_test(pattern: str) -> Callable[[str], bool]:
    if pattern == "*":
        return lambda m: bool(m)
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return lambda m: m.startswith(prefix)
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return lambda m: m.endswith(suffix)
    return lambda m: m == pattern


def _anything(value: str) -> bool:
    return True


#: a (ports, methods, paths) conjunction the output tests (:attr:`Mentions.operations`)
MentionedOperation = tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]


class _AtPort:
    """A workload's rules and the output's operations that may apply on one port, found by port (in their order)
    instead of filtered port by port: a service with a thousand ports and rules on each was quadratic."""

    def __init__(self, rules: list[Rule], extra: Mentions):
        self.rules = rules
        self.operations = sorted(extra.operations) if extra.operations is not None else []
        self._rules = self._by_port(r.ports for r in rules)
        self._operations = self._by_port(ports for ports, _, _ in self.operations)

    @staticmethod
    def _by_port(ports: Iterable[Iterable[int]]) -> tuple[list[int], dict[int, list[int]]]:
        everywhere: list[int] = []
        at: dict[int, list[int]] = {}
        for i, numbers in enumerate(ports):
            listed = sorted(set(numbers))
            for n in listed:
                at.setdefault(n, []).append(i)
            if not listed:
                everywhere.append(i)
        return everywhere, at

    def rules_at(self, number: int) -> list[Rule]:
        """The rules without ports or with ``number`` among them, in order."""
        everywhere, at = self._rules
        return [self.rules[i] for i in sorted(everywhere + at.get(number, []))]

    def operations_at(self, number: int) -> list[MentionedOperation]:
        everywhere, at = self._operations
        return [self.operations[i] for i in sorted(everywhere + at.get(number, []))]


def _operation_tests(svc: Service, rules: list[Rule], extra: Mentions, number: int,
                     operations: list[MentionedOperation] | None = None
                     ) -> tuple[list[Callable[[str], bool]], _PathTests]:
    """Every condition that can decide a request on one HTTP port, the rules' and the output's, each
    a conjunction of a method test and a path test (the ``i``-th of each)."""
    methods: list[Callable[[str], bool]] = []
    paths = _PathTests()

    def add(method: Callable[[str], bool], path: PathTest | Callable[[str], bool]) -> None:
        methods.append(method)
        paths.add(path)

    for rule in rules:
        if rule.is_http and (not rule.ports or number in rule.ports):
            if rule.paths and rule.grpc:
                add(rule.admits_method, rule.admits_path)
            else:  # Rule.admits_path: under one of its paths, or a call it names
                add(rule.admits_method, tuple(a for m in rule.paths for a in _path_match_test(m))
                    + tuple(a for g in rule.grpc for a in _grpc_test(g)))
    if svc.probes:
        add(lambda m: m == "GET", tuple(("raw", "eq", probe) for probe in svc.probes))
    if extra.operations is None:
        for x in extra.methods:
            add(_method_test(x), ())
        for x in extra.paths:
            for t in _pattern_tests(x):
                add(_anything, t)
        return methods, paths
    for ports, named_methods, named_paths in operations if operations is not None else sorted(extra.operations):
        if ports and number not in ports:
            continue
        mtests = tuple(_method_test(x) for x in named_methods)
        ok = _anything if not mtests else (lambda m, mt=mtests: any(t(m) for t in mt))
        # one test per pattern and reading, so that any mix of readings is decided by them
        readings = [t for x in named_paths for t in _pattern_tests(x)] or [()]
        for t in readings:
            add(ok, t)
    return methods, paths


def operations_for(svc: Service, rules: list[Rule], extra: Mentions, number: int,
                   candidates: tuple[list[str], list[str]] | None = None,
                   at_port: _AtPort | None = None) -> list[tuple[str, str]]:
    """(method, path) pairs for one HTTP port: one per class that no rule or output condition tells apart.

    ``candidates``: the (methods, paths) to choose from, when already computed for the service; ``at_port``:
    ``rules`` and ``extra``'s operations by port, when already indexed for the service.
    """
    method_tests, path_tests = (_operation_tests(svc, rules, extra, number) if at_port is None else
                                _operation_tests(svc, at_port.rules_at(number), extra, number,
                                                 at_port.operations_at(number)))
    methods, paths = candidates or (methods_for(svc, rules, extra), paths_for(svc, rules, extra))
    by_method = {m: sum(1 << i for i, a in enumerate(method_tests) if a(m)) for m in methods}
    by_path = {p: sum(1 << i for i in path_tests.holding(p)) for p in paths}
    classes: dict[int, tuple[str, str]] = {}
    for method in methods:
        for path in paths:
            classes.setdefault(by_method[method] & by_path[path], (method, path))
    return sorted(classes.values())


def paths_for(svc: Service, rules: list[Rule], extra: Mentions = NOTHING) -> list[str]:
    """Paths near everything the rules, probes and ``extra`` name; one per class that none of them tells apart."""
    out = {"/", "/unrelated"}
    tests = _PathTests()
    for probe in svc.probes:
        out |= {probe, probe + "/x", probe + "X"}
        tests.add((("raw", "eq", probe),))
    for rule in rules:
        for m in rule.paths:
            out |= _near_match(m)
            for test in _match_readings(m):
                tests.add(test)
        for g in rule.grpc:
            named = {m.method for m in rule.grpc if m.service == g.service}
            other = _fresh("Other", named)
            out |= {f"/{g.service}/{g.method or 'Any'}", f"/{g.service}/{other}",
                    f"/{g.service}X/{g.method or 'Any'}", f"/{g.service}"}
            tests.add(_grpc_test(g))
    for pattern in extra.paths:
        out |= _around(pattern)
        for test in _pattern_tests(pattern):
            tests.add(test)
    # a suffix holds together with any prefix: a path under each candidate that ends with it
    suffixes = {p[1:] for p in extra.paths if p.startswith("*") and len(p) > 1}
    suffixes |= {m.value for r in rules for m in r.paths if m.kind is PathKind.SUFFIX}
    for suffix in sorted(suffixes):
        plain = {c for c in out if "?" not in c}
        out |= {c.rstrip("/") + "/x" + suffix for c in plain} | {c + suffix for c in plain}
    classes: dict[frozenset[int], str] = {}
    for path in sorted(out, key=lambda p: (len(p), p)):  # the shortest path stands for its class
        classes.setdefault(frozenset(tests.holding(path)), path)
    return sorted(classes.values())


def _near_match(m: PathMatch) -> set[str]:
    """Representatives near one path of a rule: inside it, just outside it, and what tells its kind from the
    others (``/a/b``, ``/a/bc``, ``/a/b/``, ``/a/b/x``; ``/x.png``, ``/x.PNG``, ``/x.pngx``, ``/x.png?q``)."""
    base = m.value
    if m.kind is PathKind.SUFFIX:
        near = {"/" + base.lstrip("/"), "/x" + base, "/x" + base + "x", "/x" + base + "?q=1"}
        return near | ({"/x" + base.upper()} if base.upper() != base else set())
    out = {base or "/", base + "/x", base + "X", base + "/"}
    if m.kind is PathKind.STARTS:
        out |= {base + "x", base[:-1] or "/"}
    return out


def _match_readings(m: PathMatch) -> list[PathTest]:
    """A rule's path read every way a mesh could read it, so that the space keeps a request wherever two
    readings differ: its meaning, and for a prefix the segment-wise and the character-wise readings, for a
    suffix the case-blind one and one that forgets to drop the query string."""
    base = m.value
    if m.kind is PathKind.SUFFIX:
        return [_path_match_test(m), (("lower", "ends", base.lower()),), (("raw", "ends", base),)]
    if m.kind in (PathKind.PREFIX, PathKind.STARTS):
        return [_path_match_test(m), (("raw", "starts", base),), (("raw", "eq", base), ("raw", "starts", base + "/")),
                (("raw", "starts", base + "/"),)]
    return [_path_match_test(m)]


def ports_for(svc: Service, extra: Mentions = NOTHING, also: Iterable[int] = ()) -> list[int]:
    """Every port the service declares, the ports in ``also`` (those of the ``NS/**`` rules that cover it) and in
    ``extra``, and one port none of them names."""
    also = set(also)
    if not svc.ports and not also:
        return sorted({UNDECLARED_WORKLOAD_PORT} | set(extra.ports))
    numbers = {p.number for p in svc.ports} | also
    spare = next(n for n in itertools.chain((8080, 1, 65535), range(2, 65535)) if n not in numbers)
    return sorted(numbers | {spare} | {p for p in extra.ports if 0 < p < 65536})


#: what request conditions test (LANGUAGE 2.4): a request's headers (lower-case names, each once) and its token
Context = tuple[tuple[tuple[str, str], ...], Token | None]
#: a request without headers or token: the one context where no rule or output tests either
BARE: list[Context] = [((), None)]
#: the subject of every token in the space that has one
SUBJECT = "subject"


def contexts_for(rules: Iterable[Rule], extra: Mentions = NOTHING) -> list[Context]:
    """Headers and tokens, one per class that no condition of the rules or the output tells apart.

    Every header a condition names is absent, has each value named, or another value; every issuer named
    sends no token, or tokens with and without ``sub`` whose named claims are absent, each
    value named as a string, a one-element list and the first word of a space-separated string, another
    string, a list of another string, or a claim of another type. Each header and claim is tested on its
    own by every condition, so the product of these choices, kept one per class of the primitive tests
    below, stands for every request a rule or a reader can tell apart.
    """
    headers: dict[str, set[str]] = {}
    claims: dict[str, set[str]] = {}
    issuers: set[str] = set(extra.issuers)
    for cond in (c for r in rules for c in r.conditions):
        if cond.kind is ConditionKind.HEADER:
            headers.setdefault(cond.name, set()).update([cond.value] if cond.value is not None else [])
        elif cond.kind is ConditionKind.JWT:
            issuers.add(cond.value or "")
        else:
            claims.setdefault(cond.name, set()).add(cond.value or "")
    for name, value in extra.headers:
        headers.setdefault(name, set()).update([value] if value is not None else [])
    for name, value in extra.claims:
        claims.setdefault(name, set()).add(value)
    if not headers and not issuers:
        return BARE
    return [(h, t) for h in _header_sets(headers) for t in _tokens(sorted(issuers), claims)]


def _header_sets(named: dict[str, set[str]]) -> list[tuple[tuple[str, str], ...]]:
    choices = [[None, *sorted(values), _fresh("other", values)] for _, values in sorted(named.items())]
    tests = [(name, None) for name in sorted(named)] + [(n, v) for n, vs in sorted(named.items()) for v in sorted(vs)]
    classes: dict[tuple[bool, ...], tuple[tuple[str, str], ...]] = {}
    for values in itertools.product(*choices):
        found = tuple((name, v) for name, v in zip(sorted(named), values, strict=True) if v is not None)
        got = dict(found)
        key = tuple(n in got and (v is None or got[n] == v) for n, v in tests)
        classes.setdefault(key, found)
    return sorted(classes.values())


def _claim_choices(name: str, values: set[str]) -> list[tuple[str, object]]:
    """(kind, value) of one claim: absent, string, list or another type (see :func:`contexts_for`)."""
    other = _fresh("other", values)
    out: list[tuple[str, object]] = [("absent", None)]
    for v in sorted(values):
        out += [("string", v), ("list", (v,)), ("string", f"{v} {other}")]
    return out + [("string", other), ("list", (other,)), ("other", None)]


def _tokens(issuers: list[str], claims: dict[str, set[str]]) -> list[Token | None]:
    names = sorted(claims)
    tokens: list[Token | None] = [None]
    for issuer in issuers:
        for picks in itertools.product(*(_claim_choices(n, claims[n]) for n in names)):
            strings = tuple((n, str(v)) for n, (kind, v) in zip(names, picks, strict=True) if kind == "string")
            lists = tuple((n, v) for n, (kind, v) in zip(names, picks, strict=True)
                          if kind == "list" and isinstance(v, tuple))
            others = tuple(n for n, (kind, _) in zip(names, picks, strict=True) if kind == "other")
            for subject in (SUBJECT, ""):  # "": a valid token without a sub claim
                tokens.append(Token(issuer, subject, strings, lists, others))
    return tokens


def destination_requests(graph: AccessGraph, svc: Service, universe: Universe | None = None,
                         extra: Mentions = NOTHING) -> Iterator[Request]:
    """The representatives of every request to one declared service."""
    yield from workload_space(graph, svc, svc.name, universe or Universe(graph), extra).requests()


#: one operation class of a port: (method, path, headers, token); (None, None, (), None) on a port without HTTP
Operation = tuple["str | None", "str | None", tuple[tuple[str, str], ...], "Token | None"]
NOT_HTTP: Operation = (None, None, (), None)


@dataclass(frozen=True, slots=True)
class PortSpace:
    """The operation classes of one port of a destination, in the space's order."""

    number: int
    operations: tuple[Operation, ...]


@dataclass(frozen=True, slots=True)
class WorkloadSpace:
    """The request space of one destination as a product: every caller class against every operation class
    of every port. :meth:`requests` walks it in the space's one order (port, caller, operation); verification
    may walk it another way as long as it reports in that order (``meshpolicy/verify.py``)."""

    namespace: str
    service: str | None
    callers: tuple[Caller, ...]
    ports: tuple[PortSpace, ...]

    def request(self, caller: Caller, port: int, operation: Operation) -> Request:
        method, path, headers, token = operation
        return Request(caller, self.namespace, self.service, port, method, path, headers, token)

    def requests(self) -> Iterator[Request]:
        for port in self.ports:
            for caller in self.callers:
                for operation in port.operations:
                    yield self.request(caller, port.number, operation)


def workload_space(graph: AccessGraph, svc: Service, name: str | None, universe: Universe,
                   extra: Mentions) -> WorkloadSpace:
    """The representatives of every request to one workload: ``svc`` a declared service (``name`` its name),
    or (``name`` None) the stand-in of an undeclared one (:func:`undeclared_workload`)."""
    rules = universe.covering(svc.namespace, name)
    callers = universe.callers(svc.namespace, rules, extra)
    # the ports of its namespace's ``**`` rules too, HTTP where such a rule looks inside requests (LANGUAGE §2.4)
    served = {p.number: p for p in graph.served_ports(svc, svc.namespace)}
    also = {n for r in rules if r.wide for n in r.ports}
    candidates = (methods_for(svc, rules, extra), paths_for(svc, rules, extra)) \
        if any(p.protocol.is_http for p in served.values()) else None
    ports: list[PortSpace] = []
    at_port = _AtPort(rules, extra)
    for number in ports_for(svc, extra, also):
        port = served.get(number)
        if port is None or not port.protocol.is_http:
            ports.append(PortSpace(number, (NOT_HTTP,)))
            continue
        pairs = operations_for(svc, rules, extra, number, candidates, at_port)
        contexts = contexts_for(at_port.rules_at(number), extra)
        ports.append(PortSpace(number, tuple((method, path, headers, token) for method, path in pairs
                                             for headers, token in contexts)))
    return WorkloadSpace(svc.namespace, name, tuple(callers), tuple(ports))


def undeclared_workload(namespace: str) -> Service:
    """What the space knows of a workload of ``namespace`` that the policy does not declare: no port, no
    probe, no labels of its own (its ``**`` ports come from :meth:`AccessGraph.served_ports`)."""
    return Service(namespace, EVERY_WORKLOAD, "", ())


def destinations(graph: AccessGraph) -> list[tuple[str, str | None]]:
    """(namespace, service) of every destination in the space; service None: an undeclared workload."""
    out: list[tuple[str, str | None]] = []
    for ns in graph.managed_namespaces:
        out.append((ns.name, None))
        out.extend((ns.name, svc.name) for svc in graph.services_in(ns.name))
    return out


def requests_to(graph: AccessGraph, destination: tuple[str, str | None], universe: Universe,
                mentions: MentionsFor | None = None) -> Iterator[Request]:
    """The representatives of every request to one destination (see :func:`destinations`)."""
    yield from space_to(graph, destination, universe, mentions).requests()


def space_to(graph: AccessGraph, destination: tuple[str, str | None], universe: Universe,
             mentions: MentionsFor | None = None) -> WorkloadSpace:
    """The request space of one destination (see :func:`destinations`), as a product."""
    namespace, name = destination
    extra = mentions(namespace, name) if mentions else NOTHING
    if name is None:
        return workload_space(graph, undeclared_workload(namespace), None, universe, extra)
    svc = graph.service((namespace, name))
    if svc is None:  # destinations() names declared services only
        raise InternalError(f"request space: no service {namespace}/{name}")
    return workload_space(graph, svc, name, universe, extra)


def requests(graph: AccessGraph, mentions: MentionsFor | None = None) -> Iterator[Request]:
    """Every representative request to every managed namespace, grouped by destination.

    ``mentions(namespace, service)`` (``service`` None for an undeclared workload)
    adds values that the caller knows can matter for that workload.
    """
    universe = Universe(graph)
    for destination in destinations(graph):
        yield from requests_to(graph, destination, universe, mentions)


# -- whole-policy views, for tools that describe sets of requests (meshpolicy diff) -------------

def networks(graph: AccessGraph) -> list:
    """Every network a rule names."""
    return sorted({s.network for r in graph.rules + graph.invariants for s in r.sources
                   if s.kind is SourceKind.CIDR}, key=lambda n: (n.version, n))


def identities(graph: AccessGraph) -> list[Identity]:
    """Declared and named identities, an unlisted one per mentioned namespace, and a foreign one."""
    universe = Universe(graph)
    named = {svc.identity for svc in graph.services} | {
        Identity(s.namespace, s.account) for r in graph.rules + graph.invariants for s in r.sources
        if s.kind is SourceKind.IDENTITY}
    unlisted = universe.unlisted()
    out = named | {Identity(ns, unlisted) for ns in universe.namespaces}
    out.add(Identity(_fresh("foreign", universe.namespaces), "foreign"))
    return sorted(out)


def methods(graph: AccessGraph) -> list[str]:
    """Every method a rule names, GET and POST, and one no rule names."""
    named = {m for r in graph.rules + graph.invariants for m in r.methods} | {"GET", "POST"}
    return sorted(named | {next((m for m in _STANDARD_METHODS if m not in named), "PROPFIND")})


def whole_requests(graph: AccessGraph) -> Iterator[Request]:
    """Every caller and method of the whole policy against every destination.

    Larger than :func:`requests` (which keeps per destination only what its rules can tell apart),
    but uniform: a tool that names sets of requests with the policy's own patterns (``diff``) can
    describe any subset of it against the same universe of callers and methods everywhere.
    """
    ips = addresses(networks(graph))
    callers = [Caller(None, ip) for ip in ips] + [Caller(i, ip) for i in identities(graph) for ip in ips]
    all_methods = methods(graph)
    for ns in graph.managed_namespaces:
        workloads: list[tuple[Service, str | None]] = [(undeclared_workload(ns.name), None)]
        workloads += [(svc, svc.name) for svc in graph.services_in(ns.name)]
        for svc, name in workloads:
            rules = [r for r in graph.rules + graph.invariants if r.covers(ns.name, name)]
            served = {p.number: p for p in graph.served_ports(svc if name else None, ns.name)}
            svc_paths = paths_for(svc, rules)
            contexts = contexts_for(rules)
            for number in ports_for(svc, also={n for r in rules if r.wide for n in r.ports}):
                port = served.get(number)
                for caller in callers:
                    if port is None or not port.protocol.is_http:
                        yield Request(caller, ns.name, name, number)
                        continue
                    for method in all_methods:
                        for path in svc_paths:
                            for headers, token in contexts:
                                yield Request(caller, ns.name, name, number, method, path, headers, token)
