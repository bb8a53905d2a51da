"""``meshpolicy diff``: the change in access between two policies, not in their text (docs/diff.md).

Both access graphs decide every request of one request space built for the
two of them (graph/space.py over a merged graph, so that every distinction
either policy makes is in it). Requests whose decision changed are grouped by
destination, port, direction and the rules that decided them, then described
the way rules are written: ``caller -> ns/service :port METHODS paths``.

Reformatting, reordering, splitting files and renaming groups change no
decision, so they give an empty diff. A service renamed without changing its
namespace and labels selects the same pods: it is compared under its new name.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from .diagnostics import shown
from .graph.evaluate import Caller, Decision, decide
from .graph.model import (
    AccessGraph,
    Identity,
    Namespace,
    Port,
    Rule,
    Service,
    SourceKind,
)
from .graph.space import (
    addresses,
    contexts_for,
    identities,
    methods,
    networks,
    paths_for,
    undeclared_workload,
    whole_requests,
)
from .parse import parse_files
from .resolve import resolve
from .source import SourceError, SourceFile

__all__ = ["Change", "Diff", "Side", "compare", "git_sources", "load"]

UNDECLARED = "(workloads it does not declare)"
ANY_METHOD, ANY_PATH, ANY_ADDRESS = "any method", "any path", "any address"


@dataclass(frozen=True, slots=True)
class Side:
    """How one policy decided the requests of a change, and the rules that decided."""

    allowed: bool
    reason: str                 # allow | deny | mtls | default | unmanaged
    rules: tuple[Rule, ...] = ()

    @property
    def why(self) -> str:
        return {
            "allow": "allowed by",
            "deny": "refused by",
            "mtls": "refused by strict mTLS: the caller has no identity",
            "default": "refused by the default deny: no allow rule matches",
            "unmanaged": "allowed: the policy does not manage this namespace",
        }[self.reason]


@dataclass(frozen=True, slots=True)
class Change:
    kind: str                   # granted | removed
    destination: str            # ns/service, or ns/(workloads it does not declare)
    ports: tuple[int, ...] | None   # declared ports; None: every port, declared or not
    other_ports: bool               # also every port the destination does not declare
    callers: tuple[str, ...]
    methods: str | None         # None: the whole port (a TCP port, or any HTTP request)
    paths: str | None
    before: Side
    after: Side
    #: the request conditions (LANGUAGE 2.4) the changed requests meet, written like a rule's ``if ...``;
    #: None: every header and token; ends with ``(in part)`` where they describe more requests than changed
    conditions: str | None = None

    @property
    def request(self) -> str:
        """The change written like a rule: ``callers -> destination :port [METHODS] [PATHS] [if CONDITIONS]``."""
        text = f"{', '.join(self.callers)} -> {self.destination} {self.port_text}"
        for part in (self.methods, self.paths, self.conditions):
            if part not in (None, ANY_METHOD, ANY_PATH):
                text += f" {part}"
        return text

    @property
    def port_text(self) -> str:
        if self.ports is None:
            return "any port"
        named = ":" + ",".join(map(str, self.ports)) if self.ports else ""
        if not self.other_ports:
            return named
        return f"{named} and every undeclared port" if named else "every undeclared port"


@dataclass(frozen=True, slots=True)
class Diff:
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()   # changes that no request decision shows (trust domain, selectors)

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.notes)

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.changes)

    def by_destination(self) -> list[tuple[str, list[Change]]]:
        out: dict[str, list[Change]] = {}
        for change in self.changes:
            out.setdefault(change.destination, []).append(change)
        return sorted(out.items())


# -- loading -------------------------------------------------------------------

def load(sources: list[SourceFile]) -> AccessGraph:
    """Parse and resolve; raises :class:`~meshpolicy.diagnostics.MeshError` (invariants are build's job)."""
    return resolve(parse_files(sources)).graph


def git_sources(rev: str, paths: Iterable[str | Path], cwd: str | Path = ".") -> list[SourceFile]:
    """The ``*.mesh`` files under ``paths`` as they are at git revision ``rev``; none is fine (an empty policy).

    Read with ``git ls-tree``/``git show``, never a checkout; names are ``REV:path`` (path as the working
    tree names it), so diagnostics and rule lines of the old side say where they come from.
    """
    def git(*args: str, failure: str = "") -> str:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise SourceError(f"--base needs git: {exc.strerror}") from exc
        if done.returncode != 0:
            said = done.stderr.strip().splitlines()
            raise SourceError(f"--base {rev}: " + (failure or f"git {args[0]} failed")
                              + (f" ({said[-1]})" if said else ""))
        return done.stdout

    prefix = git("rev-parse", "--show-prefix", failure="not inside a git repository").strip()
    git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", failure="no such commit")
    listed = git("ls-tree", "-r", "-z", "--name-only", "--full-name", rev, "--", *[str(p) for p in paths])
    out = []
    for full in sorted(n for n in listed.split("\0") if n.endswith(".mesh")):
        data = subprocess.run(["git", "show", f"{rev}:{full}"], cwd=cwd, capture_output=True, check=False)
        if data.returncode != 0:
            raise SourceError(f"--base {rev}: cannot read {full}")
        try:
            text = data.stdout.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{rev}:{full}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
        shown = PurePosixPath(os.path.relpath(full, prefix or ".")).as_posix()
        out.append(SourceFile(f"{rev}:{shown}", text))
    return out


# -- comparing -----------------------------------------------------------------

def compare(old: AccessGraph, new: AccessGraph) -> Diff:
    old, notes = _align(old, new)
    space = _merged(old, new)
    groups: dict[tuple, dict[Caller, set[tuple]]] = {}
    for req in whole_requests(space):
        before, after = decide(old, req), decide(new, req)
        if before.allowed == after.allowed:
            continue
        key = (req.namespace, req.service, req.port, _side(before), _side(after))
        groups.setdefault(key, {}).setdefault(req.caller, set()).add((req.method, req.path, req.headers, req.token))
    describe = _Describer(space, old.services + new.services)
    # the same change on several ports is one line; None stands for the ports a service does not declare
    merged: dict[tuple[Change, Service | None], set[int | None]] = {}
    for (ns, name, port, before, after), by_caller in groups.items():
        svc = space.service((ns, name)) if name else None
        # a port is named where the workload declares it or a ``NS/**`` rule names it
        named = (svc is not None and svc.port(port) is not None) or any(port in r.ports for r in space.wide_rules(ns))
        for change in describe.changes(ns, name, port, before, after, by_caller):
            merged.setdefault((change, svc), set()).add(port if named else None)
    changes = []
    for (change, svc), ports in merged.items():
        numbers = tuple(sorted(p for p in ports if p is not None))
        every = None in ports and set(numbers) == {p.number for p in (svc.ports if svc is not None else ())}
        changes.append(replace(change, ports=None if every else numbers, other_ports=None in ports))
    order = {"granted": 0, "removed": 1}
    changes.sort(key=lambda c: (c.destination, order[c.kind], c.ports or (), c.other_ports, c.callers,
                                c.methods or "", c.paths or ""))
    return Diff(tuple(map(_visible, changes)), tuple(map(shown, notes)))


def _conditions_text(met: frozenset, contexts: list, rules: list[Rule]) -> str | None:
    """The request conditions every context of ``met`` meets, as ``if ...``; None when ``met`` is every context.

    The conditions are those the rules test; where their conjunction also holds for contexts outside
    ``met``, the text ends with ``(in part)``: the change is on some of those requests only."""
    if met >= set(contexts):
        return None
    tested = sorted({c for r in rules for c in r.conditions}, key=lambda c: (c.kind != "jwt", str(c)))
    held = [c for c in tested if all(c.holds(h, t) for h, t in met)]
    unmet = [c for c in tested if not any(c.holds(h, t) for h, t in met)]
    words = [str(c) for c in held] + [f"not {c}" for c in unmet]
    exact = all((ctx in met) == (all(c.holds(*ctx) for c in held) and not any(c.holds(*ctx) for c in unmet))
                for ctx in contexts)
    return ("if " + ", ".join(words) if words else "for some headers or tokens") + ("" if exact else " (in part)")


def _visible(change: Change) -> Change:
    """Every value a diff shows, through :func:`~meshpolicy.diagnostics.shown`: an invisible or look-alike
    character never makes two different requests read the same (issue 9)."""
    def side(s: Side) -> Side:
        return replace(s, rules=tuple(replace(r, text=shown(r.text), origin=replace(r.origin, file=shown(r.origin.file)))
                                      for r in s.rules))

    return replace(change, destination=shown(change.destination), callers=tuple(map(shown, change.callers)),
                   methods=None if change.methods is None else shown(change.methods),
                   paths=None if change.paths is None else shown(change.paths),
                   before=side(change.before), after=side(change.after))


def _side(decision: Decision) -> Side:
    return Side(decision.allowed, decision.reason, tuple(sorted(set(decision.rules))))


def _align(old: AccessGraph, new: AccessGraph) -> tuple[AccessGraph, list[str]]:
    """Rename old services that reappear in ``new`` under another name with the same selector; note other
    changes that no decision shows."""
    notes = []
    if old.trust_domain != new.trust_domain:
        notes.append(f"trust domain changed from {old.trust_domain} to {new.trust_domain}: every identity "
                     "the policy names is now in the new trust domain")
    was_managed = {ns.name for ns in old.managed_namespaces}
    now_managed = {ns.name for ns in new.managed_namespaces}
    for name in sorted(was_managed - now_managed):
        notes.append(f"namespace {name} is no longer managed by the policy: nothing restricts who calls it")
    for name in sorted(now_managed - was_managed):
        notes.append(f"namespace {name} is now managed by the policy: its default deny refuses what no rule allows")
    new_keys = {s.key for s in new.services}
    old_keys = {s.key for s in old.services}
    gone = {(s.namespace, s.labels): s for s in old.services if s.key not in new_keys}
    renames: dict[tuple[str, str], tuple[str, str]] = {}
    for svc in new.services:
        was = gone.get((svc.namespace, svc.labels))
        if svc.key not in old_keys and was is not None:
            renames[was.key] = svc.key
    for svc in new.services:
        before = old.service(svc.key)
        if before is not None and before.labels != svc.labels:
            notes.append(f"service {svc} now selects pods labelled {_labels(svc.labels)} "
                         f"(was {_labels(before.labels)})")
    if not renames:
        return old, notes

    def moved(rule: Rule) -> Rule:
        return replace(rule, destination=renames.get(rule.destination, rule.destination))

    services = tuple(sorted(replace(s, name=renames[s.key][1]) if s.key in renames else s for s in old.services))
    return replace(old, services=services, rules=tuple(sorted(map(moved, old.rules))),
                   invariants=tuple(sorted(map(moved, old.invariants)))), notes


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels)


