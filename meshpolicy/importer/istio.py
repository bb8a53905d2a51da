"""Istio manifests -> a :class:`~.draft.Draft`: AuthorizationPolicy, PeerAuthentication, RequestAuthentication.

Every document is first brought within what the Istio reader (:mod:`meshpolicy.readers.istio`)
evaluates, and only ever by narrowing it (:func:`_narrow`): an ALLOW loses the rule, source or
operation it cannot model; a DENY loses the *constraint* it cannot model, so that it refuses more.
The reader then parses the narrowed documents into its records, which are translated here into
rules of the language (LANGUAGE.4), again never wider: what a rule of the language cannot say
exactly (``notPaths``, a principal AND an address...) is written narrower, or not at all, with an
MP801 diagnostic naming the resource and the field. The proof (:mod:`.prove`) then checks the
result against the narrowed documents with the same reader.

Semantics followed, from ../shared/targets/istio.md: evaluation order and the implicit allow of a
workload no ALLOW policy selects, scope and the root namespace, combination, fields
(§5), string matching, trust domains, HTTP fields on TCP ports, PeerAuthentication
(§12), RequestAuthentication.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..diagnostics import Diagnostic, MeshError, Severity, shown
from ..readers import ReaderError, World
from ..readers import istio as reader
from ..readers.base import Fields
from ..readers.world import UNDECLARED_LABELS, Workload
from ..resolve.names import GRPC_SERVICE
from . import draft as d
from .manifests import Document

ROOT = reader.ROOT_NAMESPACE
POLICY_KINDS = ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication")
SOURCE_FIELDS = {"principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
                 "requestPrincipals"}
_COND_KEY = re.compile(r"^[!-+.-<>-~-]+$")     # what the language writes after 'header' and 'claim' (its grammar)
_COND_VALUE = re.compile(r"^[!-+.-~-]+$")
OPERATION_FIELDS = {"ports", "notPorts", "methods", "notMethods", "paths", "notPaths"}
_PRINCIPAL = re.compile(r"^([^/*]+)/ns/([^/*]+)/sa/([^/*]+)$")
_NS_PRINCIPAL = re.compile(r"^([^/*]+)/ns/([^/*]+)/sa/\*$")
_MODES = {"STRICT": "strict", "PERMISSIVE": "permissive", "DISABLE": "permissive"}


@dataclass
class _Policy:
    """One AuthorizationPolicy as the import reads it: the narrowed document and where it came from."""

    doc: Document
    action: str                              # ALLOW or DENY
    selector: tuple[tuple[str, str], ...] | None   # None: the whole namespace
    namespace: str
    data: dict[str, Any] = field(default_factory=dict)   # the narrowed document
    services: list[d.Service] = field(default_factory=list)
    #: the original index of each kept rule, and of each kept from/to entry (rule index, key) -> indexes
    rule_at: list[int] = field(default_factory=list)
    entry_at: dict[tuple[int, str], list[int]] = field(default_factory=dict)

    def spot(self, index: int, key: str | None = None, entry: int | None = None) -> str:
        """``rules[i].from[j].source`` with the indexes of the original document."""
        i = self.rule_at[index] if index < len(self.rule_at) else index
        if key is None or entry is None:
            return f"rules[{i}]"
        found = self.entry_at.get((index, key), [])
        j = found[entry] if entry < len(found) else entry
        return f"rules[{i}].{key}[{j}].{'source' if key == 'from' else 'operation'}"


def translate(docs: list[Document], out: d.Draft, world_hint: Any = None,
              root_namespace: str = ROOT) -> tuple[list[dict[str, Any]], World]:
    """Fill ``out`` from ``docs``; returns the narrowed documents (what the proof reads) and their world."""
    policies: list[_Policy] = []
    peers: list[tuple[Document, dict[str, Any]]] = []
    jwts: list[tuple[Document, dict[str, Any]]] = []
    for doc in docs:
        if doc.kind not in POLICY_KINDS or not str(doc.data.get("apiVersion", "")).startswith("security.istio.io/"):
            out.note("MP805", doc.span(), f"{doc.title} ({doc.data.get('apiVersion')}) is not an Istio security "
                     "policy: not read")
            continue
        if not d.namespace_ok(doc.namespace):
            out.narrowed(doc.span(), doc.title, "its namespace is not a name the language admits: not imported")
            continue
        if doc.kind == "RequestAuthentication":
            jwts.append((doc, doc.plain()))
            continue
        if doc.kind == "PeerAuthentication":
            peers.append((doc, _peer(doc, out, root_namespace)))
            continue
        policy = _policy(doc, out, root_namespace)
        if policy is not None:
            policies.append(policy)
    out.trust_domain = _trust_domain(policies, out)
    _services(policies, peers + jwts, out, root_namespace)
    _dry_run_findings(policies, out)
    world = _world(out)
    narrowed_docs: list[dict[str, Any]] = []
    parsed: list[tuple[_Policy, reader.Policy]] = []
    for policy in policies:
        record = _parse(policy, world, out, root_namespace)
        if record is not None:
            parsed.append((policy, record))
            narrowed_docs.append(policy.data)
    for doc, data in peers:
        try:
            reader.parse([data], world, root_namespace)
            narrowed_docs.append(data)
        except ReaderError as exc:
            out.narrowed(doc.span(), doc.title, f"not imported: {exc}")
    _mtls(peers, narrowed_docs, world, out, root_namespace)
    validated = _request_authentications(jwts, narrowed_docs, world, out, root_namespace)
    for policy, record in parsed:
        _rules(policy, record, out, root_namespace, validated)
    _implicit_allow(policies, out)
    _findings(parsed, out)
    d.drop_placeholders(out)
    return narrowed_docs, world


# -- reading and narrowing the documents ------------------------------------------------------------------


def _selector(spec: Any) -> tuple[tuple[str, str], ...] | None | Literal[False]:
    """matchLabels as a sorted tuple; None without selector; False when it cannot be read."""
    if not isinstance(spec, dict):
        return None
    sel = spec.get("selector")
    if sel is None:
        return None
    if not isinstance(sel, dict) or set(sel) - {"matchLabels"}:
        return False
    labels = sel.get("matchLabels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        return False
    return tuple(sorted(labels.items())) or None


def _policy(doc: Document, out: d.Draft, root: str) -> _Policy | None:
    data = doc.plain()
    spec = data.get("spec")
    if spec is None:
        spec = data["spec"] = {}
    if not isinstance(spec, dict):
        out.narrowed(doc.span(), doc.title, "spec is not a mapping: not imported")
        return None
    if "targetRef" in spec or "targetRefs" in spec:
        out.narrowed(doc.span(spec, "targetRefs" if "targetRefs" in spec else "targetRef"), doc.title,
                     "targetRefs attach it to waypoints and gateways, which sidecars ignore: not imported",
                     "the language describes sidecar enforcement; keep waypoint policy applied as it is")
        return None
    action = spec.get("action", "ALLOW")
    if action == "AUDIT":
        out.note("MP805", doc.span(spec, "action"), f"{doc.title}: an AUDIT policy never changes a decision: "
                 "not imported")
        return None
    if action == "CUSTOM":
        out.narrowed(doc.span(spec, "action"), doc.title, "action CUSTOM (an external authorizer) is imported as "
                     "DENY of every request it sends there: refused, where the authorizer might allow",
                     "the language has no external authorizer; allow what it allows with rules")
        spec.pop("provider", None)
        action = spec["action"] = "DENY"
    if action not in ("ALLOW", "DENY"):
        out.narrowed(doc.span(spec, "action"), doc.title, f"action {action!r} is unknown: not imported")
        return None
    selector = _selector(spec)
    if selector is False:
        if action == "ALLOW":
            out.narrowed(doc.span(spec, "selector"), doc.title, "selector other than matchLabels: its rules are "
                         "not imported")
            spec["rules"] = []
            spec.pop("selector")
            selector = None  # an ALLOW with no rules still turns on default deny where it applies: namespace-wide
            out.narrowed(doc.span(spec, "action"), doc.title, "the namespace's workloads are taken to have an "
                         "ALLOW policy (default deny), since which of them it selects cannot be read")
        else:
            out.narrowed(doc.span(spec, "selector"), doc.title, "selector other than matchLabels: the DENY is "
                         "imported for every workload of the namespace")
            spec.pop("selector")
            selector = None
    rule_at, entry_at = _narrow_rules(doc, spec, action, out)
    return _Policy(doc, action, selector if selector else None, doc.namespace, data, rule_at=rule_at,
                   entry_at=entry_at)


def _narrow_rules(doc: Document, spec: dict[str, Any], action: str,
                  out: d.Draft) -> tuple[list[int], dict[tuple[int, str], list[int]]]:
    """Bring the rules within what the reader models, never wider (see the module's docstring).

    Returns the original index of each kept rule and of each kept ``from``/``to`` entry, so that a diagnostic
    names the field as the manifest writes it.
    """
    allow = action == "ALLOW"
    rules = spec.get("rules")
    rule_at: list[int] = []
    entry_at: dict[tuple[int, str], list[int]] = {}
    if rules is None:
        return rule_at, entry_at
    if not isinstance(rules, list):
        out.narrowed(doc.span(spec, "rules"), doc.title, "rules is not a list: "
                     + ("no rule imported" if allow else "imported as a DENY of every request"))
        spec["rules"] = [] if allow else [{}]
        return [0] if not allow else [], entry_at
    kept: list[Any] = []
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, dict):
            out.narrowed(doc.locate(where), doc.title, f"{where} is not a mapping: "
                         + ("not imported" if allow else "imported as a DENY of every request"))
            if not allow:
                rule_at.append(i)
                kept.append({})
            continue
        extra = set(rule) - {"from", "to", "when"}
        unread = _unread_when(rule.get("when"))
        if unread or extra:
            what = f"the when condition {unread}" if unread else f"the field {min(extra)}"
            span = doc.locate(f"{where}.when" if unread else f"{where}.{min(extra)}")
            if allow:
                out.narrowed(span, doc.title, f"{where}: {what} cannot be written in the language: the "
                             "rule is not imported")
                continue
            out.narrowed(span, doc.title, f"{where}: {what} dropped: the DENY refuses more requests")
            # the DENY keeps the conditions the reader models: dropping one only widens what it refuses
            modelled = [w for w in rule.get("when") or [] if not _unread_when([w])] \
                if isinstance(rule.get("when"), list) else []
            rule = {k: v for k, v in rule.items() if k in ("from", "to")} | ({"when": modelled} if modelled else {})
        indexes: dict[str, list[int]] = {}
        narrowed: dict[str, Any] | None = rule
        for key, inner, fields in (("from", "source", SOURCE_FIELDS), ("to", "operation", OPERATION_FIELDS)):
            assert narrowed is not None
            narrowed, indexes[key] = _narrow_entries(doc, where, narrowed, key, inner, fields, allow, out)
            if narrowed is None:
                break
        if narrowed is None:
            continue
        for key, found in indexes.items():
            entry_at[(len(kept), key)] = found
        rule_at.append(i)
        kept.append(narrowed)
    spec["rules"] = kept
    return rule_at, entry_at


def _narrow_entries(doc: Document, where: str, rule: dict[str, Any], key: str, inner: str, fields: set[str],
                    allow: bool, out: d.Draft) -> tuple[dict[str, Any] | None, list[int]]:
    """Narrow the ``from`` (or ``to``) entries of one rule, with the original index of each kept entry;
    None: an ALLOW rule left with none (not imported)."""
    entries = rule.get(key)
    if entries is None:
        return rule, []
    if not isinstance(entries, list):
        span = doc.locate(f"{where}.{key}")
        if allow:
            out.narrowed(span, doc.title, f"{where}.{key} is not a list: the rule is not imported")
            return None, []
        out.narrowed(span, doc.title, f"{where}.{key} is not a list: the DENY matches every {inner}")
        return {k: v for k, v in rule.items() if k != key}, []
    kept = []
    at: list[int] = []
    for j, entry in enumerate(entries):
        spot = f"{where}.{key}[{j}].{inner}"
        body = entry.get(inner) if isinstance(entry, dict) else None
        if not isinstance(body, dict) or set(entry) != {inner}:
            if allow:
                out.narrowed(doc.locate(spot), doc.title, f"{spot} cannot be read: that {inner} is not imported")
                continue
            out.narrowed(doc.locate(spot), doc.title, f"{spot} cannot be read: the DENY matches every {inner}")
            return {k: v for k, v in rule.items() if k != key}, []
        body = dict(body)
        for name in sorted(set(body)):
            problem = _field_problem(name, body[name], fields)
            if problem is None:
                continue
            span = doc.locate(f"{spot}.{name}")
            if allow:
                out.narrowed(span, doc.title, f"{spot}.{name}: {problem}: that {inner} is not imported")
                body = None
                break
            out.narrowed(span, doc.title, f"{spot}.{name}: {problem}: dropped, so the DENY refuses more")
            del body[name]
        if body is not None:
            kept.append({inner: body})
            at.append(j)
    if not kept:
        if allow:
            if entries:
                return None, []
            return rule, []
        return {k: v for k, v in rule.items() if k != key}, []  # a DENY left with no entry: any (it refuses more)
    return {**rule, key: kept}, at


def _unread_when(entries: Any) -> str | None:
    """The first ``when`` condition the reader does not model (a key other than a header or a claim, notValues,
    a pattern), None when it models them all; the language writes those it models as 'if header', 'if claim'."""
    if not entries:
        return None
    if not isinstance(entries, list):
        return "(not a list)"
    for i, entry in enumerate(entries):
        try:
            reader._when(Fields(entry, f"when[{i}]"))
        except ReaderError:
            key = entry.get("key") if isinstance(entry, dict) else None
            return repr(key) if isinstance(key, str) else f"when[{i}]"
    return None


def _field_problem(name: str, values: Any, fields: set[str]) -> str | None:
    if name not in fields:
        return "a field the language cannot express"
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return "not a list of strings"
    base = name[3].lower() + name[4:] if name.startswith("not") else name
    for v in values:
        if base == "principals" and not (v == "*" or v.endswith("/*") and v.count("/") == 1
                                          or _PRINCIPAL.match(v) or _NS_PRINCIPAL.match(v)):
            return f"the principal pattern {v!r}"
        if base == "namespaces" and "*" in v and v != "*":
            return f"the namespace pattern {v!r}"
        if base == "ipBlocks":
            try:
                d.cidr(v)
            except ValueError:
                return f"{v!r} is not an address or CIDR block"
        if base == "ports" and not (v.isdigit() and 0 < int(v) < 65536):
            return f"the port {v!r}"
        if base == "paths" and ("{*}" in v or "{**}" in v):
            return f"the path template {v!r}"
        if base == "requestPrincipals":
            try:
                reader._check_request_principal(v)
            except ReaderError:
                return f"the requestPrincipals pattern {v!r}"
    return None


def _peer(doc: Document, out: d.Draft, root: str) -> dict[str, Any]:
    data = doc.plain()
    spec: Any = data.get("spec")
    if isinstance(spec, dict):
        mtls: Any = spec.get("mtls") if isinstance(spec.get("mtls"), dict) else {}
        if mtls.get("mode") == "DISABLE" or any(isinstance(v, dict) and v.get("mode") == "DISABLE"
                                                for v in (spec.get("portLevelMtls") or {}).values()):
            out.narrowed(doc.span(), doc.title, "mode DISABLE (plaintext only) is imported as permissive: callers "
                         "that send mTLS are then also accepted, and rules naming identities match them",
                         "the language has strict and permissive only")
    return data


def _trust_domain(policies: list[_Policy], out: d.Draft) -> str:
    """The trust domain the principals name (``cluster.local`` always means the local one,)."""
    if out.trust_domain != "cluster.local":
        return out.trust_domain  # given on the command line
    found: dict[str, int] = {}
    for policy in policies:
        for rule in policy.data.get("spec", {}).get("rules") or []:
            for entry in rule.get("from") or []:
                for key in ("principals", "notPrincipals"):
                    for p in entry["source"].get(key) or []:
                        m = _PRINCIPAL.match(p) or _NS_PRINCIPAL.match(p)
                        if m and m.group(1) != "cluster.local":
                            found[m.group(1)] = found.get(m.group(1), 0) + 1
    if not found:
        return "cluster.local"
    return min(found.items(), key=lambda kv: (-kv[1], kv[0]))[0]


# -- services: one per selector that the language can tell apart ---------------------------------------------

def _services(policies: list[_Policy], peers: list[tuple[Document, dict[str, Any]]], out: d.Draft,
              root: str) -> None:
    by_ns: dict[str, dict[tuple[tuple[str, str], ...], Document]] = {}
    spaces: set[str] = set()
    for policy in policies:
        if policy.namespace == root:
            continue
        spaces.add(policy.namespace)
        if policy.selector:
            by_ns.setdefault(policy.namespace, {}).setdefault(policy.selector, policy.doc)
    for doc, data in peers:
        selector = _selector(data.get("spec"))
        if doc.namespace == root:
            continue
        spaces.add(doc.namespace)
        if selector:
            by_ns.setdefault(doc.namespace, {}).setdefault(selector, doc)
    for ns in sorted(spaces):
        out.namespaces.setdefault(ns, None)
        out.add_selected(ns, by_ns.get(ns, {}), "selector", "policy")
    for policy in policies:
        policy.services = _scope(policy.namespace, policy.selector, policy.action == "DENY", policy.doc, out, root)


def _scope(namespace: str, selector: tuple[tuple[str, str], ...] | None, widen: bool, doc: Document,
           out: d.Draft, root: str) -> list[d.Service]:
    """The services a policy applies to; a selector no service stands for: DENY widened, ALLOW not imported."""
    if namespace == root:
        if selector:
            if not widen:
                out.narrowed(doc.span(), doc.title, "an ALLOW with a selector in the root namespace applies to "
                             "matching workloads of every namespace, which the language cannot name: not "
                             "imported")
                return []
            out.narrowed(doc.span(), doc.title, "a DENY with a selector in the root namespace is imported for "
                         "every service of every namespace: it refuses more")
        else:
            out.narrowed(doc.span(), doc.title, "a policy of the root namespace applies mesh-wide: imported "
                         "for the policy's namespaces only", "keep it applied for the namespaces the import leaves "
                         "out")
        return [s for s in out.services.values() if not s.caller_only]
    if not selector:
        return [s for s in out.in_namespace(namespace) if not s.caller_only]
    svc = out.by_labels(namespace, selector)
    if svc is not None:
        return [svc]
    inside = [s for s in out.in_namespace(namespace) if not s.caller_only and set(s.labels) <= set(selector)]
    if widen:
        targets = inside or [s for s in out.in_namespace(namespace) if not s.caller_only]
        out.narrowed(doc.span(), doc.title, f"its selector overlaps another policy's, so no service stands for it "
                     f"alone: the DENY is imported for {', '.join(s.name for s in targets)}, where it refuses more",
                     "give --cluster the workloads' manifests, or make the selectors disjoint")
        return targets
    out.narrowed(doc.span(), doc.title, "its selector overlaps another policy's, so no service stands for it "
                 "alone: its rules are not imported", "give the workloads' selectors one label key with different "
                 "values")
    return []


def _world(out: d.Draft) -> World:
    pods = [Workload(s.namespace, s.name, s.account, s.labels, ()) for s in out.services.values()]
    pods += [Workload(ns, None, "default", UNDECLARED_LABELS, ()) for ns in sorted(out.namespaces)]
    return World(out.trust_domain, tuple(pods))


def _parse(policy: _Policy, world: World, out: d.Draft, root: str) -> reader.Policy | None:
    data = policy.data
    if policy.selector and not policy.services:
        data["spec"]["rules"] = []
    elif policy.selector and policy.namespace != root and out.by_labels(policy.namespace, policy.selector) is None:
        data["spec"]["selector"] = {"matchLabels": dict(policy.services[0].labels)} if len(policy.services) == 1 \
            else None
        if data["spec"]["selector"] is None:
            del data["spec"]["selector"]
    elif policy.selector and policy.namespace == root:
        del data["spec"]["selector"]
    try:
        found = reader.parse([data], world, root).policies
    except ReaderError as exc:
        if policy.action == "ALLOW":
            out.narrowed(policy.doc.span(), policy.doc.title, f"not imported ({exc})")
            data["spec"]["rules"] = []
        else:
            out.narrowed(policy.doc.span(), policy.doc.title, f"{exc}: imported as a DENY of every request")
            data["spec"]["rules"] = [{}]
        try:
            found = reader.parse([data], world, root).policies
        except ReaderError as again:
            if policy.action == "ALLOW":  # leaving an ALLOW out never widens: the language denies by default
                return None
            raise MeshError([Diagnostic("MP806", Severity.ERROR, shown(f"{policy.doc.title}: {again}"),
                                        policy.doc.span(), "a DENY that cannot be read cannot be left out: the "
                                        "import would be wider than the original")]) from None
    return found[0] if found else None


# -- mTLS -----------------------------------------------------------------------------------------------------

def _mtls(peers: list[tuple[Document, dict[str, Any]]], docs: list[dict[str, Any]], world: World,
          out: d.Draft, root: str) -> None:
    """PeerAuthentication -> mtls modes; several at one level: the strictest (Istio keeps the oldest)."""
    strictness = {"STRICT": 3, "PERMISSIVE": 2, "DISABLE": 2, "UNSET": 1}
    levels: dict[tuple, tuple[str, Document]] = {}
    for doc, data in peers:
        if data not in docs:
            continue
        spec = data.get("spec") or {}
        mode = ((spec.get("mtls") or {}).get("mode")) or "UNSET"
        selector = _selector(spec)
        if doc.namespace == root and selector:
            out.note("MP805", doc.span(), f"{doc.title}: a PeerAuthentication with a selector in the root namespace "
                     "is ignored by Istio: not imported")
            docs.remove(data)
            continue
        key: tuple = ("mesh",) if doc.namespace == root else (doc.namespace, selector or None)
        seen = levels.get(key)
        if seen is not None:
            keep = mode if strictness[mode] >= strictness[seen[0]] else seen[0]
            out.narrowed(doc.span(), doc.title, f"two PeerAuthentications at one level ({seen[1].title}): Istio keeps "
                         f"the oldest; the import keeps the stricter mode {keep}")
            docs.remove(data)
            if keep == mode:
                docs.remove(next(x for x in docs if x is _data_of(peers, seen[1])))
                docs.append(data)
                levels[key] = (mode, doc)
            continue
        levels[key] = (mode, doc)
        if key != ("mesh",) and selector:
            svc = out.by_labels(doc.namespace, selector)
            if svc is None:
                out.narrowed(doc.span(), doc.title, "its selector stands for no one service: "
                             + ("its STRICT mode is imported for the namespace's services it could select"
                                if mode == "STRICT" else "not imported"))
                docs.remove(data)
                if mode == "STRICT":
                    for s in out.in_namespace(doc.namespace):
                        if set(s.labels) <= set(selector) or not d.disjoint(s.labels, selector):
                            s.mtls = "strict"
                            s.port_mtls.clear()
                continue
            if mode in _MODES:
                svc.mtls = _MODES[mode]
            for port, entry in sorted((spec.get("portLevelMtls") or {}).items(), key=lambda kv: int(kv[0])):
                port_mode = (entry or {}).get("mode", "UNSET")
                if port_mode in _MODES:
                    svc.declare(int(port), "tcp")
                    svc.port_mtls[int(port)] = _MODES[port_mode]
    mesh = levels.get(("mesh",), ("UNSET", None))[0]
    if mesh in _MODES:
        out.mesh_mtls = _MODES[mesh]
    for ns in out.namespaces:
        mode = levels.get((ns, None), ("UNSET", None))[0]
        out.namespaces[ns] = _MODES.get(mode) or _MODES.get(mesh) or "permissive"  # no PA anywhere: PERMISSIVE


def _data_of(peers: list[tuple[Document, dict[str, Any]]], doc: Document) -> dict[str, Any]:
    return next(data for found, data in peers if found is doc)


# -- rules ----------------------------------------------------------------------------------------------------

def _rules(policy: _Policy, record: reader.Policy, out: d.Draft, root: str,
           validated: dict[tuple[str, str], list[str]]) -> None:
    if record.dry_run:
        return  # not enforced: the finding says so
    wide = _wide(policy, out, root)
    for index, rule in enumerate(record.rules):
        for callers, principals in _source_groups(policy, index, rule, out):
            for op_index, op in enumerate(rule.operations or (None,)):
                made: list[d.Rule] = []
                if wide:
                    # every workload of the namespace, declared or not: the language's '**' (LANGUAGE §2.3), which
                    # must give ports where it has HTTP fields; without them, each declared service instead
                    made = [m for ns in wide for m in _operation(policy, index, op_index, op, callers,
                                                                  d.Service(ns, d.WIDE, (), ""), out)]
                    made = _conditioned(policy, index, rule, principals, made, validated, out)
                    if not all(not m.is_http or m.ports for m in made):
                        made = []
                if not made:
                    for svc in policy.services:
                        made += _conditioned(policy, index, rule, principals,
                                             _operation(policy, index, op_index, op, callers, svc, out), validated, out)
                out.rules.extend(made)


def _source_groups(policy: _Policy, index: int, rule: reader.Rule,
                   out: d.Draft) -> list[tuple[tuple[d.Src, ...], tuple[str, ...]]]:
    """The callers of one rule (its ``from`` entries ORed), grouped by the ``requestPrincipals`` each entry
    requires (the language's ``jwt`` condition holds for a whole rule)."""
    if not rule.sources:
        return [((d.ANY,), ())]
    allow = policy.action == "ALLOW"
    groups: dict[tuple[str, ...], list[d.Src]] = {}
    for j, src in enumerate(rule.sources):
        groups.setdefault(src.request_principals.values, []).extend(
            _source(policy, policy.spot(index, "from", j), src, allow, out))
    return [(d.minimal(found), principals) for principals, found in sorted(groups.items()) if found]


def _conditioned(policy: _Policy, index: int, rule: reader.Rule, principals: tuple[str, ...], made: list[d.Rule],
                 validated: dict[tuple[str, str], list[str]], out: d.Draft) -> list[d.Rule]:
    """``made`` under the rule's ``when`` conditions and requestPrincipals, as the language's ``if`` (one rule per
    alternative: a condition's values and the issuers are ORed, the conditions of one rule ANDed)."""
    if not made or (not rule.when and not principals):
        return made
    allow = policy.action == "ALLOW"
    span, title = policy.doc.locate(policy.spot(index)), policy.doc.title
    alternatives: list[list[str]] = [[]]
    claims = False
    for when in rule.when:
        options = []
        for value in when.values:
            if not _COND_KEY.match(when.name) or not (value == "*" or _COND_VALUE.match(value)):
                continue
            if when.kind == "header":
                options.append(f"header {when.name}" if value == "*" else f"header {when.name}={value}")
            else:
                options.append(f"claim {when.name}={value}")
                claims = True
        if len(options) < len(when.values):
            if not allow:
                out.narrowed(span, title, f"{policy.spot(index)}.when {when.kind} {when.name}: a value the language "
                             "cannot write: the condition is dropped, so the DENY refuses more")
                continue
            out.narrowed(span, title, f"{policy.spot(index)}.when {when.kind} {when.name}: a value the language "
                         "cannot write: left out")
            if not options:
                return []
        alternatives = [a + [o] for a in alternatives for o in options]
    issuers: list[str | None] = []
    for made_rule in made[:1]:
        known = validated.get((made_rule.namespace, made_rule.service), [])
        for p in principals:
            iss, _, sub = p.rpartition("/")
            if p == "*":
                issuers += known  # any token the workload validates
            elif sub != "*" and allow:
                out.narrowed(span, title, f"{policy.spot(index)}: requestPrincipals {p!r} names one subject, which "
                             "the language cannot: left out")
            elif iss in known:
                issuers.append(iss)
        if not principals:
            issuers = [None]
            if claims:
                if allow:  # a claim of any token the workload validates: one rule per issuer (each needs 'sub')
                    issuers = [*known]
                    out.narrowed(span, title, f"{policy.spot(index)}.when: claims without requestPrincipals are "
                                 "imported for each issuer the workload validates, whose token must then also have "
                                 "a 'sub' claim")
                else:
                    alternatives = [[c for c in a if not c.startswith("claim ")] for a in alternatives]
                    out.narrowed(span, title, f"{policy.spot(index)}.when: claims without requestPrincipals: "
                                 "dropped, so the DENY refuses more")
    out_rules = []
    for made_rule in made:
        for url in dict.fromkeys(issuers):
            for conditions in alternatives:
                jwt = [f"jwt {out.issuer(url)}"] if url is not None else []
                copy = d.Rule(made_rule.action, made_rule.sources, made_rule.namespace, made_rule.service,
                              made_rule.origin, made_rule.resource, made_rule.methods, made_rule.paths,
                              made_rule.grpc, made_rule.ports, conditions=tuple(jwt + sorted(set(conditions))))
                svc = out.services.get((copy.namespace, copy.service))
                if svc is not None and copy.conditions:
                    for port in copy.ports:
                        svc.declare(port, "http")  # conditions are HTTP-only (§9): the port is an HTTP one
                out_rules.append(copy)
    return out_rules


def _request_authentications(jwts: list[tuple[Document, dict[str, Any]]], docs: list[dict[str, Any]],
                             world: World, out: d.Draft, root: str) -> dict[tuple[str, str], list[str]]:
    """RequestAuthentication (§13): the issuers each service validates, declared as the language's issuers; kept
    for the proof where the reader reads them."""
    validated: dict[tuple[str, str], list[str]] = {}
    for doc, data in jwts:
        try:
            record = reader.parse([data], world, root).request_authentications[0]
        except (ReaderError, IndexError) as exc:
            out.narrowed(doc.span(), doc.title, f"{exc}: not imported; the rules that need its tokens are left "
                         "out")
            continue
        if record.split:
            out.narrowed(doc.span(), doc.title, "spaceDelimitedClaims: the language splits only scope and "
                         "permission: not imported; the rules that need its tokens are left out")
            continue
        docs.append(data)
        spec = data.get("spec") or {}
        for rule in spec.get("jwtRules") or []:
            if isinstance(rule, dict) and isinstance(rule.get("issuer"), str):
                jwks = rule.get("jwksUri")
                out.issuer(rule["issuer"], jwks if isinstance(jwks, str) else "")
        for svc in out.services.values():
            applies = (record.namespace == root and not record.selector) or (
                record.namespace == svc.namespace and set(record.selector) <= set(svc.labels))
            if applies:
                validated.setdefault((svc.namespace, svc.name), []).extend(record.issuers)
        for ns in out.namespaces:
            if not record.selector and record.namespace in (ns, root):
                validated.setdefault((ns, d.WIDE), []).extend(record.issuers)
    return validated


def _wide(policy: _Policy, out: d.Draft, root: str) -> list[str]:
    """The namespaces whose every workload the policy applies to (none: it selects services)."""
    if policy.namespace == root:
        # mesh-wide: every workload of every namespace of the policy (MP801 says the others lose it)
        return sorted(out.namespaces) if policy.services else []
    if policy.selector is None and out.managed(policy.namespace):
        return [policy.namespace]
    return []


def _source(policy: _Policy, spot: str, src: reader.Source, allow: bool, out: d.Draft) -> list[d.Src]:
    """One ``source`` (fields ANDed,) as the callers it names: exact, or narrower for an ALLOW and wider
    for a DENY."""
    span, title = policy.doc.locate(spot), policy.doc.title
    nots = [n for n, v in (("notPrincipals", src.principals.nots), ("notNamespaces", src.namespaces.nots),
                           ("notIpBlocks", src.ip_blocks.nots)) if v]
    if nots:
        if allow:
            out.narrowed(policy.doc.locate(f"{spot}.{nots[0]}"), title, f"{spot}.{nots[0]}: the language has no "
                         "'every caller but': that source is "
                         "not imported")
            return []
        out.narrowed(policy.doc.locate(f"{spot}.{nots[0]}"), title, f"{spot}.{nots[0]}: the language has no "
                     "'every caller but': dropped, so the DENY "
                     "refuses more")
    idents: list[d.Src] | None = None
    if src.principals.values:
        idents = []
        for p in src.principals.values:
            idents.extend(_principal(p, out, span, title, spot, allow))
    if src.namespaces.values:
        spaces = [d.MESH if n == "*" else d.every_in(n) for n in src.namespaces.values if n == "*" or d.namespace_ok(n)]
        if len(spaces) < len(src.namespaces.values):
            if not allow:
                out.narrowed(span, title, f"{spot}.namespaces names a namespace the language cannot write: dropped, "
                             "so the DENY refuses more")
                spaces = [d.MESH]
            else:
                out.narrowed(span, title, f"{spot}.namespaces names a namespace the language cannot write: not "
                             "imported")
        idents = spaces if idents is None else [m for a in idents for b in spaces if (m := d.meet(a, b))]
    if src.ip_blocks.values:
        blocks = [d.cidr(b) for b in src.ip_blocks.values]
        if idents is None:
            return blocks
        if allow:
            out.narrowed(span, title, f"{spot}: ipBlocks together with principals or namespaces (a caller with both) "
                         "cannot be written in the language: that source is not imported")
            return []
        out.narrowed(span, title, f"{spot}: ipBlocks together with principals or namespaces: the ipBlocks are "
                     "dropped, so the DENY refuses more")
    return [d.ANY] if idents is None else idents


def _principal(p: str, out: d.Draft, span: Any, title: str, spot: str, allow: bool) -> list[d.Src]:
    td = out.trust_domain

    def local(domain: str) -> bool:
        return domain in (td, "cluster.local")  #: cluster.local always means the local mesh

    if p == "*":
        return [d.MESH]
    if p.endswith("/*") and p.count("/") == 1:
        return [d.MESH] if local(p[:-2]) else []
    m = _PRINCIPAL.match(p)
    if m:
        if not local(m.group(1)):
            out.note("MP805", span, f"{title}: {spot}.principals: {p!r} is of another trust domain than "
                     f"{td}: no caller of the policy has it")
            return []
        if d.namespace_ok(m.group(2)) and d.namespace_ok(m.group(3)):
            return [d.identity(m.group(2), m.group(3))]
        if allow:
            out.narrowed(span, title, f"{spot}.principals: {p!r} names an account the language cannot write: "
                         "not imported")
            return []
        out.narrowed(span, title, f"{spot}.principals: {p!r} names an account the language cannot write: the "
                     "DENY refuses every account of its namespace")
        return [d.every_in(m.group(2))] if d.namespace_ok(m.group(2)) else [d.MESH]
    m = _NS_PRINCIPAL.match(p)
    if m and local(m.group(1)):
        return [d.every_in(m.group(2))] if d.namespace_ok(m.group(2)) else ([] if allow else [d.MESH])
    return []


def _operation(policy: _Policy, index: int, op_index: int, op: reader.Operation | None,
               sources: tuple[d.Src, ...], svc: d.Service, out: d.Draft) -> list[d.Rule]:
    """One ``operation`` (fields ANDed) for one service: a rule of the language, or two for a DENY whose HTTP
    fields also refuse whole TCP ports; none where an ALLOW cannot be written."""
    allow = policy.action == "ALLOW"
    title = policy.doc.title
    spot = policy.spot(index, "to", op_index)
    span = policy.doc.locate(spot if op is not None else policy.spot(index))
    base = d.Rule("allow" if allow else "deny", sources, svc.namespace, svc.name, span, title)
    if op is None:
        return [base]
    nots = [n for n, v in (("notPorts", op.ports.nots), ("notMethods", op.methods.nots),
                           ("notPaths", op.paths.nots)) if v]
    if nots and allow:
        out.narrowed(policy.doc.locate(f"{spot}.{nots[0]}"), title, f"{spot}.{nots[0]}: the language has no "
                     "'every request but': that operation is "
                     "not imported")
        return []
    if nots:
        out.narrowed(policy.doc.locate(f"{spot}.{nots[0]}"), title, f"{spot}.{nots[0]}: dropped, so the DENY "
                     "refuses more")
    ports = tuple(sorted({int(p) for p in op.ports.values}))
    methods = _methods(op.methods.values, allow, out, policy.doc.locate(f"{spot}.methods"), title, spot)
    if methods is None:
        return []
    values: tuple[str, ...] = op.paths.values
    grpc: tuple[str, ...] = ()
    if methods == ("POST",):
        # POST to '/pkg.Service/*' alone is a gRPC service's every method: the language's 'grpc pkg.Service' (§14)
        grpc = tuple(sorted(v[1:-2] for v in values if v.endswith("/*") and GRPC_SERVICE.match(v[1:-2])
                            and v[:-2] not in values))
        values = tuple(v for v in values if v[1:-2] not in grpc or not v.endswith("/*"))
    made: list[d.Rule] = []
    if grpc:
        made.append(d.Rule(base.action, sources, svc.namespace, svc.name, span, title, (), (), grpc, ports))
    if values or not grpc:
        paths = _paths(values, allow, out, policy.doc.locate(f"{spot}.paths"), title, spot)
        if paths is not None:
            made.append(d.Rule(base.action, sources, svc.namespace, svc.name, span, title, methods, paths, (), ports))
    http = bool(methods or op.paths.values)
    for port in ports:
        svc.declare(port, "grpc" if grpc and not values else "http" if http else "tcp")
    return made  # HTTP fields without ports: every HTTP port, and for a DENY every TCP port whole (d.finish)


def _methods(values: tuple[str, ...], allow: bool, out: d.Draft, span: Any, title: str,
             spot: str) -> tuple[str, ...] | None:
    """Methods (§6 string matching) within the language's closed set; None: an ALLOW left with none."""
    if not values:
        return ()
    found: set[str] = set()
    for v in values:
        if v == "*":
            return ()
        matched = {m for m in d.METHODS if reader.match_string(v, m)}
        if "*" not in v and d.method_ok(v):
            matched.add(v)
        elif v not in d.METHODS:
            if not allow:
                out.narrowed(span, title, f"{spot}.methods: {v!r} is not one of the language's methods: the DENY "
                             "refuses every method")
                return ()
            out.narrowed(span, title, f"{spot}.methods: {v!r} is not one of the language's methods"
                         + (f": imported as {','.join(sorted(matched))}" if matched else ": dropped"))
        found |= matched
    if not found:
        return None
    return tuple(sorted(found, key=lambda m: (m not in d.METHODS, d.METHODS.index(m) if m in d.METHODS else 0, m)))


def _paths(values: tuple[str, ...], allow: bool, out: d.Draft, span: Any, title: str,
           spot: str) -> tuple[str, ...] | None:
    """Paths (exact, ``prefix*``, ``*suffix``, ``*``) as the language's ``/a`` and ``/a/*``; None: an ALLOW
    left with none."""
    if not values:
        return ()
    if "*" in values:
        return ()
    exact = {v for v in values if "*" not in v.rstrip("*") and not v.endswith("*") and not v.startswith("*")}
    found: set[str] = set()
    for v in values:
        if v.endswith("*") and not v.startswith("*"):
            prefix = v[:-1]
            if allow:
                if prefix.endswith("/") and prefix[:-1] in exact and d.path_ok(prefix + "*"):
                    found.add(prefix + "*")   # /a and /a/...: the language's /a/*
                    exact.discard(prefix[:-1])
                    continue
                if prefix == "/":
                    return ()
            if d.path_kind(v) == "starts":  # the language's '/a*' (version 2): the same string prefix
                found.add(v)
                continue
            if allow:
                out.narrowed(span, title, f"{spot}.paths: {v!r} is every path starting with {prefix!r}, which the "
                             "language cannot write yet: dropped", "write the paths it must allow one by one")
                continue
            cut = prefix[: prefix.rfind("/")] if "/" in prefix else ""
            if not cut or not d.path_ok(cut + "/*"):
                out.narrowed(span, title, f"{spot}.paths: {v!r}: the DENY refuses every path")
                return ()
            if prefix != cut + "/" or cut not in exact:
                out.narrowed(span, title, f"{spot}.paths: {v!r} is imported as {cut + '/*'!r} (the path and "
                             "every path under it): the DENY refuses more")
            found.add(cut + "/*")
            continue
        if v.startswith("*"):
            if d.path_kind(v) == "suffix":  # the language's '*.png' (version 2): the same suffix
                found.add(v)
                continue
            if allow:
                out.narrowed(span, title, f"{spot}.paths: {v!r} (a suffix) cannot be written in the language "
                             "yet: dropped")
                continue
            out.narrowed(span, title, f"{spot}.paths: {v!r} (a suffix): the DENY refuses every path")
            return ()
    for v in sorted(exact):
        if d.path_ok(v):
            found.add(v)
        elif allow:
            out.narrowed(span, title, f"{spot}.paths: {v!r} is not a path the language admits: dropped")
        else:
            out.narrowed(span, title, f"{spot}.paths: {v!r} is not a path the language admits: the DENY refuses "
                         "every path")
            return ()
    if not found:
        return None if allow else ()
    return tuple(sorted(found))


def _implicit_allow(policies: list[_Policy], out: d.Draft) -> None:
    """§1 step 3: a workload no enforced ALLOW policy applies to allows every request (then DENY policies)."""
    covered = {(s.namespace, s.name) for p in policies if p.action == "ALLOW" and not _dry(p) for s in p.services}
    for p in policies:
        if p.action == "ALLOW" and not _dry(p) and p.selector and not p.services:
            covered |= {(s.namespace, s.name) for s in out.in_namespace(p.namespace)
                        if not d.disjoint(s.labels, p.selector)}
    for svc in sorted(out.services.values(), key=lambda s: (s.namespace, s.name)):
        if svc.caller_only or (svc.namespace, svc.name) in covered or not out.managed(svc.namespace):
            continue
        rule = d.Rule("allow", (d.ANY,), svc.namespace, svc.name, svc.origin or _origin(policies, svc), "Istio")
        rule.comments.append("no ALLOW policy selects it, so Istio allows every request (then DENY policies)")
        out.rules.append(rule)


def _origin(policies: list[_Policy], svc: d.Service) -> Any:
    found = next((p.doc for p in policies if svc in p.services), policies[0].doc if policies else None)
    return found.span() if found is not None else None


def _dry(policy: _Policy) -> bool:
    meta = policy.data.get("metadata") or {}
    return isinstance(meta, dict) and (meta.get("annotations") or {}).get("istio.io/dry-run") == "true"


# -- findings: what the original really says -------------------------------------------------------------------

def _dry_run_findings(policies: list[_Policy], out: d.Draft) -> None:
    for p in policies:
        if _dry(p):
            meta = p.doc.data.get("metadata")
            annotations = meta.get("annotations") if isinstance(meta, dict) else None
            out.finding("ML066", p.doc.span(annotations, "istio.io/dry-run") if annotations is not None else
                        p.doc.span(), f"{p.doc.title} carries istio.io/dry-run: \"true\": Istio does not enforce it, "
                        "and the import leaves it out", "remove the annotation once the dry run is over, or delete "
                        "the policy")


def _who(sources: tuple[reader.Source, ...]) -> str:
    if not sources:
        return "any caller at all (also unauthenticated)"
    parts = []
    for s in sources:
        parts += list(s.principals.values) + [f"namespace {n}" for n in s.namespaces.values] + list(s.ip_blocks.values)
    return ", ".join(parts) or "any caller"


def _what(operations: tuple[reader.Operation, ...]) -> str:
    if not operations:
        return "every port, method and path"
    parts = []
    for op in operations:
        words = [",".join(op.methods.values) or "any method"]
        if op.paths.values:
            words.append(",".join(op.paths.values))
        words.append("port " + ",".join(op.ports.values) if op.ports.values else "any port")
        parts.append(" ".join(words))
    return "; ".join(parts)


def _findings(parsed: list[tuple[_Policy, reader.Policy]], out: d.Draft) -> None:
    for policy, record in parsed:
        doc, title = policy.doc, policy.doc.title
        rules = record.rules
        spec = doc.data.get("spec")
        raw_rules = spec.get("rules") if isinstance(spec, dict) else None
        where = doc.span(spec, "rules") if isinstance(spec, dict) else doc.span()
        # ML060: from and to in separate rule entries
        only_from = [r for r in rules if r.sources and not r.operations]
        only_to = [r for r in rules if r.operations and not r.sources]
        if record.action is reader.Action.ALLOW and only_from and only_to:
            strict = bool(policy.services) and all((s.mtls or out.namespaces.get(s.namespace)) == "strict"
                                                   for s in policy.services)
            anyone = "any caller with a mesh identity" if strict else "any caller at all (also unauthenticated)"
            out.finding("ML060", where, f"{title}: 'from' and 'to' sit in separate rule entries, which Istio ORs: "
                        f"{_who(only_from[0].sources)} may reach {_what(())} of the selected workloads, and "
                        f"{anyone} may send {_what(only_to[0].operations)}",
                        "put 'from' and 'to' in one entry (no '-' before 'to:') for 'these callers may do this'")
        for r in rules:
            for s in r.sources:
                # ML061: namespaces where a principal was meant (matched on the principal, any trust domain)
                if s.namespaces.values and not s.principals.values:
                    out.finding("ML061", where, f"{title}: namespaces {list(s.namespaces.values)} admits every "
                                "workload of those namespaces, of any trust domain (Istio matches '.*/ns/NS/.*' on the "
                                "principal), not one service account",
                                "name the callers with principals: TRUST_DOMAIN/ns/NS/sa/ACCOUNT")
            for op in r.operations:
                # ML063: /x/** matches a literal '*'
                for path in op.paths.named:
                    if "**" in path or ("*" in path.rstrip("*").lstrip("*")):
                        out.finding("ML063", where, f"{title}: the path {path!r} is matched literally by Istio: "
                                    f"only paths starting with {path[:-1]!r} (with the '*' in them) match",
                                    "Istio knows one trailing '*' (a string prefix); write '/x/*' for every path "
                                    "under /x/")
                # ML062: DENY with HTTP fields reaches TCP ports whole
                if record.action is reader.Action.DENY and op.uses_http:
                    tcp = [p for s in policy.services for p in s.tcp_ports
                           if not op.ports.values or str(p) in op.ports.values]
                    if tcp:
                        out.finding("ML062", where, f"{title}: a DENY with methods or paths refuses every "
                                    f"connection to TCP port(s) {','.join(map(str, sorted(set(tcp))))}, where HTTP "
                                    "fields cannot be checked", "give the rule the HTTP ports only")
        del raw_rules
    # ML065: permissive mTLS under identity rules
    for policy, record in parsed:
        if record.action is not reader.Action.ALLOW or record.dry_run:
            continue
        if any(s.principals.values or s.namespaces.values for r in record.rules for s in r.sources):
            for svc in policy.services:
                mode = svc.mtls or out.namespaces.get(svc.namespace)
                if mode == "permissive":
                    out.finding("ML065", policy.doc.span(), f"{policy.doc.title}: names callers by identity, but "
                                f"{svc.namespace}/{svc.name} accepts plaintext (PERMISSIVE): a plaintext client has "
                                "no principal, so DENY rules by identity do not stop it, and every ALLOW rule "
                                "without 'from' admits it", "set a STRICT PeerAuthentication")
                    break
