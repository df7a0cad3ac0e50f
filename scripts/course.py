"""Instructor tooling: student and instructor copies, autograding with otter-grader, launch badges.

One source: the lesson notebooks in ``notebooks/``. Each exercise is a code cell tagged
``exercise`` whose solution sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``,
followed by a cell tagged ``check`` with plain asserts (docs/authoring.md). A check may end
with ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``: graded, never shown to students.

    python scripts/course.py build                 # build/course/{student,instructor,autograder}/
    python scripts/course.py grade SUBMISSIONS...  # build/grades/grades.csv + the executed notebooks
    python scripts/course.py badges [--check]      # Colab/Binder badges and the Colab set-up cell
    python scripts/course.py instructors [--check] # docs/instructors.md's exercise table, from the lessons

Why otter-grader (docs/instructors.md): it grades a notebook on the instructor's own machine
with no server or database (``otter.api.grade_submission``), and its exception-based test files
take our plain-``assert`` checks as they are. The zips are for grading where the course is
installed: they carry neither the library nor its data, so they do not run on Gradescope as built.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import tempfile
import textwrap
import tomllib
from datetime import datetime
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
DEFAULT_HINT = "write your solution here; the next cell checks it"


def lessons() -> list[Path]:
    """The lesson notebooks, in order: ``notebooks/NN_topic.ipynb``, then the appendices,
    ``notebooks/A_topic.ipynb``, ``B_...`` (run, graded and published like the lessons)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(NOTEBOOKS.glob("[A-Z]_*.ipynb"))


def lesson_id(path: Path) -> str:
    """What a lesson is called for short, from its file name: ``"07"``, or ``"A"`` for an appendix."""
    return Path(path).stem.split("_")[0]


def is_appendix(path: Path) -> bool:
    """``A_keras_workflow`` is an appendix; ``07_from_notebook_to_product`` a lesson."""
    return lesson_id(path).isalpha()


def exercises(nb: nbformat.NotebookNode,
              solved: bool = True) -> list[tuple[nbformat.NotebookNode, nbformat.NotebookNode]]:
    """The (exercise cell, check cell) pairs of a lesson, in order. Every exercise has its check next
    and, in a ``solved`` notebook (a lesson, not a student copy), its solution markers."""
    pairs, cells = [], nb.cells
    for i, cell in enumerate(cells):
        if "exercise" in cell.metadata.get("tags", []):
            nxt = cells[i + 1] if i + 1 < len(cells) else None
            if nxt is None or "check" not in nxt.metadata.get("tags", []):
                raise ValueError(f"exercise cell {i} is not followed by a cell tagged `check`")
            if solved and (BEGIN not in cell.source or END not in cell.source):
                raise ValueError(f"exercise cell {i} has no {BEGIN} / {END} markers")
            pairs.append((cell, nxt))
    return pairs


def replace_solution(source: str, code: str | list[str | None]) -> str:
    """The cell with each solution block replaced by ``code``, re-indented to the block's indent. A
    cell with several blocks takes a list, one entry per block; ``None`` keeps that block's solution."""
    blocks = [code] if isinstance(code, str) else list(code)
    out, inside, kept, n = [], False, False, 0
    for line in source.splitlines():
        if line.strip() == BEGIN:
            if n >= len(blocks):
                raise ValueError(f"{len(blocks)} replacement(s) given; the cell has more solution blocks")
            inside, kept = True, blocks[n] is None
            if not kept:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(textwrap.indent(textwrap.dedent(blocks[n]).rstrip("\n"), indent))
        elif line.strip() == END:
            inside, n = False, n + 1
        elif not inside or kept:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    if n != len(blocks):
        raise ValueError(f"{len(blocks)} replacement(s) given; the cell has {n} solution block(s)")
    return "\n".join(out)


def strip_solution(source: str, hint: str) -> str:
    """Replace every solution block with ``raise NotImplementedError(hint)`` at the block's indent."""
    blocks = sum(line.strip() == BEGIN for line in source.splitlines())
    return replace_solution(source, [f"raise NotImplementedError({hint!r})"] * blocks)


