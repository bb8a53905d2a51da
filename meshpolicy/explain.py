"""``explain``: can A call B? The decision for one concrete request, with the line that decides it.

A query is written as on the command line: ``FROM -> TO [METHOD] [PATH] [:PORT]``
(or ``grpc pkg.Service/Method`` instead of METHOD and PATH). It is read by the
grammar's ``query`` start rule, with the policy's parser and its diagnostics
(``<question>:1:COL`` and a caret); references are written as in the language,
and a bare name means namespace ``default``, as at the top level of a file. See docs/explain.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .cluster.findings import labels_text
from .cluster.model import Cluster, Workload
from .cluster.ports import number_of
from .cluster.selectors import selects
from .diagnostics import shown
from .errors import UsageError
from .graph.evaluate import (
    Caller,
    Decision,
    OpenProbes,
    Request,
    decide,
    mtls_origin,
    nearest_allow,
)
from .graph.model import DEFAULT_NAMESPACE, AccessGraph, Identity, Mtls, Rule, Token
from .graph.space import UNDECLARED_WORKLOAD_PORT, Universe
from .parse import ast, parse_query
from .parse.errors import QUESTION
from .resolve.conditions import header_name_problem
from .resolve.names import did_you_mean
from .source import SourceFile, Span

#: the address of a caller when neither FROM nor --ip gives one (outside every private range)
DEFAULT_ADDRESS = "192.0.2.10"
ARROW = "->"
_METHOD = re.compile(r"[A-Z][A-Z0-9_-]*")
#: the name the question's diagnostics give it, as a file name
QUESTION_FILE = "<question>"


class QueryError(UsageError):
    """The query cannot be understood (a usage error, exit 2)."""


@dataclass
class Explanation:
    request: Request
    decision: Decision
    mtls: Mtls
    mtls_origin: Span | None
    nearest: tuple[Rule, list[str]] | None = None
    notes: list[str] = field(default_factory=list)
    #: with a target: (kind, namespace, name, file) of each deciding resource, and the reader's decision
    resources: list[tuple[str, str, str, str]] | None = None
    emitted: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        req = self.request
        out: dict[str, Any] = {
            "request": {
                "caller": str(req.caller.identity) if req.caller.identity else None,
                "address": req.caller.ip,
                "namespace": req.namespace,
                "service": req.service,
                "port": req.port,
                "method": req.method,
                "path": req.path,
                "headers": dict(req.headers),
                "token": None if req.token is None else {
                    "issuer": req.token.issuer, "sub": req.token.subject or None,
                    "claims": {**dict(req.token.strings), **{k: list(v) for k, v in req.token.lists}}},
            },
            "allowed": self.decision.allowed,
            "reason": self.decision.reason,
            "mtls": {"mode": self.mtls.value, "set_at": _where(self.mtls_origin)},
            "rules": [_rule_dict(r) for r in self.decision.rules],
            "nearest": None,
            "notes": self.notes,
        }
        if self.nearest is not None and not self.decision.allowed:
            out["nearest"] = dict(_rule_dict(self.nearest[0]), failed=self.nearest[1])
        if self.resources is not None:
            out["resources"] = [{"kind": k, "namespace": ns, "name": n, "file": f} for k, ns, n, f in self.resources]
            out["emitted_allows"] = self.emitted
        return out

    def render(self) -> str:
        d = self.decision
        lines = [str(self.request)]
        headline = {
            "allow": "allowed",
            "probe": "allowed: a kubelet probe path the target keeps open to unauthenticated GETs",
            "unmanaged": "allowed: the namespace is not managed by this policy",
            "deny": "refused by a deny rule (deny wins over every allow)",
            "mtls": f"refused: port {self.request.port} is mTLS strict and the caller is plaintext",
            "default": "refused: no allow rule matches (default deny)",
        }[d.reason]
        lines.append(headline)
        who = "authenticated" if self.request.caller.identity else "plaintext"
        origin = f" (set at {_where(self.mtls_origin)})" if self.mtls_origin else " (the default)"
        lines.append(f"  mtls:    {self.mtls.value}{origin}; the caller is {who}")
        for rule in d.rules:
            lines.append(f"  rule:    {rule}")
        if not d.allowed and self.nearest is not None:
            rule, failed = self.nearest
            lines.append(f"  nearest: {rule}")
            for reason in failed or ["it matches, but the " + ("deny rule wins" if d.reason == "deny" else
                                                                  "mTLS refusal comes first")]:
                lines.append(f"    - {reason}")
        elif not d.allowed and d.reason != "mtls":
            dest = self.request.service or "(undeclared workload)"
            lines.append(f"  nearest: none: no allow rule protects {self.request.namespace}/{dest}")
        if self.resources is not None:
            for kind, ns, name, path in self.resources:
                lines.append(f"  emitted: {kind} {ns}/{name}" + (f" ({path})" if path else ""))
        lines.extend(f"  note:    {n}" for n in self.notes)
        return "\n".join(lines)


def _where(span: Span | None) -> str | None:
    return span.short if span else None


def _rule_dict(rule: Rule) -> dict[str, Any]:
    return {"file": rule.origin.file, "line": rule.origin.line, "text": rule.text}


def split_query(words: list[str]) -> tuple[list[str], list[str]]:
    """``PATH... FROM -> TO ...`` -> (policy paths, question words starting at FROM)."""
    tokens: list[str] = []
    for word in words:
        if word.startswith("--"):
            raise QueryError(f"unknown option {shown(word)}")
        if ARROW in word and word != ARROW:
            left, _, right = word.partition(ARROW)
            tokens += [t for t in (left, ARROW, right) if t]
        else:
            tokens.append(word)
    if tokens.count(ARROW) != 1:
        raise QueryError(f"write the question as PATH... {QUESTION} (quote '->' in the shell: '->')")
    at = tokens.index(ARROW)
    if at < 2:
        raise QueryError("give at least one policy file or folder before FROM -> TO")
    return tokens[: at - 1], tokens[at - 1:]


def question(words: list[str]) -> SourceFile:
    """The question as a one-line source (``<question>``), read by the grammar's ``query`` rule, so that its
    syntax errors are diagnostics with a column and a caret, like a policy's."""
    return SourceFile(QUESTION_FILE, " ".join(words))


