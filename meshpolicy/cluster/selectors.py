"""Which pods a ``.mesh`` service's labels select, and when two services provably select different pods.

A service's labels are an equality selector: a pod is selected when it carries every one of
them. Two selectors are disjoint *by their labels* when they give one key different values
(the resolver's MP118 rule); otherwise only the pods themselves can tell, and
:meth:`PodIndex.shared` answers from the manifests given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .model import Labels, Workload


def selects(selector: Labels, labels: Labels | dict[str, str]) -> bool:
    """Whether a pod carrying ``labels`` is selected by ``selector`` (every pair present)."""
    have = labels if isinstance(labels, dict) else dict(labels)
    return all(have.get(k) == v for k, v in selector)


def disjoint_by_labels(a: Labels, b: Labels) -> bool:
    """No pod can match both: one key with different values (LANGUAGE §2.2, MP118)."""
    other = dict(b)
    return any(k in other and other[k] != v for k, v in a)


class PodIndex:
    """The workloads of one namespace, indexed by label pair: selecting is intersecting small sets."""

    def __init__(self, workloads: Sequence[Workload]):
        self.workloads = tuple(workloads)
        self._by_pair: dict[tuple[str, str], set[int]] = {}
        for i, w in enumerate(self.workloads):
            for pair in w.labels:
                self._by_pair.setdefault(pair, set()).add(i)
        self._cache: dict[Labels, frozenset[int]] = {}

    def select(self, selector: Labels) -> frozenset[int]:
        """Indexes of the workloads whose pods the selector selects (an empty selector: none, as in .mesh
        every service has labels)."""
        hit = self._cache.get(selector)
        if hit is not None:
            return hit
        if not selector:
            found: frozenset[int] = frozenset()
        else:
            sets = sorted((self._by_pair.get(pair, set()) for pair in selector), key=len)
            found = frozenset(sets[0].intersection(*sets[1:]))
        self._cache[selector] = found
        return found

    def selected(self, selector: Labels) -> list[Workload]:
        return [self.workloads[i] for i in sorted(self.select(selector))]

    def shared(self, a: Labels, b: Labels) -> list[Workload]:
        """The workloads whose pods both selectors select (none when disjoint by labels)."""
        if disjoint_by_labels(a, b):
            return []
        return [self.workloads[i] for i in sorted(self.select(a) & self.select(b))]


def by_namespace(workloads: Iterable[Workload]) -> dict[str, PodIndex]:
    grouped: dict[str, list[Workload]] = {}
    for w in workloads:
        grouped.setdefault(w.namespace, []).append(w)
    return {ns: PodIndex(ws) for ns, ws in grouped.items()}
