"""``meshpolicy fmt``: canonical, idempotent, comments kept, and never a change in the access graph."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers import CASES, ROOT, case_id, case_paths, graph_shape, invoke, source
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpolicy.diagnostics import MeshError
from meshpolicy.fmt import format_source, shape
from meshpolicy.parse import parse_file, parse_file_with_comments
from meshpolicy.resolve import resolve
from meshpolicy.source import SourceFile

EXAMPLES = sorted((ROOT / "examples").rglob("*.mesh"))
CORPUS = case_paths() + EXAMPLES


def corpus_id(path: Path) -> str:
    return case_id(path) if path.is_relative_to(CASES) else path.relative_to(ROOT).as_posix()


def fmt(src: SourceFile) -> SourceFile:
    return SourceFile(src.name, format_source(src))


def resolved_shape(sources: list[SourceFile]):
    """The graph without positions, or the error codes when the policy does not resolve."""
    try:
        return graph_shape(resolve([parse_file(s) for s in sources]).graph)
    except MeshError as err:
        return sorted(d.code for d in err.diagnostics)


@pytest.mark.parametrize("path", CORPUS, ids=[corpus_id(p) for p in CORPUS])
def test_fmt_is_idempotent_and_keeps_comments(path):
    src = source(path)
    once = fmt(src)
    assert format_source(once) == once.text
    _, before = parse_file_with_comments(src)
    _, after = parse_file_with_comments(once)
    assert [c.text for c in after.comments] == [c.text for c in before.comments]


@pytest.mark.parametrize("path", CORPUS, ids=[corpus_id(p) for p in CORPUS])
def test_fmt_never_changes_the_access_graph(path):
    src = source(path)
    assert resolved_shape([fmt(src)]) == resolved_shape([src])


def test_fmt_never_changes_a_policy_of_several_files():
    sources = [source(p) for p in EXAMPLES]
    assert len(sources) > 1
    assert resolved_shape([fmt(s) for s in sources]) == resolved_shape(sources)


def test_graph_shape_sees_a_change_of_access():
    """The projection used above must not be blind: one method more is another graph."""
    text = source(CASES / "http/methods.mesh").text
    changed = SourceFile("x.mesh", text.replace("GET,POST :8080", "GET,POST,PUT :8080"))
    assert resolved_shape([changed]) != resolved_shape([SourceFile("x.mesh", text)])


MESSY = """\


# header


trust-domain   cluster.local
namespace shop   {   # open
\t# first inside


