"""Differential semantics: the reference decider on the access graph vs an independent reader of the YAML.

For every case and target, every request of the policy's request space must
get the same decision from both. A disagreement is a compiler bug that a
snapshot alone would not show (the seed article's OR-rules mistake, say).
"""

from __future__ import annotations

import pytest
import yaml
from helpers import builds, case_id, compile_case, disagreements, documents

from meshpolicy.backends import TARGETS
from meshpolicy.graph.evaluate import Caller, Request
from meshpolicy.graph.model import Identity
from meshpolicy.readers import READERS, World, get_reader

CASES = [(target, path) for target in sorted(TARGETS) for path in builds(target)]


def test_every_target_has_a_reader():
    assert set(READERS) == set(TARGETS)


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{case_id(p)}-{t}" for t, p in CASES])
def test_reader_agrees_with_decider(path, target):
    build = compile_case(path, target)
    assert disagreements(build, target) == []


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{case_id(p)}-{t}" for t, p in CASES])
def test_audit_mode_means_the_same_when_enforced(path, target):
    """Audit output, read as if its dry-run policies were enforced, decides like enforce output."""
    build = compile_case(path, target, "audit")
    assert disagreements(build, target, dry_run_enforced=True) == []


SEED = """
namespace default {
  service orders :8080/http :9090/tcp
  service frontend :8080/http
  service other :8080/http
  allow frontend -> orders GET,POST :8080
}
"""


def test_reader_catches_the_seed_articles_or_rules_mistake():
    """A '-' before 'to:' splits one rule into two OR'ed rules (istio.md §10); the reader must see the widening."""
    from helpers import compile_text

    build = compile_text(SEED)
    assert disagreements(build, "istio") == []
    path = "default/authorizationpolicy-orders-allow.yaml"
    doc = yaml.safe_load(build.files[path])
    [rule] = doc["spec"]["rules"]
    doc["spec"]["rules"] = [{"from": rule["from"]}, {"to": rule["to"]}]  # the misplaced dash
    build.files[path] = yaml.safe_dump(doc)
    found = disagreements(build, "istio")
    other = Identity("default", "other")
    frontend = Identity("default", "frontend")
    reader = get_reader("istio")(documents(build.files), World.from_graph(build.analysis.graph))
    # anyone may now GET orders ...
    assert reader.decide(Request(Caller(other, "192.0.2.10"), "default", "orders", 8080, "GET", "/"))
    # ... and frontend may do anything, on any port
    assert reader.decide(Request(Caller(frontend, "192.0.2.10"), "default", "orders", 9090))
    assert reader.decide(Request(Caller(frontend, "192.0.2.10"), "default", "orders", 8080, "DELETE", "/"))
    # the space stands for "other" with a caller its rules do not name (an equivalence class)
    assert any("default/frontend" not in f and "GET" in f for f in found)
    assert any("default/frontend" in f and ":9090" in f for f in found)
