"""``--cluster``: the policy against the manifests of the workloads it governs (docs/cluster.md).

Each folder of tests/cluster/ is a case: ``policy.mesh``, ``manifests/`` and optionally ``args``
(more options, such as ``--target linkerd``). ``meshpolicy check policy.mesh --cluster manifests``
runs in that folder, and its whole output (diagnostics rendered in full, the exit code) is a
snapshot (tests/__snapshots__/test_cluster/).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TESTS, invoke
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

CORPUS = TESTS / "cluster"


class TextSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "txt"


def run_case(folder: Path, monkeypatch) -> str:
    monkeypatch.chdir(folder)
    extra = (folder / "args").read_text().split() if (folder / "args").exists() else []
    result = invoke(["check", "policy.mesh", "--cluster", "manifests", *extra], code=None)
    return f"$ meshpolicy check policy.mesh --cluster manifests {' '.join(extra)}".rstrip() + \
        f"\n{result.output}exit {result.exit_code}\n"


@pytest.mark.parametrize("folder", sorted(p for p in CORPUS.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_corpus(folder, monkeypatch, snapshot):
    assert run_case(folder, monkeypatch) == snapshot.use_extension(TextSnapshot)
