"""The website's staging (scripts/website.py), without Sphinx or a browser: tests/browser/test_website.py
builds the site and reads it in Chromium."""

from __future__ import annotations

import re

import nbformat
import pytest
from helpers import ROOT, load_course, load_script

LESSONS = [p.stem for p in load_course().lessons()]   # the lessons, then the appendices


@pytest.fixture(scope="module")
def website():
    return load_script("website")


@pytest.fixture(scope="module")
def staged(website, tmp_path_factory):
    src = tmp_path_factory.mktemp("website") / "src"
    assert website.stage(src) == LESSONS
    return src


def test_every_lesson_has_a_page_and_an_exercises_page_with_no_answers(website, staged):
    for name in LESSONS:
        lesson = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        page = nbformat.read(staged / "notebooks" / f"{name}.ipynb", as_version=4)
        text = "\n".join(c.source for c in page.cells)
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, "the lesson page stops before its exercises"
        assert f"../exercises/{name}.md" in page.cells[-1].source
        assert not any("colab" in c.metadata.get("tags", []) for c in page.cells)
        assert "widgets" not in page.metadata
        exercises = (staged / "exercises" / f"{name}.md").read_text()
        assert re.match(r"# Exercises: (Lesson \d+|Appendix [A-Z]) ", exercises)
        stubs = sum(website.course.strip_solution(e.source, "").count("raise NotImplementedError")
                    for e, _ in website.course.exercises(lesson))
        assert exercises.count("raise NotImplementedError") == stubs >= 2, "a stub for every exercise"
        assert "BEGIN SOLUTION" not in exercises and "HIDDEN TESTS" not in exercises
        assert f"notebooks/{name}.ipynb" in exercises, "a link to open the lesson"


def test_links_point_at_pages_or_at_github_and_badges_become_text(website):
    pages = {"README.md": "index.md", "notebooks/00_x.ipynb": "notebooks/00_x.ipynb"}  # a page named so, for the test
    repo = "https://github.com/o/r"
    text = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab/x) "
            "[lesson](notebooks/00_x.ipynb#part) [design](docs/design.md) [data](datasets) "
            "[web](https://a.b) [here](#top)")
    out = website.links(text, "README.md", pages, "index.md", repo)
    assert out == ("[Open In Colab](https://colab/x) [lesson](notebooks/00_x.ipynb#part) "
                   "[design](https://github.com/o/r/blob/main/docs/design.md) "
                   "[data](https://github.com/o/r/tree/main/datasets) [web](https://a.b) [here](#top)")
    # from a lesson (notebooks/) to the home page, seen from an exercises page
    assert website.links("[home](../README.md)", "notebooks/00_x.ipynb", pages, "exercises/00_x.md", repo) == \
        "[home](../index.md)"


def test_the_home_page_is_for_learners_and_made_from_the_lessons(website, staged):
    index = (staged / "index.md").read_text()
    assert index.startswith("# Transfer learning with pretrained models\n")
    assert "pytest" not in index and "HF_HUB_OFFLINE" not in index, "the developers' README stays on GitHub"
    assert "badge_logo.svg" not in index and "colab-badge.svg" not in index, "no image from the web"
    assert "## Three ways to start" in index and "pip install -r requirements.txt" in index
    for name in LESSONS:
        nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        minutes = re.search(r"\*\*Learner time:\*\* about (\d+) minutes", nb.cells[0].source).group(1)
        assert f"### [{website.title(nb)}](notebooks/{name}.ipynb)" in index
        assert f"*About {minutes} minutes · [its exercises](exercises/{name}.md)*" in index
        goals = website.summary(nb)["goals"]
        assert len(goals) >= 4 and all(f"- {g}" in index for g in goals), "the lesson's own list of goals"
        short = website.title(nb).split(":")[0].strip()
        assert re.search(rf"^{re.escape(short)} <notebooks/{name}>$", index, re.M), \
            "the lesson is in the navigation, under its short title"
        page = nbformat.read(staged / "notebooks" / f"{name}.ipynb", as_version=4)
        assert re.search(rf"^Exercises <\.\./exercises/{name}>$", page.cells[-1].source, re.M), \
            "its exercises come under it"
        assert "colab-badge.svg" not in page.cells[0].source and "Open In Colab" not in page.cells[0].source
    for doc in ("instructors", "authoring", "website"):
        assert re.search(rf"^docs/{doc}$", index, re.M) and (staged / "docs" / f"{doc}.md").exists()


def test_tidy_drops_stored_widget_state(website, tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {}}})
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setattr(website.course, "lessons", lambda: [path])
    assert website.tidy() == ["00_x.ipynb"]
    assert "widgets" not in nbformat.read(path, as_version=4).metadata
    assert website.tidy() == []
