"""``meshpolicy explain``: can A call B? Allowed or refused, and the line that decides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .. import explain as explaining
from .. import pipeline
from .. import verify as verifier
from ..backends import TARGETS, get_backend
from ..diagnostics import MeshError
from ..graph.model import Mode
from ..output import folder, writer
from ..parse import ast
from ..readers import ReaderError
from .common import (
    EXIT_USAGE,
    ISTIO_ROOT_HELP,
    ClusterOption,
    Fail,
    boundary,
    choose,
    emit_diagnostics,
    read_policy,
    target_options,
)

#: Click must pass '->' through as a word, not read it as an option
CONTEXT = {"ignore_unknown_options": True}


def explain(
    words: Annotated[list[str], typer.Argument(
        metavar="PATH... FROM -> TO [METHOD] [PATH] [:PORT]",
        help="Policy files or folders, then the question; quote '->' in the shell.")],
    plaintext: Annotated[bool, typer.Option("--plaintext", help="The caller sends no mTLS (no identity).")] = False,
    ip: Annotated[str | None, typer.Option("--ip", metavar="ADDR", help="The caller's source address.")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", metavar="TARGET", help="Also name the emitted resources that "
                                               "decide, for this target.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="DIR", help="With --target: read the resources from this "
                                             "output folder instead of compiling in memory.")] = None,
    mode: Annotated[Mode, typer.Option(metavar="MODE", help="With --target: enforce or audit.")] = Mode.ENFORCE,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="human or json.")] = "human",
    istio_root_namespace: Annotated[str | None, typer.Option("--istio-root-namespace", metavar="NAME",
                                                             help=ISTIO_ROOT_HELP)] = None,
    cluster: ClusterOption = None,
    header: Annotated[list[str] | None, typer.Option("--header", metavar="NAME=VALUE",
                                                     help="A header the request carries (repeatable).")] = None,
    jwt: Annotated[str | None, typer.Option("--jwt", metavar="ISSUER", help="The request carries a valid token of "
                                            "this declared issuer, with a sub claim.")] = None,
    claim: Annotated[list[str] | None, typer.Option("--claim", metavar="NAME=VALUE", help="A claim of that token "
                                                    "(repeatable; a name given twice is a list).")] = None,
) -> None:
    """Explain whether FROM may call TO, with the rule(s) that decide, the mTLS mode and the nearest rule."""
    sources: dict = {}
    with boundary(lambda: sources, fmt):
        choose(fmt, ("human", "json"), "--format")
        if target is not None:
            choose(target, sorted(TARGETS), "--target")
        elif out is not None:
            raise Fail("--out needs --target")
        options = target_options(target, istio_root_namespace=istio_root_namespace)
        paths, words = explaining.split_query(words)  # a QueryError is a UsageError: one line, exit 2
        query = _read_question(words, fmt)
        analysis = read_policy(paths, sources, cluster, target)
        emit_diagnostics(analysis.diagnostics, sources, fmt)
        graph = analysis.graph
        req, notes = explaining.request(graph, query, plaintext, ip, analysis.cluster)
        req, more = explaining.with_conditions(graph, req, header or [], jwt, claim or [])
        notes += more
        open_probes = get_backend(target)(mode=mode, **options).open_probes(graph) if target else frozenset()
        result = explaining.explain(graph, req, open_probes)
        result.notes[:0] = notes
        if target is not None:
            _resources(result, analysis, target, out, mode, options)
        if fmt == "json":
            typer.echo(json.dumps(result.to_dict(), indent=2))
        else:
            typer.echo(result.render())


def _read_question(words: list[str], fmt: str) -> ast.Query:
    """The question, read by the grammar; a syntax error in it is a usage error (exit 2) shown as a diagnostic
    of ``<question>``, with its column and a caret."""
    question = explaining.question(words)
    try:
        return explaining.read_question(question)
    except MeshError as err:
        typer.echo("meshpolicy: error: the question does not read", err=True)
        emit_diagnostics(err.diagnostics, {question.name: question}, fmt)
        raise typer.Exit(EXIT_USAGE) from None


def _resources(result: explaining.Explanation, analysis: pipeline.Analysis, target: str, out: Path | None,
               mode: Mode, options: dict[str, str]) -> None:
    if out is not None:
        if not out.is_dir():
            raise Fail(f"{out} is not a folder")
        current = folder.read(out)
        result.notes.extend(f"{d.severity.value}[{d.code}]: {d.message}" for d in current.notes)
        manifests = current.managed
    else:
        manifests = pipeline.lower(analysis, target, mode, verify=False, **options).files
    manifests = {p: t for p, t in manifests.items() if p != writer.KUSTOMIZATION}
    try:
        reader = verifier.reader_for(target, analysis.graph, verifier.documents(manifests), mode,
                                     get_backend(target)(mode=mode, **options).reader_options())
        explaining.attach_resources(result, reader, explaining.resource_paths(manifests, verifier.documents), target)
    except ReaderError as exc:
        result.notes.append(f"the {target} reader cannot evaluate the manifests: {exc.__class__.__name__}: {exc}")
