"""Every emitted manifest of every case validates against the shared, strict CRD-derived JSON Schemas."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest
from helpers import ROOT, as_json, builds, case_id, compile_case, documents, schemas_root

from meshpolicy.backends import TARGETS
from meshpolicy.output import crds

CASES = [(target, path) for target in sorted(TARGETS) for path in builds(target)]


@cache
def _load(path: str) -> dict:
    return json.loads(Path(path).read_text())


def istio_schemas(doc: dict) -> list[dict]:
    group, version = doc["apiVersion"].split("/")
    return [_load(str(schemas_root() / "istio" / f"{doc['kind']}.{group}_{version}.json"))]


def linkerd_schemas(doc: dict) -> list[dict]:
    if doc["apiVersion"] == "v1" and doc["kind"] == "Namespace":
        return []
    root = schemas_root() / "linkerd"
    entry = _load(str(root / "index.json"))[f"{doc['apiVersion']}/{doc['kind']}"]
    return [_load(str(root / entry["schema"])), _load(str(root / entry["admission"]))]


SCHEMAS = {"istio": istio_schemas, "linkerd": linkerd_schemas}


@cache
def certificate_crds() -> dict:
    """The real CRDs of cert-manager, trust-manager and prometheus-operator kept in tests/crds (README there):
    what ``authority`` emits besides each mesh's own kinds."""
    return crds.load(ROOT / "tests" / "crds")


def schema_errors(target: str, files: dict[str, str]) -> list[str]:
    errors = []
    for doc in documents(files):
        doc = as_json(doc)
        certificate = certificate_crds().get((doc["apiVersion"], doc["kind"]))
        for schema in [certificate] if certificate else SCHEMAS[target](doc):
            validator = jsonschema.validators.validator_for(schema)(schema)
            for e in validator.iter_errors(doc):
                errors.append(f"{doc['kind']}/{doc['metadata']['name']} "
                              f"/{'/'.join(map(str, e.absolute_path))}: {e.message}")
    return errors


@pytest.mark.parametrize("mode", ["enforce", "audit"])
@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{case_id(p)}-{t}" for t, p in CASES])
def test_manifests_validate(path, target, mode):
    assert schema_errors(target, compile_case(path, target, mode).files) == []


def test_the_schemas_do_reject_a_bad_manifest():
    """The check above can fail: a quoted-port mistake is caught."""
    doc = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
           "metadata": {"name": "x", "namespace": "y"},
           "spec": {"rules": [{"to": [{"operation": {"ports": [8080]}}]}]}}
    import yaml
    assert schema_errors("istio", {"x.yaml": yaml.safe_dump(doc)})
