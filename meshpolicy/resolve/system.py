"""System namespaces: Kubernetes' and the meshes' own, which a policy never manages (issue 9; docs/language.md,
decision 14).

Managing one would put a default deny (and, on Linkerd, proxy injection) on the cluster's or the mesh's own
workloads. Each name is the one the project's documentation installs into; a build for one target may refuse
more (the Istio root namespace given with ``--istio-root-namespace``, in the Istio backend).
"""

from __future__ import annotations

#: namespace -> whose it is, as a diagnostic says it
SYSTEM_NAMESPACES: dict[str, str] = {
    # Kubernetes' initial namespaces (kubernetes.io, "Namespaces": Initial namespaces)
    "kube-system": "Kubernetes' own",
    "kube-public": "Kubernetes' own",
    "kube-node-lease": "Kubernetes' own",
    # Istio's control plane, and its default root namespace (istio.io install guides: istio-system)
    "istio-system": "Istio's control plane",
    # Linkerd's control plane (linkerd install) and its extensions, each in its own namespace
    # (linkerd.io "Using extensions"; the charts' install commands: helm install linkerd-viz -n linkerd-viz, ...)
    "linkerd": "Linkerd's control plane",
    "linkerd-viz": "Linkerd's viz extension",
    "linkerd-jaeger": "Linkerd's jaeger extension",
    "linkerd-multicluster": "Linkerd's multicluster extension",
    "linkerd-smi": "Linkerd's SMI extension",
    "linkerd-cni": "Linkerd's CNI plugin",
}


def owner(namespace: str) -> str | None:
    """Whose system namespace ``namespace`` is, or None for a namespace a policy may manage."""
    return SYSTEM_NAMESPACES.get(namespace)
