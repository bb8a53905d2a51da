"""Time every stage of a build against the Lark parse floor, on generated meshes and adversarial shapes.

    python benchmarks/bench.py [--cases mesh:500,mesh:1000,mesh:2000,mesh:5000] [--targets istio,linkerd]
                               [--repeat 1] [--limit 900] [--no-gc]
    python benchmarks/bench.py --adversarial            # callers:50,100,200 ports:1000 labels:8000 paths:1000
    python benchmarks/bench.py --profile mesh:1000 --targets linkerd [--top 25]

A case is SHAPE:N:

- ``mesh:N``: N services, 20 a namespace, about ten rules a service (methods, exact and prefix paths,
  groups, ``NS/*``, an external caller, CIDR allows with a nested CIDR deny, whole
  gRPC services, method and path denies), a policy both targets accept;
- ``callers:N``: N callers, each allowed one path on one service (Linkerd's route choice on many callers);
- ``ports:N``: one service with N ports (HTTP, TCP and gRPC), rules over all of them and over some;
- ``labels:N``: N services in one namespace, with label sets that overlap in keys (the resolver's
  disjointness check, MP118), one rule each;
- ``paths:N``: one rule with N paths, exact and prefix, next to a deny.

Every case runs in a child process (so that its peak RSS is its own) with a time limit. Each stage is
timed by calling the stage itself (parse, resolve, never check, lower, render, verify, write), wall
and CPU (the CPU of verification's worker processes included), and divided by the floor: the Lark
parse of the same files with the project's grammar alone (``meshpolicy.parse.parser()``, no tree
transform), measured in the same process just before. Printed per case and target: time / floor per
stage and in total, peak RSS, files and bytes written, resources per service (per kind in the JSON of
``--one``). A build the target refuses (MP301) is reported as refused, with the count and the first
message, and not verified.
Figures for the docs are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meshpolicy import verify as verifier
from meshpolicy.backends import get_backend
from meshpolicy.cli import batch_collector
from meshpolicy.diagnostics import Severity
from meshpolicy.graph import invariants
from meshpolicy.output.templating import render
from meshpolicy.output.writer import with_kustomization, write
from meshpolicy.parse import parse_files, parser
from meshpolicy.resolve import resolve
from meshpolicy.source import SourceFile

PER_NAMESPACE = 20
SCALING = ["mesh:500", "mesh:1000", "mesh:2000", "mesh:5000"]
ADVERSARIAL = ["callers:50", "callers:100", "callers:200", "ports:100", "ports:1000", "labels:800",
               "labels:8000", "paths:100", "paths:1000"]
STAGES = ["parse", "resolve", "never check", "lower", "render", "verify", "write"]


# -- the generated policies -------------------------------------------------------------------------

def mesh(services: int) -> list[SourceFile]:
    """``services`` services, PER_NAMESPACE a namespace, one file a namespace; deterministic."""
    namespaces = max(1, -(-services // PER_NAMESPACE))
    files = [SourceFile("monitoring.mesh", "namespace monitoring external {\n"
                        "  service prometheus account prometheus-server\n}\n")]
    for n in range(namespaces):
        count = min(PER_NAMESPACE, services - n * PER_NAMESPACE)
        ns, other, far = (f"ns{k % namespaces:03d}" for k in (n, n + 1, n + 7))
        lines = [f"namespace {ns} {{"]
        if n % 5 == 0:
            lines.append("  mtls permissive")
        for s in range(count):
            ports = [":8080/http"]
            if s % 3 == 0:
                ports.append(":9090/tcp")
            if s % 4 == 1:
                ports.append(":8443/grpc")
            extra = " probes /healthz" if s % 2 == 0 else ""
            extra += " mtls permissive on 9090" if s % 6 == 0 else ""
            lines.append(f"  service svc{s:02d} {' '.join(ports)}{extra}")
        lines.append(f"  group front = {', '.join(f'svc{s:02d}' for s in range(0, count, 5))}")
        for s in range(count):
            svc, caller, second = f"svc{s:02d}", f"svc{(s + 1) % count:02d}", f"svc{(s + 2) % count:02d}"
            lines += [
                f"  allow {caller} -> {svc} GET,POST /api/{svc}/*, /api/{svc}/items :8080",
                f"  allow {second} -> {svc} PUT,PATCH /api/{svc}/items/* :8080",
                f"  allow {second}, {other}/* -> {svc} POST /api/{svc}/orders :8080",
                f"  allow front, {other}/{svc} -> {svc} GET /public/* :8080",
                f"  allow monitoring/prometheus -> {svc} GET /metrics :8080",
                f"  allow {far}/* -> {svc} GET,HEAD :8080",
                f"  deny * -> {svc} DELETE /api/{svc}/* :8080",
                f"  deny {far}/* -> {svc} GET /api/{svc}/admin/* :8080",
            ]
            if s % 3 == 0:
                lines.append(f"  allow 10.{n % 256}.0.0/16, 10.{n % 256}.{s}.0/24 -> {svc} :9090")
                lines.append(f"  deny 10.{n % 256}.{s}.128/25 -> {svc} :9090")
            if s % 4 == 1:
                lines.append(f"  allow {caller}, {far}/* -> {svc} grpc pkg{s}.v1.Api, pkg{s}.v1.Admin :8443")
        lines.append("}")
        files.append(SourceFile(f"{ns}.mesh", "\n".join(lines) + "\n"))
    return files


def callers(n: int) -> list[SourceFile]:
    """N callers, each allowed one path of its own on one service."""
    lines = ["namespace shop {", "  service api :8080/http probes /healthz"]
    lines += [f"  service c{i} :8080/http" for i in range(n)]
    lines += [f"  allow c{i} -> api GET /items/{i} :8080" for i in range(n)]
    return [SourceFile("callers.mesh", "\n".join(lines + ["}"]) + "\n")]


def ports(n: int) -> list[SourceFile]:
    """One service with N ports; rules over every HTTP port, every port, and single ports."""
    kinds = ["http", "tcp", "http", "grpc"]
    declared = " ".join(f":{10000 + i}/{kinds[i % 4]}" for i in range(n))
    lines = ["namespace shop {", f"  service big {declared} probes /healthz", "  service a :8080/http",
             "  service b :8080/http", "  allow a -> big GET /api/*", "  deny * -> big DELETE /api/*"]
    lines += [f"  allow b -> big :{10000 + i}" for i in range(0, n, 10)]
    lines += [f"  allow 10.0.0.0/8 -> big :{10000 + i}" for i in range(1, n, 20)]
    return [SourceFile("ports.mesh", "\n".join(lines + ["}"]) + "\n")]


def labels(n: int) -> list[SourceFile]:
    """N services in one namespace: label sets sharing keys (provably disjoint, so the build goes on)."""
    lines = ["namespace shop {"]
    for i in range(n):
        tier = ["api", "web", "db", "batch"][i % 4]
        lines.append(f"  service s{i} labels app=s{i},tier={tier} :8080/http" if i % 2 else f"  service s{i} :8080/http")
    lines += [f"  allow s{(i + 1) % n} -> s{i} GET :8080" for i in range(n)]
    return [SourceFile("labels.mesh", "\n".join(lines + ["}"]) + "\n")]


def paths(n: int) -> list[SourceFile]:
    """One rule with N paths (exact and prefix), next to a deny of one of them."""
    listed = ", ".join(f"/p{i}/*" if i % 2 else f"/p{i}" for i in range(n))
    lines = ["namespace shop {", "  service api :8080/http probes /healthz", "  service a :8080/http",
             f"  allow a -> api GET,POST {listed} :8080", "  deny * -> api POST /p1/* :8080", "}"]
    return [SourceFile("paths.mesh", "\n".join(lines) + "\n")]


SHAPES: dict[str, Callable[[int], list[SourceFile]]] = {"mesh": mesh, "callers": callers, "ports": ports,
                                                        "labels": labels, "paths": paths}


def sources_of(case: str) -> list[SourceFile]:
    shape, _, size = case.partition(":")
    return SHAPES[shape](int(size))


# -- one case, in this process ----------------------------------------------------------------------

def _cpu() -> float:
    """CPU seconds of this process (fine-grained) and of the children it waited for (verification's workers)."""
    children = os.times()
    return time.process_time() + children.children_user + children.children_system


def floor(sources: list[SourceFile]) -> tuple[float, float]:
    """(wall, CPU) of the Lark parse of ``sources`` with the project's grammar and options, nothing else."""
    lark = parser()
    lark.parse("namespace warm {\n}\n", start="start")  # the tables loaded, as for every stage after it
    wall, cpu = time.perf_counter(), _cpu()
    for src in sources:
        lark.parse(src.text if src.text.endswith("\n") else src.text + "\n", start="start")
    return time.perf_counter() - wall, _cpu() - cpu


def measure(case: str, target: str) -> dict[str, Any]:
    """Every stage of one build of ``case`` for ``target``, with the floor measured just before."""
    sources = sources_of(case)
    result: dict[str, Any] = {"case": case, "target": target, "stages": {}}
    result["floor"] = floor(sources)
    stages: dict[str, tuple[float, float]] = result["stages"]

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), _cpu()
        value = fn()
        stages[name] = (time.perf_counter() - wall, _cpu() - cpu)
        return value

    trees = stage("parse", lambda: parse_files(sources))
    resolved = stage("resolve", lambda: resolve(trees))
    graph = resolved.graph
    broken = stage("never check", lambda: invariants.check(graph))
    errors = [d for d in resolved.warnings + broken if d.severity is Severity.ERROR]
    backend = get_backend(target)()
    resources = stage("lower", lambda: backend.lower(graph))
    errors += [d for d in backend.diag.items if d.severity is Severity.ERROR]
    kinds: dict[str, int] = {}
    for res in resources:
        kinds[res.kind] = kinds.get(res.kind, 0) + 1
    result.update(services=len(graph.services), rules=len(graph.rules), resources=len(resources),
                  kinds=dict(sorted(kinds.items())), input_bytes=sum(len(s.text.encode()) for s in sources))
    if errors:  # refused: nothing to render, verify or write
        result["refused"] = {"count": len(errors), "codes": sorted({d.code for d in errors}),
                             "first": f"{errors[0].code} {errors[0].message}"}
        return result
    files = stage("render", lambda: with_kustomization({r.path: render(target, r) for r in resources}))
    found = stage("verify", lambda: verifier.verify(graph, files, target, backend.open_probes(graph),
                                                     reader_options=backend.reader_options()))
    with tempfile.TemporaryDirectory() as tmp:
        stage("write", lambda: write(Path(tmp) / "out", files))
    result.update(files=len(files), bytes=sum(len(t.encode()) for t in files.values()),
                  counterexamples=len(found))
    return result


