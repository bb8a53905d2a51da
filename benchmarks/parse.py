"""The parse stage against the Lark parse floor, repeated and alternated, in one process.

    python benchmarks/parse.py [--services 500,1000,2000,5000] [--repeat 5] [--no-gc] [--decode]
    python benchmarks/parse.py --profile 1000 [--top 15]

``bench.py`` times each stage once, after one floor; on a shared machine one CPU figure can be off by a
fifth. Here the floor (``bench.floor``: the Lark parse tree of every file with the project's grammar and
options, ``meshpolicy.parse.parser()``, each tree dropped) and the project's parse
(``meshpolicy.parse.parse_files``: the syntax trees, all kept, as the build keeps them) of the same
``mesh:N`` files alternate ``--repeat`` times; the medians of their CPU times and the ratio are printed.
``--no-gc`` runs both with Python's cyclic garbage collector off, to show what its full collections
cost (they walk every object alive, and the parse keeps what it builds; the floor keeps nothing).
``--decode`` also times reading the same syntax trees back from the build cache's encoding
(``meshpolicy.cache.codec.loads``, what a cached ``parse`` entry costs besides the store's read and the key).
``--profile N``: cProfile of one ``parse_files`` of ``mesh:N``, by own and by cumulative time.
Figures are in docs/performance.md ("The parse stage").
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _cpu, floor, mesh

from meshpolicy.parse import parse_files


def measure(services: int, repeat: int, decode: bool) -> tuple[list[float], list[float], list[float]]:
    """CPU seconds of the floor, of the parse of ``mesh:services`` and (``decode``) of decoding its trees,
    ``repeat`` times each, alternated."""
    from meshpolicy.cache import codec

    sources = mesh(services)
    parse_files(sources[:1])  # the inline parser's tables loaded, as floor() loads the tree parser's
    encoded = [codec.dumps(tree) for tree in parse_files(sources)] if decode else []
    floors, parses, decodes = [], [], []
    for _ in range(repeat):
        floors.append(floor(sources)[1])
        start = _cpu()
        trees = parse_files(sources)
        parses.append(_cpu() - start)
        del trees
        if decode:
            start = _cpu()
            trees = [codec.loads(payload) for payload in encoded]
            decodes.append(_cpu() - start)
            del trees
    return floors, parses, decodes


def profile(services: int, top: int) -> None:
    sources = mesh(services)
    parse_files(sources[:1])
    profiler = cProfile.Profile()
    profiler.enable()
    parse_files(sources)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--services", default="500,1000,2000,5000")
    options.add_argument("--repeat", type=int, default=5)
    options.add_argument("--no-gc", action="store_true", help="the cyclic garbage collector off (both)")
    options.add_argument("--decode", action="store_true", help="also time decoding the trees from the cache's encoding")
    options.add_argument("--profile", type=int, help="cProfile one parse of mesh:N")
    options.add_argument("--top", type=int, default=15)
    args = options.parse_args()
    if args.profile:
        profile(args.profile, args.top)
        return
    if args.no_gc:
        gc.disable()
    print(f"# load average {os.getloadavg()[0]:.1f}; CPU seconds, median of {args.repeat}"
          f"{', garbage collector off' if args.no_gc else ''}")
    extra = (" decode s |", "---:|") if args.decode else ("", "")
    print(f"| services | floor s | parse s | parse / floor |{extra[0]}\n|---:|---:|---:|---:|{extra[1]}")
    for services in map(int, args.services.split(",")):
        floors, parses, decodes = measure(services, args.repeat, args.decode)
        low, high = statistics.median(floors), statistics.median(parses)
        decoded = f" {statistics.median(decodes):.2f} |" if decodes else ""
        print(f"| {services} | {low:.2f} | {high:.2f} | {high / low:.2f} |{decoded}", flush=True)
        print(f"<!-- floors {[round(f, 2) for f in floors]} parses {[round(p, 2) for p in parses]} "
              f"decodes {[round(d, 2) for d in decodes]} load {os.getloadavg()[0]:.1f} -->", flush=True)


if __name__ == "__main__":
    main()
