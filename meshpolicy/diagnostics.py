"""One diagnostic type for every stage, and its rendering.

Every diagnostic carries a code, a severity, a one-line message, a span and
optionally a hint and related spans (the other place of "declared twice").
A stage collects all its diagnostics and raises :class:`MeshError` once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import MeshpolicyError
from .source import SourceFile, Span


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


# Stable codes, one per class of problem. Documented in docs/diagnostics.md.
CODES: dict[str, str] = {
    "MP001": "syntax error",
    "MP002": "block not closed",
    "MP101": "invalid name",
    "MP102": "declared twice",
    "MP103": "undeclared reference",
    "MP104": "group cycle",
    "MP105": "unused group",
    "MP106": "external service used as a destination",
    "MP107": "invalid port",
    "MP108": "invalid protocol",
    "MP109": "HTTP match on a non-HTTP port",
    "MP110": "port not declared by the destination",
    "MP111": "invalid label",
    "MP112": "invalid CIDR",
    "MP113": "invalid HTTP method",
    "MP114": "invalid path",
    "MP115": "invalid trust domain",
    "MP116": "invalid gRPC name",
    "MP117": "misplaced statement",
    "MP118": "overlapping selectors",
    "MP119": "invalid source or destination",
    "MP120": "system namespace managed",
    "MP130": "unknown HTTP method",
    "MP131": "grpc rule on a destination without grpc ports",
    "MP140": "invalid issuer URL",
    "MP141": "unknown issuer",
    "MP142": "invalid header or claim name",
    "MP143": "invalid condition value",
    "MP144": "claim without a jwt condition",
    "MP145": "conditions that can never hold together",
    "MP150": "'**' used as a source",
    "MP151": "a '**' rule with HTTP matches and no ports",
    "MP152": "a '**' rule's HTTP match on a declared tcp port",
    "MP153": "a '**' rule with a container port's name",
    "MP201": "never invariant violated",
    "MP301": "not expressible on the target",
    "MP302": "probe paths opened to unauthenticated clients",
    "MP303": "namespace not emitted: the metadata it must carry",
    "MP304": "a port with routes and no declared probes",
    "MP311": "audit mode: PeerAuthentication stays enforcing",
    "MP312": "a deny of '*' depends on the trust domain",
    "MP313": "a policy split to stay within the Kubernetes limits",
    "MP314": "audit mode: requests matching no route still refused",
    "MP320": "audit mode: RequestAuthentication stays enforcing",
    "MP401": "output folder problem",
    "MP402": "schema validation failed",
    "MP403": "output is stale",
    "MP404": "an object beyond the Kubernetes API server's limits",
    "MP405": "output file not read",
    "MP501": "emitted policy differs from the source",
    # --cluster: the policy against the manifests of its workloads (docs/cluster.md)
    "MP601": "manifest cannot be read",
    "MP602": "labels select no workload",
    "MP603": "labels select several kinds of workload",
    "MP604": "service account differs from the workload's",
    "MP605": "declared port not exposed by the workload",
    "MP606": "HTTP probe not declared in probes",
    "MP607": "managed namespace without proxy injection",
    "MP608": "workload opts out of the proxy",
    "MP609": "job kept from completing by its proxy",
    "MP610": "workload that no declared service selects",
    "MP611": "two services select one pod",
    "MP612": "selectors proven disjoint by the manifests",
    "MP613": "workload runs as a service's account without being selected",
    "MP614": "container port name without --cluster",
    "MP615": "container port name that the pods do not have",
    "MP616": "container port name that the pods give different numbers",
    # meshpolicy import: existing Istio or Linkerd policy to .mesh (docs/import.md)
    "MP800": "manifest cannot be read for import",
    "MP801": "imported narrower: not expressible exactly",
    "MP802": "imported policy refuses what the original allows",
    "MP803": "rule not imported: it would allow more",
    "MP805": "resource not imported: no effect on access",
    "MP806": "no proved import",
    # the build cache (docs/cache.md): about the cache, never about the policy
    "MP850": "build cache not used",
    "MP851": "build cache entries ignored",
    # the certificate authority (docs/certificates.md)
    "MP700": "invalid authority statement",
    "MP701": "invalid duration",
    "MP702": "misplaced or repeated authority",
    "MP703": "lifetimes cert-manager would refuse",
    "MP704": "authority not expressible on the target",
    "MP705": "an alert the target cannot support",
}

# Lint findings (``meshpolicy lint``), a separate series: a policy with findings still compiles.
# One rule each, documented one by one in docs/lint.md; the checks live in meshpolicy/lint/.
LINT_CODES: dict[str, str] = {
    "ML001": "permissive mTLS",
    "ML002": "'any' source on strict ports",
    "ML003": "service that no rule names",
    "ML004": "redundant allow rule",
    "ML005": "dead allow rule",
    "ML006": "unused group",
    "ML007": "destination covers a whole namespace",
    "ML008": "services share one account",
    "ML009": "caller-only namespace not external",
    "ML010": "caller whose account others share",
    "ML011": "Linkerd port whose probes will be refused",
    "ML020": "gRPC service without a package",
    "ML030": "header condition on an unauthenticated source",
    "ML031": "deny rule triggered by headers only",
    "ML050": "renewal window not longer than the alert margin",
    "ML051": "issuer certificate outliving its trust anchor",
    "ML052": "workload certificates longer than a day",
}


# Findings of ``meshpolicy import`` about the manifests it reads (docs/lint.md, "Import findings"): what the
# original really allows. The same format as lint's findings; a separate series, as no lint rule runs them.
IMPORT_CODES: dict[str, str] = {
    "ML060": "from and to in separate rule entries",
    "ML061": "namespaces where a principal was meant",
    "ML062": "DENY with HTTP fields on a TCP port",
    "ML063": "path matched literally",
    "ML064": "selector matches no workload",
    "ML065": "plaintext accepted under identity rules",
    "ML066": "dry run left on",
}


_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def shown(value: str) -> str:
    """A user's value as every diagnostic (and ``diff``) shows it: printable ASCII as written, any other
    character escaped (``\\u200b``, ``\\u0430``, ``\\x00``), so that an invisible or look-alike character
    can never pass for another (docs/diagnostics.md)."""
    return "".join(ch if " " <= ch <= "~" else _escaped(ch) for ch in value)


def _escaped(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass(frozen=True, slots=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None = None
    hint: str | None = None
    related: tuple[Related, ...] = field(default=())

    def sort_key(self) -> tuple:
        span = self.span or Span("", 0, 0, 0, 0)
        return (span.file, span.line, span.col, self.code, self.message)

    def to_dict(self) -> dict[str, Any]:
        """One record that feeds every output format."""
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
        }
        if self.span is not None:
            out.update(
                file=self.span.file,
                line=self.span.line,
                column=self.span.col,
                end_line=self.span.end_line,
                end_column=self.span.end_col,
            )
        if self.hint:
            out["hint"] = self.hint
        if self.related:
            out["related"] = [
                {"file": r.span.file, "line": r.span.line, "column": r.span.col, "message": r.message}
                for r in self.related
            ]
        return out


class MeshError(MeshpolicyError):
    """Raised once per stage with every error that stage found (and its warnings)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__("; ".join(d.message for d in self.diagnostics))


