"""Kubernetes manifests (files, folders, ``-`` for standard input) -> a :class:`~.model.Cluster`.

Reads what users keep in a GitOps repository or pipe from ``helm template`` and
``kubectl kustomize``: multi-document files, ``List`` objects, comments and empty documents.
Pod templates come from Deployments, StatefulSets, DaemonSets, ReplicaSets,
ReplicationControllers, Jobs, CronJobs and Pods; Services, ServiceAccounts and Namespaces are
read too; every other kind (and a known kind of another API group, such as a Knative
``Service``) is skipped. A document that cannot be read is an MP601 diagnostic with its file
and line, never a traceback; the rest of the input is still read.

Time is linear in the size of the input; each input is at most :data:`MAX_BYTES`, nesting is
bounded and YAML aliases are refused (:mod:`.yamldoc`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Severity
from ..errors import MeshpolicyError
from ..source import SourceError, SourceFile, Span, _display
from .model import (
    POD_TEMPLATE_PATHS,
    Cluster,
    Container,
    ContainerPort,
    KubeNamespace,
    KubeService,
    Probe,
    ServiceAccount,
    ServicePort,
    Workload,
)
from .yamldoc import DocumentError, Map, Seq, documents

MAX_BYTES = 64 * 1024 * 1024
STDIN = "-"
STDIN_NAME = "<stdin>"
SUFFIXES = (".yaml", ".yml", ".json")
#: files of a folder that are build configuration, not manifests
SKIPPED_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization", "Chart.yaml", "values.yaml")

#: the API groups (apiVersion) under which each kind read here is the Kubernetes one
API_VERSIONS: dict[str, tuple[str, ...]] = {
    "Pod": ("v1",), "ReplicationController": ("v1",), "Service": ("v1",), "ServiceAccount": ("v1",),
    "Namespace": ("v1",),
    "Deployment": ("apps/v1", "apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"),
    "StatefulSet": ("apps/v1", "apps/v1beta1", "apps/v1beta2"),
    "DaemonSet": ("apps/v1", "apps/v1beta2", "extensions/v1beta1"),
    "ReplicaSet": ("apps/v1", "apps/v1beta2", "extensions/v1beta1"),
    "Job": ("batch/v1",),
    "CronJob": ("batch/v1", "batch/v1beta1"),
}
PROBES = (("livenessProbe", "liveness"), ("readinessProbe", "readiness"), ("startupProbe", "startup"))


@dataclass
class Manifests:
    """What :func:`read` found: the cluster, the manifest texts (for excerpts) and the problems."""

    cluster: Cluster
    sources: dict[str, SourceFile] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


class _Bad(MeshpolicyError):
    """A field of a known kind has the wrong shape: reported at ``line``, the object is skipped."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def manifest_files(paths: list[str], what: str = "", keep: Callable[[Path, Path], bool] | None = None,
                   ) -> dict[str, Path | None]:
    """The manifest files ``paths`` name, by display name (``-``: standard input, as None): a file as it is, a
    folder as every .yaml, .yml and .json below it but kustomize's and Helm's own files (and, with ``keep``,
    only the children ``keep(folder, child)`` accepts). ``what`` prefixes the messages of the SourceError
    raised for a path that does not exist or cannot be listed."""
    found: dict[str, Path | None] = {}
    for raw in paths:
        if raw == STDIN:
            found[STDIN_NAME] = None
            continue
        path = Path(raw)
        try:
            if path.is_dir():
                for child in sorted(path.rglob("*")):
                    if child.suffix in SUFFIXES and child.is_file() and child.name not in SKIPPED_FILES \
                            and (keep is None or keep(path, child)):
                        found[_display(child)] = child
            elif path.is_file():
                found[_display(path)] = path
            else:
                raise SourceError(f"{what}no such file or folder: {raw}")
        except OSError as exc:
            raise SourceError(f"{what}{raw}: cannot read ({exc.strerror or exc})") from exc
    return found


def read(paths: list[str]) -> Manifests:
    """Read every manifest named by ``paths`` (files, folders, ``-``); raises SourceError for a bad path."""
    found = manifest_files(paths, "--cluster: ")
    state = _State()
    for name in sorted(found):
        text = manifest_text(name, found[name], state.problem, "--cluster: ")
        if text is not None:
            state.sources[name] = SourceFile(name, text)
            state.file(name, text)
    cluster = Cluster(
        workloads=tuple(sorted(state.workloads.values())),
        services=tuple(sorted(state.services.values())),
        namespaces=tuple(sorted(state.namespaces.values())),
        accounts=tuple(sorted(state.accounts.values())),
        inputs=tuple(paths),
    )
    return Manifests(cluster, state.sources, sorted(state.diagnostics, key=Diagnostic.sort_key))


