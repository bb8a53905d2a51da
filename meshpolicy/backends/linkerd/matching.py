"""How Linkerd picks the route rule of an HTTP request (../shared/targets/linkerd.md §4.3), as planning and the
check both need it: a route match, its score, and the choice among the matches of a port."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .callers import NOBODY, Callers

EXACT, PATH_PREFIX = "Exact", "PathPrefix"   # HTTPRoute path match types
#: in a route match: no method condition; in a request class: any method that no rule names
OTHER_METHOD = ""


@dataclass(frozen=True, slots=True, order=True)
class RouteMatch:
    """One HTTPRoute match: a path (``Exact`` or ``PathPrefix``) and a method (``OTHER_METHOD``: any)."""

    path_type: str
    path: str
    method: str = OTHER_METHOD

    @property
    def score(self) -> tuple[int, bool]:
        """§4.3 precedence, PX http/match/path.rs: matched length (PathPrefix "/" counts 1), then a method."""
        exact_length = self.path_type == EXACT or self.path == "/"
        return (len(self.path) if exact_length else len(self.path.rstrip("/")), self.method != OTHER_METHOD)

    def matches(self, method: str, path: str) -> bool:
        if self.method != OTHER_METHOD and self.method != method:
            return False
        if self.path_type == EXACT:
            return path == self.path
        return self.path == "/" or path == self.path or path.startswith(self.path + "/")


def best_matches(routes: Mapping[RouteMatch, Callers], method: str, path: str) -> list[RouteMatch]:
    """The matches of ``routes`` that take the request with the highest score (several: a tie)."""
    matching = [m for m in routes if m.matches(method, path)]
    if not matching:
        return []
    best = max(m.score for m in matching)
    return [m for m in matching if m.score == best]


def route_choice(routes: Mapping[RouteMatch, Callers], method: str, path: str) -> Callers | None:
    """Who the route Linkerd picks admits (no route: 404, nobody); ``None`` when tied routes differ.

    A tie goes to the older route (§4.3), which a build cannot control.
    """
    found = {routes[m] for m in best_matches(routes, method, path)}
    if not found:
        return NOBODY
    return found.pop() if len(found) == 1 else None
