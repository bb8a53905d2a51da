"""Istio: PeerAuthentication for mTLS, a namespace allow-nothing policy, ALLOW and DENY AuthorizationPolicies.

How each construct is lowered, and why, is in docs/targets/istio.md; the facts
about Istio it relies on are cited from ../shared/targets/istio.md (sections as §N).
"""

from __future__ import annotations

from typing import Any

from ..graph.model import (
    AccessGraph,
    Action,
    Authority,
    AuthoritySource,
    ConditionKind,
    Mode,
    Mtls,
    Namespace,
    PathKind,
    PathMatch,
    Rule,
    Service,
    SourceKind,
)
from ..source import Span
from . import SUMMARIES, certificates
from .base import Backend, Resource
from .limits import SPLIT_BUDGET, json_size
from .namespaces import EMIT, SKIP, namespace_resource, requirements_note
from .naming import join

ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace default (§2)
API = "security.istio.io/v1"
DRY_RUN = "istio.io/dry-run"
INJECTION = (("istio-injection", "enabled"),)  # sidecar injection for every pod of the namespace
CA_SECRET = "cacerts"  # the plug-in CA Secret istiod mounts (security/pkg/pki/ca/ca.go CACertsSecret)


#: Headers whose value at the sidecar's authorization differs from what the client sent (LANGUAGE 2.4 speaks
#: of the request's headers): a condition on one is refused (docs/targets/istio.md "Headers Envoy sets").
ENVOY_SETS_HEADERS = {
    "host": "Envoy holds the Host header as ':authority', so a header condition on 'host' never matches "
            "(Envoy headers.h Host{\":authority\"}; istio/istio#23083)",
    "x-request-id": "the sidecar generates x-request-id where it is absent and replaces it on requests from "
                    "outside its internal addresses, before authorization (istio/istio#10875)",
    "x-forwarded-client-cert": "the inbound sidecar sets x-forwarded-client-cert from the peer's certificate "
                               "before authorization (listener_inbound.go ForwardClientCertDetails)",
}
#: Headers Envoy's connection manager "sanitizes" before any filter: adds, removes or changes them depending on
#: whether it deems the request internal or external (Envoy docs, "HTTP header sanitizing"), which depends on
#: settings a policy does not see (use_remote_address, xff_num_trusted_hops, internal_address_config); every
#: ``x-envoy-`` header is refused with them, since the list grows with Envoy's versions
ENVOY_SANITIZES = frozenset({"x-forwarded-for", "x-forwarded-proto", "referer"})


def envoy_header_problem(name: str) -> str | None:
    """Why a condition on header ``name`` (lower case) cannot say what the client sent, or None."""
    if name in ENVOY_SETS_HEADERS:
        return ENVOY_SETS_HEADERS[name]
    if name in ENVOY_SANITIZES or name.startswith("x-envoy-"):
        return (f"Envoy may add, remove or change '{name}' before authorization, depending on whether it deems "
                "the request internal or external (Envoy's 'HTTP header sanitizing'; its use_remote_address, "
                "xff_num_trusted_hops and internal_address_config settings, which the policy does not see)")
    return None


