"""Time ``meshpolicy import`` on meshpolicy's own output for generated meshes: read, translate, prove.

    python benchmarks/import_.py [--services 100,200,400] [--targets istio,linkerd]

For each size, the ``mesh:N`` policy of ``bench.py`` (N services, 20 a namespace, about ten rules a
service) is built for the target and written to a folder; ``import`` then reads that folder, translates
it and proves it (which builds the imported policy and decides every request of its space twice, with
the target's reader on both sets of manifests). Printed: CPU seconds of the whole import (wall time on
a shared machine says little), requests compared, peak traced memory, and whether the round trip is
exact. Figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import mesh

from meshpolicy import pipeline
from meshpolicy.diagnostics import MeshError
from meshpolicy.importer import run


def measure(services: int, target: str) -> str:
    try:
        built = pipeline.lower(pipeline.analyze(mesh(services)), target)
    except MeshError as err:
        return f"| {services} | {target} | refused: {err.diagnostics[0].code} | | | |"
    with tempfile.TemporaryDirectory() as folder:
        for rel, text in built.files.items():
            path = Path(folder) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        tracemalloc.start()
        cpu = time.process_time()
        result = run([folder], target)
        cpu = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return (f"| {services} | {target} | {len(built.files) - 1} | {cpu:.1f} s | {result.compared:,} | {peak:.0f} MiB "
            f"| {'yes' if result.exact else f'no ({result.narrower} narrower)'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", default="100,200,400")
    parser.add_argument("--targets", default="istio,linkerd")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}")
    print("| services | target | manifests | CPU | requests compared | peak traced memory | exact |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in (int(x) for x in args.services.split(",")):
        for target in args.targets.split(","):
            print(measure(n, target), flush=True)


if __name__ == "__main__":
    main()
