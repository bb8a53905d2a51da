"""The managed namespaces themselves, for every target: a ``Namespace`` that no prune can delete, or a note
naming what the namespace must carry (LANGUAGE §4; docs/gitops.md, "Namespaces").

A ``Namespace`` is shared with whoever created it (a platform team, another tool): meshpolicy owns only the
labels and annotations it writes (server-side apply field ownership), and a GitOps prune must never delete
it, with every workload inside, because a policy stopped naming it.
"""

from __future__ import annotations

from ..diagnostics import Collector
from ..graph.model import Namespace
from .base import Resource

EMIT, SKIP = "emit", "skip"
#: the values of ``--namespaces``
CHOICES = (EMIT, SKIP)
#: on every emitted Namespace: Argo CD and Flux never prune it (removing it from Git leaves it in the cluster)
PRUNE_PROTECTION = (("argocd.argoproj.io/sync-options", "Prune=false"),
                    ("kustomize.toolkit.fluxcd.io/prune", "disabled"))


def namespace_resource(ns: Namespace, labels: tuple[tuple[str, str], ...] = (),
                       annotations: tuple[tuple[str, str], ...] = ()) -> Resource:
    """The Namespace ``ns`` with the metadata the policy needs, protected from pruning."""
    return Resource("v1", "Namespace", ns.name, ns.name, None, ns.origins,
                    tuple(sorted(annotations + PRUNE_PROTECTION)), tuple(sorted(labels)))


def requirements_note(diag: Collector, ns: Namespace, labels: tuple[tuple[str, str], ...] = (),
                      annotations: tuple[tuple[str, str], ...] = (), why: str = "") -> None:
    """MP303: ``ns`` is not emitted, so say exactly which labels and annotations it must carry."""
    wanted = [f"label {k}={v}" for k, v in labels] + [f"annotation {k}: {v}" for k, v in annotations]
    diag.note("MP303", f"namespace '{ns.name}' is not emitted: for the policy to hold it must carry "
              + ", ".join(wanted), ns.origins[0] if ns.origins else None,
              why + "; --namespaces emit writes it (docs/gitops.md)")