def solution_lines(source: str) -> list[str]:
    """The non-blank lines inside the solution blocks, stripped."""
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def split_hidden(source: str) -> tuple[str, str]:
    """A check's public part and its hidden tests (empty when it has none)."""
    public, hidden, inside = [], [], False
    for line in source.splitlines():
        if line.strip() == BEGIN_HIDDEN:
            inside = True
        elif line.strip() == END_HIDDEN:
            inside = False
        else:
            (hidden if inside else public).append(line)
    return "\n".join(public).rstrip() + "\n", "\n".join(hidden).strip()


def student_copy(nb: nbformat.NotebookNode, lesson: str) -> nbformat.NotebookNode:
    """Solutions replaced by a stub with a hint, hidden tests and the instructors' metadata removed, all
    outputs cleared."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for exercise, check in exercises(nb):
        exercise.source = strip_solution(exercise.source, exercise.metadata.get("hint", DEFAULT_HINT))
        for key in ("mutants", "checks"):  # wrong answers a check rejects, what it asserts: instructors only
            exercise.metadata.pop(key, None)
        check.source = split_hidden(check.source)[0].rstrip()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata["transferlib"] = {"lesson": lesson, "copy": "student"}
    return nb


def otter_tests(nb: nbformat.NotebookNode) -> dict[str, str]:
    """One otter exception-based test file per exercise: its check (1 point) and hidden tests (1 point)."""
    files = {}
    for n, (_, check) in enumerate(exercises(nb), start=1):
        public, hidden = split_hidden(check.source)
        cases = [("check", public, False)] + ([("hidden", hidden, True)] if hidden else [])
        body = ["from otter.test_files import test_case", "", "OK_FORMAT = False", f'name = "ex{n}"', ""]
        for case, code, is_hidden in cases:
            body += [f"_{case.upper()} = {code!r}", "",
                     f'@test_case(name="{case}", points=1, hidden={is_hidden})',
                     f"def test_{case}(env):",
                     f"    exec(compile(_{case.upper()}, \"ex{n} {case}\", \"exec\"), dict(env))", ""]
        files[f"ex{n}.py"] = "\n".join(body)
    return files


def build(out: Path = BUILD / "course") -> dict[str, list[Path]]:
    """Write student/, instructor/ and autograder/ (one otter zip per lesson) under ``out``."""
    from otter.generate import main as otter_generate

    made: dict[str, list[Path]] = {"student": [], "instructor": [], "autograder": []}
    shutil.rmtree(out, ignore_errors=True)
    for kind in made:
        (out / kind).mkdir(parents=True)
    for path in lessons():
        nb = nbformat.read(path, as_version=4)
        lesson = path.stem
        if not exercises(nb):
            continue
        instructor = out / "instructor" / path.name
        shutil.copy(path, instructor)  # the lesson as it is: solutions, hidden tests, reference outputs
        student = out / "student" / path.name
        nbformat.write(student_copy(nb, lesson), student)
        with tempfile.TemporaryDirectory() as tmp:
            tests = Path(tmp) / "tests"
            tests.mkdir()
            for name, text in otter_tests(nb).items():
                (tests / name).write_text(text)
            (Path(tmp) / "otter_config.json").write_text(json.dumps({"lang": "python"}))
            zip_path = out / "autograder" / f"{lesson}.zip"
            otter_generate(tests_dir=str(tests), output_path=str(zip_path), config=str(Path(tmp) / "otter_config.json"),
                           requirements=str(ROOT / "requirements.txt"), overwrite_requirements=False,
                           no_environment=True)
        made["instructor"].append(instructor)
        made["student"].append(student)
        made["autograder"].append(zip_path)
    return made


def lesson_of(path: Path, nb: nbformat.NotebookNode) -> str:
    """The lesson a submission belongs to: from the student copy's metadata, else from its file name."""
    known = {p.stem for p in lessons()}
    lesson = nb.metadata.get("transferlib", {}).get("lesson")
    if lesson in known:
        return lesson
    prefix = lesson_id(path) + "_"
    matches = [k for k in known if k.startswith(prefix)]
    if len(matches) != 1:
        raise ValueError(f"{path}: cannot tell which lesson this is. Submit the student copy as built by "
                         "`course.py build` (it records its lesson), or name the file like NN_anything.ipynb "
                         "(A_anything.ipynb for an appendix).")
    return matches[0]


