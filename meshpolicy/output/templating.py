"""The one Jinja environment. Templates only lay out; values go through ``yaml`` or ``block``.

``yaml`` renders a scalar as a JSON string (a JSON scalar is a valid YAML
scalar, with every special character escaped); ``block`` serializes a whole
structure with PyYAML's safe dumper. Nothing reaches the output by raw pasting.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2
import yaml

from ..backends.base import Resource
from ..backends.limits import ANNOTATIONS_LIMIT, KIB, LAST_APPLIED, json_size
from ..diagnostics import Diagnostic, Severity
from ..resources import templates_dir
from .metadata import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SOURCE_ANNOTATION

CLUSTER_SCOPED = {"Namespace"}


def yaml_scalar(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        raise TypeError("use the 'block' filter for structures")
    return json.dumps(value, ensure_ascii=False)


class _Dumper(yaml.SafeDumper):
    """Block style; lists indented under their key, as kubectl and most style guides write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def yaml_block(value: Any, indent: int) -> str:
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=10_000)
    pad = " " * indent
    return "\n".join(pad + line for line in text.rstrip("\n").split("\n"))


@cache
def environment(target: str) -> jinja2.Environment:
    root = templates_dir()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(root / target), str(root)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["yaml"] = yaml_scalar
    env.filters["block"] = yaml_block
    return env


def _view(res: Resource) -> dict[str, Any]:
    return {
        "api_version": res.api_version,
        "kind": res.kind,
        "name": res.name,
        "namespace": res.namespace,
        "namespace_scoped": res.kind not in CLUSTER_SCOPED,
        "labels": dict(sorted(dict(res.labels, **{MANAGED_BY_LABEL: MANAGED_BY_VALUE}).items())),
        "annotations": dict(sorted(dict(res.annotations, **{SOURCE_ANNOTATION: res.source}).items())),
        "spec": res.spec,
    }


def render(target: str, res: Resource) -> str:
    text = environment(target).get_template(res.template).render(r=_view(res))
    return text if text.endswith("\n") else text + "\n"


def oversized(res: Resource) -> Diagnostic | None:
    """MP404 when the object is beyond what the API server accepts from ``kubectl apply``.

    Client-side apply (kubectl's default, and Argo CD's) stores the object, as JSON, in the
    last-applied-configuration annotation, and the API server limits an object's annotations to
    256 KiB in total (backends/limits.py has the figures and their sources). Meeting that bound also
    keeps the object under etcd's 1.5 MiB request limit for server-side apply.
    """
    view = _view(res)
    metadata = {"name": res.name, "labels": view["labels"], "annotations": view["annotations"]}
    if view["namespace_scoped"]:
        metadata["namespace"] = res.namespace
    document = {"apiVersion": res.api_version, "kind": res.kind, "metadata": metadata}
    if res.spec is not None:
        document["spec"] = res.spec
    size = json_size(document)
    annotations = sum(len(k.encode()) + len(v.encode()) for k, v in view["annotations"].items())
    if annotations + len(LAST_APPLIED) + size <= ANNOTATIONS_LIMIT:
        return None
    return Diagnostic(
        "MP404", Severity.ERROR,
        f"{res.kind} {res.namespace}/{res.name} is {size / KIB:.0f} KiB as JSON: beyond the "
        f"{ANNOTATIONS_LIMIT // KIB} KiB the API server allows an object's annotations, which "
        f"'kubectl apply' fills with a copy of the object",
        res.origins[0] if res.origins else None,
        "write the rules that build it as several smaller rules (fewer sources or paths each); "
        "the limits are in docs/limits.md")
