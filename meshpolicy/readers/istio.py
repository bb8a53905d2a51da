"""Evaluate a request against emitted Istio manifests, as a sidecar would.

Written from ../shared/targets/istio.md, independently of the Istio backend:
PeerAuthentication precedence (§12), policy scope (§2), evaluation order
(§1), combination rules (§4), field and string matching (§5, §6), and HTTP-only
fields on TCP ports (§9). Constructs the backend never emits and whose
meaning the reader does not model raise :class:`Unmodelled`, so that a test
can never pass by ignoring them.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

from ..errors import MeshpolicyError
from ..graph.evaluate import Request
from ..graph.model import Identity
from ..graph.space import Mentions
from .world import Workload, World

ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace by default (§2); the build's --istio-root-namespace
HTTP_ONLY_OPERATION = {"hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"}
HTTP_ONLY_SOURCE = {"requestPrincipals", "notRequestPrincipals"}
_PRINCIPAL = re.compile(r"^[^/*]+/ns/([^/*]+)/sa/([^/*]+)$")
_NAMESPACE_PRINCIPAL = re.compile(r"^[^/*]+/ns/([^/*]+)/sa/\*$")  # every account of a namespace


class Unmodelled(MeshpolicyError):
    """The manifests use something this reader does not evaluate."""


class Ambiguous(MeshpolicyError):
    """Istio would pick by creation time (e.g. two namespace-level PeerAuthentications)."""


def _subset(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def match_string(pattern: str, value: str | None) -> bool:
    """§6: exact, ``prefix*``, ``*suffix``, or ``*`` = present."""
    if value is None:
        return False
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _field(values: list[str] | None, nots: list[str] | None, attr: str | None, matcher) -> bool:
    """§4: absent attribute fails positive matchers and passes negative ones."""
    pos = not values or (attr is not None and any(matcher(v, attr) for v in values))
    neg = not nots or attr is None or not any(matcher(n, attr) for n in nots)
    return pos and neg


@lru_cache(maxsize=4096)
def _namespace_match(pattern: str, value: str) -> bool:
    """§5: every ``*`` in a namespaces value becomes ``.*``."""
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(regex, value) is not None


@lru_cache(maxsize=4096)
def _ip_match(block: str, value: str) -> bool:
    return ipaddress.ip_address(value) in ipaddress.ip_network(block, strict=False)


class Reader:
    def __init__(self, docs: list[dict[str, Any]], world: World, *, dry_run_enforced: bool = False,
                 root_namespace: str = ROOT_NAMESPACE):
        self.world = world
        self.dry_run_enforced = dry_run_enforced
        self.root_namespace = root_namespace
        self.peer = [d for d in docs if d.get("kind") == "PeerAuthentication"]
        self.authz = [d for d in docs if d.get("kind") == "AuthorizationPolicy"]
        for d in docs:
            if d.get("kind") not in ("PeerAuthentication", "AuthorizationPolicy"):
                raise Unmodelled(f"kind {d.get('kind')}")
            selector = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            namespace = (d.get("metadata") or {}).get("namespace")
            if namespace == root_namespace:
                if selector and d["kind"] == "AuthorizationPolicy":
                    # §2: matched against the workloads of every namespace, undeclared ones included
                    raise Unmodelled(f"an AuthorizationPolicy with a selector in the root namespace {root_namespace}")
            elif (problem := world.selector_problem(namespace, selector)) is not None:
                raise Unmodelled(f"{d['kind']} {namespace}/{d['metadata'].get('name')}: {problem}")
        self._pods = {(w.namespace, w.name): w for w in world.workloads}
        self._modes: dict[tuple, tuple[str, dict | None]] = {}
        self._policies: dict[tuple, list[dict]] = {}
        self._rules: dict[tuple, tuple[dict, Any]] = {}  # (id of a rule, action, http) -> (rule, prepared)
        self._entries: dict[tuple, list] = {}    # (pod, action, http) -> [(doc index, (sources, operations))]
        self._froms: dict[tuple, frozenset[int]] = {}  # (pod, action, http), caller -> entries whose from matches
        self._tos: dict[tuple, frozenset[int]] = {}    # ..., port, method, path -> entries whose to matches
        self._by_namespace: dict[int, dict[str, list[dict]]] = {}  # id of self.peer / self.authz -> index
        self._actions: dict[tuple, tuple[list[dict], list[dict]]] = {}

    def _pod(self, namespace: str, name: str | None) -> Workload:
        pod = self._pods.get((namespace, name))
        if pod is None:
            raise KeyError(f"no workload {namespace}/{name}")
        return pod

    # -- §12 PeerAuthentication ---------------------------------------------
    def mtls_mode(self, pod: Workload, port: int) -> str:
        return self._mtls(pod, port)[0]

    def _mtls(self, pod: Workload, port: int) -> tuple[str, dict | None]:
        """The effective mode, and the PeerAuthentication that set it (None: Istio's default)."""
        key = (pod.namespace, pod.name, port)
        if key not in self._modes:
            self._modes[key] = self._compute_mtls(pod, port)
        return self._modes[key]

    def _compute_mtls(self, pod: Workload, port: int) -> tuple[str, dict | None]:
        labels = dict(pod.labels)

        def one(cands: list[dict]) -> dict | None:
            if len(cands) > 1:
                raise Ambiguous("several PeerAuthentications at one level: the oldest would win")
            return cands[0] if cands else None

        def has_selector(d: dict) -> bool:
            return bool(((d.get("spec") or {}).get("selector") or {}).get("matchLabels"))

        root = self._in_namespace(self.peer, self.root_namespace)
        local = self._in_namespace(self.peer, pod.namespace)
        mesh = one([d for d in root if not has_selector(d)])
        ns = one([d for d in local if not has_selector(d) and pod.namespace != self.root_namespace])
        wl = one([d for d in local if has_selector(d) and _subset(d["spec"]["selector"]["matchLabels"], labels)])
        mode, source = "PERMISSIVE", None
        for level in (mesh, ns, wl):
            if level is not None:
                m = ((level.get("spec") or {}).get("mtls") or {}).get("mode", "UNSET")
                if m != "UNSET":
                    mode, source = m, level
        if wl is not None:
            port_level = (wl["spec"].get("portLevelMtls") or {})
            entry = port_level.get(str(port), port_level.get(port))
            if entry and entry.get("mode", "UNSET") != "UNSET":
                mode, source = entry["mode"], wl
        return mode, source

    def _in_namespace(self, docs: list[dict], namespace: str) -> list[dict]:
        """The documents of ``docs`` in one namespace (indexed once per list)."""
        index = self._by_namespace.get(id(docs))
        if index is None:
            index = self._by_namespace[id(docs)] = {}
            for d in docs:
                index.setdefault(d["metadata"]["namespace"], []).append(d)
        return index.get(namespace, [])

    # -- §2 which policies apply ------------------------------------------------
    def policies(self, pod: Workload) -> list[dict]:
        key = (pod.namespace, pod.name)
        if key not in self._policies:
            self._policies[key] = self._applicable(pod)
        return self._policies[key]

    def _applicable(self, pod: Workload) -> list[dict]:
        labels = dict(pod.labels)
        out = []
        scope = {self.root_namespace, pod.namespace}  # §2: the root namespace and the workload's own
        for d in [d for ns in sorted(scope) for d in self._in_namespace(self.authz, ns)]:
            spec = d.get("spec") or {}
            if "targetRef" in spec or "targetRefs" in spec:
                continue  # sidecars ignore targetRefs policies (§2)
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            if not _subset(selector, labels):
                continue
            dry = ((d["metadata"].get("annotations") or {}).get("istio.io/dry-run") == "true")
            if dry and not self.dry_run_enforced:
                continue
            out.append(d)
        return out

    # -- §4-§6 matching ---------------------------------------------------------
    def _source_ok(self, src: dict, req: Request) -> bool:
        ident = req.caller.identity
        principal = f"{self.world.trust_domain}/ns/{ident.namespace}/sa/{ident.account}" if ident else None
        namespace = ident.namespace if ident else None
        for key in src:
            if key not in ("principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks"):
                raise Unmodelled(f"source field {key}")

        def principal_match(pattern: str, value: str) -> bool:
            if pattern.startswith("cluster.local/") and pattern.count("/") == 4:
                # §7: in a full principal the literal cluster.local means the local mesh (istiod rewrites
                # only principals of five segments)
                pattern = f"{self.world.trust_domain}/" + pattern[len("cluster.local/"):]
            return match_string(pattern, value)

        return (_field(src.get("principals"), src.get("notPrincipals"), principal, principal_match)
                and _field(src.get("namespaces"), src.get("notNamespaces"), namespace, _namespace_match)
                and _field(src.get("ipBlocks"), src.get("notIpBlocks"), req.caller.ip, _ip_match))

    def _operation_ok(self, op: dict, req: Request) -> bool:
        for key in op:
            if key not in ("ports", "notPorts", "methods", "notMethods", "paths", "notPaths"):
                raise Unmodelled(f"operation field {key}")
        port = str(req.port)
        for p in op.get("paths", []) + op.get("notPaths", []):
            if "{*}" in p or "{**}" in p:
                raise Unmodelled("path templates")
        return (_field(op.get("ports"), op.get("notPorts"), port, lambda a, b: a == b)
                and _field(op.get("methods"), op.get("notMethods"), req.method, match_string)
                and _field(op.get("paths"), op.get("notPaths"), req.path, match_string))

    def _prepared(self, rule: dict, action: str, http: bool | None) -> tuple[list[dict], list[dict]] | None:
        """The rule's sources and operations as a port of that kind sees them (None: it never matches).

        ``http`` None: a port the world does not declare, whose protocol Istio sniffs (§9). The request
        space holds no HTTP request there, so the reader answers for the reading that admits most: an
        ALLOW rule's HTTP fields match any request, a DENY rule with HTTP fields matches none. That way
        no widening hides on such a port (the backend never names one in a rule with HTTP fields).
        """
        key = (id(rule), action, http)
        if key in self._rules:
            return self._rules[key][1]  # the rule is kept in the value, so its id stays its own
        if rule.get("when"):
            raise Unmodelled("when conditions")
        froms = [f["source"] for f in rule.get("from", [])]
        tos = [t["operation"] for t in rule.get("to", [])]
        prepared: tuple[list[dict], list[dict]] | None = (froms, tos)
        if not http:  # §9: HTTP-only fields on a TCP port
            uses_http = any(HTTP_ONLY_SOURCE & set(s) for s in froms) or any(HTTP_ONLY_OPERATION & set(o) for o in tos)
            if uses_http and (action == "ALLOW") == (http is not None):
                prepared = None
            else:
                froms = [{k: v for k, v in s.items() if k not in HTTP_ONLY_SOURCE} for s in froms]
                tos = [{k: v for k, v in o.items() if k not in HTTP_ONLY_OPERATION} for o in tos]
                prepared = (froms, tos)
        self._rules[key] = (rule, prepared)
        return prepared

    # -- §1 the decision ---------------------------------------------------------
    def decide(self, req: Request) -> bool:
        return self._decide(req)[0]

    def explain(self, req: Request) -> list[tuple[str, str, str]]:
        """The resources that decide ``req``: (kind, namespace, name), the PeerAuthentication first."""
        return [(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in self._decide(req)[1]]

    def _decide(self, req: Request) -> tuple[bool, list[dict]]:
        pod = self._pod(req.namespace, req.service)
        mode, mode_doc = self._mtls(pod, req.port)
        peer = [mode_doc] if mode_doc is not None else []
        if mode == "STRICT" and req.caller.identity is None:
            return False, peer
        proto = pod.protocol(req.port)
        http = None if proto is None and req.method is None else (proto not in (None, "tcp") and req.method is not None)
        allow, deny = self._by_action(pod)
        denied = self._matching(pod, req, http, "DENY", deny)
        if denied:
            return False, peer + denied
        if not allow:
            return True, peer
        allowed = self._matching(pod, req, http, "ALLOW", allow)
        return bool(allowed), peer + (allowed or allow)

    def _matching(self, pod: Workload, req: Request, http: bool | None, action: str, docs: list[dict]) -> list[dict]:
        """The policies of ``docs`` with a rule whose ``from`` and ``to`` both match (§4).

        The two sides are evaluated apart and remembered: the sources per caller, the
        operations per (port, method, path), since a request is the pair of them.
        """
        pod_key = (pod.namespace, pod.name, action, http)
        entries = self._entries.get(pod_key)
        if entries is None:
            entries = self._entries[pod_key] = [
                (i, prepared) for i, d in enumerate(docs) for r in (d.get("spec") or {}).get("rules") or []
                if (prepared := self._prepared(r, action, http)) is not None]
        fkey = (pod_key, req.caller)
        froms = self._froms.get(fkey)
        if froms is None:
            froms = self._froms[fkey] = frozenset(
                n for n, (_, (srcs, _)) in enumerate(entries) if not srcs or any(self._source_ok(s, req) for s in srcs))
        okey = (pod_key, req.port, req.method, req.path)
        tos = self._tos.get(okey)
        if tos is None:
            tos = self._tos[okey] = frozenset(
                n for n, (_, (_, ops)) in enumerate(entries) if not ops or any(self._operation_ok(o, req) for o in ops))
        return [docs[i] for i in sorted({entries[n][0] for n in froms & tos})]

    def _by_action(self, pod: Workload) -> tuple[list[dict], list[dict]]:
        key = (pod.namespace, pod.name)
        if key not in self._actions:
            allow, deny = [], []
            for d in self.policies(pod):
                action = (d.get("spec") or {}).get("action", "ALLOW")
                if action not in ("ALLOW", "DENY"):
                    raise Unmodelled(f"action {action}")
                (allow if action == "ALLOW" else deny).append(d)
            self._actions[key] = (allow, deny)
        return self._actions[key]

    # -- what the manifests can tell apart for one workload ----------------------
    def mentions(self, namespace: str, service: str | None) -> Mentions:
        """Identities, namespaces, networks, methods, paths and ports that the policies of a pod name."""
        pod = self._pod(namespace, service)
        idents, namespaces, networks, methods, paths, ports = set(), set(), set(), set(), set(), set()
        operations: set[tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]] = set()
        identity_sets: set[frozenset[Identity]] = set()
        for d in self.policies(pod):
            for rule in (d.get("spec") or {}).get("rules") or []:
                for entry in rule.get("from") or []:
                    src = entry.get("source") or {}
                    for field in ("principals", "notPrincipals"):
                        named = set()
                        for p in src.get(field) or []:
                            m = _PRINCIPAL.match(p)
                            if m:
                                named.add(Identity(m.group(1), m.group(2)))
                            elif every := _NAMESPACE_PRINCIPAL.match(p):
                                namespaces.add(every.group(1))
                            elif p not in ("*", f"{self.world.trust_domain}/*"):
                                # a partial wildcard names a set the space cannot enumerate
                                raise Unmodelled(f"principal pattern {p!r}")
                        idents.update(named)
                        identity_sets.add(frozenset(named))
                    for n in (src.get("namespaces") or []) + (src.get("notNamespaces") or []):
                        if "*" in n and n != "*":
                            raise Unmodelled(f"namespace pattern {n!r}")
                        if n != "*":
                            namespaces.add(n)
                    networks.update((src.get("ipBlocks") or []) + (src.get("notIpBlocks") or []))
                for entry in rule.get("to") or []:
                    op = entry.get("operation") or {}
                    methods.update((op.get("methods") or []) + (op.get("notMethods") or []))
                    paths.update((op.get("paths") or []) + (op.get("notPaths") or []))
                    ports.update(int(p) for p in (op.get("ports") or []) + (op.get("notPorts") or [])
                                 if str(p).isdigit())
                    if any(op.get(k) for k in ("notMethods", "notPaths", "notPorts")):
                        # negations: let every value be tested on its own (the space then takes their product)
                        operations.update(((), (m,), ()) for m in (op.get("methods") or []) + (op.get("notMethods") or []))
                        operations.update(((), (), (p,)) for p in (op.get("paths") or []) + (op.get("notPaths") or []))
                    else:
                        operations.add((tuple(int(p) for p in op.get("ports") or [] if str(p).isdigit()),
                                        tuple(op.get("methods") or []), tuple(op.get("paths") or [])))
        for d in self.peer:
            if d["metadata"]["namespace"] == namespace:
                ports.update(int(p) for p in ((d.get("spec") or {}).get("portLevelMtls") or {}) if str(p).isdigit())
        return Mentions(frozenset(idents), frozenset(namespaces), frozenset(networks), frozenset(methods),
                        frozenset(paths), frozenset(ports), frozenset(operations), frozenset(identity_sets))
