"""LANGUAGE.md's examples build (or fail) exactly as the page says."""

from __future__ import annotations

import re

import pytest
from helpers import CASES, ROOT, compile_case, schemas_root

from meshpolicy import pipeline
from meshpolicy.backends import TARGETS
from meshpolicy.diagnostics import MeshError
from meshpolicy.source import SourceFile

COPY = CASES / "basics" / "language-example.mesh"


def page_example() -> str:
    page = (schemas_root().parent / "LANGUAGE.md").read_text()
    return re.search(r"```\n(trust-domain.*?)```", page, re.DOTALL).group(1)


def test_the_corpus_holds_the_page_example_verbatim():
    body = COPY.read_text().split("\n", 3)[3]  # below the three header lines
    assert body == page_example()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_page_example_fails_only_on_its_never_rule(target):
    """Its `never frontend -> payments POST` forbids what its gRPC allow rule grants (a gRPC call is a POST)."""
    lines = COPY.read_text().splitlines()
    with pytest.raises(MeshError) as err:
        compile_case(COPY, target)
    [diag] = err.value.diagnostics
    assert diag.code == "MP201" and lines[diag.span.line - 1].strip().startswith("never frontend -> payments POST")
    [related] = [lines[r.span.line - 1] for r in diag.related]
    assert related.strip().startswith("allow frontend -> payments grpc payments.v1.Payments/Charge")


def test_without_the_never_rule_the_page_example_builds_on_istio():
    """On Linkerd it is refused where LANGUAGE.md §4 lets a target refuse (its jwt condition among them):
    tests/test_language_v2.py."""
    text = COPY.read_text().replace("  never frontend -> payments POST", "  # never removed")
    result = pipeline.lower(pipeline.analyze([SourceFile("x.mesh", text)]), "istio")
    assert result.files


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_bundled_example_builds(target):
    assert pipeline.build([ROOT / "examples" / "shop"], target).files


def test_rule_forms_of_section_2_4():
    """Each rule form of §2.4 compiles with concrete values."""
    forms = [
        "allow a -> b", "allow a -> b GET,POST", "allow a -> b /x, /y/*", "allow a -> b :8080",
        "allow a -> b GET /x :8080,8081", "deny a -> b DELETE", "allow a -> b grpc p.S/M, p.T :8080",
        "never a -> b POST",
    ]
    head = "service a :8080/http :8081/http\nservice b :8080/http :8081/http\n"
    # Linkerd: a GRPCRoute cannot share an HTTP/1 port with exact method routes (docs/targets/linkerd.md)
    refused = {("linkerd", "allow a -> b grpc p.S/M, p.T :8080")}
    for form in forms:
        for target in sorted(TARGETS):
            analysis = pipeline.analyze([SourceFile("f.mesh", head + form + "\n")])
            if (target, form) in refused:
                with pytest.raises(MeshError) as err:
                    pipeline.lower(analysis, target)
                assert {d.code for d in err.value.diagnostics} == {"MP301"}
            else:
                assert pipeline.lower(analysis, target).files
