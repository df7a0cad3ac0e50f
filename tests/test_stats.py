"""transferlib.stats: intervals that cover, paired tests that agree with scipy, choices that refuse test data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import binomtest

import transferlib as tl
from transferlib.stats import accuracy, choose, choose_on_grid, compare


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


def test_choose_notes_an_edge_only_when_it_wins_and_choose_on_grid_extends_once(capsys):
    """A tie at the grid's edge shows no slope: no note, no extension. An edge that beats every other
    value is extended once, one significant digit, `step` times further out, and never twice."""
    val = tl.split_per_class(tl.load_dataset("digits", "train"), 10)[0]
    assert choose([1e-4, 1e-3, 1e-2], lambda lr, v: 0.8, val) == 1e-4
    assert capsys.readouterr().out == ""
    calls = []

    def peak_at(top):
        def score(lr, v):
            calls.append(lr)
            return -abs(np.log10(lr) - np.log10(top))
        return score

    lr, scores = choose_on_grid([1e-4, 3e-4, 1e-3], peak_at(3e-3), val)
    assert lr == 3e-3 and list(scores) == [1e-4, 3e-4, 1e-3, 3e-3] and calls == [1e-4, 3e-4, 1e-3, 3e-3]
    assert "grid extended once to 0.003; chosen 0.003" in capsys.readouterr().out
    lr, scores = choose_on_grid([1e-4, 3e-4, 1e-3], peak_at(1e-7), val)        # once, not twice
    assert lr == 3e-5 and list(scores) == [3e-5, 1e-4, 3e-4, 1e-3]
    assert capsys.readouterr().out == "grid extended once to 3e-05; chosen 3e-05\n"
    tie = {1e-4: 0.7, 3e-4: 0.7, 1e-3: 0.5}
    lr, scores = choose_on_grid([1e-4, 3e-4, 1e-3], lambda lr, v: tie[lr], val)
    assert lr == 1e-4 and scores == tie and capsys.readouterr().out == ""
    lr, scores = choose_on_grid([1e-3, 1e-2], peak_at(1.0), val)               # two values: no edge to read
    assert lr == 1e-2 and len(scores) == 2
    with pytest.raises(ValueError, match="choose_on_grid.. was given a test split"):
        choose_on_grid([1, 2, 3], lambda o, v: o, tl.load_dataset("digits", "test"))
    assert tl.stats.choose_on_grid is choose_on_grid


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


def _bench():
    from helpers import load_script
    return load_script("bench/stats_coverage.py")


@pytest.mark.parametrize("seeds, spread", [(3, 0.05), (5, 0.025), (1, 0.05)])
def test_several_seeds_cover_the_recipe_and_one_seed_covers_its_models(seeds, spread):
    """A small run of bench/stats_coverage.py: the course's largest seed spread, 3 seeds, no true
    difference. The bootstrap that resampled 3 seeds covered 85% here and called 15% false winners."""
    bench = _bench()
    row = bench.run_setting(seeds, 200, spread, 0.0, trials=300, rng=np.random.default_rng(seeds), resamples=300)
    assert row["coverage"] >= 0.92 and row["false"] <= 0.065, row
    if seeds == 1:  # the same interval read as a claim about the recipe: what it must not be
        assert row["recipe coverage"] < 0.85, row


def test_the_seed_interval_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(3)
    for _ in range(30):
        a = rng.random((3, 120)) < rng.uniform(0.6, 0.9)
        b = rng.random((3, 120)) < rng.uniform(0.6, 0.9)
        result = compare(a, b)
        assert (result.p_value < 0.05) == (result.low > 0 or result.high < 0), result
        assert result.low <= result.difference <= result.high
        if 1e-9 < result.p_value < 1:      # the p-value is the level at which the interval touches 0
            edge = result.at(1 - result.p_value)
            assert min(abs(edge.low), abs(edge.high)) < 1e-6, (result.p_value, edge.low, edge.high)


def test_equivalence_needs_a_declared_margin_and_a_narrow_interval():
    rng = np.random.default_rng(0)
    u = rng.random(3_000)
    a, b = u < 0.80, (u < 0.79) | ((u > 0.95) & (u < 0.955))   # 30 vs 15 disagreements on 3,000 items
    assert compare(a, b).verdict == "can't tell at this size"            # no margin: never "equivalent"
    assert compare(a, b, margin=0.02).verdict == "equivalent within ±0.020"
    assert compare(a, b, margin=0.02).equivalent and compare(a, b, margin=0.02).noninferior
    small = compare(a[:100], b[:100], margin=0.02)                       # 100 items: too few to show it
    assert small.verdict == "can't tell at this size" and not small.equivalent
    assert "could detect a difference of" in str(small) and "margin ±0.020, declared" in str(small)
    clear = compare(u < 0.9, u < 0.6, margin=0.02)                        # ahead beats equivalent
    assert clear.verdict == "A ahead" and not clear.equivalent and clear.noninferior
    worse = compare(u < 0.6, u < 0.9, margin=0.02)                        # far behind: not non-inferior
    assert worse.verdict == "B ahead" and not worse.noninferior and not worse.equivalent
    rest = np.zeros(3_000 - 230)                                          # 100 vs 130 disagreements
    slightly = compare(np.r_[np.ones(100), np.zeros(130), rest], np.r_[np.zeros(100), np.ones(130), rest],
                       margin=0.019)
    assert slightly.low < -0.019 < slightly.tost[0]      # TOST reads the 90% interval, not the 95% one
    assert slightly.noninferior and slightly.equivalent


def test_no_disagreement_on_few_items_is_not_equivalence():
    same = np.r_[np.ones(30), np.zeros(4)]
    one_run = compare(same, same, margin=0.02)                           # 34 items, never disagreeing
    assert one_run.verdict == "can't tell at this size" and not one_run.noninferior
    assert one_run.tost[1] > 0.05 and one_run.detectable > 0.05
    seeds = compare(np.stack([same] * 3), np.stack([same] * 3), margin=0.02)
    assert seeds.verdict == "can't tell at this size" and seeds.detectable > 0.05
    big = np.r_[np.ones(2_700), np.zeros(300)]                            # 3,000 items agreeing: that is evidence
    assert compare(big, big, margin=0.02).verdict == "equivalent within ±0.020"
    with pytest.raises(ValueError, match="margin"):
        compare(big, big, margin=2)


def test_the_detectable_difference_is_found_80_percent_of_the_time():
    rng = np.random.default_rng(5)
    n, rate = 300, 0.2
    d = tl.stats.detectable_difference(rate, n)
    found = 0
    for _ in range(400):  # A wins a (rate + d) / 2 share of the items, B a (rate - d) / 2 share
        u = rng.random(n)
        a, b = u < (rate + d) / 2, (u >= (rate + d) / 2) & (u < rate)
        found += compare(a, b, resamples=300).verdict == "A ahead"
    assert 0.70 <= found / 400 <= 0.90, (d, found)
    needed = tl.stats.items_needed(d, rate)
    assert abs(needed - n) / n < 0.05, needed                            # the inverse of detectable_difference
    assert compare(a, b).detectable == pytest.approx(tl.stats.detectable_difference(((a != b).mean()), n))
    assert tl.stats.detectable_difference(0.0, 100) > 0                       # the rule of three, not 0
    small = tl.stats.detectable_difference(2 / 34, 34)     # 34 photos, 2 disagreements in the pilot
    hits = sum(compare(rng.random(34) < small, np.zeros(34, bool), resamples=300).verdict == "A ahead"
               for _ in range(300))          # a true difference `small`: A alone right on that share
    assert hits / 300 >= 0.70, (small, hits)  # at 0.147 (the rate's own formula): 37% of the time
    noisy = compare(rng.random((3, 300)) < 0.8, rng.random((3, 300)) < 0.8)
    assert noisy.detectable > noisy.high - noisy.difference > 0              # with seeds too
    with pytest.raises(ValueError, match="confidence"):
        compare(a, b, confidence=95)
    with pytest.raises(ValueError, match="two in all"):
        compare(a, b, names="AB")


def test_holm_controls_many_verdicts_and_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests
    rng = np.random.default_rng(2)
    base = rng.random(400)
    arms = [base < 0.8] + [(base < 0.8) ^ (rng.random(400) < 0.06) for _ in range(6)]
    raw = [compare(arms[0], arm, names=("ref", f"arm{i}")) for i, arm in enumerate(arms[1:])]
    raw.append(compare(np.r_[np.ones(9), np.zeros(391)], np.zeros(400)))   # 9 vs 0: p = 0.004 alone
    adjusted = tl.stats.holm(raw)
    assert [c.p_value for c in adjusted] == pytest.approx(multipletests([c.p_value for c in raw], method="holm")[1])
    assert raw[-1].verdict == "A ahead" and adjusted[-1].verdict == "A ahead"  # 0.004 * 7 < 0.05 still
    assert all(c.family == "Holm over 7" for c in adjusted) and "Holm over 7" in str(adjusted[0])
    for before, after in zip(raw, adjusted):
        assert after.high - after.low >= before.high - before.low - 1e-12  # never narrower
        if after.verdict.endswith("ahead"):
            assert after.p_value < 0.05
    many = [compare(np.r_[np.ones(7), np.zeros(93)], np.zeros(100))] * 10  # p = 0.016 ten times
    assert many[0].verdict == "A ahead"
    assert all(c.verdict == "can't tell at this size" for c in tl.stats.holm(many))
    # Holm, not Bonferroni: with p = 0.0001, 0.021 and 0.021, Bonferroni (0.05 / 3) calls only the first
    def split(wins, losses):
        rest = np.zeros(200 - wins - losses)
        return compare(np.r_[np.ones(wins), np.zeros(losses), rest], np.r_[np.zeros(wins), np.ones(losses), rest])
    steps = [split(14, 0), split(9, 1), split(9, 1)]
    assert 0.05 / 3 < steps[1].p_value < 0.05 / 2
    assert [c.verdict for c in tl.stats.holm(steps)] == ["A ahead"] * 3
    assert [c.verdict for c in (s.at(1 - 0.05 / 3) for s in steps)] == ["A ahead", "can't tell at this size",
                                                                        "can't tell at this size"]


def test_holm_takes_only_what_compare_returns_and_says_which_item_is_not():
    made = compare(np.r_[np.ones(9), np.zeros(91)], np.zeros(100))
    ece = tl.compare_ece(np.array([[0.9, 0.1], [0.6, 0.4]] * 20), np.array([[0.7, 0.3]] * 40), [0, 1] * 20,
                         resamples=50)
    with pytest.raises(TypeError, match=r"item 1 \(ECEComparison\) was not made by compare\(\)"):
        tl.stats.holm([made, ece])
    with pytest.raises(ValueError, match="confidence"):
        tl.stats.holm([], confidence=95)


def test_comparison_and_ece_comparison_share_their_paired_fields():
    paired = ("names", "a", "b", "difference", "low", "high")
    fields = {cls: [f.name for f in dataclasses.fields(cls)] for cls in (tl.stats.Comparison, tl.ECEComparison)}
    assert all(issubclass(cls, tl.stats.Paired) and names[:6] == list(paired) for cls, names in fields.items())
    result = compare(np.r_[np.ones(9), np.zeros(91)], np.zeros(100), names=("x", "y"))
    assert repr(result).startswith("Comparison(names=('x', 'y'), a=Estimate(value=0.09,")
    assert tl.stats.accuracy is tl.intervals.accuracy and tl.stats.items_needed is tl.intervals.items_needed


def test_choose_says_when_its_choice_is_on_the_edge_of_the_grid(capsys):
    val = tl.split_per_class(tl.load_dataset("digits", "train"), 10)[0]
    assert choose([1e-4, 1e-3, 1e-2], lambda lr, v: lr, val) == 1e-2
    assert "largest of 3 values" in capsys.readouterr().out
    assert choose([1e-4, 1e-3, 1e-2], lambda lr, v: -abs(lr - 1e-3), val) == 1e-3
    assert choose(["a", "b", "c"], lambda o, v: o == "c", val) == "c"
    assert capsys.readouterr().out == ""
