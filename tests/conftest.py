"""Session fixtures shared by the notebook and course tests: each lesson runs in fast mode once.

Grading the instructor copy (the lesson itself, solved) with otter-grader in fast mode *is* the
lesson's fast-mode run: ``tests/test_notebooks.py`` checks that execution (every cell ran, no
error), and ``tests/test_course.py`` checks its grades. The solved copy also runs each exercise's
wrong answers and its student stub (scripts/mutants.py, tests/test_exercise_mutations.py), so a
lesson is executed once per test session in fast mode and once in learner mode by nbval. Only
``GRADED_UNSOLVED``'s student copy is graded as well, end to end, in the same otter call: it proves
the pipeline (build, stubs, otter) scores an unsolved copy zero; the probes prove it per exercise
for every lesson.

The fast runs use ``SEED = 1``, not the lessons' default 0 (which nbval replays in learner mode),
so every CI run also checks that no assertion depends on one lucky seed.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from helpers import FAST_SEED, GRADED_UNSOLVED, ROOT, load_course, load_script

mutants = load_script("mutants")


@pytest.fixture(scope="session")
def course():
    return load_course()


@pytest.fixture(scope="session")
def built(course, tmp_path_factory) -> Path:
    """Student and instructor copies and autograders, built once per session."""
    out = tmp_path_factory.mktemp("course")
    course.build(out)
    return out


@dataclass
class FastRun:
    """One lesson graded in fast mode: the grades, and both executed notebooks."""

    rows: dict[str, dict[str, str]]  # "solved" / "unsolved" -> the grades.csv row
    solved: nbformat.NotebookNode
    unsolved: nbformat.NotebookNode | None  # None: the student copy was not graded (GRADED_UNSOLVED)
    seconds: float
    log: str


@pytest.fixture(scope="session")
def fast_run(built, tmp_path_factory):
    """``fast_run(lesson_path)`` grades the solved copy (and GRADED_UNSOLVED's student copy) once,
    and remembers."""
    cache: dict[str, FastRun] = {}

    def run(path: Path) -> FastRun:
        if path.stem in cache:
            return cache[path.stem]
        tmp = tmp_path_factory.mktemp(f"grade-{path.stem.split('_')[0]}")
        submissions = tmp / "submissions"
        submissions.mkdir()
        prefix = path.stem.split("_")[0]   # "07", or "A" for an appendix
        # The solved copy carries a probe after each check (scripts/mutants.py): the wrong answers
        # each check must reject run in this same execution, and leave the lesson's state as it was.
        solved = mutants.with_probes(nbformat.read(built / "instructor" / path.name, as_version=4))
        nbformat.write(solved, submissions / f"{prefix}_solved.ipynb")
        kinds = ["solved"]
        if prefix == GRADED_UNSOLVED:
            (submissions / f"{prefix}_unsolved.ipynb").write_bytes((built / "student" / path.name).read_bytes())
            kinds.append("unsolved")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "course.py"), "grade", str(submissions),
                               "--fast", "--seed", str(FAST_SEED), "--out", str(tmp / "grades"),
                               "--autograders", str(built / "autograder")], capture_output=True, text=True,
                              timeout=1200)
        seconds = time.perf_counter() - start
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with open(tmp / "grades" / "grades.csv") as f:
            rows = {row["submission"].split("_")[1].split(".")[0]: row for row in csv.DictReader(f)}
        executed = {kind: nbformat.read(tmp / "grades" / "executed" / f"{prefix}_{kind}.ipynb", as_version=4)
                    for kind in kinds}
        cache[path.stem] = FastRun(rows, executed["solved"], executed.get("unsolved"), seconds, done.stdout)
        return cache[path.stem]

    return run


# Markers, set by where a test lives: `pytest -m unit` runs the library's tests (about a minute),
# `-m notebook` the lessons (fast-mode grading, nbval replays), `-m browser` JupyterLab in Chromium.
NOTEBOOK_FILES = {"test_notebooks.py", "test_course.py", "test_exercise_mutations.py", "test_website_pages.py"}


def pytest_configure(config):
    for name, what in [("unit", "the library, no lesson executed"), ("notebook", "executes or replays lessons"),
                       ("browser", "drives JupyterLab in headless Chromium")]:
        config.addinivalue_line("markers", f"{name}: {what}")


def pytest_collection_modifyitems(items):
    for item in items:
        path = Path(str(item.fspath))
        if "browser" in path.parts:
            item.add_marker("browser")
        elif path.suffix == ".ipynb" or path.name in NOTEBOOK_FILES:
            item.add_marker("notebook")
        else:
            item.add_marker("unit")
