"""What the cluster's own manifests say about the workloads a policy governs: frozen, sorted records.

Only what the findings need is kept: a pod template's labels, annotations, service account,
container ports and HTTP probes; a Service's selector and ports; a Namespace's labels and
annotations; the ServiceAccounts that exist. Every record keeps the span of the manifest line
it came from, so that a finding names both the ``.mesh`` line and the manifest line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..source import Span

Labels = tuple[tuple[str, str], ...]

#: the kinds whose pods the policy governs; the value is where the pod template sits in ``spec``
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}
#: kinds whose pods are meant to finish (a sidecar that keeps running keeps them from completing)
RUN_TO_COMPLETION = ("Job", "CronJob")


@dataclass(frozen=True, slots=True, order=True)
class ContainerPort:
    number: int
    name: str
    protocol: str  # TCP, UDP or SCTP, as written (TCP when absent)
    origin: Span


@dataclass(frozen=True, slots=True, order=True)
class Probe:
    """An ``httpGet`` liveness, readiness or startup probe; ``port`` is a number or a port name."""

    kind: str  # liveness, readiness, startup
    port: int | str
    path: str
    origin: Span


@dataclass(frozen=True, slots=True, order=True)
class Container:
    name: str
    ports: tuple[ContainerPort, ...] = ()
    probes: tuple[Probe, ...] = ()
    command: tuple[str, ...] = ()  # command and args, for the proxy shutdown call of a Job
    init: bool = False
    restart_always: bool = False  # an init container with restartPolicy Always: a native sidecar

    @property
    def runs(self) -> bool:
        """Whether it runs beside the application (regular containers and native sidecars)."""
        return not self.init or self.restart_always


@dataclass(frozen=True, slots=True, order=True)
class Workload:
    """One pod template (or a Pod): the unit a service's labels select."""

    namespace: str
    name: str
    kind: str
    labels: Labels
    annotations: Labels
    account: str  # serviceAccountName, ``default`` when unset
    containers: tuple[Container, ...]
    origin: Span
    account_origin: Span | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def annotation(self, key: str) -> str | None:
        for k, v in self.annotations:
            if k == key:
                return v
        return None

    def named_port(self, name: str) -> int | None:
        for c in self.containers:
            for p in c.ports:
                if p.name == name:
                    return p.number
        return None

    def exposes(self, number: int) -> bool:
        return any(p.number == number for c in self.containers for p in c.ports)


@dataclass(frozen=True, slots=True, order=True)
class ServicePort:
    port: int
    target: int | str  # the targetPort: a number or a container port name (the port when absent)
    name: str
    origin: Span


@dataclass(frozen=True, slots=True, order=True)
class KubeService:
    """A Kubernetes ``Service`` (not a ``.mesh`` service): its selector and port mapping."""

    namespace: str
    name: str
    selector: Labels
    ports: tuple[ServicePort, ...]
    origin: Span


@dataclass(frozen=True, slots=True, order=True)
class KubeNamespace:
    name: str
    labels: Labels
    annotations: Labels
    origin: Span

    def get(self, key: str) -> str | None:
        for k, v in self.labels + self.annotations:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True, order=True)
class ServiceAccount:
    namespace: str
    name: str
    origin: Span


@dataclass(frozen=True, slots=True)
class Cluster:
    """Everything read from the manifests given with ``--cluster``, sorted."""

    workloads: tuple[Workload, ...] = ()
    services: tuple[KubeService, ...] = ()
    namespaces: tuple[KubeNamespace, ...] = ()
    accounts: tuple[ServiceAccount, ...] = ()
    inputs: tuple[str, ...] = field(default=())  # the paths given, for the notes

    def workloads_in(self, namespace: str) -> tuple[Workload, ...]:
        return tuple(w for w in self.workloads if w.namespace == namespace)

    def namespace(self, name: str) -> KubeNamespace | None:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        return None
