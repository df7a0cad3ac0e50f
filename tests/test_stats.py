"""transferlib.stats: intervals that cover, paired tests that agree with scipy, choices that refuse test data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

import transferlib as tl
from transferlib.stats import accuracy, choose, compare


@pytest.mark.parametrize("n, p", [(34, 0.85), (200, 0.8), (500, 0.93)])
def test_the_accuracy_interval_covers_the_true_accuracy_95_percent_of_the_time(n, p):
    rng = np.random.default_rng(n)
    trials = 2_000
    hits = sum(accuracy(e := rng.random(n) < p).low <= p <= accuracy(e).high for _ in range(trials))
    assert 0.93 <= hits / trials <= 0.97, hits / trials


def test_the_paired_interval_covers_the_true_difference_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    n, trials, hits = 150, 2_000, 0
    for _ in range(trials):  # A right on 85% of items, B on 80%, strongly correlated (as two models are)
        u = rng.random(n)
        a, b = u < 0.85, (u < 0.78) | ((u >= 0.85) & (u < 0.87))
        result = compare(a, b, resamples=400, seed=int(rng.integers(1 << 30)))
        hits += result.low <= 0.05 <= result.high
    assert 0.93 <= hits / trials <= 0.97, hits / trials


def test_the_paired_p_value_is_scipys_exact_binomial_test_on_the_discordant_items():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.random(80) < 0.8, rng.random(80) < 0.7
        only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
        assert compare(a, b).p_value == pytest.approx(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def test_one_run_is_never_ahead_where_the_exact_test_is_not():
    for only_a in range(0, 13):  # 34 photos, 12 of them disagreements at most: the small-sample edge
        for only_b in range(0, 13 - only_a):
            a = np.r_[np.ones(only_a), np.zeros(only_b), np.ones(10), np.zeros(34 - 10 - only_a - only_b)]
            b = np.r_[np.zeros(only_a), np.ones(only_b), np.ones(10), np.zeros(34 - 10 - only_a - only_b)]
            result = compare(a, b)
            if result.low > 0 or result.high < 0:        # "ahead" only where McNemar's exact test agrees
                assert result.p_value < 0.05, (only_a, only_b, result)
            assert result.low <= result.difference <= result.high
    five_nil = compare(np.r_[np.ones(5), np.zeros(29)], np.zeros(34))  # a bootstrap would call this "A ahead"
    assert five_nil.verdict == "can't tell at this size" and five_nil.p_value == pytest.approx(0.0625)


def test_the_verdict_is_read_off_the_interval():
    a = np.r_[np.ones(90), np.zeros(10)]
    far_behind = np.r_[np.ones(60), np.zeros(40)]
    assert compare(a, far_behind, names=("ours", "theirs")).verdict == "ours ahead"
    assert compare(far_behind, a, names=("ours", "theirs")).verdict == "theirs ahead"
    close = a.copy()
    close[:2] = 0  # two items apart out of 100
    result = compare(a, close, names=("ours", "theirs"))
    assert result.low <= 0 <= result.high and result.verdict == "can't tell at this size"
    assert "can't tell" in str(result) and "McNemar" in str(result)


def test_seeds_widen_the_interval_and_are_paired_seed_by_seed():
    rng = np.random.default_rng(0)
    items = rng.random(300)
    steady = np.stack([items < 0.8] * 3)                  # three seeds that agree
    shaky = np.stack([items < q for q in (0.7, 0.8, 0.9)])  # three seeds that do not
    assert accuracy(shaky).seeds == 3
    assert accuracy(shaky).half_width > accuracy(steady).half_width
    assert "3 seeds" in str(accuracy(shaky))
    with pytest.raises(ValueError, match="same items"):
        compare(steady, steady[:2])


def test_bad_correctness_is_refused():
    with pytest.raises(ValueError, match="0/1"):
        accuracy([0.2, 0.9])
    with pytest.raises(ValueError, match="one 0/1 value per test item"):
        accuracy([])


def test_choosing_on_a_test_split_is_refused_and_on_validation_allowed():
    train, test = tl.load_dataset("digits", "train"), tl.load_dataset("digits", "test")
    val, rest = tl.split_per_class(train, 10)
    score = lambda option, data: -abs(option - 2)  # noqa: E731
    for bad in (test, tl.k_shot(test, 5), tl.with_transform(test, lambda x: x), tl.make_loader(test),
                tl.stratified_split(rest)[1], tl.split_per_class(test, 5)[0]):
        with pytest.raises(ValueError, match="test split to choose on"):
            choose([1, 2, 3], score, bad)
    assert choose([1, 2, 3], score, val) == 2
    assert tl.role_of(tl.k_shot(rest, 5)) == "train" and tl.role_of(val) == "validation"
