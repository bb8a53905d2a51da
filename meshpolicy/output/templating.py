"""The one Jinja environment. A template holds its kind's YAML shape; every value goes through ``yaml``.

A template (``templates/TARGET/KIND.yaml.j2``) writes the keys, loops and
conditionals of its kind, so that a reviewer reads there what is emitted.
``yaml`` renders each value as a JSON scalar (a valid YAML scalar: strings
double-quoted, every special character escaped), the one quoting style of the
output. :func:`render` reads the text back and requires exactly the object
the backend decided. Nothing reaches the output by raw pasting.
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
from ..errors import InternalError
from ..resources import templates_dir
from .metadata import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SOURCE_ANNOTATION

CLUSTER_SCOPED = {"Namespace", "Bundle"}  # Bundle: trust-manager's, cluster-scoped
#: libyaml's safe loader when PyYAML has it (the same documents, faster)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_scalar(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        raise TypeError("a template writes a structure's keys and loops; 'yaml' takes one scalar")
    return json.dumps(value, ensure_ascii=False)


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


def document(res: Resource) -> dict[str, Any]:
    """The object a manifest of ``res`` must hold: what its template lays out, and what is applied."""
    view = _view(res)
    metadata = {"name": res.name, "labels": view["labels"], "annotations": view["annotations"]}
    if view["namespace_scoped"]:
        metadata["namespace"] = res.namespace
    doc: dict[str, Any] = {"apiVersion": res.api_version, "kind": res.kind, "metadata": metadata}
    if res.spec is not None:
        doc["spec"] = res.spec
    return doc


def render(target: str, res: Resource) -> str:
    """The manifest of ``res``, laid out by ``templates/TARGET/KIND.yaml.j2``.

    The template shows the YAML shape; the text it writes is read back and must hold exactly the
    object the backend decided, so a template that drops or alters a field is a bug, never output.
    """
    text = environment(target).get_template(res.template).render(r=_view(res))
    text = text if text.endswith("\n") else text + "\n"
    if yaml.load(text, Loader=_LOADER) != document(res):
        raise InternalError(f"templates/{target}/{res.template} does not lay out {res.kind} "
                            f"{res.namespace}/{res.name} as the backend decided it")
    return text


def oversized(res: Resource) -> Diagnostic | None:
    """MP404 when the object is beyond what the API server accepts from ``kubectl apply``.

    Client-side apply (kubectl's default, and Argo CD's) stores the object, as JSON, in the
    last-applied-configuration annotation, and the API server limits an object's annotations to
    256 KiB in total (backends/limits.py has the figures and their sources). Meeting that bound also
    keeps the object under etcd's 1.5 MiB request limit for server-side apply.
    """
    whole = document(res)
    size = json_size(whole)
    annotations = sum(len(k.encode()) + len(v.encode()) for k, v in whole["metadata"]["annotations"].items())
    if annotations + len(LAST_APPLIED) + size <= ANNOTATIONS_LIMIT:
        return None
    return Diagnostic(
        "MP404", Severity.ERROR,
        f"{res.kind} {res.namespace}/{res.name} is {size / KIB:.0f} KiB as JSON: beyond the "
        f"{ANNOTATIONS_LIMIT // KIB} KiB the API server allows an object's annotations, which "
        f"'kubectl apply' fills with a copy of the object",
        res.origins[0] if res.origins else None,
        "docs/limits.md says which constructs make an object this large and how to write them smaller")
