"""Kubernetes limits (issue 9 item 7): a bounded provenance annotation, split or refused objects."""

from __future__ import annotations

import functools
import json
import random

import pytest
import yaml
from helpers import compile_text

from meshpolicy.backends.base import Resource
from meshpolicy.backends.limits import ANNOTATIONS_LIMIT, LAST_APPLIED, SOURCE_LIMIT, SPLIT_BUDGET, source_text
from meshpolicy.diagnostics import MeshError, render_text
from meshpolicy.output.templating import oversized
from meshpolicy.source import SourceFile, Span

SOURCE = "meshpolicy.io/source"


def denies(count: int, path: str = "/api/v1/items/{i}") -> str:
    rules = "".join(f"  deny frontend -> orders GET {path.format(i=i)} :8080\n" for i in range(count))
    return ("namespace shop {\n  service frontend\n  service orders :8080/http\n  allow frontend -> orders\n"
            + rules + "}\n")


@functools.cache
def six_hundred_denies():
    """One build for the tests that need a large policy (verification makes it slow)."""
    return compile_text(denies(600))


def objects(files: dict[str, str]) -> dict[str, dict]:
    return {p: yaml.safe_load(t) for p, t in files.items() if p != "kustomization.yaml"}


# -- the provenance annotation ------------------------------------------------------------------------

def test_a_short_source_list_is_written_in_full():
    lines = [("a.mesh", 3), ("a.mesh", 4), ("b.mesh", 1)]
    assert source_text(lines) == "a.mesh:3, a.mesh:4, b.mesh:1"
    assert source_text([]) == "built-in default"


def test_a_long_source_list_is_summarised_in_runs_and_counted():
    lines = [("a.mesh", n) for n in range(5, 300)] + [("a.mesh", 400)] + \
            [("b.mesh", n) for n in range(1, 2000, 2)] + [("c.mesh", 7)]
    text = source_text(lines)
    assert len(text.encode()) <= SOURCE_LIMIT
    assert text.startswith("a.mesh:5-299,400, b.mesh:1,3,5,")
    assert text.endswith(" more lines in 2 files)")  # the rest of b.mesh, and c.mesh
    shown = 295 + 1 + text.split("b.mesh:")[1].count(",") + 1
    assert text.endswith(f"(+{len(lines) - shown} more lines in 2 files)")


def test_the_summary_is_bounded_and_deterministic_for_any_list():
    rng = random.Random(7)
    for _ in range(60):
        lines = sorted({(f"policy/{rng.choice('abcdef') * rng.randint(1, 40)}.mesh", rng.randint(1, 5000))
                        for _ in range(rng.randint(0, 600))})
        text = source_text(lines)
        assert len(text.encode()) <= SOURCE_LIMIT
        assert text == source_text(list(lines))


@pytest.mark.slow
def test_many_rules_keep_the_annotation_bounded():
    """A deny policy built from many rules carried one 'FILE:LINE' per rule: 819 KB for the reporter."""
    docs = objects(six_hundred_denies().files)
    for doc in docs.values():
        assert len(doc["metadata"]["annotations"][SOURCE].encode()) <= SOURCE_LIMIT
    deny = docs["shop/authorizationpolicy-orders-deny.yaml"]
    assert deny["metadata"]["annotations"][SOURCE] == "test.mesh:5-516"  # 512 rules, consecutive lines


# -- splitting ----------------------------------------------------------------------------------------

def test_a_deny_policy_beyond_512_rules_is_split_into_equivalent_ones():
    """The CRD allows 512 rules per AuthorizationPolicy; several DENY policies mean the same as one
    (istio.md §1, §4), and the build's verification proves the split output equal to the source."""
    build = six_hundred_denies()
    docs = objects(build.files)
    parts = [docs["shop/authorizationpolicy-orders-deny.yaml"], docs["shop/authorizationpolicy-orders-deny-2.yaml"]]
    assert [len(d["spec"]["rules"]) for d in parts] == [512, 88]
    assert all(d["spec"]["selector"] == {"matchLabels": {"app": "orders"}} and d["spec"]["action"] == "DENY"
               for d in parts)
    paths = [r["to"][0]["operation"]["paths"][0] for d in parts for r in d["spec"]["rules"]]
    assert paths == [f"/api/v1/items/{i}" for i in range(600)]
    [note] = [d for d in build.diagnostics if d.code == "MP313"]
    assert note.message == ("the deny rules of 'shop/orders' are split into 2 AuthorizationPolicies (orders-deny, "
                            "orders-deny-2) to stay within the Kubernetes limits")


