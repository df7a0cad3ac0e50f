"""Intervals: how precise a number measured on test items is. An accuracy with its 95% interval (over
the items and, with several seeds, over the seeds too); the bootstrap that :mod:`stats` and
:mod:`calibration` resample with; and the sizes that plan a paired comparison: the smallest difference
``n`` items can detect, and the items a difference needs.

    >>> print(accuracy(evaluate(model, test_loader).correct))  # 0.853 [0.825, 0.877] on 500 items
    >>> print(accuracy(correct))        # correct[seed, item]: 0.792 [0.753, 0.830] on 170 items x 5 seeds
    >>> detectable_difference(0.10, 600)   # two models disagreeing on 60 of 600 items: ~0.036
    >>> items_needed(0.02, 0.10)           # 2 points apart, disagreeing on 10% of the items: ~1,960

One run: Wilson's score interval. With several seeds, pass one row per seed (``correct[seed, item]``):
the interval covers another seed *and* other items (a claim about the recipe), each with its own t
quantile (``seeds - 1`` and ``items - 1`` degrees of freedom; docs/design.md); ``bench/stats_coverage.py``
measures it. The lessons call these through :mod:`stats` (``tl.stats.accuracy``), which hands them on.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import check_confidence, check_correct, check_number

__all__ = ["Estimate", "accuracy", "bootstrap", "detectable_difference", "items_needed", "half_width", "variances",
           "rule_of_three", "RESAMPLES", "POWER"]

RESAMPLES = 10_000  # bootstrap resamples: the third decimal of an interval stops moving around here
POWER = 0.8         # the power at which a "can't tell" says what the test could have detected


@dataclass(frozen=True)
class Estimate:
    """An accuracy with its 95% interval, on ``n`` items (and ``seeds`` runs).

    >>> print(Estimate(0.85, 0.82, 0.88, 500))        # 0.850 [0.820, 0.880] on 500 items
    """

    value: float
    low: float
    high: float
    n: int
    seeds: int = 1

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        over = f" x {self.seeds} seeds" if self.seeds > 1 else ""
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] on {self.n} items{over}"


def variances(rows: np.ndarray) -> tuple[float, float]:
    """The grand mean's variance from the items and from the seeds: the spread of the per-item means
    (over seeds) / items, and of the per-seed means / seeds.

    >>> v_items, v_seeds = variances(correct)    # correct[seed, item], as floats
    """
    n_seeds, n = rows.shape
    items = float(rows.mean(0).var(ddof=1)) / n if n > 1 else 0.0
    seeds = float(rows.mean(1).var(ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    return items, seeds


def half_width(v_items: float, v_seeds: float, n: int, n_seeds: int, confidence: float,
               power: float | None = None) -> float:
    """``sqrt(q_items^2 v_items + q_seeds^2 v_seeds)``, each ``q`` a t quantile with its own
    degrees of freedom; with ``power``, the quantiles of a test at that power instead.

    >>> half_width(v_items, v_seeds, n=170, n_seeds=5, confidence=0.95)   # accuracy's interval: value ± this
    """
    from scipy.stats import t

    def q(df: int) -> float:
        return float(t.ppf((1 + confidence) / 2, df) + (t.ppf(power, df) if power else 0.0)) if df >= 1 else 0.0

    return math.sqrt(q(n - 1) ** 2 * v_items + q(n_seeds - 1) ** 2 * v_seeds)


def accuracy(correct: Any, confidence: float = 0.95) -> Estimate:
    """The accuracy of per-item correctness, with a ``confidence`` interval.

    One run: Wilson's score interval; with ``n`` test items the accuracy measured is off from the
    true one by about ``2 * sqrt(p (1 - p) / n)`` (12 points on 34 photos, 3 on 500 images). Several
    seeds (one row each, the same items): it covers another seed too, and with 3 seeds it is wide.

    >>> print(accuracy(evaluate(model, test_loader).correct))
    """
    from scipy.stats import binomtest

    check_confidence(confidence)
    rows = check_correct(correct)
    n_seeds, n = rows.shape
    value = float(rows.mean())
    if n_seeds == 1:
        ci = binomtest(int(rows.sum()), n).proportion_ci(confidence, method="wilson")
        return Estimate(value, float(ci.low), float(ci.high), n)
    v_items, v_seeds = variances(rows)
    shrunk = (rows.sum() + 2) / (rows.size + 4)  # Agresti-Coull: never a zero variance at 0% or 100%
    half = half_width(max(v_items, shrunk * (1 - shrunk) / rows.size), v_seeds, n, n_seeds, confidence)
    return Estimate(value, max(0.0, value - half), min(1.0, value + half), n, n_seeds)


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, resamples: int = RESAMPLES, seed: int = 0,
              chunk: int = 500) -> np.ndarray:
    """``statistic(idx)`` on ``resamples`` resamples of ``n`` items with replacement, ``idx`` a block of
    index rows (``chunk`` at a time, so memory stays at ``chunk x n`` whatever the test set).

    >>> draws = bootstrap(lambda idx: correct[idx].mean(1), len(correct))     # accuracy, resampled
    """
    check_number("n", n, 1, whole=True, advice="It is the number of items to resample: len(correct).")
    check_number("resamples", resamples, 1, whole=True, advice="10_000 is the default.")
    check_number("seed", seed, 0, whole=True, advice="A fixed seed gives the same interval on every run.")
    check_number("chunk", chunk, 1, whole=True, advice="500 rows at a time is the default.")
    rng = np.random.default_rng(seed)
    return np.concatenate([statistic(rng.integers(0, n, size=(min(chunk, resamples - done), n)))
                           for done in range(0, resamples, chunk)])


def rule_of_three(rate: float, n: int) -> float:
    """``rate``, but never under ``3 / n``: none seen in ``n`` items, up to ~3/n is still likely.

    >>> rule_of_three(0.0, 34)    # 0.088: 34 items that never disagreed do not show that they never would
    """
    return max(rate, min(1.0, 3 / n))


_RATE = "It is the share of the items the two arms disagree on: (a != b).mean(), from a pilot run to plan one."


def _check_power(power: Any, confidence: Any) -> None:
    check_confidence(confidence)
    if isinstance(power, bool) or not isinstance(power, numbers.Real) or not 0 < power < 1:
        raise ValueError(f"power is a probability, between 0 and 1 ({POWER} for {POWER:.0%}), not {power!r}.")


def detectable_difference(disagreement_rate: float, n: int, power: float = POWER, confidence: float = 0.95) -> float:
    """The smallest true difference a paired test on ``n`` items finds with probability ``power``,
    when the arms disagree on a share ``disagreement_rate`` of the items (one run).

    It is ``q * sqrt(rate / n)`` (``q``: the test's two quantiles, about 2.8 at 95% and 80% power),
    but never under ``q**2 / n``: a true difference ``d`` makes the arms disagree on at least a
    share ``d`` of the items, so a difference larger than the observed disagreement is judged at
    its own. On 34 photos that is about 0.245, whatever the pilot's disagreement.

    >>> detectable_difference(0.10, 600)   # two models disagreeing on 60 of 600 items: ~0.036
    >>> detectable_difference(0.06, 34)    # 2 of 34 photos: ~0.245, not 0.147
    """
    _check_power(power, confidence)
    check_number("disagreement_rate", disagreement_rate, 0, 1, advice=_RATE)
    check_number("n", n, 2, whole=True, advice="It is the number of paired test items.")
    q = half_width(1.0, 0.0, n, 1, confidence, power)          # the quantiles of the test, q_conf + q_power
    return max(q * math.sqrt(rule_of_three(disagreement_rate, n) / n), q * q / n)


def items_needed(difference: float, disagreement_rate: float, power: float = POWER, confidence: float = 0.95) -> int:
    """How many paired test items find a true ``difference`` with probability ``power``, when the
    arms disagree on a share ``disagreement_rate`` of them (seed variance needs more seeds, not items).

    >>> items_needed(0.02, 0.10)   # 2 points between models that disagree on 10% of items: ~1,960
    """
    from scipy.stats import norm

    _check_power(power, confidence)
    check_number("difference", difference, -1, 1, advice="It is a difference in accuracy: 0.02 for 2 points.")
    check_number("disagreement_rate", disagreement_rate, 0, 1, advice=_RATE)
    if not 0 < abs(difference) <= disagreement_rate:
        raise ValueError(f"difference must be non-zero and at most disagreement_rate (arms 0.05 apart disagree on "
                         f"5% of the items or more); got {difference!r} and {disagreement_rate!r}.")
    z = norm.ppf((1 + confidence) / 2) + norm.ppf(power)
    return math.ceil(z ** 2 * disagreement_rate / difference ** 2)
