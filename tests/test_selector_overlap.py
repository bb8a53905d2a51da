"""MP118 (two services of a namespace whose labels can select one pod) found by an index, not by comparing
every pair (issue 12): the same diagnostics, in the same order, as the pairwise definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy.diagnostics import MeshError
from meshpolicy.parse import parse_files
from meshpolicy.resolve import resolve
from meshpolicy.source import SourceFile

KEYS = ["app", "tier", "track"]
label_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["a", "b"]), min_size=1, max_size=3)


def pairwise(services: list[dict[str, str]]) -> list[tuple[int, int]]:
    """(earlier, later) for each later service and the first earlier one sharing no key with another value."""
    found = []
    for i, later in enumerate(services):
        for j, earlier in enumerate(services[:i]):
            if not any(k in later and later[k] != v for k, v in earlier.items()):
                found.append((j, i))
                break
    return found


def reported(services: list[dict[str, str]]) -> list[tuple[int, int]]:
    lines = ["namespace shop {"]
    lines += [f"  service s{i} labels {','.join(f'{k}={v}' for k, v in labels.items())} :8080/http"
              for i, labels in enumerate(services)]
    text = "\n".join([*lines, "}"]) + "\n"
    try:
        resolve(parse_files([SourceFile("policy.mesh", text)]))
    except MeshError as err:
        found = []
        for d in err.diagnostics:
            assert d.code == "MP118", d.message
            assert d.span is not None and d.related[0].span is not None
            # a service's line is its position + 2; the message names the earlier one first
            found.append((d.related[0].span.line - 2, d.span.line - 2))
        return found
    return []


@settings(max_examples=150, deadline=None)
@given(st.lists(label_sets, min_size=1, max_size=12))
def test_the_index_reports_what_the_pairwise_comparison_does(services: list[dict[str, str]]) -> None:
    assert reported(services) == pairwise(services)


def test_the_first_overlapping_service_is_named_whatever_key_set_it_has() -> None:
    # s2 overlaps s0 (no shared key) and s1 (same app): the earlier one, s0, is named
    assert reported([{"tier": "api"}, {"app": "a", "tier": "web"}, {"app": "a"}]) == [(0, 2)]
    assert reported([{"app": "a"}, {"app": "b"}, {"app": "c", "tier": "x"}]) == []


def test_a_large_namespace_names_the_one_overlap() -> None:
    # the benchmark times this shape (labels:8000); here, the answer on a namespace of 3,000 services
    services = [{"app": f"s{i}"} for i in range(3_000)] + [{"app": "s7", "tier": "x"}]
    assert reported(services) == [(7, 3_000)]
