"""Exact or refused: replay Linkerd's decision over a port's plan, before anything is emitted.

:func:`check` returns every :class:`~.plan.Refusal` (MP301) for one plan; the backend emits a port only
when there is none. For HTTPRoutes it replays the route choice (../shared/targets/linkerd.md §4.3) on
every request class; for GRPCRoutes it proves each whole service to have one set of callers and nothing
outside them allowed (anything else gets 404).
"""

from __future__ import annotations

from collections.abc import Iterator

from ...graph.model import Action
from .matching import EXACT, PATH_PREFIX, REGEX, best_matches, regex, route_choice
from .plan import GrpcRoutes, HttpRoutes, PortPlan, PortPolicy, Refusal, Refused

#: Gateway API's HTTPRouteMatch method enum (both HTTPRoute groups share it)
ROUTE_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def check(plan: PortPlan) -> list[Refusal]:
    """Every reason the plan would not hold exactly on Linkerd; empty when it does."""
    found = list(_methods_outside_the_enum(plan.port))
    if isinstance(plan, Refused):
        found += plan.refusals
    elif isinstance(plan, HttpRoutes):
        found += _regexes_too_long(plan)
        found += _replay_http_routes(plan)
    elif isinstance(plan, GrpcRoutes):
        found += _replay_grpc_routes(plan)
    return found


def _methods_outside_the_enum(policy: PortPolicy) -> Iterator[Refusal]:
    for rule in policy.rules:
        for method in rule.methods:
            if method not in ROUTE_METHODS:
                yield Refusal(f"HTTP method '{method}'", rule.origin,
                              "HTTPRoute matches only GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, "
                              "TRACE and PATCH (Gateway API method enum)")


#: the HTTPRoute CRD's maxLength of a path match's value (both API groups)
MAX_PATH_VALUE = 1024


def _regexes_too_long(plan: HttpRoutes) -> Iterator[Refusal]:
    """A pattern near the language's 1024 characters can outgrow the CRD's limit once written as a regex."""
    for pattern in sorted({m.path for m in plan.chosen() if m.path_type == REGEX}):
        if len(regex(pattern)) > MAX_PATH_VALUE:
            for rule in plan.port.rules:
                if any(str(p) == pattern for p in rule.paths):
                    yield Refusal(f"the path pattern '{pattern[:40]}...' of {plan.port.label}", rule.origin,
                                  f"written as a RegularExpression ({len(regex(pattern))} characters with its "
                                  f"anchors and escapes) it is longer than the {MAX_PATH_VALUE} characters an "
                                  "HTTPRoute path match holds; shorten it")


def _replay_http_routes(plan: HttpRoutes) -> Iterator[Refusal]:
    """Linkerd's route choice (§4.3) on every request class; a refusal where one would be decided otherwise."""
    chosen = plan.chosen()
    policy = plan.port
    for (method, path), wanted in plan.wanted.items():
        assert method is not None and path is not None  # an HTTP port's classes are requests
        if route_choice(chosen, method, path) == wanted:
            continue
        rivals = best_matches(chosen, method, path)
        patterns = sorted({m.path for m in rivals if m.path_type == REGEX})
        if patterns:
            # a regex takes the whole path: it outranks every prefix and ties with Exact and other regexes
            culprits = [r for r in policy.rules if any(r.http_matches(method, path) and p.matches(path)
                                                       for p in r.paths)] or list(policy.rules)
            for rule in culprits:
                named = " and ".join(repr(p) for p in patterns)
                yield Refusal(f"'{rule.text}' where the path pattern{'s' if len(patterns) > 1 else ''} {named} "
                              f"meet{'' if len(patterns) > 1 else 's'} paths with other callers ({policy.label})",
                              rule.origin,
                              f"for example {method or 'any other method'} {path}: Linkerd holds /a* and *SUFFIX only "
                              "as RegularExpression matches, which score the whole path's length, so they "
                              "outrank every PathPrefix and tie with Exact matches and with each other, a tie "
                              "going to the older route (linkerd.md §4.3); give the overlapping paths the same "
                              "callers, or put them on another port")
            continue
        tied = ({m.path for m in rivals if m.path_type == EXACT}
                & {m.path for m in rivals if m.path_type == PATH_PREFIX})
        value = next(iter(tied), path)
        culprits = [r for r in policy.rules if any(p.value == value for p in r.paths)
                    or any(f"/{g.service}/{g.method}" == value for g in r.grpc)] or list(policy.rules)
        what = (f"the path '{value}' exactly and the prefix '{value}/*' with different callers"
                if tied else f"the rules for {method or 'any other method'} {path}")
        for rule in culprits:
            yield Refusal(f"{what} ({policy.label})", rule.origin,
                          "Linkerd ranks Exact and PathPrefix of one path as equal and then picks the "
                          "older route (linkerd.md §4.3); give both the same callers, or split the paths")


def _replay_grpc_routes(plan: GrpcRoutes) -> Iterator[Refusal]:
    """A GRPCRoute service match takes every POST /svc/<anything>, a method match also /svc/Method/more,
    and nothing else matches (404, §4.2, §4.3): exact when each whole service has one set of callers
    and nothing outside them is allowed."""
    policy = plan.port
    for service, taken in plan.inside.items():
        if len({plan.wanted[r] for r in taken}) > 1:
            for rule in policy.rules:
                if (rule.methods or rule.paths or any(g.method for g in rule.grpc)) and \
                        any(rule.http_matches(*r) for r in taken):
                    yield Refusal(f"'{rule.text}' inside the whole gRPC service '{service}' on {policy.label}",
                                  rule.origin, "a whole gRPC service is exact only as a GRPCRoute, whose "
                                  "method match would also take /Service/Method/more; put single methods "
                                  "and paths on another port, or name every method")
    inside = {r for taken in plan.inside.values() for r in taken}
    for request, wanted in plan.wanted.items():
        if request not in inside and wanted:
            for rule in policy.rules:
                if rule.action is Action.ALLOW and rule.http_matches(*request):
                    yield Refusal(f"'{rule.text}' on {policy.label}, a gRPC port with whole-service matches",
                                  rule.origin, "once GRPCRoutes exist, a request that none matches gets 404 "
                                  "(linkerd.md §4.3), so only whole gRPC services can be allowed here; put "
                                  "single methods (HTTPRoutes on an HTTP/2 Server) on another port")