def grade(submissions: list[Path], out: Path = BUILD / "grades", autograders: Path = BUILD / "course" / "autograder",
          fast: bool = False, seed: int | None = None) -> list[dict[str, object]]:
    """Grade notebooks (files or folders of them) with otter-grader; write ``grades.csv`` and each
    executed notebook under ``out``. ``fast=True`` runs each lesson in its fast (CI) mode, ``seed``
    sets its ``SEED`` parameter."""
    from otter.api import grade_submission
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    paths = sorted(q for p in submissions for q in (Path(p).glob("*.ipynb") if Path(p).is_dir() else [Path(p)]))
    if not paths:
        raise FileNotFoundError(f"No .ipynb files in {', '.join(map(str, submissions))}.")
    (out / "executed").mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        nb = load_notebook_node(str(path))  # nbformat.read + the metadata papermill expects
        lesson = lesson_of(path, nb)
        zip_path = autograders / f"{lesson}.zip"
        if not zip_path.exists():
            raise FileNotFoundError(f"No autograder for {lesson} at {zip_path}. "
                                    "Run `python scripts/course.py build` first.")
        parameters = {**({"FAST": True} if fast else {}), **({"SEED": seed} if seed is not None else {})}
        if parameters:
            nb = parameterize_notebook(nb, parameters)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / path.name
            nbformat.write(nb, copy)
            print(f"grading {path} ({lesson}{', fast mode' if fast else ''}"
                  f"{f', SEED = {seed}' if seed is not None else ''})", flush=True)
            results = grade_submission(str(copy), str(zip_path), quiet=True)
        nbformat.write(results.notebook, out / "executed" / path.name)
        row: dict[str, object] = {"submission": path.name, "lesson": lesson}
        for name in sorted(results.results, key=lambda s: int(s[2:])):
            row[name] = results.get_score(name)
            row[f"{name} possible"] = results.results[name].possible
        row["total"], row["possible"] = results.total, results.possible
        rows.append(row)
    columns = ["submission", "lesson"]
    for row in rows:
        columns += [c for c in row if c not in columns and c not in ("total", "possible")]
    columns += ["total", "possible"]
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return rows


# --------------------------------------------------------------------------- launch badges

def repository() -> str:
    """The one setting: ``[project.urls] Repository`` in pyproject.toml (a GitHub URL)."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"[project.urls] Repository must be https://github.com/OWNER/NAME, not {url!r}.")
    return url


def colab_url(notebook: str, repo: str | None = None) -> str:
    """Where Colab opens ``notebooks/<notebook>`` of the repository's main branch."""
    path = (repo or repository()).removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook}"


def binder_url(notebook: str = "", repo: str | None = None) -> str:
    """Where Binder opens JupyterLab on ``notebooks/`` (or on one notebook in it)."""
    path = (repo or repository()).removeprefix("https://github.com/")
    return f"https://mybinder.org/v2/gh/{path}/main?urlpath=lab/tree/notebooks" + (f"/{notebook}" if notebook else "")


def colab_badge(notebook: str, repo: str | None = None) -> str:
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook, repo)})"


def binder_badge(repo: str | None = None) -> str:
    return f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder_url(repo=repo)})"


