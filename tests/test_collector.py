"""The command line runs with the batch thresholds of the cyclic garbage collector (docs/performance.md)."""

from __future__ import annotations

import gc

import pytest

from meshpolicy import cli


def test_main_runs_the_command_with_the_batch_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []
    monkeypatch.setattr(cli, "app", lambda: seen.append(gc.get_threshold()))
    before = gc.get_threshold()
    try:
        cli.main()
    finally:
        gc.set_threshold(*before)
    assert seen == [cli.BATCH_THRESHOLDS]
    assert cli.BATCH_THRESHOLDS[0] > before[0], "the batch policy must make young collections rarer, not more frequent"


def test_cycles_are_still_collected_under_the_batch_thresholds() -> None:
    """The collector still runs by itself (no explicit gc.collect()) and frees cycles nothing else frees."""
    runs: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            runs.append(info["collected"])

    before = gc.get_threshold()
    gc.set_threshold(*cli.BATCH_THRESHOLDS)
    gc.callbacks.append(note)
    try:
        assert gc.isenabled()
        for _ in range(3 * cli.BATCH_THRESHOLDS[0]):
            node: list[object] = []
            node.append(node)  # a cycle only the collector frees
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*before)
    assert len(runs) >= 2, "the collector did not run by itself under the batch thresholds"
    assert sum(runs) > cli.BATCH_THRESHOLDS[0], "the cycles made were not freed"
