"""Every case under tests/cases, compiled for every target: snapshots of the emitted YAML or the errors."""

from __future__ import annotations

import pytest
from helpers import (
    case_id,
    case_paths,
    compile_case,
    errors_text,
    expected_errors,
    snapshot_text,
    source,
)

from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError

CASES = case_paths()


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("path", CASES, ids=[case_id(p) for p in CASES])
def test_case_snapshot(path, target, snapshot_yaml):
    codes = expected_errors(path, target)
    if codes:
        with pytest.raises(MeshError) as err:
            compile_case(path, target)
        assert sorted({d.code for d in err.value.diagnostics if d.severity.value == "error"}) == sorted(set(codes))
        assert errors_text(err.value, [source(path)]) == snapshot_yaml
    else:
        result = compile_case(path, target)
        assert snapshot_text(result.files) == snapshot_yaml


#: the dry-run marker of each target, and the enforcing text it stands for
DRY_RUN = {
    "istio": [('    "istio.io/dry-run": "true"\n', "")],
    "linkerd": [('  accessPolicy: "audit"\n', '  accessPolicy: "deny"\n'),
                ('    "config.linkerd.io/default-inbound-policy": "audit"\n',
                 '    "config.linkerd.io/default-inbound-policy": "deny"\n')],
}
#: the files that must carry a dry-run marker
MARKED = {"istio": ("/authorizationpolicy-",), "linkerd": ("/server-", "/namespace-")}


BUILDING = [(p, t) for p in CASES for t in sorted(TARGETS) if not expected_errors(p, t)]


@pytest.mark.parametrize(("path", "target"), BUILDING, ids=[f"{case_id(p)}-{t}" for p, t in BUILDING])
def test_audit_mode_differs_only_in_dry_run_markers(path, target):
    enforce = compile_case(path, target, "enforce").files
    audit = compile_case(path, target, "audit").files
    assert enforce.keys() == audit.keys()
    marked = [p for p in audit if any(m in p for m in MARKED[target])]
    assert marked and all(any(m in audit[p] for m, _ in DRY_RUN[target]) for p in marked)
    for p in audit:
        stripped = audit[p]
        for marker, enforcing in DRY_RUN[target]:
            stripped = stripped.replace(marker, enforcing)
        assert stripped == enforce[p]