def read_question(src: SourceFile) -> ast.Query:
    """Raises :class:`~meshpolicy.diagnostics.MeshError` (MP001) when the question does not read."""
    return parse_query(src)


def _split_ref(ref: str) -> tuple[str, str]:
    ns, slash, name = ref.rpartition("/")
    return (ns if slash else DEFAULT_NAMESPACE), name


def _hint(graph: AccessGraph, ns: str, name: str) -> str:
    close = did_you_mean(f"{ns}/{name}", [str(s) for s in graph.services])
    return f" ({close})" if close else ""


def workload(graph: AccessGraph, cluster: Cluster | None, ref: str) -> tuple[str, Workload | None, list[str]]:
    """With ``--cluster``, a workload's name (``shop/shop-frontend``) for the declared service whose labels
    select its pods: (the service's reference, None, a note); a workload that no service selects is
    returned as itself (ref, the workload, a note); anything else is left as written."""
    ns, name = _split_ref(ref)
    if cluster is None or name == "*" or graph.service((ns, name)) is not None:
        return ref, None, []
    found = [w for w in cluster.workloads if w.namespace == ns and w.name == name]
    if not found:
        return ref, None, []
    if len(found) > 1:
        raise QueryError(f"'{ref}' names {len(found)} workloads ({', '.join(w.kind for w in found)}): "
                         "name the declared service instead")
    w = found[0]
    services = [s for s in graph.services_in(ns) if selects(s.labels, w.labels)]
    if len(services) == 1:
        return str(services[0]), None, [f"{w.ref} is declared service {services[0]} (its labels select its pods)"]
    if services:
        raise QueryError(f"{w.ref} is selected by {', '.join(map(str, services))}: name one of them")
    return ref, w, [f"{w.ref} is a workload that no declared service selects (account '{w.account}')"]


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def caller(graph: AccessGraph, written: ast.Ref, plaintext: bool, ip: str | None,
           cluster: Cluster | None = None) -> tuple[Caller, list[str]]:
    """FROM as written in the language: ``ns/name``, ``name`` (namespace default), ``ns/*``, or an address;
    with ``--cluster`` also a workload's name."""
    if written.kind not in ("name", "address") or _split_ref(written.value)[0] in ("*", "any"):
        raise QueryError(f"'{shown(written.value)}' is not one caller: name a service (ns/name), 'NS/*' or an "
                         "address")
    ref, pod, notes = workload(graph, cluster, written.value)
    address = ip
    if address is not None:
        address = _address(address)
        if address is None:
            raise QueryError(f"--ip '{shown(ip or '')}' is not an IP address")
    literal = _address(ref)
    if literal is not None:
        if ip is not None and address != literal:
            raise QueryError(f"FROM is the address {shown(ref)} but --ip says {shown(ip or '')}")
        return Caller(None, literal), ["an address as FROM is an unauthenticated (plaintext) client"]
    ns, name = _split_ref(ref)
    if pod is not None:
        ident = Identity(pod.namespace, pod.account)
    elif name == "*":
        account = Universe(graph).unlisted()
        ident = Identity(ns, account)
        notes.append(f"'{ref}' stands for an undeclared workload of namespace {ns} (account '{account}')")
    else:
        svc = graph.service((ns, name))
        if svc is None:
            raise QueryError(f"caller '{shown(ref)}' is not a declared service{_hint(graph, ns, name)}; "
                             "write ns/name, 'NS/*' for an undeclared workload, or an address")
        ident = svc.identity
    if plaintext:
        notes.append(f"--plaintext: {ident} calls without mTLS, so it has no identity")
        return Caller(None, address or DEFAULT_ADDRESS), notes
    return Caller(ident, address or DEFAULT_ADDRESS), notes


