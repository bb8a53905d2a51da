"""``meshpolicy graph``: the access graph as a picture (docs/graph.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import pipeline
from .. import verify as verifier
from ..backends import TARGETS, get_backend
from ..graph.model import Mode
from ..output import writer
from ..view import access, render
from .common import ISTIO_ROOT_HELP, ClusterOption, Fail, boundary, choose, read_policy, target_options

#: -o FILE's suffix chooses the format when --format is not given
SUFFIXES = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid", ".json": "json",
            ".html": "html", ".htm": "html", ".svg": "svg"}


def graph(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Policy files or folders.")],
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="FORMAT", help=f"{', '.join(render.FORMATS)} (default: from -o's suffix, else dot).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="FILE",
                                             help="Write to FILE instead of standard output.")] = None,
    namespace: Annotated[list[str] | None, typer.Option(
        "--namespace", "-n", metavar="NS", help="Keep the edges with an end in NS (repeatable).")] = None,
    service: Annotated[list[str] | None, typer.Option(
        "--service", "-s", metavar="REF", help="Focus on a service's neighbourhood: NS/NAME or NAME (repeatable).")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", "-t", metavar="TARGET", help="Name the emitted resources of this target behind each edge (json, html).")] = None,
    linkerd_routes: Annotated[str | None, typer.Option(
        "--linkerd-routes", help="With --target linkerd: the HTTPRoute API, gateway or policy (as for build).")] = None,
    istio_root_namespace: Annotated[str | None, typer.Option("--istio-root-namespace", metavar="NAME",
                                                             help=ISTIO_ROOT_HELP)] = None,
    cluster: ClusterOption = None,
) -> None:
    """Draw who may call whom, on which ports and methods, with the rule behind each edge."""
    sources: dict = {}
    with boundary(lambda: sources):
        if fmt is None:
            fmt = SUFFIXES.get(out.suffix.lower(), "dot") if out is not None else "dot"
        choose(fmt, render.FORMATS, "--format")
        if target is not None:
            choose(target, sorted(TARGETS), "--target")
        options = target_options(target, linkerd_routes=linkerd_routes, istio_root_namespace=istio_root_namespace)
        analysis = read_policy(paths, sources, cluster, target)
        explainer = _explainer(analysis, target, options) if target else None
        view = access.build(analysis.graph, explainer, target)
        view = access.focus(view, namespace or (), service or ())  # a FocusError is a UsageError: exit 2
        title = "meshpolicy access graph: " + " ".join(Path(p).as_posix() for p in paths)
        text = render.render(view, fmt, title)  # ToolMissing (svg without Graphviz) is a UsageError too
        if out is None:
            typer.echo(text, nl=False)
        else:
            _write(out, text)


def _explainer(analysis: pipeline.Analysis, target: str, options: dict[str, str]) -> access.Explainer:
    """The target's reader over the output compiled in memory with build's options (not verified: that is
    build's job)."""
    files = pipeline.lower(analysis, target, Mode.ENFORCE, verify=False, **options).files
    files = {p: t for p, t in files.items() if p != writer.KUSTOMIZATION}
    reader = verifier.reader_for(target, analysis.graph, verifier.documents(files),
                                 reader_options=get_backend(target)(mode=Mode.ENFORCE, **options).reader_options())
    if not hasattr(reader, "explain"):
        return lambda req: ()
    return lambda req: reader.explain(req)


def _write(path: Path, text: str) -> None:
    if path.is_dir():
        raise Fail(f"-o {path} is a folder: give a file name")
    path.write_text(text, encoding="utf-8")
