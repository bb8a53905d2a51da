"""What both targets emit for the ``authority`` statement in the same way: cert-manager resources, the
PrometheusRule of the certificate alarms, and Go durations. Each backend decides what goes in them
(docs/targets/istio.md and linkerd.md, "Certificates"); this module only shapes the shared kinds.

The kinds follow the CRDs kept in tests/crds/ (cert-manager v1.21.1, trust-manager v0.24.0,
prometheus-operator v0.93.0), which the tests validate every emitted resource against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..graph.model import HOUR, Authority, AuthoritySource, duration_text
from ..source import Span
from .base import Resource

CERT_MANAGER_API = "cert-manager.io/v1"
TRUST_MANAGER_API = "trust.cert-manager.io/v1alpha1"
MONITORING_API = "monitoring.coreos.com/v1"
#: the cert-manager Issuer meshpolicy emits for ``authority vault``, in the mesh's control-plane namespace
VAULT_ISSUER = "meshpolicy-vault"
#: the PrometheusRule of the alarms, in the mesh's control-plane namespace
ALERTS = "meshpolicy-certificates"
#: how far back the error alerts look (a counter's increase over this window)
ERROR_WINDOW = "15m"


def go_duration(seconds: int) -> str:
    """A duration as Go's ``time.ParseDuration`` reads it (cert-manager, istiod, Linkerd): hours or minutes."""
    return f"{seconds // HOUR}h" if seconds % HOUR == 0 else f"{seconds // 60}m"


def prom_string(value: str) -> str:
    """A PromQL string literal (double-quoted; PromQL takes Go's escapes, which JSON's are a subset of)."""
    return json.dumps(value, ensure_ascii=True)


def origins(authority: Authority) -> tuple[Span, ...]:
    return (authority.origin,)


def issuer_ref(authority: Authority) -> dict[str, str]:
    """The cert-manager issuer that signs the mesh's issuer certificate."""
    if authority.source is AuthoritySource.VAULT:
        return {"group": "cert-manager.io", "kind": "Issuer", "name": VAULT_ISSUER}
    return {"group": "cert-manager.io", "kind": authority.issuer_kind.value, "name": authority.issuer_ref}


def vault_issuer(authority: Authority, namespace: str) -> Resource:
    """A cert-manager Issuer that signs through Vault's PKI, authenticated with a Kubernetes service account
    token (cert-manager's ``vault.auth.kubernetes.serviceAccountRef``)."""
    spec = {"vault": {
        "server": authority.vault_server,
        "path": authority.vault_path,
        "auth": {"kubernetes": {"role": authority.vault_role, "mountPath": authority.vault_auth_path,
                                "serviceAccountRef": {"name": authority.vault_account}}},
    }}
    return Resource(CERT_MANAGER_API, "Issuer", namespace, VAULT_ISSUER, spec, origins(authority))


def issuer_certificate(authority: Authority, namespace: str, name: str, common_name: str,
                       key: dict[str, Any], usages: list[str], dns_names: list[str] | None = None) -> Resource:
    """The cert-manager Certificate of the mesh's issuer (intermediate CA), renewed ``renew-before`` ahead."""
    if authority.issuer is None or authority.renew_before is None:
        raise ValueError("the built-in authority has no issuer certificate")
    spec: dict[str, Any] = {
        "secretName": name,
        "isCA": True,
        "commonName": common_name,
        "duration": go_duration(authority.issuer.seconds),
        "renewBefore": go_duration(authority.renew_before.seconds),
        "privateKey": {**key, "rotationPolicy": "Always"},
        "usages": usages,
        "issuerRef": issuer_ref(authority),
    }
    if dns_names:
        spec["dnsNames"] = dns_names
    return Resource(CERT_MANAGER_API, "Certificate", namespace, name, spec, origins(authority))


@dataclass(frozen=True, slots=True)
class Alert:
    """One alerting rule: ``expr`` fires it, ``wait`` is its ``for``."""

    name: str
    expr: str
    wait: str
    severity: str
    summary: str
    description: str

    def rule(self) -> dict[str, Any]:
        return {"alert": self.name, "expr": self.expr, "for": self.wait, "labels": {"severity": self.severity},
                "annotations": {"summary": self.summary, "description": self.description,
                                "runbook": f"docs/certificates.md#{self.name.lower()}"}}


def expiry_alert(name: str, what: str, remaining: str, margin: int, wait: str, severity: str) -> Alert:
    """``remaining`` (a PromQL expression of seconds left) below ``margin`` seconds."""
    return Alert(name, f"{remaining} < {margin}", wait, severity,
                 f"{what} expires in less than {duration_text(margin)}",
                 f"{what} has less than {duration_text(margin)} of validity left, though it should have been "
                 "renewed by now: rotation is failing (docs/certificates.md)")


def anchor_alert(remaining: str, margin: int) -> Alert:
    """The trust anchor is never renewed by itself: it is rotated by hand, and that takes time."""
    return Alert("MeshTrustAnchorExpiring", f"{remaining} < {margin}", "1h", "warning",
                 f"The mesh's trust anchor expires in less than {duration_text(margin)}",
                 f"The trust anchor has less than {duration_text(margin)} of validity left: start the two-anchor "
                 "rotation now, since it takes at least one issuer rotation (docs/certificates.md)")


def error_alert(name: str, what: str, counter: str, severity: str = "warning") -> Alert:
    return Alert(name, f"increase({counter}[{ERROR_WINDOW}]) > 0", "5m", severity, f"{what} are failing",
                 f"{what} failed in the last {ERROR_WINDOW}; a rotation that keeps failing ends with expired "
                 "certificates (docs/certificates.md)")


def not_ready_alert(namespace: str, certificate: str) -> Alert:
    """cert-manager reports the mesh's issuer Certificate not Ready: it could not be issued or renewed."""
    labels = f"namespace={prom_string(namespace)},name={prom_string(certificate)},condition=\"False\""
    return Alert("MeshIssuerCertificateNotReady", f"max(certmanager_certificate_ready_status{{{labels}}}) == 1",
                 "15m", "critical",
                 f"cert-manager cannot issue the mesh's issuer certificate {namespace}/{certificate}",
                 "cert-manager reports the Certificate not Ready: its issuer refused or failed to sign it "
                 "(kubectl describe certificate shows why); the mesh keeps its current issuer until it expires")


def alert_rules(namespace: str, alerts: list[Alert], authority: Authority) -> Resource:
    spec = {"groups": [{"name": ALERTS, "rules": [a.rule() for a in alerts]}]}
    return Resource(MONITORING_API, "PrometheusRule", namespace, ALERTS, spec, origins(authority))


def bundle(name: str, authority: Authority, target_key: str, namespace: str) -> Resource:
    """A trust-manager Bundle that copies the trust anchors (two while one is rotated) into ConfigMap
    ``name`` (key ``target_key``) of ``namespace`` only. Bundles are cluster-scoped; the anchor Secrets
    are read from trust-manager's trust namespace."""
    spec = {
        "sources": [{"secret": {"name": secret, "key": key}} for secret, key in authority.anchors],
        "target": {"configMap": {"key": target_key},
                   "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
    }
    return Resource(TRUST_MANAGER_API, "Bundle", name, name, spec, origins(authority))
