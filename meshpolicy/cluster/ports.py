"""A container port named in a rule (``allow web -> orders :http``) or in ``explain``'s question, resolved to
its number through the pods that the destination's labels select (docs/cluster.md, "Named ports").

The name stands for one number only where **every** selected pod has a container port of that name and all
of them give it the same number: a port that some pods serve under the name and others do not, or serve
under another number, is not one port the policy can name, so it is refused with every workload named.
Only containers that run beside the application count (not an init container that has exited).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..diagnostics import Related
from ..graph.model import Service
from .findings import labels_text
from .model import Cluster, Workload
from .selectors import PodIndex, by_namespace


@dataclass(frozen=True, slots=True)
class PortNumber:
    """What a port name stands for on some pods: ``number``, or why it stands for none.

    ``absent``: no selected pod has a container port of that name (a member of a group or wildcard is then
    left out of the rule, as one that does not declare a written number is); otherwise ``message``, ``hint``
    and ``related`` (the manifest lines of each workload) say why the pods do not give one number."""

    number: int | None
    absent: bool = False
    message: str = ""
    hint: str | None = None
    related: tuple[Related, ...] = ()


def numbers(w: Workload, name: str) -> list[tuple[int, Related]]:
    """The numbers a workload's running containers give the port ``name``, each with its manifest line."""
    return [(p.number, Related(p.origin, f"{w.ref} names containerPort {p.number} '{name}' here"))
            for c in w.containers if c.runs for p in c.ports if p.name == name]


def number_of(name: str, pods: Sequence[Workload], owner: str) -> PortNumber:
    """The one number that every workload of ``pods`` (the pods of ``owner``, a service or a workload) gives the
    port ``name``."""
    if not pods:
        return PortNumber(None, absent=True, message=f"the labels of {owner} select no workload in the manifests given: no "
                          f"container port is named '{name}'",
                          hint="make its labels those of the pod template, or write the port's number")
    found = {w: numbers(w, name) for w in pods}
    given = sorted({n for each in found.values() for n, _ in each})
    if not given:
        named = sorted({f"{p.name} ({p.number})" for w in pods for c in w.containers if c.runs for p in c.ports
                        if p.name})
        hint = (f"the ports they name: {', '.join(named)}" if named
                else "they name none of their container ports: write the port's number")
        return PortNumber(None, absent=True, message=f"no pod of {owner} has a container port named "
                          f"'{name}': {', '.join(w.ref for w in pods)}", hint=hint,
                          related=tuple(_ports_line(w) for w in pods))
    if len(given) == 1 and all(found.values()):
        return PortNumber(given[0])
    said = []
    related: list[Related] = []
    for w, each in found.items():
        said.append(f"{w.ref} {'/'.join(str(n) for n, _ in each) if each else 'none'}")
        related.extend(r for _, r in each)
        if not each:
            related.append(Related(_ports_line(w).span, f"{w.ref} has no container port named '{name}'"))
    return PortNumber(None, message=f"the pods of {owner} do not give the port '{name}' one number: "
                      + ", ".join(said),
                      hint="give every pod template the same containerPort under that name, or write the number the "
                      "rule means", related=tuple(related))


def _ports_line(w: Workload) -> Related:
    ports = [p for c in w.containers for p in c.ports]
    return Related(ports[0].origin if ports else w.origin, f"{w.ref} declares its container ports here")


class PortNames:
    """``:NAME`` in a rule, for the resolver: the number of a container port name on a service's pods."""

    def __init__(self, cluster: Cluster):
        self.index = by_namespace(cluster.workloads)

    def number(self, service: Service, name: str) -> PortNumber:
        pods = (self.index.get(service.namespace) or PodIndex(())).selected(service.labels)
        return number_of(name, pods, f"'{service}' ({labels_text(service.labels)})")
