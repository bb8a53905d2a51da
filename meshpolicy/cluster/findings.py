"""The policy against the workloads it governs: every place where the ``.mesh`` files and the
cluster's manifests disagree (docs/cluster.md lists each finding and the facts it rests on).

Each finding is a diagnostic whose span is the ``.mesh`` line and whose related location is the
manifest line it disagrees with (or the other way round for what only the manifests show).
"""

from __future__ import annotations

from ..diagnostics import Collector, Diagnostic, Related
from ..graph.model import AccessGraph, Service, SourceKind
from ..source import Span
from .model import RUN_TO_COMPLETION, Cluster, KubeNamespace, KubeService, Workload
from .selectors import PodIndex, by_namespace, disjoint_by_labels

TARGETS = ("istio", "linkerd")

# injection markers (docs/cluster.md, "Injection")
ISTIO_NS_LABEL = "istio-injection"
ISTIO_REV = "istio.io/rev"
ISTIO_POD = "sidecar.istio.io/inject"
ISTIO_AMBIENT = "istio.io/dataplane-mode"
ISTIO_NATIVE = "sidecar.istio.io/nativeSidecar"
ISTIO_REWRITE = "sidecar.istio.io/rewriteAppHTTPProbers"
LINKERD_INJECT = "linkerd.io/inject"
LINKERD_NATIVE = ("config.beta.linkerd.io/proxy-enable-native-sidecar",
                  "config.alpha.linkerd.io/proxy-enable-native-sidecar")
LINKERD_SHUTDOWN = "config.linkerd.io/proxy-admin-shutdown"


def labels_text(labels: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels) or "(none)"


