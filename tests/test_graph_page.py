"""The HTML page of ``meshpolicy graph``, in a real headless Chromium driven by Playwright.

Chromium comes from Debian's packages (``chromium``; Playwright cannot download
browsers here), so Playwright is pointed at it. Where Chromium or Playwright is
missing the tests skip with a reason; in CI (CI=true) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import ROOT, invoke

#: a headless Chromium per module (seconds): the full suite only
pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "shop"
SCREENSHOT = ROOT / "docs" / "graph-shop.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _missing(message: str):
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    _missing("Chromium is not installed (Debian package chromium; .ci/run installs it)")
    raise AssertionError  # unreachable


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed (pip install '.[test]')")
    executable = chromium_path()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=executable, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 820})
        yield context
        context.close()


class Page:
    """A loaded page, with everything it logged and requested."""

    def __init__(self, context, path: Path):
        self.page = context.new_page()
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready=true]", timeout=60_000)

    def shown(self, selector: str) -> set[str]:
        return set(self.page.eval_on_selector_all(
            selector, "els => els.filter(e => !e.classList.contains('hidden')).map(e => e.dataset.id)"))

    def click_edge(self, edge_id: str) -> None:
        """A real mouse click on the middle of the edge's curve."""
        point = self.page.evaluate(
            """id => { const path = document.querySelector(`.edge[data-id="${CSS.escape(id)}"] .line`);
                       const p = path.getPointAtLength(path.getTotalLength() / 2);
                       const m = path.getScreenCTM(); return [p.x * m.a + m.e, p.y * m.d + m.f]; }""", edge_id)
        self.page.mouse.click(point[0], point[1])

    def panel(self) -> str:
        return self.page.inner_text("#panel")