def _merged(old: AccessGraph, new: AccessGraph) -> AccessGraph:
    """A graph used only to build the request space: every namespace, service, port and rule of both."""
    namespaces: dict[str, Namespace] = {}
    for ns in old.namespaces + new.namespaces:
        seen = namespaces.get(ns.name)
        namespaces[ns.name] = ns if seen is None else replace(seen, external=seen.external and ns.external)
    services: dict[tuple[str, str], Service] = {}
    for svc in old.services + new.services:
        first = services.get(svc.key)
        if first is None:
            services[svc.key] = svc
            continue
        ports: dict[int, Port] = {p.number: p for p in first.ports}
        for p in svc.ports:  # a port that is HTTP on either side gets HTTP requests (TCP rules ignore them)
            if p.number not in ports or p.protocol.is_http:
                ports[p.number] = p
        services[svc.key] = replace(first, ports=tuple(sorted(ports.values())),
                                    probes=tuple(sorted(set(first.probes) | set(svc.probes))))
    return replace(new, namespaces=tuple(sorted(namespaces.values())), services=tuple(sorted(services.values())),
                   rules=tuple(sorted(set(old.rules) | set(new.rules))),
                   invariants=tuple(sorted(set(old.invariants) | set(new.invariants))))


# -- describing ----------------------------------------------------------------