def request(graph: AccessGraph, query: ast.Query, plaintext: bool = False,
            ip: str | None = None, cluster: Cluster | None = None) -> tuple[Request, list[str]]:
    """The question (``FROM -> TO [METHOD] [PATH] [:PORT]``, or ``grpc pkg.Service/Method``) -> a concrete
    request, with the defaults it assumed as notes; with ``cluster`` (``--cluster``), FROM and TO may name
    workloads."""
    source, notes = caller(graph, query.caller, plaintext, ip, cluster)
    if query.destination.kind is ast.RefKind.WIDE:
        return _every_workload(graph, source, query, notes)
    if query.destination.kind is not ast.RefKind.NAME or _split_ref(query.destination.value)[1] == "*":
        raise QueryError(f"'{shown(query.destination.value)}' is not one destination: name a service (ns/name)")
    to, pod, more = workload(graph, cluster, query.destination.value)
    notes += more
    ns, name = _split_ref(to)
    if pod is not None:
        return _undeclared(graph, source, pod, query, notes)
    svc = graph.service((ns, name))
    if svc is None:
        raise QueryError(f"destination '{shown(to)}' is not a declared service{_hint(graph, ns, name)}")
    pods = None if cluster is None else [w for w in cluster.workloads
                                          if w.namespace == ns and selects(svc.labels, w.labels)]
    ext = graph.namespace(ns)
    if ext is not None and ext.external:
        raise QueryError(f"'{to}' is in external namespace '{ns}': the policy does not protect it")
    method, path, port = _words(query, pods, notes, f"'{svc}' ({labels_text(svc.labels)})")
    http = method is not None or path is not None
    if port is None:
        candidates = svc.http_ports if http else svc.ports
        if candidates:
            port = candidates[0].number
            notes.append(f"port {port} assumed: the first {'HTTP ' if http else ''}port of {svc}")
        elif svc.ports:
            raise QueryError(f"{svc} declares no HTTP port: a METHOD or PATH needs one")
        else:
            port = UNDECLARED_WORKLOAD_PORT
            notes.append(f"{svc} declares no port: port {port} assumed")
    declared = svc.port(port)
    if declared is None and svc.ports:
        notes.append(f"{svc} does not declare port {port}")
    if declared is not None and declared.protocol.is_http:
        if method is None:
            method = "GET"
            notes.append("method GET assumed")
        if path is None:
            path = "/"
            notes.append("path / assumed")
    elif http:
        raise QueryError(f"port {port} of {svc} is not an HTTP port: METHOD and PATH need one")
    return Request(source, ns, name, port, method, path), notes


