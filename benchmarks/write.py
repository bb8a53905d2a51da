"""What making an output folder durable costs: one fsync per file, one syncfs, one sync(2), or none.

    python benchmarks/write.py [FILES] [FOLDER]

Writes FILES manifests (default 2,000, in 40 namespaces) with meshpolicy's writer, each strategy in
turn: a first build into an empty folder, a build where every file changed (timed with the rebuild that
sets the folder back), and a build where one file changed (likewise: two builds of one changed file);
the best of three runs. FOLDER (default: a temporary folder) must be on the file system to measure.
The table goes into docs/output.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshpolicy.output import writer

TEXT = "metadata:\n  name: p{}\n  labels:\n    app.kubernetes.io/managed-by: meshpolicy\nversion: {}\n"


class PerFile(writer.FileSystem):
    """The writer before issue 12: an fsync of every file and folder written."""

    def sync(self, root: Path, written: list[Path]) -> None:
        for path in written:
            self.fsync(path)


class WholeSystem(writer.FileSystem):
    def sync(self, root: Path, written: list[Path]) -> None:
        os.sync()


class NoSync(writer.FileSystem):
    def sync(self, root: Path, written: list[Path]) -> None:
        pass


STRATEGIES = {"fsync per file": PerFile, "syncfs (the writer)": writer.FileSystem, "sync(2)": WholeSystem,
              "none (not durable)": NoSync}


def files(n: int, version: str, changed: int | None = None) -> dict[str, str]:
    return writer.with_kustomization({f"ns{i % 40}/policy-{i}.yaml": TEXT.format(i, version if changed in (None, i)
                                                                                  else "base") for i in range(n)})


def timed(action, repeat: int = 3) -> float:
    """The best of ``repeat`` runs (the machine is shared: the minimum is the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def measure(fs: writer.FileSystem, out: Path, n: int) -> tuple[float, float, float]:
    def first() -> None:
        shutil.rmtree(out, ignore_errors=True)
        writer.write(out, files(n, "base"), fs)

    def every() -> None:
        writer.write(out, files(n, "base"), fs)
        writer.write(out, files(n, "all"), fs)

    def one() -> None:
        writer.write(out, files(n, "one", changed=7), fs)
        writer.write(out, files(n, "base"), fs)

    return timed(first), timed(every), timed(one)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    base = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="meshpolicy-write-"))
    print(f"{n} files, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    print("| strategy | first build | every file changed | one file changed |")
    print("| --- | ---: | ---: | ---: |")
    for name, strategy in STRATEGIES.items():
        first, every, one = measure(strategy(), base / "out", n)
        print(f"| {name} | {first:.2f} s | {every:.2f} s | {one:.2f} s |")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
