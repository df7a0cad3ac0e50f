"""Wrong answers that every exercise check must reject (tests/test_exercise_mutations.py).

An exercise check is an instructor's grade, so it must fail on the mistakes a learner plausibly
makes, above all the ones the lesson warns about. Each exercise cell lists such mistakes in its
metadata, as code that takes the solution block's place::

    "mutants": {"uses MobileNetV2's preprocessing for every model": "return ...\\n", ...}

An exercise with several solution blocks takes a list per mutant, one entry per block (``None``
keeps that block's solution).

``with_probes(nb)`` puts a probe cell after every check. The probe runs each mutant in a copy of
the notebook's namespace, then the check in a copy of that copy, as otter-grader runs a check on a
copy of the graded notebook's namespace (random states saved and restored, printing
swallowed), and prints one line ``MUTANTS {json}``: for each mutant, ``caught: <message>`` when
the check a student sees raised an AssertionError with a message, ``caught by the hidden tests:
<message>`` when only the hidden tests did (the student is told "correct"), or what happened
instead. The lesson's own
variables are left as they were, so the rest of the run and its grading are unchanged.

``with_probes`` also puts an *unsolved* probe before every exercise: the student's stub (what
``course.py build`` leaves in the student copy) runs in a copy of the namespace, then the check and
the hidden tests, each in a copy of that; it prints ``UNSOLVED {json}``. Each must raise, so the
stub scores zero with every earlier exercise solved, which is stricter than grading the student
copy, where earlier exercises are stubs too.

CI grades every lesson's solved copy in fast mode once (tests/conftest.py); it grades the probed
copy, so the mutants and the stubs cost only their own run time, and the student copy of every
lesson need not be executed again (CI grades one, end to end, to keep the pipeline honest).

    python scripts/mutants.py notebooks/02_feature_extraction.ipynb   # probe one lesson, fast mode
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import course  # noqa: E402

KEY = "mutants"
TAG = "mutation-probe"
PREFIX = "MUTANTS "
UNSOLVED_TAG = "unsolved-probe"
UNSOLVED = "UNSOLVED "

PROBE = '''\
def _probe(mutants, public, hidden):
    import contextlib, io, json, random
    import numpy as np, torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    found = {}
    for name, source in mutants.items():
        namespace = dict(globals())
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                exec(compile(source, "mutant", "exec"), namespace)
            except Exception as error:
                found[name] = f"the exercise itself raised {type(error).__name__}: {error}"
            else:
                for part, code in (("", public), (" by the hidden tests", hidden)):
                    try:
                        exec(compile(code, "check", "exec"), dict(namespace))   # a copy, as otter-grader runs it
                        found[name] = "passed the check"
                    except AssertionError as error:
                        found[name] = f"caught{part}: {error}" if str(error) else "caught by an assert with no message"
                        break
                    except Exception as error:
                        found[name] = f"the check raised {type(error).__name__}: {error}"
                        break
        random.setstate(states[0]), np.random.set_state(states[1]), torch.set_rng_state(states[2])
    print(%(prefix)r + json.dumps({"exercise": %(n)d, "mutants": found}))


_probe(%(mutants)r, %(public)r, %(hidden)r)
del _probe
'''


UNSOLVED_PROBE = '''\
def _unsolved(stub, public, hidden):
    import contextlib, io, json, random
    import numpy as np, torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    namespace, found = dict(globals()), {}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for part, code in (("stub", stub), ("check", public), ("hidden", hidden)):
            if not code.strip():
                continue
            try:
                exec(compile(code, part, "exec"), namespace if part == "stub" else dict(namespace))
                found[part] = "ran" if part == "stub" else "passed"
            except Exception as error:
                found[part] = f"raised {type(error).__name__}: {error}"[:300]
    random.setstate(states[0]), np.random.set_state(states[1]), torch.set_rng_state(states[2])
    print(%(prefix)r + json.dumps({"exercise": %(n)d, **found}))


_unsolved(%(stub)r, %(public)r, %(hidden)r)
del _unsolved
'''


def with_probes(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of a lesson with a probe cell after each exercise's check (module docstring)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    pairs = course.exercises(nb)
    for n, (exercise, check) in reversed(list(enumerate(pairs, start=1))):
        mutants = {name: course.replace_solution(exercise.source, code)
                   for name, code in exercise.metadata.get(KEY, {}).items()}
        public, hidden = course.split_hidden(check.source)
        source = PROBE % {"mutants": mutants, "public": public, "hidden": hidden, "prefix": PREFIX, "n": n}
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [TAG]})
        nb.cells.insert(nb.cells.index(check) + 1, cell)
        stub = course.strip_solution(exercise.source, exercise.metadata.get("hint", course.DEFAULT_HINT))
        source = UNSOLVED_PROBE % {"stub": stub, "public": public, "hidden": hidden, "prefix": UNSOLVED, "n": n}
        nb.cells.insert(nb.cells.index(exercise), nbformat.v4.new_code_cell(source, metadata={"tags": [UNSOLVED_TAG]}))
    return nb


def _printed(executed: nbformat.NotebookNode, tag: str, prefix: str) -> list[dict]:
    """The JSON records that the cells tagged ``tag`` printed on lines starting with ``prefix``."""
    return [json.loads(line[len(prefix):]) for cell in executed.cells if tag in cell.metadata.get("tags", [])
            for output in cell.get("outputs", []) for line in str(output.get("text", "")).splitlines()
            if line.startswith(prefix)]


def found(executed: nbformat.NotebookNode) -> dict[int, dict[str, str]]:
    """What the probes of an executed notebook printed: exercise number -> mutant -> outcome."""
    return {record["exercise"]: record["mutants"] for record in _printed(executed, TAG, PREFIX)}


def unsolved(executed: nbformat.NotebookNode) -> dict[int, dict[str, str]]:
    """What the unsolved probes printed: exercise number -> {"stub", "check", "hidden"} -> outcome."""
    return {record.pop("exercise"): record for record in _printed(executed, UNSOLVED_TAG, UNSOLVED)}


def main(argv: list[str] | None = None) -> int:
    """Probe lessons in fast mode with papermill and print what each mutant met."""
    import papermill

    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or course.lessons()
    escaped = 0
    for path in paths:
        probed = Path("/tmp") / f"probed-{path.name}"
        nbformat.write(with_probes(nbformat.read(path, as_version=4)), probed)
        executed = papermill.execute_notebook(str(probed), str(probed), parameters={"FAST": True, "SEED": 1},
                                              cwd=str(path.parent), progress_bar=False)
        for n, mutants in sorted(found(executed).items()):
            for name, outcome in mutants.items():
                escaped += not outcome.startswith("caught")
                print(f"{course.lesson_id(path)} ex{n} {name}: {outcome[:150]}")
        for n, parts in sorted(unsolved(executed).items()):
            scored = [part for part, outcome in parts.items() if part != "stub" and outcome == "passed"]
            escaped += bool(scored)
            print(f"{course.lesson_id(path)} ex{n} unsolved: " + "; ".join(f"{k} {v[:60]}" for k, v in parts.items()))
    return 1 if escaped else 0


if __name__ == "__main__":
    sys.exit(main())
