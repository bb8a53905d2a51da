from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import settings
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

sys.path.insert(0, str(Path(__file__).resolve().parent))


class YamlSnapshot(SingleFileSnapshotExtension):
    """One text ``.yaml`` file per snapshot, reviewable in a pull request."""

    _write_mode = WriteMode.TEXT
    file_extension = "yaml"


@pytest.fixture
def snapshot_yaml(snapshot):
    return snapshot.use_extension(YamlSnapshot)


# Every property test replays the same examples on every run and machine (a failure reproduces), and
# keeps no example database (parallel workers would share one folder); a test may still widen max_examples.
settings.register_profile("meshpolicy", derandomize=True, database=None)
settings.load_profile("meshpolicy")
