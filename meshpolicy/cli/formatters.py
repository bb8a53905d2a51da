"""Diagnostics in every output format, all built from :meth:`Diagnostic.to_dict` (never in command bodies).

- ``human``: ``file:line:col: severity[CODE]: message``, the source line, a caret run, the hint;
- ``json``: a list of ``to_dict()`` records;
- ``github``: GitHub Actions workflow commands (``::warning file=...::message``), one per line,
  which the runner turns into annotations on the pull request;
- ``sarif``: a SARIF 2.1.0 log, for GitHub code scanning (``upload-sarif``) and other viewers.

``meshpolicy diff`` has its own three: ``text``, ``markdown`` (a pull-request comment) and ``json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import typer

from .. import __version__
from ..diagnostics import CODES, IMPORT_CODES, LINT_CODES, Diagnostic, Severity, render_text
from ..source import SourceFile

if TYPE_CHECKING:  # annotations only: the diff engine (and the parser it needs) loads with ``meshpolicy diff``
    from ..diff import Diff, Side

FORMATS = ("human", "json", "github", "sarif")

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "note": "notice"}


def render(diagnostics: Iterable[Diagnostic], sources: Mapping[str, SourceFile], fmt: str) -> str:
    """The diagnostics as one text in format ``fmt``, ending with a line break unless empty."""
    diagnostics = list(diagnostics)
    if fmt == "json":
        return json.dumps([d.to_dict() for d in diagnostics], indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif([d.to_dict() for d in diagnostics]), indent=2) + "\n"
    if fmt == "github":
        return "".join(github(d.to_dict()) + "\n" for d in diagnostics)
    return "".join(render_text(d, sources) + "\n" for d in diagnostics)


def counts(diagnostics: Iterable[Diagnostic]) -> str:
    diagnostics = list(diagnostics)
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
    return f"{errors} error(s), {warnings} warning(s)"


def emit_diagnostics(diagnostics: list[Diagnostic], sources: Mapping[str, SourceFile], fmt: str = "human",
                     err: bool = True) -> None:
    """What ``build`` and ``check`` print: nothing when there is nothing to say, on stderr by default."""
    if not diagnostics:
        return
    typer.echo(render(diagnostics, sources, fmt), nl=False, err=err)
    if fmt == "human" and any(d.severity is Severity.ERROR for d in diagnostics):
        typer.echo(counts(diagnostics), err=err)


# -- GitHub Actions ----------------------------------------------------------------

def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github(record: Mapping[str, Any]) -> str:
    """One workflow command. The runner rejects col/endColumn across lines, so they go only on one-line spans."""
    props = []
    if "file" in record:
        props.append(f"file={_escape_property(record['file'])}")
        props.append(f"line={record['line']}")
        props.append(f"endLine={record['end_line']}")
        if record["end_line"] == record["line"] and record["end_column"] >= record["column"]:
            props.append(f"col={record['column']}")
            props.append(f"endColumn={record['end_column']}")
    props.append(f"title={_escape_property('meshpolicy ' + record['code'])}")
    message = record["message"] + "".join(f"\n{r['file']}:{r['line']}: {r['message']}"
                                          for r in record.get("related") or [])
    message += f"\nhint: {record['hint']}" if record.get("hint") else ""
    return f"::{_GITHUB_LEVEL[record['severity']]} {','.join(props)}::{_escape_data(message)}"


# -- SARIF 2.1.0 -----------------------------------------------------------------------

def _location(file: str, line: int, column: int, end_line: int | None = None,
              end_column: int | None = None) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": line, "startColumn": column}
    if end_line is not None:
        region.update(endLine=end_line, endColumn=end_column)
    return {"physicalLocation": {"artifactLocation": {"uri": quote(file), "uriBaseId": "%SRCROOT%"},
                                 "region": region}}


def sarif_rules(codes: Iterable[str]) -> list[dict[str, Any]]:
    """The rules of ``codes``: compiler errors (MPxxx), then lint findings (MLxxx)."""
    known = {**CODES, **LINT_CODES, **IMPORT_CODES}
    rules = []
    for code in sorted(set(codes), key=lambda c: (c.startswith("ML"), c)):
        summary = known.get(code, code)
        level = "warning" if code.startswith("ML") or code == "MP105" else "error"
        rules.append({
            "id": code,
            "shortDescription": {"text": summary},
            "defaultConfiguration": {"level": level},
            "properties": {"tags": ["lint" if code.startswith("ML") else "compiler"]},
        })
    return rules


def sarif(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A SARIF log with one run; columns count Unicode code points, as meshpolicy's spans do.

    The run lists the rules its results use (a stable log whatever codes other versions add).
    """
    rules = sarif_rules(rec["code"] for rec in records)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for rec in records:
        text = rec["message"] + (f"\nhint: {rec['hint']}" if rec.get("hint") else "")
        result: dict[str, Any] = {"ruleId": rec["code"], "ruleIndex": index[rec["code"]],
                                  "level": rec["severity"], "message": {"text": text}}
        if "file" in rec:
            result["locations"] = [_location(rec["file"], rec["line"], rec["column"],
                                             rec["end_line"], rec["end_column"])]
        related = rec.get("related") or []
        if related:
            result["relatedLocations"] = [
                {"id": i, **_location(r["file"], r["line"], r["column"]), "message": {"text": r["message"]}}
                for i, r in enumerate(related)]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "meshpolicy", "version": __version__, "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


