"""A rule's many paths matched through an index (issue 12): the same answer as testing each path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshpolicy.graph.model import PathIndex, PathKind, PathMatch

# short paths over few characters, so that prefixes, segments and suffixes meet often
text = st.text(alphabet="/ab.?", max_size=6)
matches = st.lists(st.builds(PathMatch, st.sampled_from(list(PathKind)), text), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(matches, st.lists(text, min_size=1, max_size=8))
def test_the_index_answers_as_every_match_does(paths: list[PathMatch], requests: list[str]) -> None:
    index = PathIndex.of(tuple(paths))
    for path in requests:
        assert index.matches(path) == any(m.matches(path) for m in paths), (paths, path)


def test_each_kind_of_pattern() -> None:
    index = PathIndex.of((PathMatch(PathKind.EXACT, "/a"), PathMatch(PathKind.PREFIX, "/api"),
                          PathMatch(PathKind.STARTS, "/static"), PathMatch(PathKind.SUFFIX, ".png")))
    assert index.matches("/a") and not index.matches("/a/b")
    assert index.matches("/api") and index.matches("/api/x/y") and not index.matches("/apix")
    assert index.matches("/staticx") and index.matches("/static")
    assert index.matches("/x/y.png?size=2") and not index.matches("/x/y.pngx")
    assert not index.matches("/b")


def test_a_rule_with_many_paths_matches_through_the_index_as_through_each_path() -> None:
    from meshpolicy.parse import parse_files
    from meshpolicy.resolve import resolve
    from meshpolicy.source import SourceFile

    listed = ", ".join(f"/p{i}/*" if i % 2 else f"/p{i}" for i in range(40))
    text = f"namespace shop {{\n  service api :8080/http\n  service a :8080/http\n  allow a -> api GET {listed}\n}}\n"
    (rule,) = resolve(parse_files([SourceFile("policy.mesh", text)])).graph.rules
    assert len(rule.paths) == 40
    for path in ["/p0", "/p0/x", "/p1", "/p1/x", "/p1x", "/p39/a/b", "/p38/x", "/p40", "/", "/p3?q=1"]:
        assert rule.http_matches("GET", path) == any(m.matches(path) for m in rule.paths), path
    assert rule.http_matches("GET", "/p1/x") and not rule.http_matches("GET", "/p0/x")
