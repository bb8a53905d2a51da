"""Time a rebuild after an edit of one rule, with the build cache (docs/cache.md), against a build without it.

    python benchmarks/incremental.py [--services 5000] [--targets istio,linkerd] [--cli]

The policy is ``benchmarks/bench.py``'s ``mesh:N`` (20 services a namespace, about ten rules a
service, one file a namespace), written to a temporary folder. For each target, in this process and
with a fresh cache folder:

1. a cold build with the cache (everything computed and stored);
2. the edit: one rule of one service (``GET,POST`` becomes ``GET,PUT`` in the first rule of ``ns000``);
3. the rebuild with the cache, stage by stage: ``analyze`` (read the files, parse through the cache,
   resolve, the ``never`` check), ``lower and render`` (``pipeline.lower`` without verification: for a
   backend that lowers by namespace, the namespaces whose slice changed; for the others the whole backend,
   rendering through the cache), ``verify`` (the namespaces whose slice changed), and the cache's
   bookkeeping;
4. the same rebuild without the cache, for the comparison, and a byte-for-byte comparison of the files
   and diagnostics of both (the benchmark stops if they differ); ``--no-compare`` skips it.

Times are wall and CPU seconds (CPU includes verification's forked workers): on a shared machine,
CPU time is the figure that does not depend on the other jobs.

With ``--cli``, the rebuild is also timed as ``meshpolicy build`` in a child process, writing the output
folder (start-up, reading, writing and fsync included). Figures are in docs/performance.md ("Rebuilding
after an edit").
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import mesh

from meshpolicy import pipeline
from meshpolicy.cache import BuildCache, open_cache
from meshpolicy.cli import batch_collector
from meshpolicy.source import SourceFile, discover

EDIT = ("GET,POST /api/svc00/*", "GET,PUT /api/svc00/*")
EDITED = "ns000.mesh"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(stages: dict[str, tuple[float, float]], name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` and add its (wall, CPU) seconds to ``stages[name]``; CPU includes forked workers."""
    wall, cpu = time.perf_counter(), _cpu()
    value = fn()
    before = stages.get(name, (0.0, 0.0))
    stages[name] = (before[0] + time.perf_counter() - wall, before[1] + _cpu() - cpu)
    return value


def build(folder: Path, target: str,
          cache: BuildCache | None) -> tuple[dict[str, str], list, dict[str, tuple[float, float]]]:
    """One build of the policy in ``folder``: its files, its diagnostics, and the seconds of each stage."""
    stages: dict[str, tuple[float, float]] = {}
    analysis = timed(stages, "analyze", lambda: pipeline.analyze(discover([folder]), cache=cache))
    result = timed(stages, "lower and render", lambda: pipeline.lower(analysis, target, verify=False))
    files = result.files
    timed(stages, "verify", lambda: pipeline.check(result, target))
    if cache is not None:
        timed(stages, "cache bookkeeping", cache.notes)
    return files, [str(d) for d in result.diagnostics], stages


def profiled(fn: Callable[..., Any], top: int, *args: Any) -> Any:
    """``fn(*args)`` under cProfile; prints the top entries by own and by cumulative time (cProfile slows Python
    code several times: read the shares, not the seconds)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    value = profile.runcall(fn, *args)
    for order in ("tottime", "cumulative"):
        print(f"\n### the cached rebuild, profiled, by {order}")
        pstats.Stats(profile, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(top)
    return value


def _total(stages: dict[str, tuple[float, float]], which: int) -> float:
    return sum(times[which] for times in stages.values())


def write_policy(folder: Path, sources: list[SourceFile]) -> None:
    for src in sources:
        (folder / src.name).write_text(src.text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--targets", default="istio,linkerd")
    parser.add_argument("--cli", action="store_true", help="also time 'meshpolicy build' in a child process")
    parser.add_argument("--no-compare", action="store_true", help="skip the uncached rebuild (and the comparison)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the cached rebuild (cProfile) and print its top entries by own and cumulative time")
    parser.add_argument("--top", type=int, default=30, help="entries of each ordering of --profile")
    args = parser.parse_args()
    batch_collector()  # the garbage collector as the command line sets it (meshpolicy.cli.BATCH_THRESHOLDS)
    print(f"# {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"{time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        policy = root / "policy"
        policy.mkdir()
        sources = mesh(args.services)
        for target in args.targets.split(","):
            write_policy(policy, sources)
            cache_folder = root / f"cache-{target}"
            cache, notes = open_cache(cache_folder)
            assert cache is not None, notes
            cold = build(policy, target, cache)[2]
            stored = [f.stat().st_size for f in cache_folder.rglob("*") if f.is_file()]
            print(f"cache folder after the cold build ({target}): {sum(stored) / 2**20:.1f} MiB in {len(stored)} files")
            text = (policy / EDITED).read_text()
            assert EDIT[0] in text
            (policy / EDITED).write_text(text.replace(EDIT[0], EDIT[1], 1))
            cache, _ = open_cache(cache_folder)
            assert cache is not None
            if args.profile:
                files, diags, warm = profiled(build, args.top, policy, target, cache)
            else:
                files, diags, warm = build(policy, target, cache)
            kinds = {k: tuple(v) for k, v in sorted(cache.store.stats.kinds.items())}
            plain: dict[str, tuple[float, float]] = {}
            if not args.no_compare:
                plain_files, plain_diags, plain = build(policy, target, None)
                if (files, diags) != (plain_files, plain_diags):
                    raise SystemExit(f"{target}: the cached build differs from the uncached one")
            print(f"\n## {target}: {args.services} services, {len(files) - 1} manifests")
            print(f"cold build with the cache: {_total(cold, 0):.2f} s wall, {_total(cold, 1):.2f} s CPU")
            print("| stage | one-rule edit, cached: wall | CPU | same, uncached: wall | CPU |")
            print("|---|---:|---:|---:|---:|")
            for stage in dict.fromkeys([*warm, *plain]):
                (w, c), (pw, pc) = warm.get(stage, (0, 0)), plain.get(stage, (0, 0))
                print(f"| {stage} | {w:.2f} | {c:.2f} | {pw:.2f} | {pc:.2f} |")
            print(f"| **total** | **{_total(warm, 0):.2f}** | **{_total(warm, 1):.2f}** | "
                  f"**{_total(plain, 0):.2f}** | **{_total(plain, 1):.2f}** |")
            print("cache hits/misses by kind: " + ", ".join(f"{k} {h}/{m}" for k, (h, m) in kinds.items()))
            if args.cli:
                out = root / f"out-{target}"
                command = [sys.executable, "-m", "meshpolicy", "build", str(policy), "-t", target, "-o", str(out),
                           "--cache-dir", str(cache_folder)]
                subprocess.run(command, check=True, capture_output=True)  # the output folder written once
                edited = (policy / EDITED).read_text()  # another edit of the same rule: a change the cache lacks
                (policy / EDITED).write_text(edited.replace(EDIT[1], "GET,PATCH /api/svc00/*", 1))
                start, cpu = time.perf_counter(), _cpu()
                subprocess.run(command, check=True, capture_output=True)
                print(f"meshpolicy build after the edit (child process, output written): "
                      f"{time.perf_counter() - start:.2f} s wall, {_cpu() - cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
