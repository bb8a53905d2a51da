"""``meshpolicy import``: existing Istio or Linkerd policy -> one proved ``.mesh`` policy (docs/import.md).

A pipeline stage of its own, in the order a reader sees it:

1. read (:mod:`.manifests`): files, folders or ``-``, bounded, every object with its file and line;
2. infer services and accounts, and translate the rules (:mod:`.istio`, :mod:`.linkerd`) into a
   :class:`~.draft.Draft`, narrowing what the language cannot say exactly (MP801), and noting what
   the original really allows (findings ML060-ML069);
3. render the ``.mesh`` text (:mod:`.draft`);
4. prove (:mod:`.prove`): compile it for the same target, and have the target's reader decide every
   request of the request space on the original and on the compiled manifests: never wider (MP803
   drops a rule that would be), every narrowing named (MP802);
5. lay it out as ``meshpolicy fmt`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, MeshError, Severity
from ..errors import UsageError
from ..source import SourceFile
from . import draft as d
from .manifests import read

__all__ = ["SOURCES", "Imported", "run"]

#: what ``--from`` takes
SOURCES = ("istio", "linkerd")
#: the name the generated policy has in diagnostics
OUTPUT_NAME = "imported.mesh"


@dataclass
class Imported:
    text: str                                   # the .mesh policy, in fmt's layout
    diagnostics: list[Diagnostic]               # MP800-MP806: what was narrowed, dropped or not read
    findings: list[Diagnostic]                  # ML060-ML069: what the original really says
    sources: dict[str, SourceFile] = field(default_factory=dict)   # the manifests, for excerpts
    compared: int = 0                           # requests decided on both sides
    narrower: int = 0                           # of which the import refuses what the original allows
    files: dict[str, str] = field(default_factory=dict)            # the compiled manifests

    @property
    def exact(self) -> bool:
        return not self.narrower and not any(x.code in ("MP801", "MP803") for x in self.diagnostics)


def run(paths: list[str], source: str, trust_domain: str | None = None, root_namespace: str | None = None,
        name: str = OUTPUT_NAME, cluster: list[str] | None = None,
        cluster_networks: tuple[str, ...] | None = None) -> Imported:
    """Import the manifests of ``paths``; raises :class:`MeshError` (MP806) when no proved policy can be written.
    ``cluster_networks``: Linkerd's clusterNetworks (default: the chart's, linkerd.md section 1)."""
    if source not in SOURCES:
        raise UsageError(f"--from must be one of: {', '.join(SOURCES)} (got {source!r})")
    if cluster_networks is not None and source != "linkerd":
        raise UsageError(f"--cluster-networks applies to --from linkerd only (got --from {source})")
    found = read(paths)
    if any(x.severity is Severity.ERROR for x in found.diagnostics):
        raise MeshError(found.diagnostics + [Diagnostic(
            "MP806", Severity.ERROR, "some manifests cannot be read: nothing is imported", None,
            "a policy that cannot be read may be a DENY: an import without it could be wider than the original")])
    out = d.Draft(source)
    cluster_diagnostics: list[Diagnostic] = []
    if cluster:
        from ..cluster import read as read_cluster

        manifests = read_cluster(cluster)
        out.cluster = manifests.cluster
        found.sources.update(manifests.sources)
        cluster_diagnostics = manifests.diagnostics
    if trust_domain:
        out.trust_domain = trust_domain
    original_options: dict[str, Any] = {}
    build_options: dict[str, Any] = {}
    if source == "istio":
        from . import istio

        root = root_namespace or istio.ROOT
        docs, _ = istio.translate(found.documents, out, root_namespace=root)
        original_options["root_namespace"] = root
        if root_namespace:
            build_options["root_namespace"] = root
    else:
        from ..readers.linkerd import CLUSTER_NETWORKS
        from . import linkerd

        networks = cluster_networks if cluster_networks is not None else CLUSTER_NETWORKS
        docs, assumed = linkerd.translate(found.documents, out, networks)
        original_options["assumed_namespace_annotations"] = assumed
        original_options["cluster_networks"] = networks
    if not out.namespaces:
        raise MeshError(found.diagnostics + out.diagnostics + [Diagnostic(
            "MP806", Severity.ERROR, f"no {source} policy found to import", None,
            "give the files or folders that hold the policy manifests")])
    d.finish(out)
    header = [(f"Imported by 'meshpolicy import --from {source}': proved against the original manifests "
               "(docs/import.md)."), "Lines marked '# import:' say what could not be imported exactly."]
    from .prove import prove

    proof = prove(out, docs, source, header, name, original_options, build_options)
    from ..fmt import format_source

    text = format_source(SourceFile(name, proof.text))
    diagnostics = sorted(found.diagnostics + cluster_diagnostics + out.diagnostics + proof.diagnostics, key=Diagnostic.sort_key)
    return Imported(text, diagnostics, sorted(out.findings, key=Diagnostic.sort_key), found.sources,
                    proof.compared, len(proof.narrower), proof.files)