def manifest_text(name: str, path: Path | None, problem: Callable[[str, int, str], None], what: str = "",
                  ) -> str | None:
    """The text of one manifest file (``path`` None: standard input), at most MAX_BYTES; a file too large or not
    UTF-8 is a ``problem(name, line, message)`` and None. An unreadable file raises SourceError."""
    try:
        if path is None:
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"{what}{name}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > MAX_BYTES:
        problem(name, 1, f"larger than {MAX_BYTES:,} bytes: not read")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem(name, 1, f"not valid UTF-8 ({exc.reason} at byte {exc.start}): not read")
        return None


class _State:
    def __init__(self) -> None:
        self.sources: dict[str, SourceFile] = {}
        self.diagnostics: list[Diagnostic] = []
        self.workloads: dict[tuple[str, str, str], Workload] = {}
        self.services: dict[tuple[str, str], KubeService] = {}
        self.namespaces: dict[str, KubeNamespace] = {}
        self.accounts: dict[tuple[str, str], ServiceAccount] = {}
        self.name = ""

    def at(self, obj: Map, key: str) -> Span:
        """Where the value of ``key`` sits in ``obj`` (a caret under it)."""
        line, col, end_line, end_col = obj.where(key)
        return Span(self.name, line, col, end_line, end_col)

    def problem(self, name: str, line: int, message: str, severity: Severity = Severity.ERROR,
                hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic("MP601", severity, message, Span(name, line, 1, line, 1), hint))

    def file(self, name: str, text: str) -> None:
        self.name = name
        for item in documents(text):
            if isinstance(item, DocumentError):
                self.problem(name, item.line, item.args[0])
                continue
            line, value = item
            if value is None:
                continue  # an empty document: helm template writes them
            self.object(value, line)

    def object(self, obj: Any, line: int) -> None:
        if not isinstance(obj, Map):
            self.problem(self.name, line, f"not a Kubernetes object: a document must be a mapping, "
                                          f"not {_what(obj)}")
            return
        kind, api = obj.get("kind"), obj.get("apiVersion")
        if not isinstance(kind, str) or not isinstance(api, str):
            missing = "kind" if not isinstance(kind, str) else "apiVersion"
            self.problem(self.name, obj.line, f"not a Kubernetes object: no {missing}", Severity.WARNING,
                         "give rendered manifests (helm template, kubectl kustomize), not chart values")
            return
        if kind.endswith("List") and "items" in obj:
            items = obj["items"]
            if not isinstance(items, Seq):
                self.problem(self.name, obj.line_of("items"), f"{kind}: items must be a list")
                return
            for index, item in enumerate(items):
                self.object(item, items.line_of(index))
            return
        if api not in API_VERSIONS.get(kind, ()):
            return  # an unknown kind, or a known name of another API group: not read
        try:
            self.known(kind, obj)
        except _Bad as bad:
            meta = obj.get("metadata")
            name = meta.get("name") if isinstance(meta, Map) else None
            what = f"{kind} '{name}'" if isinstance(name, str) else kind
            self.problem(self.name, bad.line, f"{what}: {bad}", hint="this object is left out of the checks")

    # -- the kinds ---------------------------------------------------------------
    def known(self, kind: str, obj: Map) -> None:
        meta = _map(obj, "metadata", required=True)
        name = _str(meta, "name", required=True)
        namespace = _str(meta, "namespace") or "default"
        span = self.at(meta, "name")
        if kind == "Namespace":
            self.namespaces[name] = KubeNamespace(name, _labels(meta, "labels"), _labels(meta, "annotations"),
                                                  span)
        elif kind == "ServiceAccount":
            self.accounts[(namespace, name)] = ServiceAccount(namespace, name, span)
        elif kind == "Service":
            self.service(obj, namespace, name, span)
        else:
            self.workload(kind, obj, namespace, name, span)

    def service(self, obj: Map, namespace: str, name: str, span: Span) -> None:
        spec = _map(obj, "spec")
        if spec.get("type") == "ExternalName":
            return
        ports = []
        seq = _seq(spec, "ports")
        for index, item in enumerate(seq):
            if not isinstance(item, Map):
                raise _Bad("spec.ports: each port must be a mapping", seq.line_of(index))
            number = _port(item, "port", required=True)
            target = item.get("targetPort", number)
            if isinstance(target, bool) or not isinstance(target, (int, str)) or target in ("", 0):
                raise _Bad("spec.ports.targetPort must be a number or a port name", item.line_of("targetPort"))
            if isinstance(target, str) and target.isdigit():
                target = int(target)  # the API server keeps "8080" a name; kubectl users mean the number
            ports.append(ServicePort(number, target, _str(item, "name"), self.at(item, "port")))
        self.services[(namespace, name)] = KubeService(namespace, name, _labels(spec, "selector"),
                                                       tuple(sorted(ports)), span)

    def workload(self, kind: str, obj: Map, namespace: str, name: str, span: Span) -> None:
        template = obj
        for step in POD_TEMPLATE_PATHS[kind]:
            template = _map(template, step, required=True)
        meta = _map(template, "metadata")
        spec = _map(template, "spec", required=True)
        account = _str(spec, "serviceAccountName") or _str(spec, "serviceAccount")
        account_span = self.at(spec, "serviceAccountName" if "serviceAccountName" in spec
                               else "serviceAccount") if account else None
        containers = [self.container(c, False) for c in _items(spec, "containers")]
        containers += [self.container(c, True) for c in _items(spec, "initContainers")]
        if not any(not c.init for c in containers):
            raise _Bad("the pod template has no containers", spec.line)
        self.workloads[(namespace, kind, name)] = Workload(
            namespace=namespace, name=name, kind=kind, labels=_labels(meta, "labels"),
            annotations=_labels(meta, "annotations"), account=account or "default",
            containers=tuple(containers), origin=span, account_origin=account_span)

    def container(self, item: tuple[Map, int], init: bool) -> Container:
        c, _ = item
        ports = []
        seq = _seq(c, "ports")
        for index, port in enumerate(seq):
            if not isinstance(port, Map):
                raise _Bad("ports: each port must be a mapping", seq.line_of(index))
            ports.append(ContainerPort(_port(port, "containerPort", required=True), _str(port, "name"),
                                       _str(port, "protocol") or "TCP", self.at(port, "containerPort")))
        probes = []
        for key, kind in PROBES:
            probe = c.get(key)
            if not isinstance(probe, Map) or not isinstance(probe.get("httpGet"), Map):
                continue
            get = probe["httpGet"]
            target = get.get("port")
            if isinstance(target, bool) or not isinstance(target, (int, str)):
                raise _Bad(f"{key}.httpGet.port must be a number or a port name", get.line_of("port"))
            if isinstance(target, str) and target.isdigit():
                target = int(target)
            probes.append(Probe(kind, target, _str(get, "path") or "/",
                                self.at(get, "path") if "path" in get else self.at(get, "port")))
        command = tuple(str(w) for key in ("command", "args") for w in _seq(c, key) if isinstance(w, (str, int)))
        return Container(name=_str(c, "name") or "?", ports=tuple(ports), probes=tuple(probes),
                         command=command, init=init, restart_always=init and c.get("restartPolicy") == "Always")


