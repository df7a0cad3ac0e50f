"""The course website, built from the stored notebooks and read in headless Chromium, offline.

Builds the site with ``scripts/website.py`` (no execution; at most 2 minutes), serves it on
127.0.0.1 and opens every page with every request to another host refused and recorded. Checks
that each page loads with no console error and no request off this machine, that its figures
and formulas load, that each lesson's Colab and Binder buttons point at that lesson's notebook,
that the panels show their static snapshot, that an exercises page gives no solution away, and
that search finds a term from lesson 4. As a learner opens it (#30): at 390 and 800 px the lesson
menu opens on a tap and no page is wider than the screen; at 1280 px outputs, code and tables fit
(or wrap) without a scroll bar; every image loads; axe-core finds no critical or serious
accessibility violation on the home page and two lessons. Screenshots of every page at 1280 and
390 px go to ``build/test-artifacts/``: look at them.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time

import nbformat
import pytest
from browser import ARTIFACTS, CHROMIUM, FLAGS, ROOT, axe_or_skip, browser_or_skip, free_port
from helpers import load_course, load_script

LESSONS = [p.stem for p in load_course().lessons()]   # the lessons, then the appendices
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


def _open(site, path: str, screenshot: str | None = None, width: int = 1280):
    """Open a page ``width`` pixels wide (a touch screen below 1280) with every request off this machine
    refused; return it, its console errors and the refused requests."""
    browser, base, _ = site
    page = browser.new_page(viewport={"width": width, "height": 900}, has_touch=width < 1280)
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


# --------------------------------------------------------------------------- as a learner opens it (#30)

PAGES = ["index.html", "docs/instructors.html", "docs/authoring.html", "docs/website.html",
         *[f"notebooks/{n}.html" for n in LESSONS], *[f"exercises/{n}.html" for n in LESSONS]]
CLIPPED = """selector => [...document.querySelectorAll(selector)].map(e => e.scrollWidth > e.clientWidth + 1)"""


@pytest.mark.parametrize("width", [390, 800])
def test_the_lesson_menu_opens_on_a_tap(site, width):
    page, errors, outside = _open(site, "notebooks/01_why_early_layers_transfer.html", width=width)
    try:
        menu = page.locator(".bd-docs-nav a[href$='02_feature_extraction.html']:visible")
        assert menu.count() == 0, "the lesson menu is open before anything is tapped"
        page.locator(".primary-toggle:visible").first.tap()
        menu.first.wait_for(state="visible", timeout=5_000)
        page.screenshot(path=str(ARTIFACTS / f"website_menu_{width}.png"))
        assert not errors and not outside, (errors, outside)
    finally:
        page.close()


def test_the_whole_menu_fits_a_laptop_screen(site):
    """At 1280 x 900 every lesson, and the teaching pages below them, show without scrolling the
    menu: the navigation uses each lesson's short title, and a lesson's exercises are one line."""
    page, _, _ = _open(site, "notebooks/03_fine_tuning.html")
    try:
        links = page.locator(".bd-docs-nav a")
        bottoms = [links.nth(i).bounding_box() for i in range(links.count())]
        titles = [links.nth(i).inner_text() for i in range(links.count())]
        assert "Exercises" in titles and any(t.startswith("Lesson 7") for t in titles), titles
        low = [t for t, box in zip(titles, bottoms) if box and box["y"] + box["height"] > 900]
        assert not low, f"below the fold of a 900 px window: {low}"
    finally:
        page.close()


def test_every_page_fits_a_phone_and_a_laptop_and_its_images_load(site):
    """At 390 px no page is wider than the screen; at 1280 px at most 2% of outputs and 5% of code
    cells need a scroll bar, and no table does. Every image loads at both widths."""
    counts = {"outputs": [0, 0], "code": [0, 0], "tables": [0, 0]}
    wide, broken = [], []
    for path in PAGES:
        for width in (1280, 390):
            page, errors, outside = _open(site, path, f"website_{width}_{path.replace('/', '_')[:-5]}.png", width)
            try:
                assert not errors and not outside, (path, width, errors, outside)
                images = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.naturalWidth > 0])")
                broken += [f"{path} ({width} px): {src}" for src, ok in images if not ok]
                if width == 390 and page.evaluate("document.documentElement.scrollWidth > innerWidth"):
                    wide.append(path)
                if width == 1280 and path.startswith("notebooks/"):
                    for kind, selector in [("outputs", "div.cell_output pre"), ("code", "div.cell_input pre"),
                                           ("tables", "article table")]:
                        clipped = page.evaluate(CLIPPED, selector)
                        counts[kind][0] += sum(clipped)
                        counts[kind][1] += len(clipped)
            finally:
                page.close()
    assert not broken, f"images that did not load: {broken}"
    assert not wide, f"pages wider than a 390 px phone: {wide}"
    (out, n_out), (code, n_code), (tables, n_tables) = counts["outputs"], counts["code"], counts["tables"]
    assert n_out > 100 and n_code > 100 and n_tables >= 1, counts  # the counts are not vacuous
    assert out <= 0.02 * n_out, f"{out} of {n_out} outputs need a scroll bar at 1280 px"
    assert code <= 0.05 * n_code, f"{code} of {n_code} code cells need a scroll bar at 1280 px"
    assert tables == 0, f"{tables} of {n_tables} tables need a scroll bar at 1280 px"


@pytest.mark.parametrize("path", ["index.html", "notebooks/01_why_early_layers_transfer.html",
                                  "notebooks/04_nlp_with_bert.html"])
def test_no_critical_or_serious_accessibility_violation(site, path):
    axe = axe_or_skip()
    page, errors, outside = _open(site, path)
    try:
        page.add_script_tag(content=axe.read_text())
        found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                              ".map(v => [v.id, v.impact, v.nodes.length, v.nodes[0].html.slice(0, 120)])")
        bad = [v for v in found if v[1] in ("critical", "serious")]
        assert not bad, f"axe-core on {path}: {bad}"
        assert not errors and not outside, (errors, outside)
    finally:
        page.close()
