"""What a replay of a lesson ignores (conftest.py's patch of nbval's sanitizer): a column that moves
by a space when a number gains a digit, and integers in cells tagged `nbval-numbers`; never words."""

from __future__ import annotations

import configparser
from pathlib import Path
from types import SimpleNamespace

import pytest

nbval = pytest.importorskip("nbval.plugin")
CFG = Path(__file__).with_name("nbval_sanitize.cfg")


def sanitizer(tags=()):
    """nbval's sanitize as the lessons' replay runs it: the course's patterns and conftest's patch."""
    parser = configparser.ConfigParser()
    parser.read(CFG)
    patterns = {parser[s]["regex"]: parser[s]["replace"] for s in parser.sections()}
    cell = SimpleNamespace(cell=SimpleNamespace(metadata={"tags": list(tags)}),
                           parent=SimpleNamespace(sanitize_patterns=patterns))
    return lambda text: nbval.IPyNbCell.sanitize(cell, text)


def test_a_column_that_moves_by_a_space_is_the_same_output():
    clean = sanitizer()
    stored = "resnet18       9.6 s per batch\nLoRA           0.740"
    replay = "resnet18      10.4 s per batch\nLoRA           0.741"
    assert clean(stored) == clean(replay)


def test_words_and_integers_still_count():
    clean = sanitizer()
    assert clean("frozen probe ahead") != clean("can't tell at this size")
    assert clean("3 of 24 sentences") != clean("4 of 24 sentences")
    assert clean("ab") != clean("a b")  # spaces collapse, they do not vanish


def test_a_tagged_cell_masks_its_integers_too():
    assert sanitizer(["nbval-numbers"])("3 of 24") == sanitizer(["nbval-numbers"])("4 of 24")
