"""The meshes' admission rules that a CRD's JSON Schema does not carry, applied by ``--crds``.

A manifest can pass its CRD's ``openAPIV3Schema`` and still be refused when it is applied: by a CEL rule
(``x-kubernetes-validations``, which JSON Schema does not evaluate) or by the mesh's validating webhook.
Each rule below is written from the upstream source it cites; ``docs/targets/*.md`` say which we rely on.
Today they cover paths (the rules a path written in the language could meet: issue 9) and the other
checks of the same fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

#: a problem: (JSON path below the document, message)
Problem = tuple[str, str]

# -- Istio ------------------------------------------------------------------------------------------
# istio/istio @34a8b5a7 pkg/config/validation/validation.go ValidateAuthorizationPolicy: every operation's
# values go through pkg/config/security/security.go CheckEmptyValues, and paths/notPaths through
# CheckValidPathTemplate.

ISTIO_MATCH_ONE, ISTIO_MATCH_ANY = "{*}", "{**}"
#: security.go validLiteral: RFC 3986 pchar, the literal segments of a path template must match it
ISTIO_LITERAL = re.compile(r"^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$")
ISTIO_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")


def istio_path_problem(path: str) -> str | None:
    """security.go ``CheckValidPathTemplate`` for one value (and ``CheckEmptyValues``)."""
    if path == "":
        return "empty value not allowed"
    template = ISTIO_MATCH_ONE in path or ISTIO_MATCH_ANY in path
    seen_any = False
    for glob in path.strip("/").split("/"):
        if glob in (ISTIO_MATCH_ONE, ISTIO_MATCH_ANY):
            if seen_any:
                return f"invalid or unsupported path {path}: {{**}} is not the last operator"
            seen_any = glob == ISTIO_MATCH_ANY
            continue
        if "{" in glob or "}" in glob:
            return f"invalid or unsupported path {path}: contains '{{' or '}}' beyond a supported path template"
        if template and not ISTIO_LITERAL.match(glob):
            return f"invalid or unsupported path {path}: contains segment {glob} with invalid string literal"
    return None


def _istio_authorization_policy(spec: dict[str, Any]) -> Iterator[Problem]:
    for r, rule in enumerate(spec.get("rules") or []):
        for t, to in enumerate((rule or {}).get("to") or []):
            operation = (to or {}).get("operation") or {}
            for field in ISTIO_OPERATION_FIELDS:
                for v, value in enumerate(operation.get(field) or []):
                    where = f"spec/rules/{r}/to/{t}/operation/{field}/{v}"
                    if field.lower().endswith("paths") and isinstance(value, str):
                        problem = istio_path_problem(value)
                        if problem:
                            yield where, f"istiod's webhook refuses it: {problem}"
                    elif value == "":
                        yield where, "istiod's webhook refuses it: empty value not allowed"


# -- Gateway API (Linkerd's routes) -------------------------------------------------------------------
# The HTTPRoute CRD's CEL rules on .spec.rules[].matches[].path (gateway.networking.k8s.io v1 and v1beta1,
# bundle v1.1.1 as Linkerd 2.20 ships it; ../shared/schemas/linkerd/cel-rules.json), for Exact and
# PathPrefix values. The CRD's maxLength (1024) is in the schema itself.

GATEWAY_PATH_CHARACTERS = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")
GATEWAY_PATH_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda v: v.startswith("/"), "value must be an absolute path and start with '/'"),
    (lambda v: "//" not in v, "must not contain '//'"),
    (lambda v: "/./" not in v, "must not contain '/./'"),
    (lambda v: "/../" not in v, "must not contain '/../'"),
    (lambda v: "%2f" not in v, "must not contain '%2f'"),
    (lambda v: "%2F" not in v, "must not contain '%2F'"),
    (lambda v: "#" not in v, "must not contain '#'"),
    (lambda v: not v.endswith("/.."), "must not end with '/..'"),
    (lambda v: not v.endswith("/."), "must not end with '/.'"),
    (lambda v: bool(GATEWAY_PATH_CHARACTERS.match(v)),
     "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$)"),
)


def gateway_path_problems(value: str) -> list[str]:
    """Every CEL path rule an Exact or PathPrefix value breaks."""
    return [message for holds, message in GATEWAY_PATH_RULES if not holds(value)]


def _route_paths(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(JSON path, value) of every Exact or PathPrefix path match of an HTTPRoute."""
    for r, rule in enumerate(spec.get("rules") or []):
        for m, match in enumerate((rule or {}).get("matches") or []):
            path = (match or {}).get("path")
            if isinstance(path, dict) and path.get("type", "PathPrefix") in ("Exact", "PathPrefix"):
                yield f"spec/rules/{r}/matches/{m}/path/value", path.get("value", "/")


def _gateway_http_route(spec: dict[str, Any]) -> Iterator[Problem]:
    for where, value in _route_paths(spec):
        for message in gateway_path_problems(str(value)):
            yield where, f"the HTTPRoute CRD's validation refuses it: {message}"


def _linkerd_http_route(spec: dict[str, Any]) -> Iterator[Problem]:
    # linkerd/linkerd2 @b24cd405 policy-controller/runtime/src/admission.rs Validate<HttpRouteSpec> ->
    # index/src/routes/http.rs path_match(): Exact and PathPrefix values must start with '/'
    for where, value in _route_paths(spec):
        if not str(value).startswith("/"):
            yield where, "Linkerd's webhook refuses it: a path must start with '/'"


def _grpc_route(spec: dict[str, Any]) -> Iterator[Problem]:
    # the GRPCRoute CRD's CEL rule and linkerd index/src/routes/grpc.rs: a method match needs service or method
    for r, rule in enumerate(spec.get("rules") or []):
        for m, match in enumerate((rule or {}).get("matches") or []):
            method = (match or {}).get("method")
            if isinstance(method, dict) and not (method.get("service") or method.get("method")):
                yield (f"spec/rules/{r}/matches/{m}/method",
                       ("the GRPCRoute CRD's validation refuses it: one or both of 'service' or 'method' must "
                        "be specified"))


#: (API group, kind) -> the rules beyond its schema
RULES: dict[tuple[str, str], Callable[[dict[str, Any]], Iterator[Problem]]] = {
    ("security.istio.io", "AuthorizationPolicy"): _istio_authorization_policy,
    ("gateway.networking.k8s.io", "HTTPRoute"): _gateway_http_route,
    ("policy.linkerd.io", "HTTPRoute"): _linkerd_http_route,
    ("gateway.networking.k8s.io", "GRPCRoute"): _grpc_route,
}


def problems(doc: dict[str, Any]) -> list[Problem]:
    """What admission would refuse in one manifest, beyond its schema."""
    group = str(doc.get("apiVersion", "")).rpartition("/")[0]
    rules = RULES.get((group, str(doc.get("kind", ""))))
    spec = doc.get("spec")
    if rules is None or not isinstance(spec, dict):
        return []
    return list(rules(spec))
