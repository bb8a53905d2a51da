"""Time ``--cluster`` on generated manifests: reading the YAML and checking the policy against the workloads.

    python benchmarks/cluster.py [--workloads 10000] [--per-namespace 100] [--scaling] [--memory]

The manifests are one multi-document file as ``helm template`` writes it (``# Source:`` comments,
empty documents): per workload a Deployment, StatefulSet, DaemonSet, Job or CronJob (in turn)
with labels, a service account, two container ports and an HTTP probe, a Service with a named
targetPort, and a ServiceAccount; every tenth workload sits in a ``List``. Half the namespaces
label their workloads with mixed keys (``app`` and ``app.kubernetes.io/name``), so the
disjointness proof (MP612) runs too. The policy declares three workloads in four (the rest are
MP610 notes) and allows each service from its neighbour. ``--scaling`` times 1/8, 1/4, 1/2 and
all of the workloads to show that time grows linearly. Figures: docs/performance.md.
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

from meshpolicy import cluster
from meshpolicy.parse import parse_files
from meshpolicy.resolve import resolve
from meshpolicy.source import SourceFile

KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def workload(i: int, per_ns: int) -> tuple[str, str, str, str]:
    ns = f"ns{i // per_ns:03d}"
    name = f"w{i % per_ns:03d}"
    key = "app.kubernetes.io/name" if (i // per_ns) % 2 and i % 2 else "app"
    return ns, name, key, KINDS[i % len(KINDS)]


def manifests(count: int, per_ns: int) -> str:
    out = []
    for i in range(count):
        ns, name, key, kind = workload(i, per_ns)
        pod = (f"metadata:\n  labels:\n    {key}: {name}\n    tier: t{i % 7}\n"
               f"spec:\n  serviceAccountName: {name}\n  containers:\n  - name: main\n    image: example/{name}\n"
               f"    ports:\n    - containerPort: 8080\n      name: http\n    - containerPort: 9090\n      name: metrics\n"
               f"    readinessProbe:\n      httpGet:\n        path: /healthz\n        port: http\n")
        api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
        body = "\n".join("    " + line for line in pod.splitlines())
        template = f"  template:\n{body}\n"
        if kind == "CronJob":
            body = "\n".join("        " + line for line in pod.splitlines())
            template = f"  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n      template:\n{body}\n"
        obj = (f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{template}"
               f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
               f"  selector:\n    {key}: {name}\n  ports:\n  - port: 80\n    targetPort: http\n"
               f"---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {ns}\n")
        if i % 10 == 0:  # a List holding the workload and its account
            docs = (obj.split("---\n")[0], obj.split("---\n")[2])
            obj = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
                "- " + "\n  ".join(doc.strip().splitlines()) + "\n" for doc in docs) + "---\n" + obj.split("---\n")[1]
        out.append(f"---\n# Source: bench/templates/{name}.yaml\n{obj}---\n")
    return "".join(out)


def policy(count: int, per_ns: int) -> list[SourceFile]:
    lines: dict[str, list[str]] = {}
    for i in range(count):
        if i % 4 == 3:
            continue  # undeclared: an MP610 note
        ns, name, key, _ = workload(i, per_ns)
        block = lines.setdefault(ns, [f"namespace {ns} {{"])
        block.append(f"  service {name} labels {key}={name} :8080/http :9090/http probes /healthz")
    for ns, block in lines.items():
        names = [line.split()[1] for line in block[1:]]
        block += [f"  allow {a} -> {b} GET :8080" for a, b in zip(names, names[1:] + names[:1])]
        block.append("}")
    return [SourceFile(f"{ns}.mesh", "\n".join(block) + "\n") for ns, block in sorted(lines.items())]


def run(count: int, per_ns: int, folder: Path) -> dict[str, float]:
    path = folder / f"manifests-{count}.yaml"
    path.write_text(manifests(count, per_ns))
    graph = resolve(parse_files(policy(count, per_ns)), selectors_by_pods=True).graph
    t0 = time.perf_counter()
    found = cluster.read([str(path)])
    t1 = time.perf_counter()
    diagnostics = cluster.check(graph, found.cluster, "linkerd")
    t2 = time.perf_counter()
    assert not found.diagnostics, found.diagnostics[:3]
    assert len(found.cluster.workloads) == count, len(found.cluster.workloads)
    return {"read": t1 - t0, "check": t2 - t1, "bytes": path.stat().st_size,
            "documents": found.cluster.workloads.__len__() + len(found.cluster.services) + len(found.cluster.accounts),
            "findings": len(diagnostics)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--per-namespace", type=int, default=100)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    sizes = [args.workloads // 8, args.workloads // 4, args.workloads // 2, args.workloads] if args.scaling \
        else [args.workloads]
    with tempfile.TemporaryDirectory() as tmp:
        print("| workloads | objects | MiB | read s | check s | total s | µs per object | findings |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in sizes:
            if args.memory:
                tracemalloc.start()
            r = run(size, args.per_namespace, Path(tmp))
            peak = tracemalloc.get_traced_memory()[1] if args.memory else 0
            if args.memory:
                tracemalloc.stop()
            total = r["read"] + r["check"]
            print(f"| {size} | {r['documents']} | {r['bytes'] / 2**20:.1f} | {r['read']:.2f} | {r['check']:.2f} | "
                  f"{total:.2f} | {total / r['documents'] * 1e6:.0f} | {r['findings']} |"
                  + (f" peak {peak / 2**20:.0f} MiB" if args.memory else ""))


if __name__ == "__main__":
    main()
