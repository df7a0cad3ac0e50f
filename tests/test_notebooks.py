"""Every lesson notebook follows the course conventions and runs in fast mode.

New notebooks in notebooks/ are picked up automatically. The fast-mode run is the one
tests/conftest.py makes once per lesson (papermill's parameters, executed by otter-grader's
grading of the solved copy) and tests/test_course.py reuses for the grades. nbval replays the
same notebooks as a learner would (default parameters) and compares their stored outputs; see
the ``addopts`` in pyproject.toml and docs/authoring.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from helpers import FAST_SEED, load_course

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = load_course().lessons()   # NN_topic.ipynb, then the appendices A_topic.ipynb
IDS = [p.stem for p in NOTEBOOKS]


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_course_has_lessons():
    assert NOTEBOOKS, f"no lesson notebooks (NN_name.ipynb) found in {NOTEBOOK_DIR}"
    stray = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb") if p not in NOTEBOOKS)
    assert not stray, f"notebooks must be named NN_topic.ipynb (a lesson) or A_topic.ipynb (an appendix): {stray}"


def test_readme_lists_exactly_the_lessons_that_exist():
    linked = set(re.findall(r"\(notebooks/((?:\d\d|[A-Z])_[\w-]+\.ipynb)\)", (ROOT / "README.md").read_text()))
    missing = sorted(name for name in linked if not (NOTEBOOK_DIR / name).exists())
    assert not missing, f"README.md links lessons that do not exist: {missing}"
    unlisted = sorted(p.name for p in NOTEBOOKS if p.name not in linked)
    assert not unlisted, f"lessons missing from README.md: {unlisted}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == "python3", "kernel must be python3 (docs/authoring.md)"
    tagged = [c for c in code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one code cell must be tagged `parameters`"
    assert re.search(r"^FAST\s*=\s*False\b", tagged[0].source, re.M), "the parameters cell sets FAST = False"
    assert re.search(r"^SEED\s*=", tagged[0].source, re.M), "the parameters cell sets SEED"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"In this (lesson|appendix) you will", text), "objectives at the top"
    assert "## Summary" in text and "## Exercises" in text
    source = "\n".join(c.source for c in code_cells(nb))
    assert "assert " in source, "a lesson asserts the figures it teaches"
    assert source.count("### BEGIN SOLUTION") == source.count("### END SOLUTION") >= 1
    for cell in code_cells(nb):
        if "### BEGIN SOLUTION" in cell.source:
            assert "exercise" in cell.metadata.get("tags", []), "solution cells are tagged `exercise`"
    assert all(c.outputs for c in code_cells(nb) if "check" in c.metadata.get("tags", [])), \
        "outputs must be stored (nbval compares them): run the notebook and save it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_the_top_states_the_learner_time_it_is_estimated_at(path, course):
    nb = nbformat.read(path, as_version=4)
    stated = re.search(r"\*\*Learner time:\*\* about (\d+) minutes", nb.cells[0].source)
    assert stated, "the first cell ends with **Learner time:** about N minutes (course.learner_minutes)"
    minutes, _ = course.learner_minutes(nb)
    assert abs(int(stated.group(1)) - minutes) <= 10, \
        f"the top says {stated.group(1)} minutes; the lesson now estimates at {minutes}: update it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_in_fast_mode(path, fast_run):
    run = fast_run(path)
    lesson = {c.source for c in code_cells(nbformat.read(path, as_version=4))}
    cells = [c for c in code_cells(run.solved)
             if c.source in lesson or "injected-parameters" in c.metadata.get("tags", [])]
    ran = [c for c in cells if c.execution_count is not None]
    assert ran, "no cell of the lesson ran"
    assert len(ran) == len(cells) >= len(lesson), f"{len(cells) - len(ran)} code cells did not run"
    failed = [(i, o.ename, o.evalue[:200]) for i, c in enumerate(cells) for o in c.outputs if o.output_type == "error"]
    assert not failed, failed
    injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "FAST = True" in injected[0].source and f"SEED = {FAST_SEED}" in injected[0].source
    print(f"{path.name}: {len(ran)} cells, graded in {run.seconds:.1f} s (fast mode)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_outputs_read_well_without_a_kernel(path):
    """What GitHub's viewer, nbviewer and the website (scripts/website.py) show: no widget state to
    render as "0%" or fail, a static snapshot beside every widget, a note once per call."""
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata, "stored widget state: run `python scripts/website.py --tidy`"
    for i, cell in enumerate(code_cells(nb)):
        for out in cell.outputs:
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                assert "Panel(" in cell.source, f"code cell {i}: a widget that is not a panel (a progress bar?)"
                assert "<pre>" in data.get("text/html", ""), f"code cell {i}: a widget with no static snapshot"
        said = sum(str(out.get("text", "")).count("Said once") for out in cell.outputs)
        assert said <= 1, f"code cell {i} prints the same note {said} times: once per call, not per batch"


WIDE_LISTINGS = {("B", "print(marked(")}  # lines of examples/*.py quoted as they are (code, not results)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_output_lines_fit_88_characters(path):
    """The website and a laptop's notebook show 88 characters of output without a scroll bar
    (DEVELOPERS.md): every line a lesson prints fits, so no verdict or table column is cut off."""
    nb = nbformat.read(path, as_version=4)
    wide = []
    for i, cell in enumerate(code_cells(nb)):
        if any(path.name.startswith(n) and mark in cell.source for n, mark in WIDE_LISTINGS):
            continue
        for out in cell.outputs:
            data = out.get("data", {})
            if "image/png" in data or "text/html" in data:  # a figure, or a panel's snapshot
                continue
            text = "".join(out.get("text") or data.get("text/plain", ""))
            wide += [f"code cell {i}: {len(line)} characters: {line[:60]}..."
                     for line in text.splitlines() if len(line) > 88]
    assert not wide, "output lines over 88 characters:\n" + "\n".join(wide)
