"""ECE, its interval, the paired comparison, and temperature scaling, against cases worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import transferlib as tl


def test_ece_by_hand():
    # bin 9: four items at 0.9, all wrong (gap 0.9, no noise); bin 6: two at 0.6, both right (gap 0.4)
    probs = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 2)
    labels = np.array([1, 1, 1, 1, 0, 0])
    r = tl.reliability(probs, labels)
    assert r.count[9] == 4 and r.count[6] == 2 and r.accuracy[9] == 0 and r.accuracy[6] == 1
    assert r.ece == pytest.approx((4 * 0.9 + 2 * 0.4) / 6)
    assert tl.ece(probs, labels).value == pytest.approx(r.ece)


def test_noise_alone_is_not_counted_as_a_gap():
    # four items at 0.5, three right: the plain gap is 0.25, but a bin mean's sampling variance is
    # (0.25 - 0.0625) / 3 = 0.0625 = 0.25 ** 2, so the noise-corrected gap is 0
    probs = np.array([[0.5, 0.3, 0.2]] * 4)
    assert tl.ece(probs, [0, 0, 0, 1]).value == pytest.approx(0.0)


def test_a_calibrated_model_scores_near_zero_and_its_interval_reaches_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 4000)
    right = rng.uniform(size=4000) < conf                    # right exactly as often as it says
    probs = np.stack([conf, 1 - conf], 1)
    est = tl.ece(probs, np.where(right, 0, 1), resamples=2000)
    assert est.value < 0.02 and est.low == 0.0 and est.high > est.value


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.15])
def test_the_interval_covers_the_true_ece(shift):
    """170 items per trial, as in lesson 7: the plain ECE's percentile bootstrap holds a true ECE of 0
    in none of the trials (bench/ece_coverage.py, docs/design.md); this interval in most."""
    rng = np.random.default_rng(int(shift * 100))
    covered = []
    for trial in range(150):
        conf = rng.uniform(0.5, 1.0, 170)                       # the top class is class 0
        right = rng.uniform(size=170) < np.clip(conf - shift, 0, 1)   # accuracy = confidence - shift
        est = tl.ece(np.stack([conf, 1 - conf], 1), np.where(right, 0, 1), resamples=1000, seed=trial)
        covered.append(est.low <= shift <= est.high)
    assert np.mean(covered) >= 0.88, np.mean(covered)


def test_temperature_scaling_repairs_an_over_confident_model():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(size=(3000, 4)) * 2
    labels = np.array([rng.choice(4, p=np.exp(z) / np.exp(z).sum()) for z in true_logits])
    over = torch.tensor(true_logits * 3.0)                   # three times too sharp
    t = tl.fit_temperature(over[:1500], labels[:1500])
    assert t == pytest.approx(3.0, rel=0.15)
    before, after = torch.softmax(over[1500:], -1), torch.softmax(over[1500:] / t, -1)
    result = tl.compare_ece(before, after, labels[1500:], names=("raw", "scaled"), resamples=2000)
    assert result.a.value - result.b.value > 0.05
    assert result.difference > 0 and result.low > 0 and result.verdict == "scaled better calibrated"
    assert (before.argmax(1) == after.argmax(1)).all(), "a temperature never changes a prediction"


def test_the_same_probabilities_cannot_be_told_apart():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), 200)
    labels = rng.integers(0, 3, 200)
    result = tl.compare_ece(probs, probs, labels)
    assert result.difference == 0 and result.verdict == "can't tell at this size"


def test_logits_instead_of_probabilities_are_refused():
    with pytest.raises(ValueError, match="softmax"):
        tl.ece(np.array([[3.0, -1.0]]), [0])
    with pytest.raises(ValueError, match="one label per item"):
        tl.reliability(np.array([[0.5, 0.5]]), [0, 1])


def test_the_squared_error_difference_is_unbiased_where_the_ece_difference_is_not():
    """Arm A over-confident by 0.1 (squared error 0.01), arm B calibrated: over many test sets the mean
    estimated difference of the squared errors is 0.01; the noise-corrected ECE's differs from 0.1."""
    from transferlib.calibration import _ece_rows, _squared_rows

    rng = np.random.default_rng(3)
    p = rng.uniform(0.3, 0.85, (2000, 170))
    right = (rng.uniform(size=p.shape) < p).astype(float)
    squared = _squared_rows(p + 0.1, right, 10) - _squared_rows(p, right, 10)
    assert abs(squared.mean() - 0.01) < 0.001
    assert abs((_ece_rows(p + 0.1, right, 10) - _ece_rows(p, right, 10)).mean() - 0.1) > 0.01


def test_temperature_at_the_search_bound_is_refused():
    logits = torch.tensor([[5.0, -5.0], [-5.0, 5.0]] * 10)   # all right: sharper is always better
    with pytest.raises(ValueError, match="bound"):
        tl.fit_temperature(logits, [0, 1] * 10)
