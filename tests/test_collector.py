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
    before = gc.get_threshold()
    gc.set_threshold(*cli.BATCH_THRESHOLDS)
    try:
        assert gc.isenabled()
        collected = 0
        for _ in range(3):
            for _ in range(cli.BATCH_THRESHOLDS[0] // 2):
                node: list[object] = []
                node.append(node)  # a cycle only the collector frees
            collected += gc.collect(0)
        assert collected > 0
    finally:
        gc.set_threshold(*before)