Pattern = tuple[str, Callable[[str], bool]]


def describe_subset(chosen: set[str], universe: list[str], patterns: list[Pattern], anything: str = "any",
                    sep: str = ", ") -> str:
    """Name a subset of representatives by the patterns (CIDRs, paths, methods) that cut the space.

    ``chosen`` as a union of whole patterns, else as everything but some, else as one pattern but some;
    representatives no pattern names are shown as examples (``e.g. /unrelated``).
    """
    whole = set(universe)
    if chosen >= whole:
        return anything
    sets: dict[str, frozenset[str]] = {}
    for label, pred in patterns:
        members = frozenset(u for u in universe if pred(u))
        if members and members not in sets.values():
            sets[label] = members

    def cover(target: set[str]) -> list[str] | None:
        inside = [label for label, s in sets.items() if s <= target]
        top = [label for label in inside if not any(sets[label] < sets[o] for o in inside)]
        return top if top and set().union(*(sets[label] for label in top)) == target else None

    found = cover(chosen)
    if found:
        return sep.join(found)
    found = cover(whole - chosen)
    if found:
        return f"{anything} except {sep.join(found)}"
    for label, members in sorted(sets.items(), key=lambda kv: (len(kv[1]), kv[0])):
        if chosen < members:
            found = cover(set(members) - chosen)
            if found:
                return f"{label} except {sep.join(found)}"
    # one pattern but what other patterns take of it, where they overlap it only in part (*.png except /api/*)
    for label, members in sorted(sets.items(), key=lambda kv: (len(kv[1]), kv[0])):
        if chosen < members:
            rest = set(members) - chosen
            cut = [other for other, s in sets.items() if other != label and s & rest and not s & chosen]
            if cut and set().union(*(sets[o] & members for o in cut)) == rest:
                return f"{label} except {sep.join(cut)}"
    named = [label for label, s in sets.items() if s <= chosen]
    rest = chosen - set().union(*(sets[label] for label in named)) if named else chosen
    return sep.join(named + [f"e.g. {', '.join(sorted(rest))}"])