class IstioBackend(Backend):
    """Istio 1.30/1.31 sidecar mode: PeerAuthentication + AuthorizationPolicy (security.istio.io/v1)."""

    name = "istio"
    summary = SUMMARIES["istio"]

    def __init__(self, mode: Mode = Mode.ENFORCE, root_namespace: str = ROOT_NAMESPACE, namespaces: str = SKIP) -> None:
        super().__init__(mode)
        #: the mesh's ``meshConfig.rootNamespace`` (§2), where a selector-less PeerAuthentication is mesh-wide
        self.root_namespace = root_namespace
        #: skip (default): a note naming the injection label; emit: a Namespace carrying it (docs/gitops.md)
        self.namespaces = namespaces

    def reader_options(self) -> dict[str, Any]:
        return {"root_namespace": self.root_namespace}

    #: ``lower`` is the mesh part and one part per managed namespace, each lowered from its slice of the
    #: graph (backends/base.py, docs/cache.md "Lowering by namespace")
    by_namespace = True

    def lower_mesh(self, graph: AccessGraph) -> list[Resource]:
        # Only the managed namespaces, plus the mesh-wide PeerAuthentication when the policy states a
        # top-level ``mtls`` (LANGUAGE §4): a policy of one team never owns the mesh's shared object.
        out: list[Resource] = [self._mesh_mtls(graph)] if graph.mesh_mtls_origin is not None else []
        if graph.authority is not None:
            out.extend(self._authority(graph.authority))
        return out

    def lower_namespace(self, graph: AccessGraph, ns: Namespace) -> list[Resource]:
        """Namespace ``ns``, from its slice: every resource lands in ``ns`` and is selected, or selects, only
        its workloads (§2), so another namespace's services and rules decide nothing here."""
        if ns.name == self.root_namespace:
            # §2, §12: policies in the root namespace are mesh-wide (its selector-less allow-nothing would
            # cover every workload of the mesh, a selector would pick pods of every namespace), and its
            # selector-less PeerAuthentication is the mesh's.
            self.unsupported(f"managing namespace '{self.root_namespace}' (Istio's root namespace)",
                             ns.origins[0] if ns.origins else None,
                             "policies there apply to the whole mesh (istio.md §2); declare its services "
                             "in an external namespace if they only call")
            return []
        out: list[Resource] = []
        if self.namespaces == EMIT:
            out.append(namespace_resource(ns, labels=INJECTION))
        else:
            requirements_note(self.diag, ns, labels=INJECTION, why="Istio enforces policy only in sidecars "
                              "(istio.md §1); with a revisioned control plane use istio.io/rev=REVISION instead")
        out.append(self._namespace_mtls(graph, ns.name, ns.mtls_origin or (ns.origins[0] if ns.origins else None)))
        out.append(self._policy(ns.name, "allow-nothing", {}, ns.origins))
        for action in (Action.ALLOW, Action.DENY):
            # NS/**: one selector-less policy covers every workload of NS, declared or not (§2); never in
            # the root namespace, refused above, where it would cover the whole mesh
            rules = graph.wide_rules(ns.name, action)
            if rules:
                out.extend(self._action_policies(graph, ns.name, (action.value, "every-workload"), None,
                                                 action, rules, f"'{ns.name}/**'"))
        wide_jwt = self._request_authentication(graph, ns.name, graph.wide_rules(ns.name), None)
        if wide_jwt:
            out.append(wide_jwt)
        wide_issuers = {url for r in graph.wide_rules(ns.name) for url in r.issuers}
        for svc in graph.services_in(ns.name):
            if svc.mtls is not None or svc.port_mtls:
                out.append(self._workload_mtls(graph, svc))
            if jwt := self._request_authentication(graph, svc.namespace, graph.rules_for(svc.key), svc,
                                                   wide_issuers):
                out.append(jwt)
            for action in (Action.ALLOW, Action.DENY):
                rules = graph.rules_for(svc.key, action)
                if rules:
                    out.extend(self._rules_policies(graph, svc, action, rules))
        return out

    def close(self, resources: list[Resource]) -> None:
        if self.mode == "audit":
            self._audit_notes(resources)

    # -- RequestAuthentication (§13) ---------------------------------------------
    def _request_authentication(self, graph: AccessGraph, namespace: str, rules: tuple[Rule, ...],
                                svc: Service | None, skip: set[str] | frozenset[str] = frozenset()) -> Resource | None:
        """The issuers ``rules`` name, on the workloads of ``svc`` (None: every workload of the namespace, for its
        ``NS/**`` rules; ``skip``: issuers that one already lists): the sidecar validates their tokens and puts
        the payload where ``requestPrincipals`` and ``request.auth.claims`` read it (§5, §13). A request without
        a token passes it; one with a token it cannot validate is refused with 401 (§13), the one refusal a
        target may add (LANGUAGE §3)."""
        urls = sorted({url for r in rules for url in r.issuers} - set(skip))
        if not urls:
            return None
        by_url = {i.url: i for i in graph.issuers}
        jwt_rules = [{"issuer": url, **({"jwksUri": by_url[url].jwks} if by_url[url].jwks else {})} for url in urls]
        origins = tuple(sorted({r.origin for r in rules if r.issuers} | {o for u in urls if (o := by_url[u].origin)}))
        name = join(svc.name if svc else "every-workload", "jwt")
        spec: dict[str, Any] = {"jwtRules": jwt_rules}
        if svc is not None:
            spec = {"selector": {"matchLabels": dict(svc.labels)}, **spec}
        if self.mode == "audit":
            self.diag.note("MP320", f"--mode audit: RequestAuthentication {namespace}/{name} "
                           "still refuses requests whose token it cannot validate", origins[0] if origins else None,
                           "Istio has no dry-run for RequestAuthentication (istio.md §13): a request carrying an "
                           "invalid or expired token of these issuers gets 401")
        return Resource(API, "RequestAuthentication", namespace, name, spec, origins)

    # -- the certificate authority (docs/targets/istio.md, "Certificates") ---------------------------------
    def _authority(self, authority: Authority) -> list[Resource]:
        """The plug-in CA: a cert-manager Certificate whose Secret is ``cacerts`` in istiod's namespace (taken
        to be the root namespace), which istiod reads in the kubernetes.io/tls layout (tls.crt, tls.key,
        ca.crt as the root); and the certificate alarms. The built-in authority needs no resource but them."""
        namespace = self.root_namespace
        out: list[Resource] = []
        if len(authority.anchors) > 1:
            self.diag.error("MP704", "two trust anchors cannot be expressed on target 'istio'",
                            authority.setting("anchor"), "istiod trusts the one root of its cacerts Secret (ca.crt); "
                            "to rotate it, follow the Istio procedure of docs/certificates.md")
        if authority.source is not AuthoritySource.BUILTIN:
            if authority.source is AuthoritySource.VAULT:
                out.append(certificates.vault_issuer(authority, namespace))
            out.append(certificates.issuer_certificate(
                authority, namespace, CA_SECRET, f"istio-ca.{namespace}",
                {"algorithm": "RSA", "size": 2048}, ["cert sign", "crl sign", "digital signature"]))
        out.append(certificates.alert_rules(namespace, self._alerts(authority), authority))
        return out

    def _alerts(self, authority: Authority) -> list[certificates.Alert]:
        """Alerts on the metrics istiod and the istio-agent export (docs/targets/istio.md, "Certificates")."""
        alerts = [
            certificates.expiry_alert(
                "MeshWorkloadCertificateExpiring", "A workload certificate",
                'istio_agent_cert_expiry_seconds{resource_name="default"}', authority.workload_margin, "5m",
                "critical"),
            certificates.error_alert("MeshWorkloadCertificateRotationErrors", "Workload certificate requests",
                                     'istio_agent_num_failed_outgoing_requests{request_type="csr"}'),
            certificates.error_alert("MeshCertificateSigningErrors", "istiod's certificate signings",
                                     "citadel_server_csr_sign_err_count"),
            certificates.anchor_alert("(citadel_server_root_cert_expiry_timestamp - time())",
                                      authority.anchor_margin()),
        ]
        if authority.issuer is not None:
            alerts.insert(1, certificates.expiry_alert(
                "MeshIssuerCertificateExpiring", "istiod's issuer (intermediate) certificate",
                "(citadel_server_cert_chain_expiry_timestamp - time())", authority.issuer_margin(), "10m",
                "critical"))
            alerts.append(certificates.not_ready_alert(self.root_namespace, CA_SECRET))
        return alerts

    def install_values(self, graph: AccessGraph) -> dict[str, dict[str, Any]]:
        """The istiod chart's values: the lifetime istiod gives workload certificates and the one the
        istio-agent asks for (``env``, ``meshConfig.defaultConfig.proxyMetadata``); for the built-in CA,
        its self-signed root's lifetime."""
        authority = graph.authority
        if authority is None:
            return {}
        workload = certificates.go_duration(authority.workload.seconds)
        env = {"DEFAULT_WORKLOAD_CERT_TTL": workload, "MAX_WORKLOAD_CERT_TTL": workload}
        if authority.source is AuthoritySource.BUILTIN:
            env["CITADEL_SELF_SIGNED_CA_CERT_TTL"] = certificates.go_duration(authority.anchor.seconds)
        return {"istiod": {"env": env, "meshConfig": {"defaultConfig": {"proxyMetadata": {"SECRET_TTL": workload}}}}}

    def _audit_notes(self, resources: list[Resource]) -> None:
        """PeerAuthentication has no dry-run (§1, §12): in audit mode, say which ones still refuse plaintext."""
        strict: dict[str, list[tuple[str, Resource]]] = {}
        for res in resources:
            if res.kind == "PeerAuthentication" and (what := _strict_part(res.spec or {})):
                strict.setdefault(res.namespace, []).append((what, res))
        for namespace, found in strict.items():
            mesh = ", mesh-wide" if namespace == self.root_namespace else ""
            names = ", ".join(f"{namespace}/{res.name} ({what}{mesh})" for what, res in found)
            self.diag.note("MP311", f"--mode audit: PeerAuthentication {names} still "
                           f"refuse{'s' if len(found) == 1 else ''} plaintext requests",
                           next(iter(found[0][1].origins), None),
                           "Istio has no dry-run for PeerAuthentication (istio.md §1, §12); to watch plaintext "
                           "clients before refusing them, write 'mtls permissive' until you enforce")

    # -- PeerAuthentication (§12) --------------------------------------------
    def _peer(self, namespace: str, name: str, spec: dict[str, Any], origins: tuple[Span | None, ...]) -> Resource:
        return Resource(API, "PeerAuthentication", namespace, name, spec, tuple(o for o in origins if o))

    def _mesh_mtls(self, graph: AccessGraph) -> Resource:
        # A PA without selector in the root namespace is mesh-wide (§12).
        return self._peer(self.root_namespace, "default", {"mtls": {"mode": _mode(graph.mesh_mtls)}},
                          (graph.mesh_mtls_origin,))

    def _namespace_mtls(self, graph: AccessGraph, namespace: str, origin: Span | None) -> Resource:
        # Pinned per managed namespace, so the policy does not depend on someone else's mesh-wide PA (§12:
        # with several mesh-level PAs the oldest wins).
        return self._peer(namespace, "default", {"mtls": {"mode": _mode(graph.namespace_mtls(namespace))}},
                          (origin,))

    def _workload_mtls(self, graph: AccessGraph, svc: Service) -> Resource:
        # One PA per workload carries both its mode and portLevelMtls, keyed by container port (§8, §12).
        spec: dict[str, Any] = {
            "selector": {"matchLabels": dict(svc.labels)},
            "mtls": {"mode": _mode(graph.service_mtls(svc))},
        }
        if svc.port_mtls:
            # string keys: kustomize refuses integer map keys; the apiserver reads both the same
            spec["portLevelMtls"] = {str(number): {"mode": _mode(mode)} for number, mode in svc.port_mtls}
        return self._peer(svc.namespace, join(svc.name, "mtls"), spec, svc.origins)

    # -- AuthorizationPolicy (§1-§6) -------------------------------------------
    def _policy(self, namespace: str, name: str, spec: dict[str, Any], origins: tuple[Span, ...]) -> Resource:
        annotations = ((DRY_RUN, "true"),) if self.mode == "audit" else ()
        return Resource(API, "AuthorizationPolicy", namespace, name, spec, tuple(origins), annotations)

    def _rules_policies(self, graph: AccessGraph, svc: Service, action: Action,
                        rules: tuple[Rule, ...]) -> list[Resource]:
        """``SERVICE-ACTION``, split into ``SERVICE-ACTION-2``, ... where one object would grow past the
        Kubernetes limits (backends/limits.py) or the CRD's 512 rules. Several policies of one action on
        one selector mean the same as one: a request matching any rule of any DENY policy is refused, of
        any ALLOW policy admitted (§1, §4)."""
        return self._action_policies(graph, svc.namespace, (svc.name, action.value), dict(svc.labels), action,
                                     rules, f"'{svc.namespace}/{svc.name}'")

    def _action_policies(self, graph: AccessGraph, namespace: str, base: tuple[str, ...], labels: dict[str, str] | None,
                         action: Action, rules: tuple[Rule, ...], what: str) -> list[Resource]:
        """The policies ``base``, ``base-2``, ... of one action on one selector (``labels`` None: none, every
        workload of the namespace, §2)."""
        head: dict[str, Any] = {"action": action.value.upper(), "rules": []}
        if labels is not None:
            head = {"selector": {"matchLabels": labels}, **head}
        entries = [(rule, piece) for rule in rules
                   for piece in _pieces(self._rule(graph, rule, action), SPLIT_BUDGET - json_size(head))]
        out = []
        for number, part in enumerate(_fill(entries, json_size(head)), start=1):
            spec = {**head, "rules": [entry for _, entry in part]}
            origins = tuple(sorted({rule.origin for rule, _ in part}))
            name = join(*base, number if number > 1 else "")
            out.append(self._policy(namespace, name, spec, origins))
        if len(out) > 1:
            names = ", ".join(res.name for res in out)
            self.diag.note("MP313", f"the {action.value} rules of {what} are split into "
                           f"{len(out)} AuthorizationPolicies ({names}) to stay within the Kubernetes limits",
                           rules[0].origin, f"several {action.value.upper()} policies on one workload mean the "
                           "same as one (istio.md §1, §4); the limits are in docs/limits.md")
        return out

    def _rule(self, graph: AccessGraph, rule: Rule, action: Action) -> dict[str, Any]:
        """One DSL rule -> one rule entry, ``from`` and ``to`` together (§4, §10)."""
        if rule.grpc and (rule.paths or rule.methods):
            # the grammar never writes both; emitted together they would be OR'ed paths, so refuse
            self.unsupported("a rule with both grpc and methods or paths", rule.origin)
        if rule.is_http and not rule.ports:
            # §9: an HTTP-only DENY field on a TCP port denies all TCP traffic there; never emit it unbounded.
            self.unsupported("a rule with methods or paths but no HTTP port", rule.origin)
        for cond in rule.conditions:
            problem = envoy_header_problem(cond.name) if cond.kind is ConditionKind.HEADER else None
            if problem is not None:
                # what Envoy's authorization sees of this header is not (always) what the client sent
                # (docs/targets/istio.md "Headers Envoy sets")
                self.unsupported(f"a condition on header '{cond.name}'", rule.origin,
                                 problem + "; no rule of this target can test it exactly")
        entry: dict[str, Any] = {}
        sources = self._sources(graph, rule)
        if action is Action.DENY and graph.trust_domain_origin is None and \
                any(src.kind is SourceKind.MESH for src in rule.sources):
            self.diag.note("MP312", f"'*' in this deny rule matches the peers of trust domain "
                           f"{graph.trust_domain} only", rule.origin,
                           "istiod does not rewrite 'cluster.local/*' to the mesh's trust domain (istio.md §7): "
                           "if yours is another, state it with 'trust-domain', or the rule refuses nobody")
        issuers = rule.issuers
        if issuers:
            # a valid token of the issuer with a non-empty sub: requestPrincipals ISSUER/* is iss exact and sub
            # '.+' (istio.md §5; pilot/pkg/security/authz/model/generator.go extendedPrincipal). It is a field of
            # a source, AND'ed with that source's other fields, so it goes into every from entry (§4).
            request_principals = [f"{url}/*" for url in issuers]
            sources = [{"source": {**entry["source"], "requestPrincipals": request_principals}} for entry in sources] \
                or [{"source": {"requestPrincipals": request_principals}}]
        if sources:
            entry["from"] = sources
        when = self._when(rule)
        operation: dict[str, Any] = {}
        if rule.ports:
            operation["ports"] = [str(p) for p in rule.ports]  # strings, container ports (§5, §8)
        methods = list(rule.methods)
        paths: list[str] = []
        if rule.grpc:
            methods = ["POST"]  # gRPC is always POST (§14)
            paths = [f"/{g.service}/{g.method}" if g.method else f"/{g.service}/*" for g in rule.grpc]
        for p in rule.paths:
            paths.extend(_paths(p))
        if methods:
            operation["methods"] = methods
        if paths:
            operation["paths"] = sorted(set(paths))
        if operation:
            entry["to"] = [{"operation": operation}]
        if when:
            entry["when"] = when
        return entry

    @staticmethod
    def _when(rule: Rule) -> list[dict[str, Any]]:
        """Header and claim conditions, in the rule's own entry so that they AND with its from and to (§4):
        ``request.headers[NAME]`` is an exact string match, ``*`` the header present (§5, §6); a claim is
        ``request.auth.claims[NAME]``, which matches a string claim equal to the value or a list claim holding
        it, and reads ``scope`` and ``permission`` split at spaces (docs/targets/istio.md)."""
        out: list[dict[str, Any]] = []
        for cond in rule.conditions:
            if cond.kind is ConditionKind.HEADER:
                out.append({"key": f"request.headers[{cond.name}]", "values": [cond.value or "*"]})
            elif cond.kind is ConditionKind.CLAIM:
                out.append({"key": f"request.auth.claims[{cond.name}]", "values": [cond.value or ""]})
        return out

    @staticmethod
    def _sources(graph: AccessGraph, rule: Rule) -> list[dict[str, Any]]:
        """Sources are OR'ed: one ``from`` entry per field (principals, ipBlocks), since fields inside one
        source are AND'ed (§4)."""
        kinds = {s.kind for s in rule.sources}
        if SourceKind.ANY in kinds:
            return []  # any client at all: no ``from`` (§3)
        principals: list[str] = []
        blocks: list[str] = []
        for src in rule.sources:
            if src.kind is SourceKind.MESH:
                # any authenticated workload of the mesh: the prefix of our trust domain's identities, not "*"
                # (any peer the mesh trusts, of any trust domain, §5, §6); 2 segments, so istiod leaves it as
                # written (no alias expansion, no rewriting of cluster.local, §7)
                principals.append(f"{graph.trust_domain}/*")
            elif src.kind is SourceKind.IDENTITY and SourceKind.MESH not in kinds:
                principals.append(f"{graph.trust_domain}/ns/{src.namespace}/sa/{src.account}")
            elif src.kind is SourceKind.NAMESPACE and SourceKind.MESH not in kinds:
                # a principal prefix, not ``namespaces``: that field matches /ns/NS/ in a peer of any trust
                # domain (§5); a 5-segment principal keeps ours and istiod expands its aliases (§7)
                principals.append(f"{graph.trust_domain}/ns/{src.namespace}/sa/*")
            elif src.kind is SourceKind.CIDR:
                blocks.append(src.cidr)
        out: list[dict[str, Any]] = []
        if principals:
            out.append({"source": {"principals": sorted(set(principals))}})
        if blocks:
            out.append({"source": {"ipBlocks": blocks}})
        return out