class Collector:
    """Collects diagnostics for one stage; :meth:`raise_if_errors` ends the stage."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        #: what :meth:`_add` has seen of ``items`` (the list and its length, as ``items`` may be replaced or
        #: extended directly): membership in a set, where a scan of the list was quadratic in the notes
        #: (issue 12: 1,050 notes of a 1,000-service Istio build took 13 s)
        self._seen: tuple[list[Diagnostic], int, set[Diagnostic]] | None = None

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None,
              related: tuple[Related, ...] = ()) -> None:
        self._add(Diagnostic(code, Severity.ERROR, message, span, hint, related))

    def warning(self, code: str, message: str, span: Span | None, hint: str | None = None,
                related: tuple[Related, ...] = ()) -> None:
        self._add(Diagnostic(code, Severity.WARNING, message, span, hint, related))

    def note(self, code: str, message: str, span: Span | None, hint: str | None = None,
             related: tuple[Related, ...] = ()) -> None:
        self._add(Diagnostic(code, Severity.NOTE, message, span, hint, related))

    def _add(self, diag: Diagnostic) -> None:
        """Once: a group used by several rules reports its broken member once, not once per use."""
        seen = self._seen
        if seen is None or seen[0] is not self.items or seen[1] != len(self.items):
            seen = (self.items, len(self.items), set(self.items))
        if diag not in seen[2]:
            self.items.append(diag)
            seen[2].add(diag)
        self._seen = (self.items, len(self.items), seen[2])

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise MeshError(self.items)

    def warnings(self) -> list[Diagnostic]:
        return sorted((d for d in self.items if d.severity is not Severity.ERROR), key=Diagnostic.sort_key)


def render_text(diag: Diagnostic, sources: Mapping[str, SourceFile]) -> str:
    """``file:line:col: error[MP103]: message``, the source line, a caret run, then ``hint:``."""
    where = f"{shown(str(diag.span))}: " if diag.span else ""
    lines = [f"{where}{diag.severity.value}[{diag.code}]: {diag.message}"]
    if diag.span is not None:
        lines.extend(_excerpt(diag.span, sources))
    for rel in diag.related:
        lines.append(f"  = {shown(str(rel.span))}: {rel.message}")
        lines.extend(_excerpt(rel.span, sources))
    if diag.hint:
        lines.append(f"  = hint: {diag.hint}")
    return "\n".join(lines)


def _excerpt(span: Span, sources: Mapping[str, SourceFile]) -> list[str]:
    src = sources.get(span.file)
    if src is None:
        return []
    text = src.line(span.line)
    if not text and span.line > len(src.text.splitlines()):
        return []
    gutter = str(span.line)
    pad = " " * len(gutter)
    width = span.end_col - span.col if span.end_line == span.line and span.end_col > span.col else 1
    # the line as shown (tabs kept, every other invisible or non-ASCII character escaped), carets under the
    # shown form of the span's characters
    before, marked = text[: span.col - 1], text[span.col - 1: span.col - 1 + width]
    caret_pad = "".join("\t" if ch == "\t" else " " for ch in _line(before))
    carets = len(_line(marked)) + width - len(marked)
    return [f" {gutter} | {_line(text)}", f" {pad} | {caret_pad}{'^' * carets}"]


def _line(text: str) -> str:
    """A source line as an excerpt shows it: :func:`shown`, but tabs stay tabs (the caret line follows them)."""
    return "\t".join(shown(part) for part in text.split("\t"))
