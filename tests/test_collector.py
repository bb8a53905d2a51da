"""The Collector keeps each diagnostic once, by a set (issue 12), also when ``items`` is replaced or extended."""

from __future__ import annotations

from meshpolicy.diagnostics import Collector


def test_each_diagnostic_once_whatever_was_done_to_items() -> None:
    collected = Collector()
    collected.note("MP312", "a", None)
    collected.note("MP312", "a", None)
    collected.note("MP312", "b", None)
    assert [d.message for d in collected.items] == ["a", "b"]
    first = collected.items[0]
    collected.items = [first]               # replaced, as the pipeline does
    collected.note("MP312", "b", None)
    collected.note("MP312", "a", None)
    assert [d.message for d in collected.items] == ["a", "b"]
    collected.items.append(collected.items[1].__class__("MP312", first.severity, "c", None))  # extended
    collected.note("MP312", "c", None)
    assert [d.message for d in collected.items] == ["a", "b", "c"]
