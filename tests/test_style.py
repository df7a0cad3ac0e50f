"""Lint: ruff (pyflakes, pycodestyle, bugbear, pyupgrade, simplify; pyproject.toml) over the library,
tests, bench, scripts and the notebooks' code cells, so CI catches an undefined name or a loop-variable
closure before a learner does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: `pip install -r requirements.txt` installs it")
    run = subprocess.run([ruff, "check", "--no-cache", "transferlib", "tests", "bench", "scripts", "notebooks",
                          "datasets", "examples"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