def colab_cell(repo: str | None = None) -> str:
    """The first code cell of every lesson: on Colab only, fetch the course and its offline assets."""
    return f'''# On Google Colab only: fetch the course, its datasets and its offline models (about 2 minutes).
# Anywhere else (your machine, Binder) this cell does nothing.
import os
import subprocess
import sys

REPOSITORY = "{repo or repository()}"
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/transferlib"):
        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, "/content/transferlib"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/transferlib[course]"],
                       check=True)
    sys.path.insert(0, "/content/transferlib")
    os.chdir("/content/transferlib/notebooks")'''


README_BADGES = re.compile(r"<!-- badges -->.*?<!-- /badges -->", re.S)


def badges(check: bool = False) -> list[str]:
    """Write (or with ``check``, only compare) the badges and the Colab cell. Returns what differs."""
    stale, repo = [], repository()
    cell = colab_cell(repo)
    for path in lessons():
        nb = nbformat.read(path, as_version=4)
        changed = False
        first = nb.cells[0]
        if first.cell_type != "markdown":
            raise ValueError(f"{path.name}: the first cell must be the title (markdown).")
        title = re.sub(r"\A\[!\[Open In Colab\]\(.*?\)\]\(.*?\)\s*", "", first.source)
        heading = f"{colab_badge(path.name, repo)}\n\n{title}"
        if first.source != heading:
            first.source, changed = heading, True
        code = nb.cells[1]  # the Colab cell comes right after the title, before anything runs
        if "colab" not in code.metadata.get("tags", []):
            code = nbformat.v4.new_code_cell(metadata={"tags": ["colab"]})
            nb.cells.insert(1, code)
            changed = True
        if code.source != cell:
            code.source, code.outputs, changed = cell, [], True
        if changed:
            stale.append(str(path.relative_to(ROOT)))
            if not check:
                nbformat.write(nb, path)
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"<!-- badges -->\n{binder_badge(repo)} {colab_badge(lessons()[0].name, repo)}\n<!-- /badges -->"
    if not README_BADGES.search(text):
        raise ValueError("README.md has no <!-- badges --> ... <!-- /badges --> block.")
    new = README_BADGES.sub(block, text)
    if new != text:
        stale.append("README.md")
        if not check:
            readme.write_text(new)
    return stale


# --------------------------------------------------------------------------- instructors' table

TABLE = re.compile(r"<!-- exercises -->\n.*?<!-- /exercises -->", re.S)


def stored_minutes(nb: nbformat.NotebookNode) -> float | None:
    """Wall time of the lesson's stored run, from its cells' execution timestamps (None if absent)."""
    stamps = [c.metadata.get("execution", {}) for c in nb.cells if c.cell_type == "code"]
    start = [s["iopub.execute_input"] for s in stamps if "iopub.execute_input" in s]
    end = [s["shell.execute_reply"] for s in stamps if "shell.execute_reply" in s]
    if not start or not end:
        return None
    seconds = (datetime.fromisoformat(max(end).rstrip("Z")) - datetime.fromisoformat(min(start).rstrip("Z")))
    return seconds.total_seconds() / 60


def learner_minutes(nb: nbformat.NotebookNode) -> tuple[int, str]:
    """An estimate of a learner's time on a lesson, rounded to 5 minutes, and how it was reached:
    prose at 150 words a minute, code at 10 lines a minute, 10 minutes an exercise, plus the stored run.
    The code is the student copy's: the learner writes the solutions (the 10 minutes an exercise) and
    never sees the hidden tests."""
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    lines = sum(len(c.source.splitlines()) for c in student_copy(nb, "").cells if c.cell_type == "code")
    n, run = len(exercises(nb)), stored_minutes(nb) or 0.0
    total = 5 * round((words / 150 + lines / 10 + 10 * n + run) / 5)
    return total, (f"{words:,} words of prose at 150 a minute, {lines} lines of code at 10 a minute, {n} "
                   f"exercise{'s' * (n != 1)} at 10 minutes each, and {max(1, round(run))} of running on 2 CPU cores")


