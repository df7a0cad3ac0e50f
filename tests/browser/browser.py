"""What the browser tests share: headless Chromium through Playwright, a free port, the artifacts folder.

``.ci/run`` installs Chromium (Debian) and Playwright (pip). Where Chromium cannot be installed, it
sets ``TRANSFERLIB_NO_BROWSER`` to the reason and the browser tests are skipped, loudly; anywhere
else a missing browser is a failure in CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE_VERSION = "4.14.1"  # .ci/run installs this exact version
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_or_skip():
    """Playwright's ``sync_playwright``, or a skip (a failure in CI) naming what is missing."""
    reason = os.environ.get("TRANSFERLIB_NO_BROWSER")
    if reason:
        warnings.warn(f"BROWSER TEST SKIPPED: {reason}", stacklevel=2)
        pytest.skip(f"BROWSER TEST SKIPPED: {reason}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed: .ci/run should have installed it")
        pytest.skip("BROWSER TEST SKIPPED: pip install playwright (and apt-get install chromium) to run it")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run should have installed it")
        pytest.skip("BROWSER TEST SKIPPED: apt-get install chromium to run it")
    return sync_playwright


AXE = ROOT / ".ci-npm" / "node_modules" / "axe-core" / "axe.min.js"  # .ci/run: npm install axe-core


def axe_or_skip() -> Path:
    """axe-core's ``axe.min.js`` (from npm, which ``.ci/run`` installs into .ci-npm/), or a skip (a failure
    in CI) naming what is missing; ``TRANSFERLIB_AXE`` may point at another copy."""
    path = Path(os.environ.get("TRANSFERLIB_AXE", AXE))
    reason = os.environ.get("TRANSFERLIB_NO_AXE")
    if reason:
        warnings.warn(f"ACCESSIBILITY CHECK SKIPPED: {reason}", stacklevel=2)
        pytest.skip(f"ACCESSIBILITY CHECK SKIPPED: {reason}")
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"no axe-core at {path}: .ci/run should have installed it with npm")
        pytest.skip(f"ACCESSIBILITY CHECK SKIPPED: npm install --prefix .ci-npm axe-core@{AXE_VERSION} to run it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
