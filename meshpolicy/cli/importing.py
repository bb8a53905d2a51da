"""``meshpolicy import``: existing Istio or Linkerd policy -> one proved ``.mesh`` policy (docs/import.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..diagnostics import Severity
from .common import EXIT_FINDINGS, ISTIO_ROOT_HELP, ClusterOption, Fail, boundary, choose
from .formatters import FORMATS, counts, render


def import_(
    paths: Annotated[list[str], typer.Argument(metavar="PATH", help="Manifests: files, folders (every .yaml, .yml "
                                               "and .json below) or - for stdin.")],
    source: Annotated[str, typer.Option("--from", metavar="MESH", help="The mesh the manifests are for: istio or "
                                        "linkerd.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE",
                                                help="Write the .mesh policy here (default: standard output).")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="Diagnostics and findings: human, json, "
                                     "github or sarif.")] = "human",
    cluster: ClusterOption = None,
    trust_domain: Annotated[str | None, typer.Option("--trust-domain", metavar="DOMAIN", help="The mesh's trust "
                                                     "domain (default: the one the manifests' identities name, "
                                                     "else cluster.local).")] = None,
    istio_root_namespace: Annotated[str | None, typer.Option("--istio-root-namespace", metavar="NAMESPACE",
                                                             help=ISTIO_ROOT_HELP)] = None,
    cluster_networks: Annotated[str | None, typer.Option("--cluster-networks", metavar="CIDR,...",
                                                         help="Linkerd's clusterNetworks, which a ServerAuthorization "
                                                         "without networks and the cluster-* default policies admit "
                                                         "(default: the chart's, "
                                                         "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,"
                                                         "fd00::/8).")] = None,
) -> None:
    """Write the .mesh policy that means what the manifests mean, proved by compiling it back: exit 0 when exact
    and without findings, 1 when narrowed, with findings, or not importable."""
    from ..importer import SOURCES, run

    sources: dict = {}
    with boundary(lambda: sources, fmt, err=output is None):
        choose(fmt, FORMATS, "--format")
        choose(source, SOURCES, "--from")
        if istio_root_namespace is not None and source != "istio":
            raise Fail(f"--istio-root-namespace applies to --from istio only (got --from {source})")
        if output is not None and output.is_dir():
            raise Fail(f"-o {output} is a folder: give the file to write")
        networks = _cidrs(cluster_networks) if cluster_networks is not None else None
        imported = run(paths, source, trust_domain, istio_root_namespace, cluster=cluster, cluster_networks=networks)
        sources.update(imported.sources)
        said = imported.diagnostics + imported.findings
        if output is not None:
            output.write_text(imported.text, encoding="utf-8")
        else:
            typer.echo(imported.text, nl=False)
        err = output is None
        typer.echo(render(said, sources, fmt), nl=False, err=err)
        if fmt == "human":
            verdict = ("equal to the original" if not imported.narrower else
                       f"narrower than the original on {imported.narrower} of them")
            typer.echo(f"imported: proved on {imported.compared} requests, {verdict}; "
                       f"{len(imported.findings)} finding(s); {counts(said)}", err=True)
        if imported.findings or not imported.exact or any(d.severity is not Severity.NOTE for d in said):
            raise typer.Exit(EXIT_FINDINGS)


def _cidrs(value: str) -> tuple[str, ...]:
    """``--cluster-networks``: comma-separated CIDR blocks, at least one."""
    import ipaddress

    found = tuple(part.strip() for part in value.split(",") if part.strip())
    if not found:
        raise Fail("--cluster-networks needs at least one CIDR block")
    for block in found:
        try:
            ipaddress.ip_network(block, strict=False)
        except ValueError:
            raise Fail(f"--cluster-networks: {block!r} is not a CIDR block") from None
    return found
