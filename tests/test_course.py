"""Instructor tooling (scripts/course.py): student and instructor copies, otter grading, badges."""

from __future__ import annotations

import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest
from helpers import GRADED_UNSOLVED, load_course, load_script

ROOT = Path(__file__).resolve().parents[1]
course = load_course()
mutants = load_script("mutants")
LESSONS = [p for p in course.lessons() if course.exercises(nbformat.read(p, as_version=4))]


def test_every_lesson_with_exercises_is_built(built):
    assert len(LESSONS) >= 5
    for path in LESSONS:
        assert (built / "student" / path.name).exists() and (built / "instructor" / path.name).exists()
        assert (built / "autograder" / f"{path.stem}.zip").exists()


@pytest.mark.parametrize("path", LESSONS, ids=course.lesson_id)
def test_student_copy_has_stubs_checks_and_no_answers(built, path):
    source = nbformat.read(path, as_version=4)
    student = nbformat.read(built / "student" / path.name, as_version=4)
    assert student.metadata["transferlib"]["lesson"] == path.stem
    assert [c.source for c in student.cells if "exercise" not in c.metadata.get("tags", [])
            and "check" not in c.metadata.get("tags", [])] == \
           [c.source for c in source.cells if "exercise" not in c.metadata.get("tags", [])
            and "check" not in c.metadata.get("tags", [])], "only exercise and check cells change"
    pairs = zip(course.exercises(source), course.exercises(student, solved=False), strict=True)
    for (ex, check), (ex_s, check_s) in pairs:
        assert f"raise NotImplementedError({ex.metadata['hint']!r})" in ex_s.source
        assert course.BEGIN not in ex_s.source
        for line in course.solution_lines(ex.source):
            assert line not in ex_s.source.splitlines(), f"solution line left in the student copy: {line}"
        public, hidden = course.split_hidden(check.source)
        assert check_s.source == public.rstrip(), "the check is kept, minus its hidden tests"
        assert course.BEGIN_HIDDEN not in check_s.source
    assert all(not c.outputs for c in student.cells if c.cell_type == "code"), "outputs would give answers away"
    instructor = nbformat.read(built / "instructor" / path.name, as_version=4)
    assert instructor == source


def test_stub_keeps_the_indentation_and_the_code_around_it():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\nprint(f)"
    assert course.strip_solution(src, "add") == "def f(x):\n    y = 1\n    raise NotImplementedError('add')\n\nprint(f)"
    with pytest.raises(ValueError, match="without"):
        course.strip_solution("### BEGIN SOLUTION\nx = 1", "h")


def test_autograder_has_one_test_per_exercise_and_a_hidden_one(built):
    hidden_somewhere = False
    for path in LESSONS:
        n = len(course.exercises(nbformat.read(path, as_version=4)))
        with zipfile.ZipFile(built / "autograder" / f"{path.stem}.zip") as zf:
            tests = sorted(name for name in zf.namelist() if name.startswith("tests/"))
            assert tests == sorted(f"tests/ex{i}.py" for i in range(1, n + 1))
            hidden_somewhere |= any("hidden=True" in zf.read(t).decode() for t in tests)
    assert hidden_somewhere, "at least one exercise has hidden tests"


def errors(nb: nbformat.NotebookNode) -> list[tuple[int, list[str], str]]:
    return [(i, c.metadata.get("tags", []), o.ename) for i, c in enumerate(nb.cells)
            for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("path", LESSONS, ids=course.lesson_id)
def test_grading_a_folder_gives_full_marks_solved_and_zero_unsolved(fast_run, path):
    run = fast_run(path)  # the same execution serves tests/test_notebooks.py
    exercises = course.exercises(nbformat.read(path, as_version=4))
    solved = run.rows["solved"]
    for ex in (f"ex{i}" for i in range(1, len(exercises) + 1)):
        assert float(solved[f"{ex} possible"]) >= 1
        assert float(solved[ex]) == float(solved[f"{ex} possible"]), (ex, solved)
    assert float(solved["total"]) == float(solved["possible"]) > 0
    assert errors(run.solved) == []   # the instructor copy passes every check: no cell errs

    # Each exercise's student stub, run where the student runs it (scripts/mutants.py), fails both
    # its check and its hidden tests: an unsolved exercise scores zero.
    stubs = mutants.unsolved(run.solved)
    assert sorted(stubs) == list(range(1, len(exercises) + 1)), "an exercise had no unsolved probe"
    for n, (_, check) in enumerate(exercises, start=1):
        parts = ["check"] + (["hidden"] if course.split_hidden(check.source)[1] else [])
        assert all(stubs[n][part].startswith("raised") for part in parts), (n, stubs[n])


def test_an_unsolved_student_copy_is_graded_zero_end_to_end(fast_run):
    """One lesson's student copy, as built, graded by otter: every exercise 0 points. The student copy
    errs only where an exercise or its check runs, and every exercise's stub or check does err."""
    path = next(p for p in LESSONS if course.lesson_id(p) == GRADED_UNSOLVED)
    run = fast_run(path)
    n = len(course.exercises(nbformat.read(path, as_version=4)))
    unsolved = run.rows["unsolved"]
    assert all(float(unsolved[f"ex{i}"]) == 0 for i in range(1, n + 1)), unsolved
    assert float(unsolved["total"]) == 0
    student_errors = errors(run.unsolved)
    assert all({"exercise", "check"} & set(tags) for _, tags, _ in student_errors), student_errors
    assert len(student_errors) >= n, student_errors


def test_badges_and_the_colab_cell_come_from_the_one_setting():
    assert course.badges(check=True) == [], "run `python scripts/course.py badges`"
    repo = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    slug = repo.removeprefix("https://github.com/")
    for path in course.lessons():
        nb = nbformat.read(path, as_version=4)
        assert nb.cells[0].source.startswith(
            f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name})"), path.name
        colab = nb.cells[1]
        assert "colab" in colab.metadata.get("tags", []) and not colab.outputs
        assert f'"{repo}"' in colab.source and 'if "google.colab" in sys.modules:' in colab.source
    readme = (ROOT / "README.md").read_text()
    assert f"https://mybinder.org/v2/gh/{slug}/main" in readme
    assert f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/" in readme


def test_the_colab_cell_does_nothing_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    exec(course.colab_cell("https://github.com/someone/fork"), {})
    assert Path.cwd() == tmp_path and sys.path == before and list(tmp_path.iterdir()) == []


def test_badges_follow_the_setting():
    assert "github/someone/fork/blob/main/notebooks/03_x.ipynb" in course.colab_badge("03_x.ipynb", "https://github.com/someone/fork")
    assert "mybinder.org/v2/gh/someone/fork/main" in course.binder_badge("https://github.com/someone/fork")
    assert course.repository().startswith("https://github.com/")


def test_a_wrong_repository_setting_is_refused(monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[project.urls]\nRepository = "github.com/x"\n')
    monkeypatch.setattr(course, "ROOT", tmp_path)
    with pytest.raises(ValueError, match="OWNER/NAME"):
        course.repository()


def test_the_instructors_table_comes_from_the_lessons():
    assert course.instructors(check=True) == [], "run `python scripts/course.py instructors`"
    table = course.exercise_table()
    for path in LESSONS:
        for exercise, _ in course.exercises(nbformat.read(path, as_version=4)):
            assert exercise.metadata["checks"] in table and all(name in table for name in exercise.metadata["mutants"])
