"""Target rules: on Linkerd, a port that gains routes loses Linkerd's own probe route (ML011).

The predicate is the Linkerd backend's own (:func:`meshpolicy.backends.linkerd.ports_losing_probes`, which
also makes the build note MP304): lint and build cannot disagree about which ports lose their probes.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..backends.linkerd import ports_losing_probes
from ..diagnostics import Related
from ..parse import ast
from ..source import Span
from .context import Context
from .registry import Finding, rule

#: the rules a finding shows as the ones that give the port its routes
_RELATED_MAX = 3


@rule("ML011", "linkerd-probes-refused")
def linkerd_probes_refused(ctx: Context) -> Iterator[Finding]:
    """Linkerd drops its probe route once a port has routes; without ``probes`` nothing opens the probe paths."""
    for policy in ports_losing_probes(ctx.graph):
        svc, number = policy.service, policy.port.number
        routed = [r for r in policy.rules if r.is_http][:_RELATED_MAX]
        yield Finding(
            f"on Linkerd, port {number} of '{svc}' gets routes (rules on it match methods, paths or gRPC calls) "
            f"and '{svc}' declares no probes: Linkerd then drops its own probe route, so the kubelet's probes of "
            "that port are refused and the pods never become Ready",
            _port_span(ctx, svc.key, number) or ctx.service_span(svc.key) or (svc.origins[0] if svc.origins
                                                                             else None),
            f"declare the pods' httpGet probe paths ('probes /healthz' on '{svc.name}') so that meshpolicy opens "
            "them to the kubelet; if its pods have no HTTP probe on this port, say so with '# lint: ignore ML011'",
            tuple(Related(r.origin, "gives the port a route") for r in routed))


def _port_span(ctx: Context, key: tuple[str, str], number: int) -> Span | None:
    node = ctx.services.get(key)
    if node is None:
        return None
    for attr in node.attrs:
        if isinstance(attr, ast.PortDecl) and attr.number.value == str(number):
            return attr.span
    return None