#: the CRD's maxItems for ``spec.rules`` (../shared/schemas/istio)
MAX_RULES = 512


#: the value lists of a rule entry whose values are OR'ed (§4), so that one list cut in two makes two
#: entries that together match what it matched: (side, field of that side)
_CUTTABLE = (("from", "source", "principals"), ("from", "source", "ipBlocks"),
             ("to", "operation", "paths"), ("to", "operation", "methods"), ("to", "operation", "ports"))


def _paths(match: PathMatch) -> list[str]:
    """A path of the language as Istio path values (istio.md §5: matched on ``:path`` without its query string;
    §6: ``abc*`` a string prefix, also ``abc`` itself; ``*abc`` a suffix; case-sensitive)."""
    if match.kind is PathKind.PREFIX:
        # /a/* means /a and everything under /a/: Istio's "/a/*" is the prefix "/a/" only (§6).
        return [match.value, match.value + "/*"]
    if match.kind is PathKind.STARTS:
        return [match.value + "*"]
    if match.kind is PathKind.SUFFIX:
        return ["*" + match.value]
    return [match.value]


def _pieces(entry: dict[str, Any], budget: int) -> list[dict[str, Any]]:
    """A rule entry larger than ``budget`` as several entries that match together exactly what it matched.

    A rule matches when one of its ``from`` entries and one of its ``to`` entries match, and within a
    field any value (§4): so each ``from`` entry may go on its own, and a value list may be cut in
    halves, until every piece fits (a single value larger than the budget stays, and the output's
    limit check refuses it if it is too large for the API server)."""
    if json_size(entry) <= budget:
        return [entry]
    if len(entry.get("from", ())) > 1:
        return [piece for one in entry["from"] for piece in _pieces({**entry, "from": [one]}, budget)]
    if len(entry.get("to", ())) > 1:
        return [piece for one in entry["to"] for piece in _pieces({**entry, "to": [one]}, budget)]
    lists = [(json_size(entry[side][0][kind][field]), side, kind, field) for side, kind, field in _CUTTABLE
             if side in entry and len(entry[side][0][kind].get(field, ())) > 1]
    if not lists:
        return [entry]
    _, side, kind, field = max(lists)
    values = entry[side][0][kind][field]
    halves = (values[: len(values) // 2], values[len(values) // 2:])
    return [piece for half in halves
            for piece in _pieces({**entry, side: [{kind: {**entry[side][0][kind], field: half}}]}, budget)]


def _fill(entries: list[tuple[Rule, dict[str, Any]]], head: int) -> list[list[tuple[Rule, dict[str, Any]]]]:
    """The rule entries in order, in parts of at most MAX_RULES entries and SPLIT_BUDGET bytes of spec
    JSON each (``head``: the spec without rules); an entry larger than the budget goes alone, and the
    output's limit check refuses it if it is too large for the API server."""
    parts: list[list[tuple[Rule, dict[str, Any]]]] = [[]]
    size = head
    for rule, entry in entries:
        grows = json_size(entry) + (1 if parts[-1] else 0)  # the entry, and a comma after the first
        if parts[-1] and (len(parts[-1]) == MAX_RULES or size + grows > SPLIT_BUDGET):
            parts.append([])
            size, grows = head, grows - 1
        parts[-1].append((rule, entry))
        size += grows
    return parts


def _strict_part(spec: dict[str, Any]) -> str:
    """What of a PeerAuthentication refuses plaintext: "STRICT", "STRICT on 8443", or "" for nothing."""
    if spec["mtls"]["mode"] == "STRICT":
        return "STRICT"
    ports = [port for port, level in (spec.get("portLevelMtls") or {}).items() if level["mode"] == "STRICT"]
    return f"STRICT on {', '.join(ports)}" if ports else ""


def _mode(mode: Mtls) -> str:
    return mode.value.upper()
