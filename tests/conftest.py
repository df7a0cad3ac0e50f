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

The fast runs start in the background with the session, two at a time, each on one thread at the
lowest CPU priority (``nice -n 19``, and its kernel's autogroup too: ``YIELD``;
``OMP_NUM_THREADS=1``): the unit tests leave a core idle much of the time (Python, a browser, a
server starting), and the gradings fill it. The tests that read a grading run after the unit tests
and before nbval's replays (``pytest_collection_modifyitems`` below): they wait for what is left,
which then has both cores. The replays must not share the CPU: their kernels train on two threads
with many small operations, and a third busy process stalls every parallel region (measured on the
2-core AMD EPYC machine: lessons 0 and 1 replayed in about 1,050 s beside background gradings,
against about 570 s alone). Nothing compares a fast run's numbers with stored ones, so their thread
count is free; nbval's replays keep the default threads the outputs were stored with.

With ``CI`` set, the appendices (``course.is_appendix``) are not replayed in learner mode:
their fast-mode runs, assertions and graded exercises still run, and a full replay is
``pytest notebooks/A_keras_workflow.ipynb`` (docs/design.md says why: CI's 90 minutes).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
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


FAST_RUNS_AT_ONCE = 2
FAST_RUN_TIMEOUT = 1800   # seconds for one lesson's grading, slowed beside the unit tests at the lowest priority
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# A kernel starts its own session, and Linux's autogroups share the CPU between sessions as equals,
# whatever their processes' nice: `nice` alone would leave each grading's kernel an equal share
# against the unit tests'. So each such kernel also lowers its own autogroup's priority, from an IPython
# start-up file (raising one's own nice needs no privilege; elsewhere the file does nothing).
YIELD = """try:  # tests/conftest.py: this fast-mode grading's kernel gives the CPU to everything else first
    with open("/proc/self/autogroup", "w") as f:
        f.write("19")
except OSError:
    pass
"""


def uses_fast_run(item) -> bool:
    return "fast_run" in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session")
def fast_run(request, built, tmp_path_factory):
    """``fast_run(lesson_path)`` grades the solved copy (and GRADED_UNSOLVED's student copy) once,
    and remembers. ``fast_run.queue_all()`` queues every lesson this session's tests ask for, in
    test order, to a pool of ``FAST_RUNS_AT_ONCE``; ``fast_run(path)`` waits for its lesson's run."""
    runs: dict[str, Future] = {}
    ipython = tmp_path_factory.mktemp("ipython")
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    (ipython / "profile_default" / "startup" / "00-yield.py").write_text(YIELD)
    env = {**ONE_THREAD, "IPYTHONDIR": str(ipython)}
    pool = ThreadPoolExecutor(FAST_RUNS_AT_ONCE)
    request.addfinalizer(lambda: pool.shutdown(cancel_futures=True))

    def queue(path: Path) -> Future:
        if path.stem not in runs:
            runs[path.stem] = pool.submit(grade, path)
        return runs[path.stem]

    def queue_all() -> None:
        for item in request.session.items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            if uses_fast_run(item) and "path" in params:
                queue(params["path"])

    def run(path: Path) -> FastRun:
        return queue(path).result()

    run.queue_all = queue_all

    def grade(path: Path) -> FastRun:
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
        done = subprocess.run(["nice", "-n", "19", sys.executable, str(ROOT / "scripts" / "course.py"), "grade",
                               str(submissions),
                               "--fast", "--seed", str(FAST_SEED), "--out", str(tmp / "grades"),
                               "--autograders", str(built / "autograder")], capture_output=True, text=True,
                              timeout=FAST_RUN_TIMEOUT, env=env)
        seconds = time.perf_counter() - start
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with open(tmp / "grades" / "grades.csv") as f:
            rows = {row["submission"].split("_")[1].split(".")[0]: row for row in csv.DictReader(f)}
        executed = {kind: nbformat.read(tmp / "grades" / "executed" / f"{prefix}_{kind}.ipynb", as_version=4)
                    for kind in kinds}
        return FastRun(rows, executed["solved"], executed.get("unsolved"), seconds, done.stdout)

    return run


@pytest.fixture(scope="session", autouse=True)
def _grade_in_the_background(request):
    """From the session's first test on, if any test reads a fast run: start them all (only the
    tests under tests/ request this fixture, and they run before the replays)."""
    if any(uses_fast_run(item) for item in request.session.items):
        request.getfixturevalue("fast_run").queue_all()


# Markers, set by where a test lives: `pytest -m unit` runs the library's tests (about a minute),
# `-m notebook` the lessons (fast-mode grading, nbval replays), `-m browser` JupyterLab in Chromium.
NOTEBOOK_FILES = {"test_notebooks.py", "test_course.py", "test_exercise_mutations.py", "test_website_pages.py"}


def pytest_configure(config):
    for name, what in [("unit", "the library, no lesson executed"), ("notebook", "executes or replays lessons"),
                       ("browser", "drives JupyterLab in headless Chromium")]:
        config.addinivalue_line("markers", f"{name}: {what}")


def pytest_collection_modifyitems(items):
    # The unit tests first (the gradings fill the idle core), then the tests that read a grading
    # (they wait for what is left), then nbval's replays, alone on the CPU.
    def order(item) -> int:
        return 2 if Path(str(item.fspath)).suffix == ".ipynb" else 1 if uses_fast_run(item) else 0

    items.sort(key=order)
    course = load_course()
    by_hand = pytest.mark.skip(reason="appendix: CI runs it in fast mode; replay it by hand (tests/conftest.py)")
    for item in items:
        path = Path(str(item.fspath))
        if os.environ.get("CI") and path.suffix == ".ipynb" and course.is_appendix(path):
            item.add_marker(by_hand)      # CI's 90 minutes: the appendices are not replayed there
        if "browser" in path.parts:
            item.add_marker("browser")
        elif path.suffix == ".ipynb" or path.name in NOTEBOOK_FILES:
            item.add_marker("notebook")
        else:
            item.add_marker("unit")
