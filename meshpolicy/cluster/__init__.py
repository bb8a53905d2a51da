"""The cluster's own manifests (``--cluster``): read into frozen workload records, then checked against
the policy. ``reader.read(paths)`` -> :class:`~.reader.Manifests`; ``findings.check(graph, cluster, target)``
-> diagnostics (docs/cluster.md)."""

from __future__ import annotations

from .findings import check
from .model import Cluster, Workload
from .reader import Manifests, read

__all__ = ["Cluster", "Manifests", "Workload", "check", "read"]