# -- diff: text | markdown | json ----------------------------------------------------

DIFF_FORMATS = ("text", "markdown", "json")
MARKDOWN_MARKER = "<!-- meshpolicy diff -->"


def render_diff(diff: Diff, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(diff_record(diff), indent=2) + "\n"
    if fmt == "markdown":
        return _diff_markdown(diff)
    return _diff_text(diff)


def _summary(diff: Diff) -> str:
    if not diff.changed:
        return "no change in access"
    return f"access changed: {diff.count('granted')} granted, {diff.count('removed')} removed" + \
        (f", {len(diff.notes)} note(s)" if diff.notes else "")


def _rules(side: Side) -> list[tuple[str, str]]:
    return [(r.origin.short, r.text) for r in side.rules]


def _diff_text(diff: Diff) -> str:
    lines = [_summary(diff)]
    for destination, changes in diff.by_destination():
        lines += ["", destination]
        for change in changes:
            lines.append(f"  {'+' if change.kind == 'granted' else '-'} {change.request}")
            for label, side in (("before", change.before), ("after", change.after)):
                rules = _rules(side)
                if not rules:
                    lines.append(f"      {label + ':':8}{side.why}")
                for i, (where, text) in enumerate(rules):
                    lead = f"{label + ':':8}{side.why} " if i == 0 else " " * (8 + len(side.why) + 1)
                    lines.append(f"      {lead}{where}  {text}")
    if diff.notes:
        lines += ["", "notes"] + [f"  ! {note}" for note in diff.notes]
    return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    """A Markdown code span that holds any text (backticks included)."""
    longest = 0
    run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _diff_markdown(diff: Diff) -> str:
    lines = [MARKDOWN_MARKER, "### meshpolicy diff", ""]
    if not diff.changed:
        return "\n".join(lines + ["No change in access."]) + "\n"
    lines += [f"**{diff.count('granted')} granted, {diff.count('removed')} removed**"
              + (f", {len(diff.notes)} note(s)" if diff.notes else ""), ""]
    for destination, changes in diff.by_destination():
        lines += [f"#### {_code(destination)}", ""]
        for change in changes:
            lines.append(f"- **{change.kind}** {_code(change.request)}")
            for label, side in (("before", change.before), ("after", change.after)):
                rules = "; ".join(f"{_code(where)} {_code(text)}" for where, text in _rules(side))
                lines.append(f"  - {label}: {side.why}" + (f" {rules}" if rules else ""))
        lines.append("")
    if diff.notes:
        lines += ["#### Notes", ""] + [f"- {note}" for note in diff.notes] + [""]
    return "\n".join(lines)


def _side_record(side: Side) -> dict[str, Any]:
    return {"allowed": side.allowed, "reason": side.reason, "why": side.why,
            "rules": [{"file": r.origin.file, "line": r.origin.line, "text": r.text} for r in side.rules]}


def diff_record(diff: Diff) -> dict[str, Any]:
    return {
        "changed": diff.changed,
        "granted": diff.count("granted"),
        "removed": diff.count("removed"),
        "notes": list(diff.notes),
        "changes": [{
            "kind": c.kind,
            "destination": c.destination,
            "ports": None if c.ports is None else list(c.ports),
            "other_ports": c.other_ports,
            "callers": list(c.callers),
            "methods": c.methods,
            "paths": c.paths,
            "conditions": c.conditions,
            "request": c.request,
            "before": _side_record(c.before),
            "after": _side_record(c.after),
        } for c in diff.changes],
    }