# -- typed access, raising _Bad with the line -------------------------------------
def _what(value: Any) -> str:
    if isinstance(value, Seq):
        return "a list"
    return f"a {type(value).__name__} value"


def _map(obj: Map, key: str, required: bool = False) -> Map:
    value = obj.get(key)
    if isinstance(value, Map):
        return value
    if value is None and not required:
        return Map(obj.line_of(key), 1)
    raise _Bad(f"{key} must be a mapping" if value is not None else f"{key} is missing", obj.line_of(key))


def _seq(obj: Map, key: str) -> Seq:
    value = obj.get(key)
    if isinstance(value, Seq):
        return value
    if value is None:
        return Seq(obj.line_of(key), 1)
    raise _Bad(f"{key} must be a list", obj.line_of(key))


def _items(obj: Map, key: str) -> list[tuple[Map, int]]:
    seq = _seq(obj, key)
    out = []
    for index, item in enumerate(seq):
        if not isinstance(item, Map):
            raise _Bad(f"{key}: each container must be a mapping", seq.line_of(index))
        out.append((item, seq.line_of(index)))
    return out


def _str(obj: Map, key: str, required: bool = False) -> str:
    value = obj.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None and not required:
        return ""
    raise _Bad(f"{key} must be a non-empty string" if value is not None else f"{key} is missing",
               obj.line_of(key))


def _port(obj: Map, key: str, required: bool = False) -> int:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise _Bad(f"{key} must be a port number (1-65535)" if value is not None or not required
               else f"{key} is missing", obj.line_of(key))


def _labels(obj: Map, key: str) -> tuple[tuple[str, str], ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, Map):
        raise _Bad(f"{key} must be a mapping of strings", obj.line_of(key))
    out = []
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise _Bad(f"{key}: '{k}' must map to a string (quote it: \"{v}\")" if isinstance(k, str)
                       else f"{key}: keys must be strings", value.line_of(k))
        out.append((k, v))
    return tuple(sorted(out))