def peak_rss_mib() -> float:
    """The largest resident set of this process and of any child it waited for (verification's workers)."""
    kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return kib / 1024


# -- the driver -------------------------------------------------------------------------------------

def run_child(case: str, target: str, limit: float, no_gc: bool = False) -> dict[str, Any]:
    """One case in a child process: its own peak RSS, and a time limit."""
    command = [sys.executable, __file__, "--one", case, "--targets", target] + (["--no-gc"] if no_gc else [])
    # its own process group, so that a case stopped at the limit takes verification's workers with it
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        out, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return {"case": case, "target": target, "timeout": limit}
    if child.returncode != 0:
        return {"case": case, "target": target, "failed": err.strip().splitlines()[-1:]}
    return dict(json.loads(out.strip().splitlines()[-1]))


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose total build time is the median (its stages stay one run's)."""
    timed = [r for r in runs if "stages" in r]
    if len(timed) != len(runs) or not timed:
        return runs[0]
    return sorted(timed, key=lambda r: sum(w for w, _ in r["stages"].values()))[len(timed) // 2]


def ratio(seconds: float, base: float) -> str:
    return f"{seconds / base:.1f}x" if base > 0 else "-"


def row(result: dict[str, Any]) -> str:
    """One markdown row: the case, the floor, each stage as time / floor (CPU), totals and volume."""
    case, target = result["case"], result["target"]
    if "timeout" in result:
        return f"| {case} | {target} | | stopped after {result['timeout']:.0f} s | |"
    if "failed" in result:
        return f"| {case} | {target} | | failed: {' '.join(result['failed'])} | |"
    floor_cpu = result["floor"][1]
    stages = result["stages"]
    cells = []
    for name in STAGES:
        if name in stages:
            cells.append(f"{stages[name][1]:.2f} ({ratio(stages[name][1], floor_cpu)})")
        else:
            cells.append("-")
    wall = sum(w for w, _ in stages.values())
    cpu = sum(c for _, c in stages.values())
    if "refused" in result:
        outcome = f"**refused** ({result['refused']['count']} x {', '.join(result['refused']['codes'])})"
    else:
        outcome = "verified" if result.get("counterexamples") == 0 else f"{result['counterexamples']} counterexamples"
    volume = (f"{result['files']} files, {result['bytes'] / 2**20:.1f} MiB, "
              f"{result['resources'] / max(1, result['services']):.1f} res/svc") if "files" in result else ""
    return (f"| {case} | {target} | {floor_cpu:.2f} | {' | '.join(cells)} | **{cpu:.1f} ({ratio(cpu, floor_cpu)})** "
            f"| {wall:.1f} | {result['rss_mib']:.0f} | {volume} | {outcome} |")


HEADER = ("| case | target | floor s | " + " | ".join(STAGES) + " | total CPU s (/ floor) | wall s | peak RSS MiB "
          "| output | outcome |\n|" + "---|" * (len(STAGES) + 8))


def profile(case: str, target: str, top: int) -> None:
    """cProfile of one build of ``case``: the ``top`` entries by own time and by cumulative time.

    Verification runs in this process (its worker processes would be invisible to the profiler), and the
    profiler counts CPU time (the wall clock of a shared machine counts the other jobs and the disk)."""
    verifier.PARALLEL_FROM = sys.maxsize
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    result = measure(case, target)
    profiler.disable()
    print(f"# {case} {target}: {result.get('services')} services, {result.get('rules')} rules")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--cases", default=",".join(SCALING), help="comma list of SHAPE:N")
    options.add_argument("--adversarial", action="store_true", help="the adversarial shapes of issue 12")
    options.add_argument("--targets", default="istio,linkerd")
    options.add_argument("--repeat", type=int, default=1, help="runs per case; the median run is shown")
    options.add_argument("--limit", type=float, default=900, help="seconds before a case is stopped")
    options.add_argument("--one", help="run one case in this process and print it as JSON (the driver uses it)")
    options.add_argument("--profile", help="cProfile one case")
    options.add_argument("--top", type=int, default=25)
    options.add_argument("--no-gc", action="store_true",
                         help="the cyclic garbage collector off (gc.disable()), to tell the work itself from the "
                              "collector's full passes over the heap")
    args = options.parse_args()
    targets = args.targets.split(",")
    if args.no_gc:
        gc.disable()
    else:
        batch_collector()  # what the command line does (meshpolicy.cli.BATCH_THRESHOLDS)
    if args.one:
        result = measure(args.one, targets[0])
        result["rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return
    if args.profile:
        profile(args.profile, targets[0], args.top)
        return
    cases = ADVERSARIAL if args.adversarial else args.cases.split(",")
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; Python "
          f"{platform.python_version()}; times are CPU seconds (user + system, verification's workers "
          "included) and, in brackets, CPU time / the Lark parse floor's CPU time"
          + ("; the garbage collector off" if args.no_gc else ""))
    print(HEADER, flush=True)
    for case in cases:
        for target in targets:
            runs = [run_child(case, target, args.limit, args.no_gc) for _ in range(args.repeat)]
            result = median_of(runs)
            print(row(result), flush=True)
            print(f"<!-- {json.dumps(result)} load {os.getloadavg()[0]:.1f} "
                  f"totals CPU {[round(sum(c for _, c in r['stages'].values()), 2) for r in runs if 'stages' in r]} -->",
                  flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
