"""Time ``meshpolicy graph --format html`` on the benchmark policy, and the page in a real Chromium.

    python benchmarks/graph_page.py [--namespaces 50] [--services 20] [--chromium PATH]

Prints: building the picture from the IR and writing the page (seconds, size),
then in headless Chromium (Playwright): the page load until the first picture
is drawn, and each filter (hide a namespace, focus a service, search) as the
time the page takes to redraw. Figures for the docs are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import generate

from meshpolicy.parse import parse_files
from meshpolicy.resolve import resolve
from meshpolicy.view import access, page

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def run(namespaces: int, services: int, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    graph = resolve(parse_files(generate(namespaces, services))).graph
    start = time.perf_counter()
    view = access.build(graph)
    built = time.perf_counter() - start
    start = time.perf_counter()
    text = page.render(view)
    rendered = time.perf_counter() - start
    print(f"# {len(graph.services)} services, {len(view.nodes)} nodes, {len(view.edges)} edges; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"picture from the IR   {built:8.2f} s")
    print(f"html page             {rendered:8.2f} s  {len(text.encode()) / 2**20:.1f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.html"
        path.write_text(text, encoding="utf-8")
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(Path(tmp) / "profile"), executable_path=chromium,
                                                           headless=True, args=ARGS,
                                                           viewport={"width": 1400, "height": 820})
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda e: errors.append(str(e)))
            start = time.perf_counter()
            tab.goto(path.as_uri())
            tab.wait_for_selector("body[data-ready=true]", timeout=120_000)
            loaded = time.perf_counter() - start
            script = tab.evaluate("window.meshpolicyGraph.loadMs") / 1000
            print(f"page load (to drawn)  {loaded:8.2f} s  (script {script:.2f} s)")
            first_ns = tab.eval_on_selector("#namespaces input:not([data-namespace=''])", "e => e.dataset.namespace")
            for name, action in (
                    ("hide a namespace", lambda: tab.uncheck(f'#namespaces input[data-namespace="{first_ns}"]')),
                    ("show it again", lambda: tab.check(f'#namespaces input[data-namespace="{first_ns}"]')),
                    ("focus a service", lambda: tab.select_option("#focus", index=1)),
                    ("all services again", lambda: tab.select_option("#focus", "")),
                    ("hide every namespace", lambda: tab.click("#ns-none")),
                    ("show every namespace", lambda: tab.click("#ns-all")),
                    ("search", lambda: tab.fill("#search", "svc07"))):
                tab.evaluate("window.meshpolicyGraph.lastRenderMs = 0")
                start = time.perf_counter()
                action()
                tab.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                wall = time.perf_counter() - start
                redraw = tab.evaluate("window.meshpolicyGraph.lastRenderMs") / 1000
                print(f"{name:21} {wall:8.2f} s" + (f"  (redraw {redraw:.2f} s)" if redraw else ""))
            context.close()
    if errors:
        raise SystemExit(f"page errors: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    run(args.namespaces, args.services, args.chromium)


if __name__ == "__main__":
    main()
