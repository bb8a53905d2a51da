"""The lint rules, registered by code (as sqlfluff registers its rules): one function per rule.

A rule is a function from a :class:`~.context.Context` to the findings it
makes; the registry gives them their code and severity, so a rule body only
says what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..diagnostics import LINT_CODES, Diagnostic, Related, Severity
from ..source import Span
from .context import Context


@dataclass(frozen=True, slots=True)
class Finding:
    message: str
    span: Span | None
    hint: str | None = None
    related: tuple[Related, ...] = ()


Check = Callable[[Context], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class LintRule:
    code: str
    name: str                 # a stable slug, also accepted by --disable
    severity: Severity
    check: Check

    @property
    def summary(self) -> str:
        return LINT_CODES[self.code]

    def run(self, ctx: Context) -> list[Diagnostic]:
        return [Diagnostic(self.code, self.severity, f.message, f.span, f.hint, f.related)
                for f in self.check(ctx)]


#: code -> rule, in code order once every rule module is imported
RULES: dict[str, LintRule] = {}


def rule(code: str, name: str, severity: Severity = Severity.WARNING) -> Callable[[Check], Check]:
    """Register ``check`` as lint rule ``code``; the code must be listed in ``diagnostics.LINT_CODES``."""
    if code not in LINT_CODES:
        raise KeyError(f"{code} is not in diagnostics.LINT_CODES")

    def register(check: Check) -> Check:
        RULES[code] = LintRule(code, name, severity, check)
        return check
    return register