def _words(query: ast.Query, pods: list[Workload] | None = None, notes: list[str] | None = None,
           owner: str = "the destination") -> tuple[str | None, str | None, int | None]:
    """``[METHOD] [PATH] [:PORT]`` or ``grpc S/M [:PORT]`` -> (method, path, port), each None where absent;
    the grammar has placed them, this checks their values.

    With ``pods`` (``--cluster``: the destination's workloads, ``owner``), ``:NAME`` is a named container port,
    resolved to its number where every pod has it and all agree (as in a rule: :mod:`.cluster.ports`)."""
    method = path = None
    if query.method is not None:
        if not _METHOD.fullmatch(query.method.value):
            raise QueryError(f"'{shown(query.method.value)}' is not an HTTP method: write an upper-case token "
                             "such as GET")
        method = query.method.value
    if query.path is not None:
        if not query.path.value.startswith("/"):
            raise QueryError(f"'{shown(query.path.value)}' is a path pattern: a question names one request, whose "
                             "path starts with '/' (e.g. /img/logo.png)")
        path = query.path.value.split("?", 1)[0]  # a query string never takes part in matching (LANGUAGE §2.4)
    if query.grpc is not None:
        if "/" not in query.grpc.value:
            raise QueryError("write a gRPC call as grpc pkg.Service/Method")
        method, path = "POST", "/" + query.grpc.value
    port: int | None = None
    if query.port is not None:
        written = query.port.value
        if not written.isascii() or not written.isdigit():
            if pods is None:
                raise QueryError(f"bad port ':{shown(written)}': write one port as :N (1-65535); a named port "
                                 "needs --cluster")
            port = _named_port(written, pods, owner)
            if notes is not None:
                notes.append(f"port '{written}' is {port}: the container port of that name")
        elif not 0 < int(written) < 65536:
            raise QueryError(f"bad port ':{written}': write one port as :N (1-65535)")
        else:
            port = int(written)
    return method, path, port


def _named_port(name: str, pods: list[Workload], owner: str) -> int:
    """The number every pod of the destination gives the port ``name``: the meaning of ``:NAME`` in a rule."""
    found = number_of(name, pods, owner)
    if found.number is None:
        raise QueryError(found.message + (f" ({found.hint})" if found.hint else ""))
    return found.number


def _undeclared(graph: AccessGraph, source: Caller, pod: Workload, query: ast.Query,
                notes: list[str]) -> tuple[Request, list[str]]:
    """A request to a workload that no declared service selects: the namespace's default decides."""
    ns = graph.namespace(pod.namespace)
    if ns is None or ns.external or ns not in graph.managed_namespaces:
        raise QueryError(f"{pod.ref} is in namespace '{pod.namespace}', which the policy does not manage")
    method, path, port = _words(query, [pod], notes, pod.ref)
    if port is None:
        ports = sorted({p.number for c in pod.containers for p in c.ports})
        port = ports[0] if ports else UNDECLARED_WORKLOAD_PORT
        notes.append(f"port {port} assumed: " + ("its first container port" if ports else "it declares none"))
    method, path = _undeclared_operation(graph, pod.namespace, port, method, path, notes)
    return Request(source, pod.namespace, None, port, method, path), notes


def _every_workload(graph: AccessGraph, source: Caller, query: ast.Query,
                    notes: list[str]) -> tuple[Request, list[str]]:
    """``NS/**`` as TO: a workload of NS that the policy does not declare, which only NS's ``**`` rules reach."""
    if query.destination.value == "**":
        raise QueryError("'**' is every workload of a namespace: write NS/** for a workload of NS that the policy "
                         "does not declare")
    ns = query.destination.value[:-3]
    managed = graph.namespace(ns)
    if managed is None or managed not in graph.managed_namespaces:
        raise QueryError(f"namespace '{shown(ns)}' is not managed by the policy: nothing restricts who calls it")
    notes.append(f"'{ns}/**' stands for a workload of namespace {ns} that the policy does not declare")
    method, path, port = _words(query, None, notes, f"'{ns}/**'")
    if port is None:
        http = method is not None or path is not None
        named = list(graph.wide_http_ports(ns)) if http else []
        named = named or sorted({p for r in graph.wide_rules(ns) for p in r.ports})
        port = named[0] if named else UNDECLARED_WORKLOAD_PORT
        notes.append(f"port {port} assumed: " + (f"the first {'HTTP ' if http else ''}port of the '{ns}/**' rules"
                                                 if named else "no '**' rule names one"))
    method, path = _undeclared_operation(graph, ns, port, method, path, notes)
    return Request(source, ns, None, port, method, path), notes


def _undeclared_operation(graph: AccessGraph, namespace: str, port: int, method: str | None, path: str | None,
                          notes: list[str]) -> tuple[str | None, str | None]:
    """The method and path of a request to an undeclared workload: HTTP where they are given, and on the ports
    that a ``**`` rule with HTTP fields names, which are HTTP there (LANGUAGE §2.4)."""
    if method is None and path is None and port not in graph.wide_http_ports(namespace):
        return None, None
    if method is None:
        notes.append("method GET assumed")
    if path is None:
        notes.append("path / assumed")
    return method or "GET", path or "/"