class _Describer:
    def __init__(self, space: AccessGraph, services: tuple[Service, ...]):
        self.space = space
        self.ips = addresses(networks(space))
        self.identities = identities(space)
        self.methods = methods(space)
        # the last method of the space stands for every method no rule names: it is no pattern of its own
        mentioned = {m for r in space.rules + space.invariants for m in r.methods} | {"GET", "POST"}
        self.method_patterns: list[Pattern] = [(m, m.__eq__) for m in self.methods if m in mentioned]
        nets = sorted({s.network for r in space.rules + space.invariants for s in r.sources
                       if s.kind is SourceKind.CIDR}, key=lambda n: (n.version, n))
        self.cidrs: list[Pattern] = [(str(n), _inside(n)) for n in nets]
        declared = {s.identity: s for s in services}  # the new side's name wins
        self.names = {i: self._name(i, declared.get(i)) for i in self.identities}
        named = set(declared) | {Identity(s.namespace, s.account) for r in space.rules + space.invariants
                                 for s in r.sources if s.kind is SourceKind.IDENTITY}
        #: the space's stand-ins for workloads no one names (one per namespace, one for other namespaces)
        self.others = set(self.identities) - named
        self.known = {n.name for n in space.namespaces} | {i.namespace for i in named} | \
            {s.namespace for r in space.rules + space.invariants for s in r.sources if s.kind is SourceKind.NAMESPACE}

    @staticmethod
    def _name(identity: Identity, svc: Service | None) -> str:
        if svc is not None:
            return str(svc) if svc.name == identity.account else f"{svc} (account {identity.account})"
        return str(identity)

    def changes(self, ns: str, svc: str | None, port: int, before: Side, after: Side,
                by_caller: dict[Caller, set]) -> list[Change]:
        kind = "granted" if after.allowed else "removed"
        destination = f"{ns}/{svc}" if svc else f"{ns}/{UNDECLARED}"
        service = self.space.service((ns, svc)) if svc else None
        served = {p.number: p for p in self.space.served_ports(service, ns)}  # ``**`` HTTP ports included
        http = port in served and served[port].protocol.is_http
        service = service or undeclared_workload(ns)
        rules = [r for r in self.space.rules + self.space.invariants if r.covers(ns, svc)]
        by_requests: dict[frozenset, set[Caller]] = {}
        for caller, reqs in by_caller.items():
            by_requests.setdefault(frozenset(reqs), set()).add(caller)
        out = []
        for requests, callers in by_requests.items():
            who = tuple(self.callers(callers))
            if not http:
                out.append(Change(kind, destination, (), False, who, None, None, before, after))
                continue
            universe = paths_for(service, rules)
            contexts = contexts_for(rules)
            by_context: dict[frozenset, set[tuple[str, str]]] = {}
            for operation in {(str(m), str(p)) for m, p, _, _ in requests}:
                met = frozenset((h, t) for m, p, h, t in requests if (m, p) == operation)
                by_context.setdefault(met, set()).add(operation)
            for met, operations in by_context.items():
                condition = _conditions_text(met, contexts, rules)
                by_paths: dict[frozenset, set[str]] = {}
                for method in self.methods:
                    chosen = frozenset(p for m, p in operations if m == method)
                    if chosen:
                        by_paths.setdefault(chosen, set()).add(method)
                for chosen, picked in by_paths.items():
                    verbs: str | None = describe_subset(picked, self.methods, self.method_patterns, ANY_METHOD, ",")
                    paths: str | None = describe_subset(set(chosen), universe, self._path_patterns(service, rules),
                                                        ANY_PATH)
                    if (verbs, paths) == (ANY_METHOD, ANY_PATH) and condition is None:  # the whole port
                        verbs = paths = None
                    out.append(Change(kind, destination, (), False, who, verbs, paths, before, after, condition))
        return out

    def _path_patterns(self, svc: Service, rules: list[Rule]) -> list[Pattern]:
        out: list[Pattern] = [(str(p), p.matches) for r in rules for p in r.paths]
        out += [(f"grpc {g}", g.matches) for r in rules for g in r.grpc]
        out += [(p, p.__eq__) for p in svc.probes]
        return sorted(set(out), key=lambda pat: pat[0])

    def callers(self, callers: set[Caller]) -> list[str]:
        """Who, grouped by the addresses they call from: ``any``, ``*``, ``ns/*``, services, plaintext."""
        by_who: dict[Identity | None, set[str]] = {}
        for caller in callers:
            by_who.setdefault(caller.identity, set()).add(caller.ip)
        by_ips: dict[frozenset[str], set[Identity | None]] = {}
        for who, ips in by_who.items():
            by_ips.setdefault(frozenset(ips), set()).add(who)
        out = []
        for sources, group in sorted(by_ips.items(), key=lambda kv: (-len(kv[0]), sorted(map(str, kv[1])))):
            text = ", ".join(self._who(group))
            where = describe_subset(set(sources), self.ips, self.cidrs, ANY_ADDRESS)
            out.append(text if where == ANY_ADDRESS else f"{text} from {where}")
        return out

    def _who(self, who: set[Identity | None]) -> list[str]:
        idents = {w for w in who if w is not None}
        everyone = set(self.identities)
        if None in who and idents >= everyone:
            return ["any"]
        parts: list[str] = []
        foreign = False
        if idents >= everyone:
            parts.append("*")
        else:
            for ns in sorted({i.namespace for i in idents}):
                members = {i for i in everyone if i.namespace == ns}
                present = idents & members
                if ns not in self.known:
                    foreign = True
                elif present == members:
                    parts.append(f"{ns}/*")
                elif present & self.others:
                    missing = sorted(self.names[i] for i in members - present)
                    parts.append(f"{ns}/* (except {', '.join(missing)})")
                else:
                    parts.extend(self.names[i] for i in sorted(present))
        if foreign:
            parts.append("workloads of other namespaces")
        if None in who:
            parts.append("unauthenticated clients")
        return parts


def _inside(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Callable[[str], bool]:
    """The test "this address is in ``network``" (addresses of the other IP version are not)."""
    return lambda ip: _in(ip, network)


def _in(ip: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    addr = ipaddress.ip_address(ip)
    return addr.version == network.version and addr in network
