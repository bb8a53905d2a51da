"""Certificate rules: lifetimes that make rotation unsafe (ML050-ML052, docs/certificates.md).

Each finding points at the setting that causes it (the ``authority`` line where the value is a default).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..graph.model import DAY, duration_text
from .context import Context
from .registry import Finding, rule


@rule("ML050", "renewal-within-alert-margin")
def renewal_within_alert_margin(ctx: Context) -> Iterator[Finding]:
    """cert-manager renews the issuer certificate ``renew-before`` ahead of its expiry; the alert fires
    ``issuer_margin`` ahead. A renewal window no longer than the margin makes the alert fire on every healthy
    cycle, before a renewal was even tried, and teaches everyone to ignore it."""
    authority = ctx.graph.authority
    if authority is None or authority.issuer is None or authority.renew_before is None:
        return
    margin = authority.issuer_margin()
    if authority.renew_before.seconds <= margin:
        yield Finding(
            f"renew-before {duration_text(authority.renew_before.seconds)} is not longer than the alert margin "
            f"{duration_text(margin)} (a sixth of the issuer lifetime {duration_text(authority.issuer.seconds)}): "
            "the issuer-expiry alert fires on every rotation, before cert-manager even tries to renew",
            authority.renew_before.origin or authority.origin,
            f"renew earlier: renew-before {duration_text(authority.issuer.seconds // 3)} (a third of the lifetime, "
            "cert-manager's default) leaves time to act on a failed renewal")


@rule("ML051", "issuer-outlives-anchor")
def issuer_outlives_anchor(ctx: Context) -> Iterator[Finding]:
    """An issuer certificate is valid only while the trust anchor that signed it is: one declared to live
    longer is cut short by the anchor's expiry, and every workload certificate with it."""
    authority = ctx.graph.authority
    if authority is None or authority.issuer is None:
        return
    if authority.issuer.seconds >= authority.anchor.seconds:
        yield Finding(
            f"the issuer lifetime {duration_text(authority.issuer.seconds)} is not shorter than the trust anchor's "
            f"{duration_text(authority.anchor.seconds)}: the issuer certificate would outlive the anchor that "
            "signs it, and the mesh stops when the anchor expires",
            authority.issuer.origin or authority.origin,
            "keep the issuer well within the anchor's lifetime (a tenth of it or less), so that the anchor can "
            "be rotated across several issuer rotations (docs/certificates.md)")


@rule("ML052", "long-workload-certificates")
def long_workload_certificates(ctx: Context) -> Iterator[Finding]:
    """Workload certificates are the ones that leak with a compromised pod; no revocation reaches them, so
    their lifetime is the window an attacker keeps a stolen identity."""
    authority = ctx.graph.authority
    if authority is None or authority.workload.seconds <= DAY:
        return
    yield Finding(
        f"workload certificates live {duration_text(authority.workload.seconds)}: longer than a day, a stolen "
        "workload identity stays valid that long, since nothing revokes it",
        authority.workload.origin or authority.origin,
        "keep workload-lifetime at 24h or less (both meshes default to 24h and renew automatically)")