@pytest.fixture(scope="module")
def shop_page(browser, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "shop.html"
    invoke(["graph", EXAMPLE, "--format", "html", "-o", out])
    page = Page(browser, out)
    yield page
    page.page.close()


def services():
    rec = json.loads(invoke(["graph", EXAMPLE, "-f", "json"]).output)
    return rec, {n["id"] for n in rec["nodes"] if n["kind"] in ("service", "external")}


def test_loads_with_no_console_error_and_no_network_request(shop_page):
    assert shop_page.console == []
    assert shop_page.requests == [shop_page.url]  # the page itself, and nothing else


def test_shows_every_service_and_every_edge_of_the_example(shop_page):
    rec, ids = services()
    assert ids == {"default/web", "monitoring/prometheus", "shop/frontend", "shop/legacy", "shop/orders",
                   "shop/payments"}
    assert shop_page.shown("#viewport .node") >= ids
    for node in ids:
        assert shop_page.page.is_visible(f'.node[data-id="{node}"]')
    assert shop_page.shown("#viewport .edge") == {e["id"] for e in rec["edges"]}
    assert "6 services" not in shop_page.page.inner_text("#summary")  # 5 managed, 1 external
    assert "5 services · 8 edges · 2 allow plaintext" in shop_page.page.inner_text("#summary")


def test_namespace_filter_hides_a_namespace_and_its_edges(shop_page):
    page = shop_page.page
    page.uncheck('#namespaces input[data-namespace="shop"]')
    try:
        assert not any(n.startswith("shop/") for n in shop_page.shown("#viewport .node"))
        assert shop_page.shown("#viewport .edge") == set()  # every edge of the example goes into shop
        assert page.is_visible('.node[data-id="default/web"]')
    finally:
        page.check('#namespaces input[data-namespace="shop"]')
    assert "shop/orders" in shop_page.shown("#viewport .node")


def test_service_filter_shows_the_neighbourhood_the_cli_computes(shop_page):
    page = shop_page.page
    page.select_option("#focus", "shop/payments")
    try:
        focused = json.loads(invoke(["graph", EXAMPLE, "-f", "json", "--service", "shop/payments"]).output)
        assert shop_page.shown("#viewport .edge") == {e["id"] for e in focused["edges"]}
        assert shop_page.shown("#viewport .node") == {n["id"] for n in focused["nodes"]}
    finally:
        page.select_option("#focus", "")


def test_search_highlights_the_matching_services(shop_page):
    page = shop_page.page
    page.fill("#search", "pay")
    try:
        matches = set(page.eval_on_selector_all("#viewport .node.match", "els => els.map(e => e.dataset.id)"))
        assert matches == {"shop/payments", "payments/*"}
        assert page.inner_text("#search-count").startswith("2 matches")
    finally:
        page.fill("#search", "")
    assert page.eval_on_selector_all("#viewport .node.match", "els => els.length") == 0


def test_clicking_an_edge_opens_its_rules_invariants_in_the_panel(shop_page):
    shop_page.click_edge("shop/frontend->shop/orders")
    text = shop_page.panel()
    assert "shop/frontend → shop/orders" in text
    assert "examples/shop/shop.mesh:22  allow frontend -> orders GET,POST :8080" in text
    assert "examples/shop/shop.mesh:23  allow frontend -> orders GET /api/orders/*, /api/items :8080" in text
    shop_page.click_edge("shop/frontend->shop/payments")
    text = shop_page.panel()
    assert "examples/shop/shop.mesh:24  allow frontend -> payments grpc payments.v1.Payments/Charge" in text
    assert "examples/shop/shop.mesh:31  never frontend -> payments grpc payments.v1.Payments/Refund" in text
    shop_page.click_edge("cidr:10.0.0.0/8->shop/legacy")
    assert "plaintext allowed" in shop_page.panel()


def test_with_a_target_the_panel_names_the_emitted_resources(browser, tmp_path):
    out = tmp_path / "shop.html"
    invoke(["graph", EXAMPLE, "--format", "html", "--target", "istio", "-o", out])
    page = Page(browser, out)
    try:
        page.click_edge("shop/frontend->shop/payments")
        text = page.panel()
        assert "istio resources:" in text
        assert "AuthorizationPolicy shop/payments-allow" in text
        assert page.console == []
    finally:
        page.page.close()


def test_the_screenshot_of_the_example_is_committed_and_shown_in_the_readme(browser, tmp_path, monkeypatch):
    """``UPDATE_SCREENSHOT=1 pytest tests/test_graph_page.py`` rewrites docs/graph-shop.png."""
    if os.environ.get("UPDATE_SCREENSHOT"):
        out = tmp_path / "shop.html"
        monkeypatch.chdir(ROOT)  # the page names the policy as given: examples/shop
        invoke(["graph", "examples/shop", "--format", "html", "-o", out])
        page = Page(browser, out)
        page.page.set_viewport_size({"width": 1600, "height": 760})  # the window's resize fits the picture again
        page.click_edge("shop/frontend->shop/payments")
        page.page.screenshot(path=str(SCREENSHOT))
        page.page.close()
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/graph-shop.png" in (ROOT / "README.md").read_text()
    assert "graph-shop.png" in (ROOT / "docs" / "graph.md").read_text()


def test_diff_page_styles_each_change_and_shows_both_sides(browser, tmp_path):
    from test_graph import changed_policy

    old, new = changed_policy(tmp_path)
    out = tmp_path / "change.html"
    out.write_text(invoke(["diff", old, new, "--format", "html"], code=1).output)
    page = Page(browser, out)
    try:
        assert page.console == []
        assert page.requests == [page.url]
        kinds = dict(page.page.eval_on_selector_all(
            "#viewport .edge", "els => els.map(e => [e.dataset.id, [...e.classList].find(c => c.startsWith('change-'))])"))
        assert {k: v for k, v in kinds.items() if v != "change-same"} == {
            "shop/frontend->shop/payments": "change-removed", "shop/legacy->shop/orders": "change-added",
            "payments/*->shop/orders": "change-widened", "*->shop/frontend": "change-widened",
            "any->shop/frontend": "change-narrowed"}
        assert "1 added · 1 removed · 2 widened · 1 narrowed" in page.page.inner_text("#summary")
        page.click_edge("any->shop/frontend")
        text = page.panel()
        assert "narrowed" in text
        before, after = text.split("BEFORE", 1)[1].split("AFTER", 1)
        assert "shop.mesh:28  allow any -> frontend :8080" in before
        assert "shop.mesh:27  allow any -> frontend GET :8080" in after  # one line above: Charge is gone
    finally:
        page.page.close()


# -- the Mermaid text, rendered by Mermaid itself (the npm package, as GitHub renders it) ------------

MERMAID_ENV = "MESHPOLICY_MERMAID_JS"


@pytest.fixture(scope="module")
def mermaid_page(browser):
    """A blank page with Mermaid's browser bundle (``dist/mermaid.min.js`` of the npm package ``mermaid``,
    which .ci/run fetches with ``npm pack`` and names in MESHPOLICY_MERMAID_JS)."""
    value = os.environ.get(MERMAID_ENV)
    if not value:
        _missing(f"{MERMAID_ENV} is not set: point it at mermaid.min.js of the npm package mermaid@11 "
                 "(.ci/run fetches it)")
    page = browser.new_page()
    page.set_content("<!DOCTYPE html><html><body><div id='out'></div></body></html>")
    page.add_script_tag(content=Path(value).read_text(encoding="utf-8"))
    page.evaluate("mermaid.initialize({startOnLoad: false, securityLevel: 'strict'})")
    yield page
    page.close()


def mermaid_counts(page, text: str) -> tuple[int, int, int]:
    """Render ``text`` with Mermaid: (nodes, edges, subgraphs) of the SVG it draws; a syntax error raises."""
    return tuple(page.evaluate("""async text => {
        const {svg} = await mermaid.render('picture', text);
        const out = document.getElementById('out'); out.innerHTML = svg;
        return [out.querySelectorAll('g.node').length, out.querySelectorAll('path.flowchart-link').length,
                out.querySelectorAll('g.cluster').length]; }""", text))


def expected_counts(text: str) -> tuple[int, int, int]:
    import re

    nodes = len(re.findall(r"^\s*n\d+[\[({]", text, re.MULTILINE)) + text.count('none["no change in access"]')
    edges = len(re.findall(r"^\s*n\d+ (?:-->|==>|-\.->)", text, re.MULTILINE))
    return nodes, edges, len(re.findall(r"^\s*subgraph ", text, re.MULTILINE))


def test_mermaid_renders_every_case_with_every_node_edge_and_namespace(mermaid_page):
    from helpers import case_paths, expected_errors

    for path in [p for p in case_paths() if not expected_errors(p)] + [EXAMPLE]:
        text = invoke(["graph", path, "--format", "mermaid"]).output
        assert mermaid_counts(mermaid_page, text) == expected_counts(text), path


def test_mermaid_renders_the_picture_of_a_change(mermaid_page, tmp_path):
    from test_graph import changed_policy

    old, new = changed_policy(tmp_path)
    text = invoke(["diff", old, new, "--format", "mermaid"], code=1).output
    assert mermaid_counts(mermaid_page, text) == expected_counts(text) == (7, 5, 2)


def test_every_case_of_the_corpus_loads_without_a_console_error(browser, tmp_path):
    from helpers import case_paths, expected_errors

    for path in [p for p in case_paths() if not expected_errors(p)]:
        out = tmp_path / "case.html"
        invoke(["graph", path, "--format", "html", "-o", out])
        page = Page(browser, out)
        try:
            rec = json.loads(invoke(["graph", path, "--format", "json"]).output)
            assert page.console == [], path
            assert page.shown("#viewport .edge") == {e["id"] for e in rec["edges"]}, path
            assert page.shown("#viewport .node") >= {n["id"] for n in rec["nodes"] if n["kind"] == "service"}, path
        finally:
            page.page.close()
