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


def test_a_tagged_cell_masks_integers_and_decimals_alike():
    # lesson 1's probe by depth: a near tie on validation picks C 10 on one CPU, C 0.1 on another
    clean = sanitizer(["nbval-numbers"])
    assert clean("features.16 C 10    validation 0.918") == clean("features.16 C 0.1   validation 0.916")
    assert clean("C 10 ahead") != clean("C 10 can't tell")


def test_an_exponent_belongs_to_its_number():
    # lesson 7: a reloaded model's largest probability gap is 0.0e+00 on one CPU, 1.2e-07 on another
    clean = sanitizer()
    assert clean("largest probability gap 0.0e+00") == clean("largest probability gap 1.2e-07")
    assert clean("gap 1.2e-07 of 5 items") != clean("gap 1.2e-07 of 6 items")


def test_a_p_value_below_what_three_decimals_show_is_the_same_output():
    # lesson 1's Holm table: p = 0.002 on one CPU, p < 0.001 on another
    clean = sanitizer()
    assert clean("-> AnB+ ahead; p = 0.002") == clean("-> AnB+ ahead; p < 0.001")
    assert clean("-> AnB+ ahead; p = 0.002") != clean("-> can't tell at this size; p = 0.002")