  service a   :8080/http   probes /a,  /b   # trailing a
  service b account bb {  # open b
     # inside b before
     labels app=b,   tier=x   :80   # two attributes on one line

     mtls permissive on 80
     # inside b after
  }   # close b
  group g=a,b
  allow a ,b -> g GET , POST /x,/y/* :8080 , 80
  allow any , 10.0.0.0/8 -> a grpc x.Y/Z , x.W
  deny   *   ->   a   DELETE


  # before close
}
# between
namespace ext external {
}
service top
allow * -> top   # end
# last comment"""

CANONICAL = """\
# header

trust-domain cluster.local
namespace shop {  # open
  # first inside

  service a :8080/http probes /a,/b  # trailing a
  service b {  # open b
    account bb
    # inside b before
    labels app=b,tier=x
    :80  # two attributes on one line

    mtls permissive on 80
    # inside b after
  }  # close b
  group g = a, b
  allow a, b -> g GET,POST /x, /y/* :8080,80
  allow any, 10.0.0.0/8 -> a grpc x.Y/Z, x.W
  deny * -> a DELETE

  # before close
}
# between
namespace ext external {
}
service top
allow * -> top  # end
# last comment
"""


def test_canonical_layout():
    assert format_source(SourceFile("m.mesh", MESSY)) == CANONICAL


def test_fmt_of_nothing():
    assert format_source(SourceFile("e.mesh", "")) == ""
    assert format_source(SourceFile("e.mesh", "\n\n# only a comment\n\n")) == "# only a comment\n"
    assert format_source(SourceFile("e.mesh", "service a\r\nallow * -> a\r\n")) == "service a\nallow * -> a\n"


@pytest.mark.parametrize("text", ["allow a b\n", "allow a ->\n", "allow a -> b :80/http\n", "service a {\n",
                                  "service a }\n", "group = a\n", "allow frontend -> orders GET POST\n"])
def test_comment_parser_reports_errors_like_the_parser(text):
    """The layout parser is a second Lark instance: its syntax errors must read the same."""
    src = SourceFile("bad.mesh", text)
    with pytest.raises(MeshError) as plain:
        parse_file(src)
    with pytest.raises(MeshError) as with_comments:
        parse_file_with_comments(src)
    assert with_comments.value.diagnostics == plain.value.diagnostics


def test_canonical_text_means_the_same():
    assert shape(parse_file(SourceFile("m.mesh", CANONICAL))) == shape(parse_file(SourceFile("m.mesh", MESSY)))


# -- property: the layout of the input never shows in the output ---------------------------------

def _respace(text: str, draw) -> str:
    """The same policy with other spacing: runs of blanks, blanks around commas, indentation, blank lines."""
    out = []
    for line in text.splitlines():
        code, hash_, comment = line.partition("#")
        if code.strip():
            words = re.split(r"[ \t]+", code.strip())
            gaps = [draw(st.sampled_from([" ", "  ", "\t", " \t "])) for _ in words[1:]]
            code = "".join(w + g for w, g in zip(words, gaps + [""]))
            code = re.sub(r",", lambda _: draw(st.sampled_from([",", ", ", " ,", " , "])), code)
            code = draw(st.sampled_from(["", " ", "    ", "\t"])) + code
            code += draw(st.sampled_from([" ", "   ", "\t"])) if hash_ else ""  # a comment follows white space
        elif hash_:
            code = draw(st.sampled_from(["", "  ", "\t"]))
        out.append(code + hash_ + comment)
        if draw(st.booleans()) and draw(st.booleans()):
            out.append(draw(st.sampled_from(["", "  "])))
    return "\n".join(out) + draw(st.sampled_from(["", "\n", "\n\n"]))


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), index=st.integers(min_value=0, max_value=len(CORPUS) - 1))
def test_layout_never_shows(data, index):
    src = source(CORPUS[index])
    respaced = SourceFile(src.name, _respace(src.text, data.draw))
    # blank lines may differ (the respacing adds some); everything else must be identical
    squeeze = lambda text: re.sub(r"\n\n+", "\n", text)
    assert squeeze(format_source(respaced)) == squeeze(format_source(src))


# -- through the CLI ------------------------------------------------------------------------------

@pytest.fixture
def policy(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples" / "shop", tmp_path / "policy")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "policy"


def test_cli_fmt_rewrites_then_check_passes(policy):
    shop = policy / "shop.mesh"
    before = shop.read_text()
    result = invoke(["fmt", "--check", policy], code=1)
    assert "would reformat policy/shop.mesh" in result.stdout
    assert shop.read_text() == before
    result = invoke(["fmt", policy])
    assert "reformatted policy/shop.mesh" in result.stdout
    assert shop.read_text() == format_source(SourceFile("x", before))
    invoke(["fmt", "--check", policy])
    assert "0 file(s) would be reformatted" in invoke(["fmt", "--check", policy]).stderr


def test_cli_fmt_diff_writes_nothing(policy):
    before = (policy / "shop.mesh").read_text()
    result = invoke(["fmt", "--diff", policy / "shop.mesh"], code=1)
    assert result.stdout.startswith("--- a/policy/shop.mesh\n+++ b/policy/shop.mesh\n")
    assert "-  deny  * -> orders DELETE" in result.stdout
    assert "+  deny * -> orders DELETE" in result.stdout
    assert (policy / "shop.mesh").read_text() == before


def test_cli_fmt_stdin():
    assert invoke(["fmt", "-"], input=MESSY).stdout == CANONICAL


@pytest.mark.parametrize("text,message", [
    ("namespace shop {\n  service a\n", "error[MP002]: namespace 'shop' opened at line 1 is not closed"),
    ("allow a b\n", "error[MP001]: missing '->' between sources and destinations"),
    ("service a :80/http {\n", "error[MP002]: service 'a' opened at line 1 is not closed"),
    ("service a ☃\n", "error[MP001]: unexpected character '\\u2603'"),  # shown escaped (issue 9 item 8)
])
def test_cli_fmt_reports_syntax_errors_and_leaves_the_file(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.mesh"
    bad.write_text(text)
    good = tmp_path / "good.mesh"
    good.write_text("service  b\n")
    result = invoke(["fmt", tmp_path], code=1)
    assert message in result.stderr
    assert bad.read_text() == text
    assert good.read_text() == "service b\n"  # the other files are still formatted


def test_cli_fmt_usage_errors(tmp_path):
    invoke(["fmt", tmp_path / "missing.mesh"], code=2)
    invoke(["fmt"], code=2)
    (tmp_path / "latin1.mesh").write_bytes(b"# caf\xe9\n")
    assert "not valid UTF-8" in invoke(["fmt", tmp_path / "latin1.mesh"], code=2).stderr


def test_the_documented_layout_is_canonical():
    doc = (ROOT / "docs" / "fmt.md").read_text()
    example = doc.split("## The canonical layout\n\n```\n", 1)[1].split("```", 1)[0]
    assert format_source(SourceFile("doc.mesh", example)) == example
