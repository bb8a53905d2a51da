"""Time each stage of a build on a large generated policy: parse, resolve, lower, render, verify.

    python benchmarks/bench.py [--namespaces 50] [--services 20] [--target istio] [--memory]

Prints a table (seconds per stage, ``write`` being the atomic write of the output folder, share of the build, and with --memory the
peak traced memory). The policy is generated deterministically: every
namespace has SERVICES services (HTTP, some with a TCP or gRPC port), a
group, rules from the same namespace, from other namespaces (NS/* and named
services), from CIDRs, with methods, overlapping paths and deny rules.
Figures for the docs are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meshpolicy import verify as verifier
from meshpolicy.backends import get_backend
from meshpolicy.graph import invariants
from meshpolicy.graph.space import requests
from meshpolicy.output.templating import render
from meshpolicy.output.writer import with_kustomization, write
from meshpolicy.parse import parse_files
from meshpolicy.readers import World, get_reader
from meshpolicy.resolve import resolve
from meshpolicy.source import SourceFile


def generate(namespaces: int, services: int) -> list[SourceFile]:
    """One file per namespace; deterministic."""
    files = []
    for n in range(namespaces):
        ns = f"ns{n:02d}"
        other = f"ns{(n + 1) % namespaces:02d}"
        far = f"ns{(n + 7) % namespaces:02d}"
        lines = [f"namespace {ns} {{"]
        if n % 5 == 0:
            lines.append("  mtls permissive")
        for s in range(services):
            ports = [":8080/http"]
            if s % 3 == 0:
                ports.append(":9090/tcp")
            if s % 4 == 1:
                ports.append(":8443/grpc")
            extra = " probes /healthz" if s % 2 == 0 else ""
            extra += " mtls permissive on 9090" if s % 6 == 0 else ""
            lines.append(f"  service svc{s:02d} {' '.join(ports)}{extra}")
        lines.append(f"  group front = {', '.join(f'svc{s:02d}' for s in range(0, services, 5))}")
        for s in range(services):
            svc = f"svc{s:02d}"
            caller = f"svc{(s + 1) % services:02d}"
            lines.append(f"  allow {caller} -> {svc} GET,POST /api/{svc}/*, /api/{svc}/items :8080")
            lines.append(f"  allow front, {other}/svc{s:02d} -> {svc} GET /public/*")
            lines.append(f"  allow {far}/* -> {svc} :8080")
            if s % 3 == 0:
                lines.append(f"  allow 10.{n}.0.0/16, 10.{n}.{s}.0/24 -> {svc} :9090")
                lines.append(f"  deny 10.{n}.{s}.128/25 -> {svc} :9090")
            if s % 4 == 1:
                lines.append(f"  allow {caller} -> {svc} grpc pkg{s}.v1.Api/Get, pkg{s}.v1.Admin")
            lines.append(f"  deny * -> {svc} DELETE /api/{svc}/*")
        lines.append("}")
        files.append(SourceFile(f"{ns}.mesh", "\n".join(lines) + "\n"))
    return files


def run(namespaces: int, services: int, target: str, memory: bool, workers: int | None = None) -> None:
    sources = generate(namespaces, services)
    times: dict[str, float] = {}

    def stage(name, fn):
        start = time.perf_counter()
        value = fn()
        times[name] = time.perf_counter() - start
        return value

    if memory:
        tracemalloc.start()
    trees = stage("parse", lambda: parse_files(sources))
    graph = stage("resolve", lambda: resolve(trees).graph)
    stage("never check", lambda: invariants.check(graph))
    backend = get_backend(target)()
    resources = stage("lower", lambda: backend.lower(graph))
    files = stage("render", lambda: with_kustomization({r.path: render(target, r) for r in resources}))
    found = stage("verify", lambda: verifier.verify(graph, files, target, backend.open_probes(graph),
                                                           workers=workers))
    with tempfile.TemporaryDirectory() as tmp:
        stage("write", lambda: write(Path(tmp) / "out", files))
    peak = tracemalloc.get_traced_memory()[1] if memory else None
    if memory:
        tracemalloc.stop()
    assert not found, f"{len(found)} counterexamples"
    reader = get_reader(target)(verifier.documents(files), World.from_graph(graph))
    count = sum(1 for _ in requests(graph, reader.mentions if hasattr(reader, "mentions") else None))
    build = sum(v for k, v in times.items() if k != "verify")
    total = build + times["verify"]
    print(f"# {namespaces} namespaces x {services} services = {len(graph.services)} services, "
          f"{len(graph.rules)} rules (per destination), {len(resources)} resources, {count} requests verified; "
          f"target {target}; {os.cpu_count()} CPUs, verify workers {workers or 'auto'}; Python {platform.python_version()} on {platform.machine()}")
    print(f"{'stage':12} {'seconds':>8} {'share':>6}")
    for name, value in times.items():
        print(f"{name:12} {value:8.2f} {value / total:6.0%}")
    print(f"{'total':12} {total:8.2f}")
    print(f"verify / rest of the build: {times['verify'] / build:.2f}")
    if peak is not None:
        print(f"peak traced memory: {peak / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--target", default="istio")
    parser.add_argument("--memory", action="store_true", help="trace peak memory (slows every stage)")
    parser.add_argument("--workers", type=int, default=None, help="processes for verify (default: one per CPU)")
    args = parser.parse_args()
    run(args.namespaces, args.services, args.target, args.memory, args.workers)


if __name__ == "__main__":
    main()