def exercise_table() -> str:
    """The table of docs/instructors.md, from the lessons: each exercise's name, what its check asserts
    (the exercise cell's ``checks`` metadata) and the wrong answers it is shown to reject (``mutants``,
    run by tests/test_exercise_mutations.py), with the stored run's wall time."""
    rows = ["| lesson | stored run, learner time | exercise: what the check asserts; wrong answers it rejects |",
            "|---|---|---|"]
    for path in lessons():
        nb = nbformat.read(path, as_version=4)
        minutes = stored_minutes(nb)
        title = re.search(r"^# (.+)$", nb.cells[0].source, re.M).group(1).split(":")[0]
        parts = []
        for n, (exercise, _) in enumerate(exercises(nb), start=1):
            if "checks" not in exercise.metadata:
                raise ValueError(f"{path.name}, exercise {n}: add a `checks` line to the exercise cell's metadata.")
            names = re.findall(r"^def (\w+)", strip_solution(exercise.source, ""), re.M) or \
                [line.split(" = ")[0] for line in solution_lines(exercise.source) if re.match(r"\w+ = ", line)]
            label = ", ".join(f"`{name}`" for name in names)
            wrong = "; ".join(exercise.metadata.get("mutants", {}))
            parts.append(f"**{n}** {label}: {exercise.metadata['checks']}" + (f" *Rejects:* {wrong}." if wrong else ""))
        run = "" if minutes is None else f"{minutes:.1f} min, "
        rows.append(f"| {title} | {run}about {learner_minutes(nb)[0]} min | {'<br>'.join(parts)} |")
    return "\n".join(rows)


def instructors(check: bool = False) -> list[str]:
    """Write (or with ``check``, only compare) docs/instructors.md's exercise table. Returns what differs."""
    path = ROOT / "docs" / "instructors.md"
    text = path.read_text()
    if not TABLE.search(text):
        raise ValueError("docs/instructors.md has no <!-- exercises --> ... <!-- /exercises --> block.")
    new = TABLE.sub(lambda _: f"<!-- exercises -->\n{exercise_table()}\n<!-- /exercises -->", text)
    if new == text:
        return []
    if not check:
        path.write_text(new)
    return ["docs/instructors.md"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="student and instructor copies, and one otter autograder zip per lesson")
    b.add_argument("--out", type=Path, default=BUILD / "course")
    g = sub.add_parser("grade", help="grade submitted notebooks (files or folders) into a CSV table")
    g.add_argument("submissions", nargs="+", type=Path)
    g.add_argument("--out", type=Path, default=BUILD / "grades")
    g.add_argument("--autograders", type=Path, default=BUILD / "course" / "autograder")
    g.add_argument("--fast", action="store_true", help="run each lesson in its fast (CI) mode")
    g.add_argument("--seed", type=int, help="run each lesson with this SEED")
    d = sub.add_parser("badges", help="write the Colab/Binder badges and the Colab cell from pyproject's Repository")
    d.add_argument("--check", action="store_true", help="only report what is out of date (exit 1 if anything is)")
    t = sub.add_parser("instructors", help="write docs/instructors.md's exercise table from the lessons' metadata")
    t.add_argument("--check", action="store_true", help="only report whether it is out of date (exit 1 if it is)")
    args = parser.parse_args(argv)
    if args.command == "build":
        made = build(args.out)
        for kind, paths in made.items():
            print(f"{kind:10} {len(paths)} files in {args.out / kind}")
    elif args.command == "grade":
        rows = grade(args.submissions, args.out, args.autograders, args.fast, args.seed)
        print(f"{len(rows)} graded: {args.out / 'grades.csv'}")
        for row in rows:
            print(f"  {row['submission']:40} {row['total']:g} / {row['possible']:g}")
    else:
        stale = (badges if args.command == "badges" else instructors)(check=args.check)
        print(("out of date: " if args.check else "updated: ") + (", ".join(stale) or "nothing"))
        return 1 if args.check and stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
