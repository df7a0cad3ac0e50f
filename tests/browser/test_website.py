"""The course website, built from the stored notebooks and read in headless Chromium, offline.

Builds the site with ``scripts/website.py`` (no execution; at most 2 minutes), serves it on
127.0.0.1 and opens every page with every request to another host refused and recorded. Checks
that each page loads with no console error and no request off this machine, that its figures
and formulas load, that each lesson's Colab and Binder buttons point at that lesson's notebook,
that the panels show their static snapshot, that an exercises page gives no solution away, and
that search finds a term from lesson 4. Screenshots go to ``build/test-artifacts/``.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time

import nbformat
import pytest
from browser import ARTIFACTS, CHROMIUM, FLAGS, ROOT, browser_or_skip, free_port
from helpers import load_script

LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPOSITORY = "transferlib/transferlib"  # pyproject.toml's [project.urls] Repository


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    sync_playwright = browser_or_skip()
    website = load_script("website")
    out = tmp_path_factory.mktemp("website")
    start = time.perf_counter()
    index = website.build(out)
    seconds = time.perf_counter() - start
    print(f"website built in {seconds:.1f} s, {website.size(index.parent) / 1e6:.1f} MB")
    assert seconds < 120, f"the site took {seconds:.0f} s to build; the README promises at most 2 minutes"
    handler = functools.partial(_Quiet, directory=str(index.parent))
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser, f"http://127.0.0.1:{port}", out / "src"
        finally:
            browser.close()
            server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per file served is noise in the test log
        pass


def _open(site, path: str, screenshot: str | None = None):
    """Open a page with every request off this machine refused; return it, its console errors and
    the refused requests."""
    browser, base, _ = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{base}/{path}", wait_until="networkidle")
    if screenshot:
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=False)
    return page, errors, outside


def _figures_loaded(page) -> tuple[int, list[str]]:
    images = page.eval_on_selector_all(
        "article img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
    return len(images), [src for src, ok in images if not ok]


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_page_loads_offline_with_its_figures_and_launch_buttons(site, name):
    page, errors, outside = _open(site, f"notebooks/{name}.html", f"website_{name[:2]}.png")
    try:
        assert not errors, f"console errors on {name}: {errors}"
        assert not outside, f"{name} requested files from the web: {outside}"
        staged = nbformat.read(site[2] / "notebooks" / f"{name}.ipynb", as_version=4)
        figures = sum("image/png" in o.get("data", {}) for c in staged.cells for o in c.get("outputs", []))
        shown, broken = _figures_loaded(page)
        assert not broken, f"figures that did not load: {broken}"
        assert shown >= figures, f"{figures} stored figures, {shown} on the page"
        binder = page.eval_on_selector_all("a[href*='mybinder.org']", "els => els.map(e => e.href)")
        colab = page.eval_on_selector_all("a[href*='colab.research.google.com']", "els => els.map(e => e.href)")
        assert f"https://mybinder.org/v2/gh/{REPOSITORY}/main?urlpath=lab/tree/notebooks/{name}.ipynb" in binder
        assert (f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{name}.ipynb"
                in colab)
        assert (ROOT / "notebooks" / f"{name}.ipynb").exists()
        assert page.locator(f"a[href$='exercises/{name}.html']").count() >= 1, "a link to the exercises page"
        assert "Error displaying widget" not in page.inner_text("article")
    finally:
        page.close()


def test_formulas_render_and_the_panels_show_their_snapshot(site):
    page, errors, outside = _open(site, "notebooks/01_why_early_layers_transfer.html")
    try:
        page.wait_for_selector("mjx-container svg", state="attached", timeout=30_000)
        assert not errors and not outside, (errors, outside)
        shown, broken = _figures_loaded(page)
        assert shown >= 5 and not broken, (shown, broken)       # the figures check above is not vacuous
        page.locator("mjx-container").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "website_formula.png"))
    finally:
        page.close()
    page, errors, outside = _open(site, "notebooks/03_fine_tuning.html")
    try:
        snapshots = page.locator(".transferlib-snapshot")
        assert snapshots.count() == 2, "the freeze panel and the training panel"  # lesson 3, section 8
        assert "Trainable params:" in snapshots.first.inner_text()
        snapshots.first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "website_panel_snapshot.png"))
    finally:
        page.close()


@pytest.mark.parametrize("path", ["index.html", "docs/instructors.html", *[f"exercises/{n}.html" for n in LESSONS]])
def test_home_instructors_and_exercises_pages_load_offline(site, path):
    page, errors, outside = _open(site, path, "website_home.png" if path == "index.html" else None)
    try:
        assert not errors and not outside, (errors, outside)
        text = page.inner_text("article")
        if path.startswith("exercises/"):
            assert "NotImplementedError" in text, "each solution is a stub"
            assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, "no answer given away"
        if path == "index.html":
            assert len(page.eval_on_selector_all("nav a[href*='notebooks/']", "els => els")) >= len(LESSONS)
    finally:
        page.close()


def test_search_finds_a_term_from_lesson_4(site):
    page, errors, outside = _open(site, "search.html?q=WordPiece")
    try:
        page.wait_for_selector("#search-results ul.search li", timeout=30_000)
        hits = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.href)")
        assert any(re.search(r"notebooks/04_nlp_with_bert\.html", h) for h in hits), hits
        assert not errors and not outside, (errors, outside)
        page.screenshot(path=str(ARTIFACTS / "website_search.png"))
    finally:
        page.close()
