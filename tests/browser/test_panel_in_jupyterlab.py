"""The freeze and training panels in a real JupyterLab, driven by a real browser.

Starts JupyterLab on 127.0.0.1 with lesson 3 (the lesson that uses the panels) in its
fast mode (papermill's parameterisation, ``FAST = True``, outputs cleared), cut to what the
panels need: its cells up to ``new_model`` (the model the panels bind to), then the panel
section. The rest of the lesson trains runs the panels never read, and CI's fast-mode grading
executes it already. The test runs all cells from the Run menu in headless Chromium (Debian's
``chromium`` + pip ``playwright``), unfreezes the last backbone block by clicking its checkbox,
checks the displayed trainable count against the model's exact count, clicks Train and waits for
the run to appear in the runs table. Screenshots go to ``build/test-artifacts/``.

``.ci/run`` installs Chromium and Playwright (tests/browser/browser.py: where Chromium cannot be
installed, the test is skipped loudly; anywhere else a missing browser is a failure in CI).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import nbformat
import pytest
from browser import ARTIFACTS, CHROMIUM, FLAGS, ROOT, browser_or_skip, free_port
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

LESSON = ROOT / "notebooks" / "03_fine_tuning.ipynb"
LAST_OUTPUT = "every cell has run"   # printed by a cell appended after the panels
RUN_CEILING_MS = 900_000  # nbval's --nbval-cell-timeout: a bound for a hung kernel, not a speed test


def panels_only(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The lesson up to the cell that defines ``new_model``, then its panel section (from the heading
    that names the panel to the next heading of its level), then a cell that says every cell has run."""
    cells = nb.cells
    upto = next(i for i, c in enumerate(cells) if "def new_model(" in c.source)
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## ")
                 and "panel" in c.source.splitlines()[0])
    end = next(i for i in range(start + 1, len(cells))
               if cells[i].cell_type == "markdown" and cells[i].source.startswith("## "))
    assert any("TrainPanel(" in c.source for c in cells[start:end]), "lesson 3's panel section has moved"
    nb.cells = cells[:upto + 1] + cells[start:end] + [nbformat.v4.new_code_cell(f"print({LAST_OUTPUT!r})")]
    return nb


@pytest.fixture
def jupyterlab(tmp_path):
    nb = panels_only(parameterize_notebook(load_notebook_node(str(LESSON)), {"FAST": True}))  # as papermill does
    for cell in nb.cells:  # start blank, so every widget on screen was rendered by this run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, tmp_path / LESSON.name)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port = free_port()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), HF_HUB_OFFLINE="1")
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 -- open for the whole server, closed in finally
    lab = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
                            f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
                            f"--ServerApp.root_dir={tmp_path}"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/lab/tree/{LESSON.name}"
    finally:
        lab.terminate()
        try:
            lab.wait(15)
        except subprocess.TimeoutExpired:
            lab.kill()
        log.close()


def _run_all_cells(page) -> None:
    """Run > Run All Cells, once the item is enabled. JupyterLab greys it out until the notebook and its
    kernel are ready, and a menu keeps the state it opened with: reopen it until the item is live. What
    is waited on is that state, never a fixed time (a loaded machine is slower, not wrong)."""
    item = page.locator("li.lm-Menu-item[data-command='runmenu:run-all']")
    for _ in range(600):  # a bound on attempts, each of which waits on the page, not on the clock
        page.click("li.lm-MenuBar-item:has-text('Run')")
        item.wait_for(state="visible", timeout=60_000)
        if "lm-mod-disabled" not in (item.get_attribute("class") or ""):
            item.click()
            page.wait_for_selector(".jp-InputPrompt:has-text('[*]'), .jp-InputPrompt:has-text('[1]')",
                                   timeout=RUN_CEILING_MS)  # queued: the first cell's prompt changes
            return
        page.keyboard.press("Escape")
        item.wait_for(state="hidden", timeout=60_000)
        page.wait_for_selector("text=/\\| Idle/", timeout=90_000)
    pytest.fail("Run All Cells stayed disabled: the notebook never became ready")


def _shown(page) -> int:
    totals = page.locator(".widget-html", has_text="Trainable:").first
    totals.scroll_into_view_if_needed()  # JupyterLab does not render cells out of view: their innerText is empty
    text = totals.text_content()
    return int(text.split("Trainable:")[1].split()[0].replace(",", ""))


def test_freeze_and_train_panels_in_a_real_browser(jupyterlab):
    sync_playwright = browser_or_skip()
    import transferlib as tl

    model, _ = tl.build_classifier("mobilenet_v2", 10, pretrained=False)  # lesson 3: 10 animals
    head = sum(p.numel() for p in model.head.parameters())
    last_block = sum(p.numel() for p in model.backbone.features[18].parameters())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            page.goto(jupyterlab)
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            page.wait_for_selector("text=/Python 3 \\(ipykernel\\) \\| Idle/", timeout=90_000)  # kernel ready
            _run_all_cells(page)
            # The panels render while Run All passes their cells (in view then: JupyterLab does not render
            # cells out of view); then every cell has run and the kernel is free for clicks. The ceiling is
            # nbval's cell limit: on a loaded machine the lesson takes longer, and the test waits for it.
            page.wait_for_selector(".widget-slider", timeout=RUN_CEILING_MS)
            page.wait_for_selector("button:has-text('Train')", timeout=RUN_CEILING_MS)
            page.wait_for_selector(f"text={LAST_OUTPUT}", timeout=RUN_CEILING_MS)
            assert page.locator("text=Error displaying widget").count() == 0
            assert _shown(page) == head == 12_810
            page.screenshot(path=str(ARTIFACTS / "panel_1_loaded.png"))

            block_boxes = page.locator(".widget-checkbox", has_text="backbone.features.18").locator("input")
            block_boxes.check()
            page.wait_for_function("() => document.body.innerText.includes('Trainable: 424,970')", timeout=30_000)
            assert _shown(page) == head + last_block == 424_970
            page.screenshot(path=str(ARTIFACTS / "panel_2_unfrozen.png"))

            page.click("button:has-text('Train')")
            page.wait_for_selector("td:has-text('424,970')", timeout=RUN_CEILING_MS)  # the run, in the runs table
            assert page.locator("text=/run 1: best validation accuracy/").count() == 1
            page.screenshot(path=str(ARTIFACTS / "panel_3_trained.png"), full_page=True)
        finally:
            page.screenshot(path=str(ARTIFACTS / "panel_last.png"), full_page=True)
            browser.close()
    print(f"screenshots in {ARTIFACTS}")