def test_a_policy_beyond_the_split_budget_is_split_by_size():
    long = "/" + "x" * 700 + "/{i}"
    build = compile_text(denies(400, long))
    docs = objects(build.files)
    parts = ["shop/authorizationpolicy-orders-deny.yaml"] + [
        f"shop/authorizationpolicy-orders-deny-{n}.yaml" for n in range(2, 10)
        if f"shop/authorizationpolicy-orders-deny-{n}.yaml" in docs]
    assert len(parts) == 3 == len([p for p in docs if "orders-deny" in p])
    for p in parts:
        assert SPLIT_BUDGET - 1000 < len(json.dumps(docs[p]["spec"], separators=(",", ":")).encode()) <= SPLIT_BUDGET \
            or p == parts[-1]
    assert sum(len(docs[p]["spec"]["rules"]) for p in parts) == 400


def test_a_small_policy_is_not_split():
    assert "shop/authorizationpolicy-orders-deny-2.yaml" not in compile_text(denies(3)).files


# -- refusal ------------------------------------------------------------------------------------------

def test_one_huge_rule_is_cut_into_entries_that_match_together_what_it_matched():
    """A rule matches when one of its sources and one of its operations match, and a field when any of
    its values does (istio.md §4): so 400 paths of 700 characters (280 KiB in one rule entry) are cut
    into entries of fewer paths, one source each, and verification proves the output equal."""
    paths = ",".join(f"/{'y' * 700}/{i}" for i in range(400))
    text = (f"namespace shop {{\n  service orders :8080/http\n  service a\n"
            f"  deny a, 10.0.0.0/8 -> orders GET {paths} :8080\n}}\n")
    docs = objects(compile_text(text).files)
    entries = [r for p, d in docs.items() if "orders-deny" in p for r in d["spec"]["rules"]]
    assert len(entries) > 2
    for entry in entries:
        assert len(entry["from"]) == 1 and entry["to"][0]["operation"]["methods"] == ["GET"]
    by_source: dict[str, list[str]] = {}
    for entry in entries:
        source = entry["from"][0]["source"]
        key = json.dumps(source.get("principals") or source.get("ipBlocks"))
        by_source.setdefault(key, []).extend(entry["to"][0]["operation"]["paths"])
    assert sorted(by_source) == ['["10.0.0.0/8"]', '["cluster.local/ns/shop/sa/a"]']
    assert all(sorted(p) == sorted(f"/{'y' * 700}/{i}" for i in range(400)) for p in by_source.values())


def test_an_object_beyond_the_api_servers_limits_is_refused_with_its_name_and_the_limit():
    """Linkerd's MeshTLSAuthentication lists every caller of a route: 9000 namespaces make a 518 KiB
    object, which 'kubectl apply' cannot copy into its last-applied-configuration annotation."""
    text = "service web :80/http\nallow " + ", ".join(f"team{i}/*" for i in range(9000)) + " -> web\n"
    with pytest.raises(MeshError) as info:
        compile_text(text, "linkerd")
    [diag] = [d for d in info.value.diagnostics if d.code == "MP404"]
    rendered = render_text(diag, {"test.mesh": SourceFile("test.mesh", text)})
    assert rendered.startswith(
        "test.mesh:2:1: error[MP404]: MeshTLSAuthentication default/")
    assert " is 518 KiB as JSON: beyond the 256 KiB the API server allows an object's annotations, which " \
           "'kubectl apply' fills with a copy of the object\n" in rendered
    assert rendered.endswith("  = hint: docs/limits.md says which constructs make an object this large and how "
                             "to write them smaller")


def test_the_limit_counts_the_annotations_and_the_copy_kubectl_makes():
    span = Span("a.mesh", 1, 1, 1, 2)
    def sized(n: int) -> Resource:
        return Resource("v1", "ConfigMap", "ns", "x", {"data": "z" * n}, (span,))
    fits = 200 * 1024
    assert oversized(sized(fits)) is None
    assert oversized(sized(ANNOTATIONS_LIMIT - len(LAST_APPLIED))) is not None
    # the boundary: the object's JSON, its annotations and the annotation's key fill the limit exactly
    lo, hi = fits, ANNOTATIONS_LIMIT
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if oversized(sized(mid)) is None else (lo, mid)
    assert oversized(sized(lo)) is None and oversized(sized(hi)) is not None
    res = sized(lo)
    document = {"apiVersion": "v1", "kind": "ConfigMap", "spec": res.spec,
                "metadata": {"name": "x", "namespace": "ns", "labels": {"app.kubernetes.io/managed-by": "meshpolicy"},
                             "annotations": {SOURCE: "a.mesh:1"}}}
    body = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    assert body + len(SOURCE) + len("a.mesh:1") + len(LAST_APPLIED) == ANNOTATIONS_LIMIT
