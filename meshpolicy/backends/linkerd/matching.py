"""How Linkerd picks the route rule of an HTTP request (../shared/targets/linkerd.md §4.3), as planning and the
check both need it: a route match, its score, and the choice among the matches of a port."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .callers import NOBODY, Callers

EXACT, PATH_PREFIX, REGEX = "Exact", "PathPrefix", "RegularExpression"   # HTTPRoute path match types
#: in a route match: no method condition; in a request class: any method that no rule names
OTHER_METHOD = ""


@dataclass(frozen=True, slots=True, order=True)
class RouteMatch:
    """One HTTPRoute match: a path (``Exact`` or ``PathPrefix``; ``RegularExpression`` for a character
    prefix ``/a*`` or a suffix ``*.png``, held here as that pattern and written as a regex by :func:`regex`)
    and a method (``OTHER_METHOD``: any)."""

    path_type: str
    path: str
    method: str = OTHER_METHOD

    @property
    def score(self) -> tuple[int, bool]:
        """§4.3 precedence, PX http/match/path.rs: matched length (PathPrefix "/" counts 1), then a method.
        A regex matches the whole path, so its length is the request's: see :meth:`score_on`."""
        exact_length = self.path_type == EXACT or self.path == "/"
        return (len(self.path) if exact_length else len(self.path.rstrip("/")), self.method != OTHER_METHOD)

    def score_on(self, path: str) -> tuple[int, bool]:
        """The score of this match on a request path it matches: a regex scores the whole path's length."""
        if self.path_type == REGEX:
            return (len(path), self.method != OTHER_METHOD)
        return self.score

    def matches(self, method: str, path: str) -> bool:
        if self.method != OTHER_METHOD and self.method != method:
            return False
        if self.path_type == EXACT:
            return path == self.path
        if self.path_type == REGEX:
            return path.endswith(self.path[1:]) if self.path.startswith("*") else path.startswith(self.path[:-1])
        return self.path == "/" or path == self.path or path.startswith(self.path + "/")


#: the characters the Rust regex crate treats as meta characters (regex-syntax ``is_meta_character``), which
#: ``regex::escape`` escapes; escaping any other character is an error in older versions of the crate
RUST_META = frozenset("\\.+*?()|[]{}^$#&-~")


def regex(pattern: str) -> str:
    """``/a*`` -> ``^/a.*$`` and ``*.png`` -> ``^.*\\.png$``: the RegularExpression value for a pattern.

    The proxy takes a regex match only where it spans the whole path (PX http/match/path.rs: ``find`` at 0
    to the end); the anchors say the same in the value itself. Literal characters are escaped as
    ``regex::escape`` does, and only those.
    """
    if pattern.startswith("*"):
        return "^.*" + _escaped(pattern[1:]) + "$"
    return "^" + _escaped(pattern[:-1]) + ".*$"


def _escaped(literal: str) -> str:
    return "".join("\\" + ch if ch in RUST_META else ch for ch in literal)


class ChosenRoutes(dict[RouteMatch, Callers]):
    """Route matches and who their route admits, indexed by path: the matches that can take a request are
    found by looking up the request's path and its segment prefixes, not by testing every match (a
    RegularExpression match is a candidate for every path). Planning and the check replay the route
    choice on every request class of a port, so scanning every match was quadratic in the paths of a
    port (issue 12, docs/performance.md)."""

    def __init__(self, items: Mapping[RouteMatch, Callers] | None = None) -> None:
        super().__init__()
        self._order: dict[RouteMatch, int] = {}
        self._by_path: dict[tuple[str, str], list[RouteMatch]] = {}   # (path type, path) -> matches
        for match, who in (items or {}).items():
            self[match] = who

    def __setitem__(self, match: RouteMatch, who: Callers) -> None:
        if match not in self:
            self._order[match] = len(self._order)
            key = (match.path_type, match.path) if match.path_type in (EXACT, PATH_PREFIX) else ("any", "")
            self._by_path.setdefault(key, []).append(match)
        super().__setitem__(match, who)

    def candidates(self, path: str) -> list[RouteMatch]:
        """Every match whose path can take ``path`` (in the order they were added): Exact ``path``,
        PathPrefix ``/``, ``path`` itself and every ``path[:i]`` followed by ``/``, and every regex."""
        keys = {(EXACT, path), (PATH_PREFIX, "/"), (PATH_PREFIX, path), ("any", "")}
        keys |= {(PATH_PREFIX, path[:i]) for i, char in enumerate(path) if char == "/"}
        found = [m for key in keys for m in self._by_path.get(key, ())]
        return sorted(found, key=self._order.__getitem__)


def best_matches(routes: Mapping[RouteMatch, Callers], method: str, path: str) -> list[RouteMatch]:
    """The matches of ``routes`` that take the request with the highest score (several: a tie)."""
    pool = routes.candidates(path) if isinstance(routes, ChosenRoutes) else list(routes)
    matching = [m for m in pool if m.matches(method, path)]
    if not matching:
        return []
    best = max(m.score_on(path) for m in matching)
    return [m for m in matching if m.score_on(path) == best]


def route_choice(routes: Mapping[RouteMatch, Callers], method: str, path: str) -> Callers | None:
    """Who the route Linkerd picks admits (no route: 404, nobody); ``None`` when tied routes differ.

    A tie goes to the older route (§4.3), which a build cannot control.
    """
    found = {routes[m] for m in best_matches(routes, method, path)}
    if not found:
        return NOBODY
    return found.pop() if len(found) == 1 else None