class Checker:
    def __init__(self, graph: AccessGraph, cluster: Cluster, target: str | None):
        self.graph = graph
        self.cluster = cluster
        self.target = target
        self.diag = Collector()  # keeps each finding once in constant time (thousands of workloads, a note each)
        self.selects_nothing_keys: set[tuple[str, str]] = set()
        self.index = by_namespace(cluster.workloads)
        self.kube_services: dict[str, list[KubeService]] = {}
        for ks in cluster.services:
            self.kube_services.setdefault(ks.namespace, []).append(ks)

    def pods(self, namespace: str) -> PodIndex:
        return self.index.get(namespace) or PodIndex(())

    def run(self) -> list[Diagnostic]:
        managed = [ns.name for ns in self.graph.managed_namespaces]
        for name in managed:
            if name not in self.index and self.cluster.namespace(name) is None:
                self.absent(name)
                continue
            selected_by: dict[Workload, list[Service]] = {}
            for svc in self.graph.services_in(name):
                chosen = self.pods(name).selected(svc.labels)
                for w in chosen:
                    selected_by.setdefault(w, []).append(svc)
                self.service(svc, chosen)
            self.overlaps(name, selected_by)
            self.undeclared(name, selected_by)
            if self.target is not None:
                self.injection(name)
        for ns in self.graph.namespaces:
            if ns.external and ns.name in self.index:
                self.callers(ns.name)
        self.borrowed_identities()
        return sorted(self.diag.items, key=Diagnostic.sort_key)

    def absent(self, namespace: str) -> None:
        """A managed namespace of which the manifests hold nothing: said once, not as an error per service
        (a repository may keep each team's manifests apart; pass them all to check every namespace)."""
        services = sorted(self.graph.services_in(namespace), key=lambda s: s.origins[0])
        ns = self.graph.namespace(namespace)
        span = ns.origins[0] if ns is not None and ns.origins else services[0].origins[0]
        self.diag.warning("MP602", f"namespace '{namespace}' is managed, but the manifests given hold no workload "
                          f"and no Namespace of it: its {len(services)} service(s) are not checked", span,
                          "give its manifests with --cluster too (an object without metadata.namespace is in "
                          "'default')")

    def callers(self, namespace: str) -> None:
        """The services of an external namespace only call: their labels and accounts still must be the pods'
        (a rule names a caller by its account)."""
        for svc in self.graph.services_in(namespace):
            chosen = self.pods(namespace).selected(svc.labels)
            if not chosen:
                self.selects_nothing_keys.add(svc.key)
                self.selects_nothing(svc, svc.origins[0])
                continue
            self.accounts(svc, chosen, svc.origins[0])

    def borrowed_identities(self) -> None:
        """A pod's mesh identity is its service account, not its labels: a workload that a service does not
        select but that runs as that service's account is that service to every rule naming it as a caller."""
        callers = {(s.namespace, s.account) for r in self.graph.rules + self.graph.invariants for s in r.sources
                   if s.kind is SourceKind.IDENTITY}
        by_identity: dict[tuple[str, str], Service] = {}
        for svc in sorted(self.graph.services, key=lambda s: s.origins[0]):
            if (svc.namespace, svc.account) in callers:
                by_identity.setdefault((svc.namespace, svc.account), svc)
        for w in self.cluster.workloads:
            owner = by_identity.get((w.namespace, w.account))
            if owner is None or _selects(owner.labels, w) or owner.key in self.selects_nothing_keys:
                continue  # (a service that selects nothing at all is MP602 already)
            self.diag.warning(
                "MP613", f"{w.ref} runs as account '{w.account}', the identity of '{owner}', though the labels of "
                f"'{owner.name}' do not select it: every rule that allows '{owner}' as a caller allows it too",
                owner.origins[0], f"give {w.ref} its own serviceAccountName, or declare it as a service of its own",
                (Related(w.account_origin or w.origin, f"{w.ref} runs as '{w.account}' here"),))

    # -- one declared service ------------------------------------------------------
    def service(self, svc: Service, chosen: list[Workload]) -> None:
        span = svc.origins[0]
        if not chosen:
            self.selects_nothing_keys.add(svc.key)
            self.selects_nothing(svc, span)
            return
        kinds = sorted({w.kind for w in chosen})
        if len(kinds) > 1:
            self.diag.warning(
                "MP603", f"the labels of '{svc.name}' ({labels_text(svc.labels)}) select workloads of "
                f"{len(kinds)} kinds: {', '.join(kinds)}", span,
                "give each kind of pod its own labels and its own service, so that rules written for one "
                "do not reach the other",
                tuple(Related(w.origin, f"{w.ref} is selected") for w in chosen))
        self.accounts(svc, chosen, span)
        for port in svc.ports:
            if not any(w.exposes(port.number) for w in chosen):
                self.port_not_exposed(svc, port.number, chosen, span)
        self.probes(svc, chosen, span)

    def accounts(self, svc: Service, chosen: list[Workload], span: Span) -> None:
        for w in chosen:
            if w.account != svc.account:
                written = (f"serviceAccountName: {w.account}" if w.account_origin is not None
                           else "no serviceAccountName: the pod runs as 'default'")
                self.diag.error(
                    "MP604", f"'{svc.name}' declares account '{svc.account}', but {w.ref} runs as '{w.account}'",
                    span, f"write 'account {w.account}' in the service, or set serviceAccountName: "
                    f"{svc.account} in the pod template: rules name callers by account",
                    (Related(w.account_origin or w.origin, written),))

    def selects_nothing(self, svc: Service, span: Span) -> None:
        related: list[Related] = []
        hint = "make the labels those of the pod template (spec.template.metadata.labels), not the Deployment's"
        by_name = [ks for ks in self.kube_services.get(svc.namespace, []) if ks.name == svc.name]
        same_name = [w for w in self.pods(svc.namespace).workloads if w.name == svc.name]
        if same_name:
            w = same_name[0]
            hint = (f"{w.ref} carries {labels_text(w.labels)}: write "
                    f"'labels {labels_text(_narrow(w, self.kube_services.get(svc.namespace, [])))}'")
            related.append(Related(w.origin, f"{w.ref} is declared here"))
        elif by_name and by_name[0].selector:
            ks = by_name[0]
            hint = (f"the Kubernetes Service '{ks.name}' selects {labels_text(ks.selector)}: "
                    f"write 'labels {labels_text(ks.selector)}'")
            related.append(Related(ks.origin, f"Service {ks.namespace}/{ks.name} is declared here"))
        elsewhere = [w for ns, idx in sorted(self.index.items()) if ns != svc.namespace
                     for w in idx.selected(svc.labels)]
        if not related and elsewhere:
            hint = f"{elsewhere[0].ref} matches them, in another namespace"
            related.append(Related(elsewhere[0].origin, f"{elsewhere[0].ref} is declared here"))
        where = (f"in namespace '{svc.namespace}'" if self.pods(svc.namespace).workloads
                 else f"in namespace '{svc.namespace}', which has no workload in the manifests given")
        self.diag.error("MP602", f"the labels of '{svc.name}' ({labels_text(svc.labels)}) select no workload {where}",
                        span, hint, tuple(related))

    def port_not_exposed(self, svc: Service, number: int, chosen: list[Workload], span: Span) -> None:
        exposed = sorted({p.number for w in chosen for c in w.containers if c.runs for p in c.ports})
        hint = (f"the selected pods expose {', '.join(map(str, exposed))}" if exposed
                else "the selected pods declare no containerPort")
        related: list[Related] = []
        for ks in self.kube_services.get(svc.namespace, []):
            if not ks.selector or not any(_selects(ks.selector, w) for w in chosen):
                continue
            for sp in ks.ports:
                if sp.port != number:
                    continue
                target = sp.target if isinstance(sp.target, int) else _named(sp.target, chosen)
                if target is None:
                    continue
                named = f" (named '{sp.target}')" if isinstance(sp.target, str) else ""
                declared = svc.port(number)
                written = f":{target}/{declared.protocol.value}" if declared is not None else f":{target}"
                hint = (f"write {written}: the Kubernetes Service '{ks.name}' forwards its port {number} to "
                        f"targetPort {target}{named}, the container port the policy must name")
                related.append(Related(sp.origin, f"Service {ks.namespace}/{ks.name} maps port {number} "
                                                  f"to {sp.target}"))
                break
            if related:
                break
        w = chosen[0]
        ports = [p for c in w.containers for p in c.ports]
        related.append(Related(ports[0].origin if ports else w.origin, f"{w.ref} declares its container ports here"))
        self.diag.error("MP605", f"'{svc.name}' declares port {number}, which no selected container exposes",
                        span, hint, tuple(related))

    def probes(self, svc: Service, chosen: list[Workload], span: Span) -> None:
        declared = {p.number for p in svc.ports}
        seen: set[tuple[int, str]] = set()
        for w in chosen:
            for c in w.containers:
                for probe in c.probes:
                    number = probe.port if isinstance(probe.port, int) else w.named_port(probe.port)
                    if number is None or (declared and number not in declared) or probe.path in svc.probes:
                        continue
                    if (number, probe.path) in seen:
                        continue
                    seen.add((number, probe.path))
                    self.probe(svc, w, probe.kind, number, probe.path, probe.origin, span)

    def probe(self, svc: Service, w: Workload, kind: str, number: int, path: str, where: Span, span: Span) -> None:
        rewrite_off = (w.annotation(ISTIO_REWRITE) or "").lower() == "false"
        message = (f"the {kind} probe of {w.ref} (GET {path} on port {number}) is not declared in the "
                   f"probes of '{svc.name}'")
        hint = f"add 'probes {','.join(sorted({*svc.probes, path}))}' to '{svc.name}'"
        related = (Related(where, f"{w.ref} probes {path} on port {number}"),)
        if self.target == "linkerd" or (self.target == "istio" and rewrite_off):
            why = ("Linkerd drops its own probe route once the port has routes: the kubelet gets 403 and the pod "
                   "never becomes ready" if self.target == "linkerd" else
                   f"{ISTIO_REWRITE} is \"false\", so the kubelet's plaintext probe meets the policy")
            self.diag.error("MP606", f"{message}: {why}", span, hint, related)
        else:
            why = ("Istio rewrites the probe to the sidecar's status port, so it keeps working here; on Linkerd "
                   "it would break readiness" if self.target == "istio" else
                   "on Linkerd it breaks readiness, Istio rewrites probes; --target picks the mesh")
            self.diag.warning("MP606", f"{message}: {why}", span, hint, related)

    # -- the namespace ---------------------------------------------------------------
    def overlaps(self, namespace: str, selected_by: dict[Workload, list[Service]]) -> None:
        reported: set[tuple[tuple[str, str], tuple[str, str]]] = set()
        for w, services in sorted(selected_by.items()):
            if len(services) < 2:
                continue
            ordered = sorted(services, key=lambda s: s.origins[0])
            for i, later in enumerate(ordered):
                for earlier in ordered[:i]:
                    pair = (earlier.key, later.key)
                    if pair in reported:
                        continue
                    reported.add(pair)
                    self.diag.error(
                        "MP611", f"'{earlier.name}' and '{later.name}' both select the pods of {w.ref} "
                        f"({labels_text(w.labels)})", later.origins[0],
                        "give the two services one label key with different values, or change the pod's labels, "
                        "so that each pod belongs to one service",
                        (Related(earlier.origins[0], f"'{earlier.name}' is declared here"),
                         Related(w.origin, f"{w.ref} is declared here")))
        services = sorted(self.graph.services_in(namespace), key=lambda s: s.origins[0])
        inputs = " ".join(self.cluster.inputs) or "(none)"
        for i, later in enumerate(services):
            others = [f"'{earlier.name}'" for earlier in services[:i]
                      if (earlier.key, later.key) not in reported
                      and not disjoint_by_labels(earlier.labels, later.labels)]
            if others:
                self.diag.note(
                    "MP612", f"the labels of '{later.name}' ({labels_text(later.labels)}) could select pods of "
                    f"{', '.join(others)}; accepted because no pod of the manifests given matches both",
                    later.origins[0],
                    f"the proof rests on the manifests given with --cluster ({inputs}): check again whenever "
                    "they change, or give the services one label key with different values")

    def undeclared(self, namespace: str, selected_by: dict[Workload, list[Service]]) -> None:
        ns = self.graph.namespace(namespace)
        where = ns.origins[0] if ns is not None and ns.origins else None
        wide = self.graph.wide_rules(namespace)
        related: tuple[Related, ...] = (Related(where, f"namespace '{namespace}' is managed here"),) if where is not None else ()
        related += tuple(Related(r.origin, f"reaches it: {r.text}") for r in sorted({r.origin: r for r in wide}.values(),
                                                                                     key=lambda r: r.origin))
        for w in self.pods(namespace).workloads:
            if w in selected_by:
                continue
            self.diag.note(
                "MP610", f"{w.ref} ({labels_text(w.labels)}) is in managed namespace '{namespace}' but no declared "
                "service selects it: " + ("only its namespace's '**' rules reach it, the rest is under default deny"
                                          if wide else "it is under default deny"), w.origin,
                f"declare a service for it in namespace '{namespace}' (service NAME labels ...)", related)

    def injection(self, namespace: str) -> None:
        kube_ns = self.cluster.namespace(namespace)
        ns = self.graph.namespace(namespace)
        mesh_span = ns.origins[0] if ns is not None and ns.origins else self.graph.services_in(namespace)[0].origins[0]
        missing_ns = False
        for w in self.pods(namespace).workloads:
            state = (self._istio if self.target == "istio" else self._linkerd)(w, kube_ns)
            if state == "opted-out":
                key = ISTIO_POD if self.target == "istio" else LINKERD_INJECT
                value = w.annotation(key) or w.label_map.get(key) or w.label_map.get(ISTIO_AMBIENT, "")
                self.diag.error(
                    "MP608", f"{w.ref} opts out of the {self.target} proxy: the policy is not enforced on its pods",
                    mesh_span, f"remove '{key}: \"{value}\"' from its pod template, or move it out of namespace "
                    f"'{namespace}'", (Related(w.origin, f"{w.ref} opts out here"),))
            elif state == "no-namespace":
                missing_ns = True
            elif state == "injected" and w.kind in RUN_TO_COMPLETION:
                self.job(w, mesh_span)
        if missing_ns:
            if self.target == "istio":
                hint = (f"label the Namespace '{namespace}' istio-injection=enabled (or istio.io/rev=REVISION), "
                        "or label each pod template sidecar.istio.io/inject: \"true\"")
            else:
                hint = (f"annotate the Namespace '{namespace}' linkerd.io/inject: enabled (the build's own "
                        "Namespace carries it, and two sources of one Namespace fight on every sync)")
            if kube_ns is not None:
                self.diag.error("MP607", f"namespace '{namespace}' is managed, but its Namespace has no "
                                f"{self.target} injection {'label' if self.target == 'istio' else 'annotation'}: "
                                "its pods run without a proxy and the policy is not enforced", mesh_span, hint,
                                (Related(kube_ns.origin, f"Namespace {namespace} is declared here"),))
            else:
                self.diag.warning("MP607", f"namespace '{namespace}' is managed, but the manifests given do not "
                                  "declare it, and its pod templates do not ask for the istio proxy: injection "
                                  "cannot be confirmed", mesh_span, hint)

    def _istio(self, w: Workload, kube_ns: KubeNamespace | None) -> str:
        pod = w.label_map.get(ISTIO_POD) or w.annotation(ISTIO_POD)
        if pod == "false" or w.label_map.get(ISTIO_AMBIENT) == "none":
            return "opted-out"
        if pod == "true":
            return "injected"
        if kube_ns is not None:
            if kube_ns.get(ISTIO_NS_LABEL) == "enabled" or kube_ns.get(ISTIO_REV):
                return "injected"
            if kube_ns.get(ISTIO_AMBIENT) == "ambient":
                return "ambient"
        return "no-namespace"

    def _linkerd(self, w: Workload, kube_ns: KubeNamespace | None) -> str:
        pod = w.annotation(LINKERD_INJECT)
        if pod == "disabled":
            return "opted-out"
        if pod in ("enabled", "ingress"):
            return "injected"
        if kube_ns is None:
            return "injected"  # the build emits the Namespace with linkerd.io/inject: enabled
        if kube_ns.get(LINKERD_INJECT) in ("enabled", "ingress"):
            return "injected"
        return "no-namespace"

    def job(self, w: Workload, span: Span) -> None:
        words = " ".join(word for c in w.containers for word in c.command)
        kube_ns = self.cluster.namespace(w.namespace)
        if self.target == "istio":
            if (w.annotation(ISTIO_NATIVE) or "").lower() != "false" or "quitquitquit" in words:
                return  # native sidecars are Istio's default since 1.27 (docs/cluster.md)
            hint = (f"remove '{ISTIO_NATIVE}: \"false\"' (native sidecars end with the job on Kubernetes >= 1.28), "
                    "or end the job with: curl -fsS -X POST http://localhost:15020/quitquitquit")
        else:
            native = any((w.annotation(k) or (kube_ns.get(k) if kube_ns else None) or "").lower() == "true"
                         for k in LINKERD_NATIVE)
            shutdown = (w.annotation(LINKERD_SHUTDOWN) == "enabled"
                        and ("4191/shutdown" in words or "linkerd-await" in words))
            if native or shutdown:
                return
            hint = (f"annotate the pod template {LINKERD_NATIVE[0]}: \"true\" (a native sidecar, Kubernetes >= 1.29), "
                    f"or set {LINKERD_SHUTDOWN}: enabled and end the job with linkerd-await --shutdown or "
                    "curl -X POST http://localhost:4191/shutdown")
        self.diag.warning("MP609", f"{w.ref} runs to completion, but its {self.target} proxy keeps running after the "
                          "job's containers exit: the job never completes", span, hint,
                          (Related(w.origin, f"{w.ref} is declared here"),))


def _selects(selector: tuple[tuple[str, str], ...], w: Workload) -> bool:
    labels = w.label_map
    return all(labels.get(k) == v for k, v in selector)


def _named(name: str, chosen: list[Workload]) -> int | None:
    """A targetPort name resolved to its number, where every selected pod that has the name agrees."""
    numbers = {n for w in chosen if (n := w.named_port(name)) is not None}
    return numbers.pop() if len(numbers) == 1 else None


def _narrow(w: Workload, services: list[KubeService]) -> tuple[tuple[str, str], ...]:
    """The labels to suggest for a workload: the selector of a Kubernetes Service that selects it, else all."""
    for ks in services:
        if ks.selector and _selects(ks.selector, w):
            return ks.selector
    return w.labels


def check(graph: AccessGraph, cluster: Cluster, target: str | None = None) -> list[Diagnostic]:
    """Every finding of the policy against the manifests (errors, warnings and notes), sorted."""
    if target is not None and target not in TARGETS:
        target = None
    return Checker(graph, cluster, target).run()
