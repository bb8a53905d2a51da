"""Every case under tests/cases, compiled for every target: snapshots of the emitted YAML or the errors."""

from __future__ import annotations

import pytest

from helpers import case_id, case_paths, compile_case, errors_text, expected_errors, snapshot_text, source
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError

CASES = case_paths()


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("path", CASES, ids=[case_id(p) for p in CASES])
def test_case_snapshot(path, target, snapshot_yaml):
    codes = expected_errors(path)
    if codes:
        with pytest.raises(MeshError) as err:
            compile_case(path, target)
        assert sorted({d.code for d in err.value.diagnostics if d.severity.value == "error"}) == sorted(set(codes))
        assert errors_text(err.value, [source(path)]) == snapshot_yaml
    else:
        result = compile_case(path, target)
        assert snapshot_text(result.files) == snapshot_yaml


BUILDING = [p for p in CASES if not expected_errors(p)]


@pytest.mark.parametrize("path", BUILDING, ids=[case_id(p) for p in BUILDING])
def test_audit_mode_differs_only_in_dry_run_markers(path):
    for target in sorted(TARGETS):
        enforce = compile_case(path, target, "enforce").files
        audit = compile_case(path, target, "audit").files
        assert enforce.keys() == audit.keys()
        if target == "istio":
            policies = [p for p in audit if "/authorizationpolicy-" in p]
            assert policies and all('istio.io/dry-run: "true"' in audit[p] or "istio.io/dry-run: 'true'" in audit[p]
                                    for p in policies)
            for p in audit:
                stripped = audit[p].replace("    istio.io/dry-run: 'true'\n", "")
                assert stripped == enforce[p]
