"""Every exercise check fails on plausible wrong answers, says what is wrong, and holds no answer.

The wrong answers ("mutants") live in each exercise cell's metadata (scripts/mutants.py). They run
inside the solved copy's fast-mode grading that tests/conftest.py makes once per lesson, so this
file adds no lesson execution of its own.
"""

from __future__ import annotations

import ast

import nbformat
import pytest
from helpers import load_course, load_script

course = load_course()
mutants = load_script("mutants")
LESSONS = [p for p in course.lessons() if course.exercises(nbformat.read(p, as_version=4))]
EXERCISES = [(path, n, exercise, check) for path in LESSONS
             for n, (exercise, check) in enumerate(course.exercises(nbformat.read(path, as_version=4)), start=1)]
IDS = [f"{course.lesson_id(path)}-ex{n}" for path, n, _, _ in EXERCISES]


def solution(source: str, assignments: bool) -> list[str]:
    """What the solution block says, line by line: each line, the expression it returns and, with
    ``assignments``, the expression it assigns, when 20 characters or more (not `return answer`)."""
    pieces = [piece for line in course.solution_lines(source)
              for piece in [line, line.removeprefix("return ")] + ([line.split(" = ", 1)[-1]] if assignments else [])]
    return [piece for piece in set(pieces) if len(piece) >= 20]


@pytest.mark.parametrize(("path", "n", "exercise", "check"), EXERCISES, ids=IDS)
def test_each_exercise_names_at_least_two_wrong_answers(path, n, exercise, check):
    wrong = exercise.metadata.get(mutants.KEY, {})
    assert len(wrong) >= 2, f"{path.name} exercise {n}: add the mistakes its check must reject ({mutants.KEY})"
    for name, code in wrong.items():
        ast.parse(course.replace_solution(exercise.source, code))  # the mutant is valid Python
        assert course.replace_solution(exercise.source, code) != exercise.source, name


@pytest.mark.parametrize(("path", "n", "exercise", "check"), EXERCISES, ids=IDS)
def test_every_assert_in_a_check_says_what_is_wrong(path, n, exercise, check):
    bare = [node.lineno for node in ast.walk(ast.parse(check.source)) if isinstance(node, ast.Assert) and not node.msg]
    assert not bare, f"{path.name} exercise {n}: asserts with no message on lines {bare} of its check"


@pytest.mark.parametrize(("path", "n", "exercise", "check"), EXERCISES, ids=IDS)
def test_neither_the_check_nor_the_hint_holds_the_answer(path, n, exercise, check):
    shown = course.split_hidden(check.source)[0]
    hint = exercise.metadata.get("hint", "")
    for piece in solution(exercise.source, assignments=False):   # a check may build what the lesson built
        assert piece not in shown, f"{path.name} exercise {n}: the check shows the solution's {piece!r}"
    for piece in solution(exercise.source, assignments=True):
        assert piece not in hint, f"{path.name} exercise {n}: the hint gives the solution's {piece!r}"


def bound(source: str) -> set[str]:
    """The names a cell binds at its top level (assignments, loops, defs, classes, imports)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                names |= {(alias.asname or alias.name).split(".")[0] for alias in sub.names}
    return names


@pytest.mark.parametrize(("path", "n", "exercise", "check"), EXERCISES, ids=IDS)
def test_no_later_cell_rebinds_what_a_check_reads_from_the_answer(path, n, exercise, check):
    """otter grades against the notebook's final namespace; the probes (scripts/mutants.py) run a
    check right after its exercise. The two agree when no later cell binds a name the exercise binds
    and the check reads, so the probes' "unsolved scores zero" holds for the graded copy too."""
    cells = nbformat.read(path, as_version=4).cells
    later = set().union(*(bound(c.source) for c in cells[cells.index(check) + 1:] if c.cell_type == "code"))
    reads = {node.id for node in ast.walk(ast.parse(check.source)) if isinstance(node, ast.Name)}
    assert not bound(exercise.source) & reads & later, "a later cell rebinds a name the check reads"


def test_the_probe_replaces_only_the_solution_block():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\nprint(f)"
    assert course.replace_solution(source, "return x - y\n") == "def f(x):\n    y = 1\n    return x - y\n\nprint(f)"


def test_the_unsolved_probe_tells_a_check_that_fails_a_stub_from_one_that_passes_it():
    """A tiny lesson: exercise 1's check calls the answer (a stub fails it), exercise 2's does not
    (a stub would score). The probes, executed, must say so."""
    from nbclient import NotebookClient

    cells = [nbformat.v4.new_code_cell("x = 2")]
    for check in ("assert double(3) == 6, 'double(3) is not 6'", "assert x == 2, 'x changed'"):
        cells += [nbformat.v4.new_code_cell(f"def double(v):\n    {course.BEGIN}\n    return 2 * v\n    {course.END}",
                                            metadata={"tags": ["exercise"]}),
                  nbformat.v4.new_code_cell(check, metadata={"tags": ["check"]})]
    probed = mutants.with_probes(nbformat.v4.new_notebook(cells=cells))
    NotebookClient(probed, timeout=60, kernel_name="python3").execute()
    found = mutants.unsolved(probed)
    assert found[1]["stub"] == "ran" and found[1]["check"].startswith("raised NotImplementedError"), found
    assert found[2]["check"] == "passed", found


@pytest.mark.parametrize("path", LESSONS, ids=course.lesson_id)
def test_every_wrong_answer_fails_its_check(fast_run, path):
    run = fast_run(path)  # the lesson's one fast-mode grading, with the probes in it
    outcomes = mutants.found(run.solved)
    for n, (exercise, _) in enumerate(course.exercises(nbformat.read(path, as_version=4)), start=1):
        wrong = exercise.metadata.get(mutants.KEY, {})
        assert set(outcomes.get(n, {})) == set(wrong), f"exercise {n}: the probe did not run every mutant"
        escaped = {name: outcome for name, outcome in outcomes[n].items()
                   if not outcome.startswith("caught") or "no message" in outcome}
        assert not escaped, f"exercise {n}: wrong answers its check does not reject with a message: {escaped}"
        seen = [name for name, outcome in outcomes[n].items() if outcome.startswith("caught: ")]
        assert len(seen) >= 2, f"exercise {n}: fewer than 2 wrong answers fail the check a student sees ({seen})"
