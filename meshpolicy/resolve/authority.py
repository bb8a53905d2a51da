"""The ``authority`` statement (docs/language.md, "authority"): a source, then ``KEY VALUE`` settings,
into the target-neutral :class:`~meshpolicy.graph.model.Authority`.

Every value is checked here, before any backend sees it: names are Kubernetes object names, the Vault
server an ``https`` URL, durations ``N`` followed by ``m``, ``h`` or ``d``. Errors: MP700 (the statement's
form: a source, a setting, a value), MP701 (a duration), MP702 (a second ``authority``, or one inside a
namespace), MP703 (lifetimes that cert-manager would refuse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..diagnostics import Collector, Related, shown
from ..graph.model import DAY, HOUR, Authority, AuthoritySource, IssuerKind, Lifetime, duration_text
from ..parse import ast
from ..source import Span
from .base import Reported
from .names import DNS_LABEL, DNS_SUBDOMAIN, did_you_mean

#: ``N`` followed by a unit: minutes, hours or days (no fractions, no mixed units: one way to write a value)
DURATION = re.compile(r"^([1-9][0-9]{0,6})([mhd])$")
UNITS = {"m": 60, "h": HOUR, "d": DAY}
#: cert-manager refuses a Certificate shorter than an hour; a lifetime past 100 years is a typo
SHORTEST, LONGEST = HOUR, 36500 * DAY

DEFAULT_WORKLOAD = 24 * HOUR       # both meshes' default (Istio SECRET_TTL, Linkerd issuanceLifetime)
DEFAULT_ISSUER = 90 * DAY          # cert-manager's default Certificate duration
DEFAULT_ANCHOR = 3650 * DAY        # istiod's self-signed root (CITADEL_SELF_SIGNED_CA_CERT_TTL)

LIFETIMES = ("workload-lifetime", "issuer-lifetime", "renew-before", "anchor-lifetime")
#: source -> the settings it takes (besides the lifetimes), the required ones first
SETTINGS: dict[AuthoritySource, tuple[tuple[str, ...], tuple[str, ...]]] = {
    AuthoritySource.BUILTIN: ((), ()),
    AuthoritySource.CERT_MANAGER: (("issuer",), ("kind", "anchor")),
    AuthoritySource.VAULT: (("server", "path", "role"), ("auth-path", "account", "anchor")),
}
#: the built-in authority has no issuer certificate that meshpolicy manages
BUILTIN_REFUSES = ("issuer-lifetime", "renew-before")

VAULT_SERVER = re.compile(r"^https://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[-A-Za-z0-9._~/]*)?$")
VAULT_PATH = re.compile(r"^[A-Za-z0-9_][-A-Za-z0-9_./]*$")
VAULT_ROLE = re.compile(r"^[A-Za-z0-9_][-A-Za-z0-9_.]*$")
AUTH_PATH = re.compile(r"^/[-A-Za-z0-9_./]*[A-Za-z0-9_]$")
#: the key of the anchor's Secret where none is given: a kubernetes.io/tls Secret's certificate
DEFAULT_ANCHOR_KEY = "tls.crt"
SECRET_KEY = re.compile(r"^[-._A-Za-z0-9]+$")


class AuthorityError(Reported):
    """A problem already reported: the statement is dropped."""


@dataclass
class _Reader:
    diag: Collector
    stmt: ast.Authority

    def fail(self, code: str, message: str, span: Span | None, hint: str | None = None,
             related: tuple[Related, ...] = ()) -> AuthorityError:
        self.diag.error(code, message, span, hint, related)
        return AuthorityError()


def duration(word: ast.Word, diag: Collector) -> int | None:
    """Seconds of a duration such as ``24h``, ``90d`` or ``45m``; None (with MP701) otherwise."""
    found = DURATION.match(word.value)
    if found is None:
        diag.error("MP701", f"invalid duration '{shown(word.value)}'", word.span,
                   "write a whole number followed by m (minutes), h (hours) or d (days): 45m, 24h, 90d")
        return None
    seconds = int(found.group(1)) * UNITS[found.group(2)]
    if not SHORTEST <= seconds <= LONGEST:
        diag.error("MP701", f"duration '{word.value}' is out of range", word.span,
                   "a certificate lifetime is at least 1h (cert-manager's minimum) and at most 36500d")
        return None
    return seconds


def read(stmt: ast.Authority, diag: Collector) -> Authority | None:
    """The authority ``stmt`` declares, or None when it has errors (each reported)."""
    reader = _Reader(diag, stmt)
    try:
        return _read(reader, stmt)
    except AuthorityError:
        return None


def _read(r: _Reader, stmt: ast.Authority) -> Authority:
    if not stmt.words:
        raise r.fail("MP700", "authority needs a source", stmt.span,
                     "write: authority builtin | cert-manager issuer NAME | vault server URL path PATH role ROLE")
    source_word, rest = stmt.words[0], stmt.words[1:]
    try:
        source = AuthoritySource(source_word.value)
    except ValueError:
        names = [s.value for s in AuthoritySource]
        hint = did_you_mean(source_word.value, names) or f"one of: {', '.join(names)}"
        raise r.fail("MP700", f"unknown authority source '{shown(source_word.value)}'", source_word.span,
                     hint) from None
    required, optional = SETTINGS[source]
    known = required + optional + LIFETIMES
    values: dict[str, ast.Word] = {}
    keys: dict[str, ast.Word] = {}
    failed = False
    for i in range(0, len(rest), 2):
        key = rest[i]
        if key.value not in known:
            hint = did_you_mean(key.value, list(known)) or f"settings of '{source.value}': {', '.join(known)}"
            r.diag.error("MP700", f"unknown setting '{shown(key.value)}' for authority {source.value}", key.span,
                         hint)
            failed = True
            continue
        if i + 1 >= len(rest):
            r.diag.error("MP700", f"setting '{key.value}' has no value", key.span,
                         f"write: {key.value} VALUE")
            failed = True
            continue
        if key.value in keys:
            r.diag.error("MP700", f"setting '{key.value}' is given twice", key.span,
                         related=(Related(keys[key.value].span, "first given here"),))
            failed = True
            continue
        if source is AuthoritySource.BUILTIN and key.value in BUILTIN_REFUSES:
            r.diag.error("MP700", f"the built-in authority has no issuer certificate for '{key.value}' to set",
                         key.span, "declare authority cert-manager or vault to manage an issuer certificate")
            failed = True
            continue
        keys[key.value], values[key.value] = key, rest[i + 1]
    missing = [k for k in required if k not in values]
    if missing and not failed:
        r.diag.error("MP700", f"authority {source.value} needs '{missing[0]}'", stmt.span,
                     f"write: authority {source.value} " + " ".join(f"{k} {k.upper()}" for k in required))
    built = _build(r, stmt, source, values, keys)  # checks every value given, even when a setting failed
    if failed or missing:
        raise AuthorityError
    return built


def _build(r: _Reader, stmt: ast.Authority, source: AuthoritySource, values: dict[str, ast.Word],
           keys: dict[str, ast.Word]) -> Authority:
    lifetimes: dict[str, Lifetime] = {}
    bad = False
    for key in LIFETIMES:
        if key in values:
            seconds = duration(values[key], r.diag)
            if seconds is None:
                bad = True
            else:
                lifetimes[key] = Lifetime(seconds, values[key].span)
    fields: dict[str, object] = {}
    for key, word in values.items():
        if key in LIFETIMES:
            continue
        problem = _value_problem(key, word.value)
        if problem:
            r.diag.error("MP700", f"invalid {key} '{shown(word.value)}'", word.span, problem)
            bad = True
            continue
        if key == "anchor":
            anchors = [item.partition("/") for item in word.value.split(",")]
            fields["anchors"] = tuple((name, secret_key or DEFAULT_ANCHOR_KEY) for name, _, secret_key in anchors)
        else:
            fields[_FIELDS[key]] = IssuerKind(word.value) if key == "kind" else word.value
    if bad or any(k not in values for k in SETTINGS[source][0]):
        raise AuthorityError
    builtin = source is AuthoritySource.BUILTIN
    issuer = None if builtin else lifetimes.get("issuer-lifetime", Lifetime(DEFAULT_ISSUER))
    renew = None if builtin or issuer is None else lifetimes.get("renew-before", Lifetime(issuer.seconds // 3))
    if issuer is not None and renew is not None and renew.seconds >= issuer.seconds:
        raise r.fail("MP703", f"renew-before {duration_text(renew.seconds)} is not shorter than the issuer "
                     f"lifetime {duration_text(issuer.seconds)}", renew.origin or stmt.span,
                     "cert-manager renews a certificate renew-before ahead of its expiry, which must fall "
                     "within its lifetime; a third of the lifetime is its default")
    settings = tuple(sorted((k, w.span) for k, w in keys.items()))
    return Authority(source, stmt.span,
                     workload=lifetimes.get("workload-lifetime", Lifetime(DEFAULT_WORKLOAD)),
                     anchor=lifetimes.get("anchor-lifetime", Lifetime(DEFAULT_ANCHOR)),
                     issuer=issuer, renew_before=renew, settings=settings,
                     **fields)  # type: ignore[arg-type]


_FIELDS = {"issuer": "issuer_ref", "kind": "issuer_kind", "server": "vault_server", "path": "vault_path",
           "role": "vault_role", "auth-path": "vault_auth_path", "account": "vault_account"}


def _value_problem(key: str, value: str) -> str | None:
    """Why ``value`` cannot be the setting ``key``, or None."""
    if key == "issuer":
        if len(value) > 253 or not DNS_SUBDOMAIN.match(value):
            return "a Kubernetes object name: lowercase letters, digits, '-' and '.'"
        return None
    if key == "anchor":
        items = value.split(",")
        if len(items) > 2 or len(set(items)) != len(items):
            return "one Secret, or two different ones while an anchor is rotated: SECRET[/KEY][,SECRET[/KEY]]"
        for item in items:
            name, slash, secret_key = item.partition("/")
            if len(name) > 253 or not DNS_SUBDOMAIN.match(name) or (slash and not SECRET_KEY.match(secret_key)):
                return ("a Secret's name (a Kubernetes object name), optionally followed by /KEY "
                        f"(default {DEFAULT_ANCHOR_KEY}); two while an anchor is rotated, separated by ','")
        return None
    if key == "kind":
        return None if value in {k.value for k in IssuerKind} else "Issuer or ClusterIssuer"
    if key == "server":
        return None if VAULT_SERVER.match(value) else "an https URL: https://vault.example.com:8200"
    if key == "path":
        return None if VAULT_PATH.match(value) else "Vault's PKI signing path, such as pki_int/sign/mesh"
    if key == "role":
        return None if VAULT_ROLE.match(value) else "the name of Vault's Kubernetes auth role"
    if key == "auth-path":
        return None if AUTH_PATH.match(value) else \
            "the mount path of Vault's Kubernetes auth, such as /v1/auth/kubernetes"
    if key == "account":
        return None if DNS_LABEL.match(value) and len(value) <= 63 else "a service account name (a DNS-1123 label)"
    return None

