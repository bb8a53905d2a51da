"""What making an output folder durable costs: one fsync per file, one syncfs, one sync(2), or none.

    python benchmarks/write.py [FILES] [FOLDER]

Writes FILES manifests (default 2,000, in 40 namespaces) with meshpolicy's writer, each strategy in
turn: a first build into an empty folder, and a build where one file changed (unchanged files are hard
links, so only that file and the kustomization are written). For each, the best of three runs of the whole
build and of its sync step alone. FOLDER (default: a temporary folder) must be on the file system to
measure. The table goes into docs/output.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshpolicy.output import writer

TEXT = "metadata:\n  name: p{}\n  labels:\n    app.kubernetes.io/managed-by: meshpolicy\nversion: {}\n"


class Timed(writer.FileSystem):
    """The writer's file system, timing its sync step."""

    def __init__(self) -> None:
        self.synced = 0.0

    def sync(self, root: Path, written: list[Path]) -> None:
        started = time.perf_counter()
        self.durable(root, written)
        self.synced += time.perf_counter() - started

    def durable(self, root: Path, written: list[Path]) -> None:
        super().sync(root, written)


class PerFile(Timed):
    """The writer before issue 12: an fsync of every file and folder written."""

    def durable(self, root: Path, written: list[Path]) -> None:
        for path in written:
            self.fsync(path)


class WholeSystem(Timed):
    def durable(self, root: Path, written: list[Path]) -> None:
        os.sync()


class NoSync(Timed):
    def durable(self, root: Path, written: list[Path]) -> None:
        pass


STRATEGIES = {"fsync per file": PerFile, "syncfs (the writer)": Timed, "sync(2)": WholeSystem,
              "none (not durable)": NoSync}


def files(n: int, version: str, changed: int | None = None) -> dict[str, str]:
    return writer.with_kustomization({f"ns{i % 40}/policy-{i}.yaml": TEXT.format(i, version if changed in (None, i)
                                                                                  else "base") for i in range(n)})


def best(fs_class: type[Timed], runs: int, prepare: Callable[[], object],
         build: Callable[[Timed], object]) -> tuple[float, float]:
    """(whole build, its sync step): the best of ``runs`` (the machine is shared: the least disturbed)."""
    whole = synced = float("inf")
    for _ in range(runs):
        prepare()
        fs = fs_class()
        started = time.perf_counter()
        build(fs)
        whole, synced = min(whole, time.perf_counter() - started), min(synced, fs.synced)
    return whole, synced


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    base = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="meshpolicy-write-"))
    out = base / "out"
    print(f"{n} files, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    print("| strategy | first build (its sync) | one file changed (its sync) |")
    print("| --- | ---: | ---: |")
    for name, strategy in STRATEGIES.items():
        first = best(strategy, 3, lambda: shutil.rmtree(out, ignore_errors=True),
                     lambda fs: writer.write(out, files(n, "base"), fs))
        one = best(strategy, 3, lambda: writer.write(out, files(n, "base")),
                   lambda fs: writer.write(out, files(n, "one", changed=7), fs))
        print(f"| {name} | {first[0]:.2f} s ({first[1]:.2f} s) | {one[0]:.2f} s ({one[1]:.3f} s) |")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
