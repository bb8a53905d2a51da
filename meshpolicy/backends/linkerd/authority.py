"""The certificate authority on Linkerd (docs/targets/linkerd.md, "Certificates").

Linkerd's identity controller signs workload certificates with the issuer certificate in the Secret
``linkerd-identity-issuer`` (pkg/k8s/labels.go ``IdentityIssuerSecretName``), which must be named
``identity.linkerd.TRUST_DOMAIN`` (pkg/identity/service.go checks it); proxies trust the anchors in the
ConfigMap ``linkerd-identity-trust-roots`` (key ``ca-bundle.crt``), which the chart leaves to someone else
when ``identity.externalCA`` is set (charts/linkerd-control-plane/templates/identity.yaml).
"""

from __future__ import annotations

from typing import Any

from ...diagnostics import Collector
from ...graph.model import DAY, Authority, AuthoritySource
from .. import certificates
from ..base import Resource
from .emit import CONTROL_PLANE_NAMESPACE

ISSUER_SECRET = "linkerd-identity-issuer"
TRUST_ROOTS = "linkerd-identity-trust-roots"
TRUST_ROOTS_KEY = "ca-bundle.crt"
#: the certificates ``linkerd install`` generates (and the chart is given) are valid for one year
INSTALLED_LIFETIME = 365 * DAY
#: the identity service's gRPC service, whose failed calls go-grpc-prometheus counts
IDENTITY_SERVICE = "io.linkerd.proxy.identity.Identity"


def resources(authority: Authority, trust_domain: str, diag: Collector) -> list[Resource]:
    """The issuer Certificate, the Bundle of the trust anchor and the alarms; MP704 for what Linkerd cannot
    take, MP705 for the alarm it cannot support."""
    out: list[Resource] = []
    if authority.source is AuthoritySource.BUILTIN:
        span = authority.setting("anchor-lifetime")
        if span is not None:
            diag.error("MP704", "anchor-lifetime cannot be expressed on target 'linkerd' with the built-in "
                       "authority", span, "Linkerd's installed trust anchor and issuer are made outside the "
                       "cluster and never rotated by Linkerd; declare authority cert-manager or vault to manage them")
    else:
        if not authority.anchors:
            diag.error("MP704", f"authority {authority.source.value} without 'anchor' cannot be expressed on "
                       "target 'linkerd'", authority.origin,
                       "Linkerd's proxies trust only the anchors of ConfigMap linkerd-identity-trust-roots: name "
                       "the Secret holding the trust anchor (anchor SECRET[/KEY]) for trust-manager to copy there")
        if authority.source is AuthoritySource.VAULT:
            out.append(certificates.vault_issuer(authority, CONTROL_PLANE_NAMESPACE))
        name = f"identity.{CONTROL_PLANE_NAMESPACE}.{trust_domain}"
        out.append(certificates.issuer_certificate(
            authority, CONTROL_PLANE_NAMESPACE, ISSUER_SECRET, name, {"algorithm": "ECDSA", "size": 256},
            ["cert sign", "crl sign", "server auth", "client auth"], [name]))
        if authority.anchors:
            out.append(certificates.bundle(TRUST_ROOTS, authority, TRUST_ROOTS_KEY, CONTROL_PLANE_NAMESPACE))
    diag.note("MP705", "no alert on the trust anchor's expiry on target 'linkerd': Linkerd exports no metric of "
              "it", authority.origin, "watch the anchor where it is kept (docs/certificates.md, \"Alerts\"); "
              "the issuer alert fires before workloads lose their identity")
    out.append(certificates.alert_rules(CONTROL_PLANE_NAMESPACE, alerts(authority), authority))
    return out


def alerts(authority: Authority) -> list[certificates.Alert]:
    """Alerts on the metrics the proxies and the identity controller export (docs/targets/linkerd.md)."""
    issuer = authority.issuer.seconds if authority.issuer is not None else INSTALLED_LIFETIME
    out = [
        certificates.expiry_alert(
            "MeshWorkloadCertificateExpiring", "A proxy's workload certificate",
            "(control_identity_cert_expiration_timestamp_seconds - time())", authority.workload_margin, "5m",
            "critical"),
        certificates.expiry_alert(
            "MeshIssuerCertificateExpiring", "The identity issuer certificate", "issuer_cert_ttl_seconds",
            authority.issuer_margin(issuer), "10m", "critical"),
        certificates.error_alert("MeshWorkloadCertificateRotationErrors", "Proxy certificate refreshes",
                                 'control_identity_cert_refreshes_total{result="error"}'),
        certificates.error_alert("MeshCertificateSigningErrors", "The identity service's certificate signings",
                                 f'grpc_server_handled_total{{grpc_service="{IDENTITY_SERVICE}",grpc_code!="OK"}}'),
    ]
    if authority.issuer is not None:
        out.append(certificates.not_ready_alert(CONTROL_PLANE_NAMESPACE, ISSUER_SECRET))
    return out


def install_values(authority: Authority) -> dict[str, Any]:
    """The linkerd-control-plane chart's values: the workload certificate lifetime; with an external
    authority, an issuer Secret in cert-manager's layout and trust roots that the chart does not create."""
    issuer: dict[str, Any] = {"issuanceLifetime": certificates.go_duration(authority.workload.seconds)}
    identity: dict[str, Any] = {"issuer": issuer}
    if authority.source is not AuthoritySource.BUILTIN:
        issuer["scheme"] = "kubernetes.io/tls"
        identity["externalCA"] = True
    return {"identity": identity}
