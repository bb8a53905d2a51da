"""Validate emitted manifests against the user's own CRD files (``--crds DIR``).

Each CRD's ``openAPIV3Schema`` becomes a JSON Schema for the whole manifest,
with unknown fields refused as ``kubectl apply --validate=strict`` refuses them.
Kinds built into Kubernetes (``Namespace``) have no CRD and are skipped. Then each mesh's admission
rules that a schema does not carry (CEL rules, validating webhooks) are applied (:mod:`.admission`).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..errors import UsageError
from . import admission
from .folder import beyond_bounds, read_at_most

BUILT_IN = {("v1", "Namespace"), ("kustomize.config.k8s.io/v1beta1", "Kustomization")}
#: one file of the --crds folder: one CRD is one Kubernetes object (at most 3 MiB), and a file bundling every CRD
#: of a project (Istio's, the Gateway API's) is a few MiB; the bound of --cluster's inputs (docs/limits.md)
MAX_BYTES = 64 << 20


class CrdError(UsageError):
    """The CRD folder cannot be used (a usage error)."""


#: a Go (RE2) pattern that sets flags after the anchor, ``^(?i)...``: Python takes global flags only first
_LATE_FLAGS = re.compile(r"\^\(\?([a-zA-Z]+)\)")


def _pattern(pattern: Any) -> Any:
    """``pattern`` as Python's ``re`` reads it: ``^(?i)x`` (RE2, prometheus-operator's CRDs) is ``(?i)^x``."""
    if isinstance(pattern, str) and (late := _LATE_FLAGS.match(pattern)):
        return f"(?{late.group(1)})^{pattern[late.end():]}"
    return pattern


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items() if k not in ("oneOf", "anyOf", "not", "allOf")}
        if "pattern" in out:
            out["pattern"] = _pattern(out["pattern"])
        for k in ("oneOf", "anyOf", "not", "allOf"):
            if k in node:
                out[k] = node[k]
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def load(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON Schema, from every CRD document in ``folder``."""
    if not folder.is_dir():
        raise CrdError(f"--crds: no such folder: {folder}")
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(list(folder.rglob("*.yaml")) + list(folder.rglob("*.yml"))):
        text = _read(path)
        if text is None:
            continue
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            try:
                schemas.update(_schemas(doc))
            except (AttributeError, KeyError, TypeError, ValueError, jsonschema.SchemaError) as exc:
                # a CRD the API server would refuse: say where, never a traceback
                message = exc.message if isinstance(exc, jsonschema.SchemaError) else f"{exc.__class__.__name__}: {exc}"
                raise CrdError(f"--crds: {path}: not a usable CustomResourceDefinition ({message})") from None
    if not schemas:
        raise CrdError(f"--crds: no CustomResourceDefinition found in {folder}")
    return schemas


def _read(path: Path) -> str | None:
    """The text of one file of the folder, read within bounds (the output folder's reader, :mod:`.folder`); None
    for what is skipped as before: not a regular file, unreadable, not UTF-8. A file over :data:`MAX_BYTES`,
    nested deeper than the output folder's depth bound or using YAML anchors or aliases (a "billion laughs"
    document would expand exponentially when loaded) is refused, unloaded: a usage error naming it."""
    try:
        real = path.resolve()  # a link in the user's own folder is followed (the output folder's rule is not to)
    except (OSError, RuntimeError):
        return None
    data = read_at_most(real, MAX_BYTES)
    if data is None:
        return None
    if len(data) > MAX_BYTES:
        raise CrdError(f"--crds: {path}: larger than {MAX_BYTES:,} bytes: not read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    why = beyond_bounds(text, limits_only=True)
    if why:
        raise CrdError(f"--crds: {path}: {why}: not loaded")
    return text


def _schemas(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON Schema for each served version of one CRD document."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    spec = doc.get("spec") or {}
    group, kind = spec["group"], spec["names"]["kind"]
    if not isinstance(group, str) or not isinstance(kind, str):
        raise TypeError("spec.group and spec.names.kind must be strings")
    for version in spec.get("versions") or []:
        raw = ((version.get("schema") or {}).get("openAPIV3Schema"))
        if not raw or not version.get("served", True):
            continue
        schema = _strict(copy.deepcopy(raw))
        if not isinstance(schema, dict) or not isinstance(schema.setdefault("properties", {}), dict):
            raise TypeError(f"version {version.get('name')}: openAPIV3Schema must be an object schema")
        props = schema["properties"]
        props["apiVersion"] = {"const": f"{group}/{version['name']}"}
        props["kind"] = {"const": kind}
        props["metadata"] = {"type": "object"}
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
        jsonschema.Draft7Validator.check_schema(schema)
        out[(f"{group}/{version['name']}", kind)] = schema
    return out


def validate(schemas: dict[tuple[str, str], dict[str, Any]], files: dict[str, str]) -> list[str]:
    """Every problem, as ``path: Kind/name /json/path: message``; a kind without a CRD is a problem too."""
    problems: list[str] = []
    for rel, text in sorted(files.items()):
        for doc in yaml.safe_load_all(text):
            if not isinstance(doc, dict) or "apiVersion" not in doc:
                continue
            doc = json.loads(json.dumps(doc, default=str))  # YAML -> JSON as kubectl does (int keys -> strings)
            key = (doc["apiVersion"], doc["kind"])
            if key in BUILT_IN:
                continue
            schema = schemas.get(key)
            name = (doc.get("metadata") or {}).get("name")
            if schema is None:
                problems.append(f"{rel}: {doc['kind']}/{name}: no CRD for {key[0]} {key[1]} in the --crds folder")
                continue
            for err in sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path)):
                where = "/".join(str(p) for p in err.absolute_path)
                problems.append(f"{rel}: {doc['kind']}/{name} /{where}: {err.message}")
            for where, message in admission.problems(doc):
                problems.append(f"{rel}: {doc['kind']}/{name} /{where}: {message}")
    return problems
