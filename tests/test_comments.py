"""'#' inside a rule (issue 9, defect 3): a comment starts only at a '#' after white space (or at the start
of a line); any other '#' is an error with a hint, and ``fmt`` keeps it where it was, so it cannot hide it."""

from __future__ import annotations

import pytest
from helpers import compile_errors

from meshpolicy import pipeline
from meshpolicy.diagnostics import MeshError
from meshpolicy.fmt import format_source
from meshpolicy.source import SourceFile

POLICY = "namespace shop {{\n  service frontend :8080/http :9090/http\n  service orders :8080/http :9090/http\n  {rule}\n}}\n"


def rendered(rule: str) -> str:
    return compile_errors(POLICY.format(rule=rule))


def test_the_reproducer_is_an_error_not_a_rule_on_every_port():
    """issue 9: '/docs#intro :8080' lost ':8080' and the rule covered every HTTP port."""
    assert rendered("allow frontend -> orders GET /docs#intro :8080") == (
        "policy.mesh:4:37: error[MP114]: invalid path '/docs#intro': '#' starts a fragment, which a client "
        "never sends\n"
        " 4 |   allow frontend -> orders GET /docs#intro :8080\n"
        "   |                                     ^^^^^^\n"
        "  = hint: remove the '#...' part; a comment needs white space before its '#'")


@pytest.mark.parametrize(("rule", "col"), [
    ("allow frontend -> orders#x :8080", 27),
    ("allow frontend#x -> orders", 17),
    ("allow frontend -> orders GET:8080#x", 36),
    ("allow frontend -> orders GET,POST#x :8080", 36),
])
def test_a_hash_after_a_name_or_a_port_is_an_error_with_a_hint(rule, col):
    out = rendered(rule)
    assert out.startswith(f"policy.mesh:4:{col}: error[MP001]: unexpected character '#'\n"), out
    assert out.endswith("  = hint: a '#' starts a comment only after white space: put a space before it, "
                        "or remove it"), out


def test_a_comment_after_white_space_still_ends_the_line():
    graph = pipeline.analyze([SourceFile("p.mesh", POLICY.format(rule="allow frontend -> orders GET :8080 # x"))]).graph
    [rule] = graph.rules
    assert rule.ports == (8080,) and rule.methods == ("GET",)


@pytest.mark.parametrize("rule", ["allow frontend -> orders GET /docs#intro :8080",
                                  "allow frontend -> orders GET /docs#intro,/x :8080"])
def test_fmt_does_not_turn_the_hash_into_a_comment(rule):
    """fmt keeps the '#' inside the path, so the error stays for check and build to report."""
    text = POLICY.format(rule=rule).replace(",/x", ", /x")
    assert format_source(SourceFile("p.mesh", text)) == text


def test_fmt_refuses_a_hash_after_a_name():
    with pytest.raises(MeshError) as err:
        format_source(SourceFile("p.mesh", POLICY.format(rule="allow frontend -> orders#x")))
    assert [d.code for d in err.value.diagnostics] == ["MP001"]