#: the subject of the token ``--jwt`` stands for: any non-empty ``sub`` (LANGUAGE 2.4 asks for one)
EXPLAIN_SUBJECT = "explain"


def with_conditions(graph: AccessGraph, req: Request, headers: list[str], jwt: str | None,
                    claims: list[str]) -> tuple[Request, list[str]]:
    """The request with ``--header NAME=VALUE`` (repeatable), ``--jwt ISSUER`` (a valid token of that declared
    issuer, with a ``sub``) and ``--claim NAME=VALUE`` (repeatable; a name given twice is a list claim)."""
    notes: list[str] = []
    if not (headers or jwt or claims):
        return req, notes
    if req.method is None:
        raise QueryError(f"port {req.port} is not an HTTP port: --header, --jwt and --claim need one")
    found: dict[str, str] = {}
    for item in headers:
        name, eq, value = item.partition("=")
        if not eq or header_name_problem(name):
            raise QueryError(f"--header {shown(item)}: write NAME=VALUE with NAME an HTTP token (RFC 7230)")
        if name.lower() in found:
            raise QueryError(f"--header {shown(name.lower())} given twice: a request repeating a header is outside "
                             "what the language promises (LANGUAGE 2.4)")
        found[name.lower()] = value
    token = None
    if claims and jwt is None:
        raise QueryError("--claim needs --jwt ISSUER: a claim is read from a token")
    if jwt is not None:
        issuer = graph.issuer(jwt)
        if issuer is None:
            hint = did_you_mean(jwt, [i.name for i in graph.issuers])
            raise QueryError(f"--jwt {shown(jwt)}: no such issuer" + (f"; {hint}" if hint else ""))
        values: dict[str, list[str]] = {}
        for item in claims:
            name, eq, value = item.partition("=")
            if not eq or not name:
                raise QueryError(f"--claim {shown(item)}: write NAME=VALUE")
            values.setdefault(name, []).append(value)
        strings = tuple(sorted((k, v[0]) for k, v in values.items() if len(v) == 1))
        lists = tuple(sorted((k, tuple(v)) for k, v in values.items() if len(v) > 1))
        token = Token(issuer.url, EXPLAIN_SUBJECT, strings, lists)
        notes.append(f"a valid token of {issuer.name} ({issuer.url}) with sub '{EXPLAIN_SUBJECT}' assumed")
    return replace(req, headers=tuple(sorted(found.items())), token=token), notes


def explain(graph: AccessGraph, req: Request,
            open_probes: OpenProbes = frozenset()) -> Explanation:
    decision = decide(graph, req, open_probes)
    svc = graph.service((req.namespace, req.service)) if req.service else None
    mode = graph.mtls_for(svc, req.namespace, req.port)
    near = nearest_allow(graph, req) if not decision.allowed else None
    return Explanation(req, decision, mode, mtls_origin(graph, req.namespace, req.service, req.port), near)


def attach_resources(result: Explanation, reader: Any, paths: Mapping[tuple[str, str, str], str],
                     target: str) -> None:
    """Name the emitted resources that decide the request on ``target`` (readers with ``explain``)."""
    result.emitted = bool(reader.decide(result.request))
    if result.emitted != result.decision.allowed:
        result.notes.append(f"the {target} output decides this request differently from the source: "
                            f"run 'meshpolicy verify'")
    if not hasattr(reader, "explain"):
        result.resources = []
        result.notes.append(f"the {target} reader cannot name the deciding resources yet")
        return
    result.resources = [(k, ns, n, paths.get((k, ns, n), "")) for k, ns, n in reader.explain(result.request)]
    if not result.resources:
        result.notes.append(f"no {target} resource applies: the mesh's default decides")


def resource_paths(files: Mapping[str, str], docs_of: Callable[[dict[str, str]], list[dict[str, Any]]]
                   ) -> dict[tuple[str, str, str], str]:
    """(kind, namespace, name) -> the file that holds it."""
    out: dict[tuple[str, str, str], str] = {}
    for path, text in files.items():
        for doc in docs_of({path: text}):
            meta = doc.get("metadata") or {}
            out[(doc.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))] = path
    return out
