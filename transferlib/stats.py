"""Honest comparisons: an accuracy with its interval, two arms compared on the same items, and a
verdict read off the interval (with equivalence and power).

    >>> a = evaluate(model_a, test_loader).correct         # one True/False per test item
    >>> b = evaluate(model_b, test_loader).correct         # the same items, in the same order
    >>> print(accuracy(a))                                  # 0.853 [0.825, 0.877] on 500 items
    >>> result = compare(a, b, names=("fine-tuned", "frozen"), margin=0.02)
    >>> result.verdict    # "fine-tuned ahead", "frozen ahead", "equivalent within ±0.020" or "can't tell..."
    >>> result.detectable                  # the smallest difference this test finds 80% of the time
    >>> table = holm([compare(a, b), compare(a, c), ...])   # many verdicts from one experiment

With several seeds, pass one row per seed (``correct[seed, item]``): the interval covers another seed
*and* other items (a claim about the recipe), each with its own t quantile (``seeds - 1`` and
``items - 1`` degrees of freedom; docs/design.md). ``bench/stats_coverage.py`` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .checks import check_confidence, check_correct, check_number
from .choosing import choose

__all__ = ["Estimate", "Comparison", "accuracy", "compare", "holm", "detectable_difference", "items_needed",
           "choose", "bootstrap", "RESAMPLES", "POWER"]

RESAMPLES = 10_000  # bootstrap resamples: the third decimal of an interval stops moving around here
POWER = 0.8         # the power at which a "can't tell" says what the test could have detected


@dataclass(frozen=True)
class Estimate:
    """An accuracy with its 95% interval, on ``n`` items (and ``seeds`` runs)."""

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


@dataclass(frozen=True)
class Comparison:
    """Two arms scored on the same items: their accuracies, the difference A - B with its interval,
    a p-value, the verdict the interval supports, and the smallest difference the test could detect.

    ``margin`` (declared before the run) adds equivalence, a TOST: the ``2 * confidence - 1`` interval
    inside ``±margin``; and ``noninferior``: that interval's lower end above ``-margin``.
    """

    names: tuple[str, str]
    a: Estimate
    b: Estimate
    difference: float
    low: float
    high: float
    p_value: float
    test: str
    detectable: float = math.nan    # difference found with probability POWER at this size
    margin: float | None = None
    tost: tuple[float, float] = (math.nan, math.nan)  # the 2 * confidence - 1 interval
    confidence: float = 0.95
    family: str = ""                # "Holm over 16" when the verdict is one of many
    _at: Callable[[float], Comparison] | None = field(default=None, repr=False, compare=False)

    @property
    def equivalent(self) -> bool:
        return self.margin is not None and -self.margin < self.tost[0] and self.tost[1] < self.margin

    @property
    def noninferior(self) -> bool:
        return self.margin is not None and self.tost[0] > -self.margin

    @property
    def verdict(self) -> str:
        """``"<A> ahead"`` if the whole interval is above 0, ``"<B> ahead"`` if below, else
        ``"equivalent within ±margin"`` if the TOST says so, else ``"can't tell at this size"``."""
        if self.low > 0:
            return f"{self.names[0]} ahead"
        if self.high < 0:
            return f"{self.names[1]} ahead"
        if self.equivalent:
            return f"equivalent within ±{self.margin:.3f}"
        return "can't tell at this size"

    def at(self, confidence: float) -> Comparison:
        """The same comparison with an interval at another ``confidence`` (Holm uses this)."""
        if self._at is None:
            raise ValueError("Only a comparison made by compare() can be recomputed at another confidence.")
        return self._at(confidence)

    def __str__(self) -> str:
        p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"
        level = "" if self.confidence == 0.95 else f" ({_percent(self.confidence)} interval)"
        lines = [f"{self.names[0]} {self.a.value:.3f} vs {self.names[1]} {self.b.value:.3f}: "
                 f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]",
                 f"  -> {self.verdict}; {p}{level}", *([f"  {self.family}"] if self.family else []), f"  {self.test}"]
        if self.margin is not None:
            small = " (ahead, but by less than the margin)" if self.equivalent and "ahead" in self.verdict else ""
            lines.append(f"  margin ±{self.margin:.3f}, declared: {_percent(2 * self.confidence - 1)} interval "
                         f"[{self.tost[0]:+.3f}, {self.tost[1]:+.3f}]{small}")
        if self.verdict.startswith(("can't", "equivalent")) and not math.isnan(self.detectable):
            size = f"{self.detectable:.3f} or more" if self.detectable < 1 else "no possible difference"
            lines.append(f"  this test could detect a difference of {size} ({POWER:.0%} power)")
        return "\n".join(lines)


def _percent(level: float) -> str:
    return f"{level:.0%}" if round(level * 100, 6).is_integer() else f"{level:.1%}"


def _check(confidence: float, names: Sequence[str] | None = None, resamples: int = 1) -> None:
    check_confidence(confidence)
    check_number("resamples", resamples, 1, whole=True, advice="10_000 is the default.")
    if names is not None and (isinstance(names, str) or len(names) != 2):
        raise ValueError(f"names needs one name per arm, two in all, like ('fine-tuned', 'frozen'); got {names!r}.")


def _rule_of_three(rate: float, n: int) -> float:
    return max(rate, min(1.0, 3 / n))  # none seen in n items: up to ~3/n is still likely


def _variances(rows: np.ndarray) -> tuple[float, float]:
    """The grand mean's variance from the items and from the seeds: the spread of the per-item means
    (over seeds) / items, and of the per-seed means / seeds."""
    n_seeds, n = rows.shape
    items = float(rows.mean(0).var(ddof=1)) / n if n > 1 else 0.0
    seeds = float(rows.mean(1).var(ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    return items, seeds


def _half_width(v_items: float, v_seeds: float, n: int, n_seeds: int, confidence: float,
                power: float | None = None) -> float:
    """``sqrt(q_items^2 v_items + q_seeds^2 v_seeds)``, each ``q`` a t quantile with its own
    degrees of freedom; with ``power``, the quantiles of a test at that power instead."""
    from scipy.stats import t

    def q(df: int) -> float:
        return float(t.ppf((1 + confidence) / 2, df) + (t.ppf(power, df) if power else 0.0)) if df >= 1 else 0.0

    return math.sqrt(q(n - 1) ** 2 * v_items + q(n_seeds - 1) ** 2 * v_seeds)


def _t_p_value(estimate: float, v_items: float, v_seeds: float, n: int, n_seeds: int) -> float:
    """The p-value that matches the interval: the level at which it just reaches 0."""
    from scipy.optimize import brentq

    if estimate == 0 or v_items + v_seeds == 0:
        return 1.0 if estimate == 0 else 0.0
    gap = lambda p: _half_width(v_items, v_seeds, n, n_seeds, 1 - p) - abs(estimate)  # noqa: E731
    return 1e-12 if gap(1e-12) < 0 else float(brentq(gap, 1e-12, 1 - 1e-12, xtol=1e-10))


def accuracy(correct: Any, confidence: float = 0.95) -> Estimate:
    """The accuracy of per-item correctness, with a ``confidence`` interval.

    One run: Wilson's score interval; with ``n`` test items the accuracy measured is off from the
    true one by about ``2 * sqrt(p (1 - p) / n)`` (12 points on 34 photos, 3 on 500 images). Several
    seeds (one row each, the same items): it covers another seed too, and with 3 seeds it is wide.

    >>> print(accuracy(evaluate(model, test_loader).correct))
    """
    from scipy.stats import binomtest

    _check(confidence)
    rows = check_correct(correct)
    n_seeds, n = rows.shape
    value = float(rows.mean())
    if n_seeds == 1:
        ci = binomtest(int(rows.sum()), n).proportion_ci(confidence, method="wilson")
        return Estimate(value, float(ci.low), float(ci.high), n)
    v_items, v_seeds = _variances(rows)
    shrunk = (rows.sum() + 2) / (rows.size + 4)  # Agresti-Coull: never a zero variance at 0% or 100%
    half = _half_width(max(v_items, shrunk * (1 - shrunk) / rows.size), v_seeds, n, n_seeds, confidence)
    return Estimate(value, max(0.0, value - half), min(1.0, value + half), n, n_seeds)


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, resamples: int = RESAMPLES, seed: int = 0,
              chunk: int = 500) -> np.ndarray:
    """``statistic(idx)`` on ``resamples`` resamples of ``n`` items with replacement, ``idx`` a block of
    index rows (``chunk`` at a time, so memory stays at ``chunk x n`` whatever the test set).

    >>> draws = bootstrap(lambda idx: correct[idx].mean(1), len(correct))     # accuracy, resampled
    """
    rng = np.random.default_rng(seed)
    return np.concatenate([statistic(rng.integers(0, n, size=(min(chunk, resamples - done), n)))
                           for done in range(0, resamples, chunk)])


def _exact_paired(only_a: int, only_b: int, n: int, confidence: float) -> tuple[float, float, float]:
    """One run: McNemar's exact p-value, and ``(2 * share - 1) * disagreements / n`` over the
    Clopper-Pearson interval of the share A wins. It excludes 0 exactly when p < ``1 - confidence``
    (5 disagreements all won by A: p = 0.0625, where a bootstrap alone would call A ahead)."""
    from scipy.stats import binomtest

    discordant = only_a + only_b
    if not discordant:
        return 0.0, 0.0, 1.0
    result = binomtest(only_a, discordant, 0.5)
    ci = result.proportion_ci(confidence, method="exact")
    scale = discordant / n
    return (2 * ci.low - 1) * scale, (2 * ci.high - 1) * scale, float(result.pvalue)


def _unconditional(interval: tuple[float, float], only_a: int, only_b: int, n: int,
                   level: float) -> tuple[float, float]:
    """``interval`` widened to a bound not conditioned on the disagreements seen (0 of 34 gives [0, 0]):
    the exact bounds of the share of items the arms disagree on, times those of the split, each at half the error."""
    from scipy.stats import binomtest

    alpha = (1 - level) / 2
    share = binomtest(only_a + only_b, n).proportion_ci(1 - alpha, method="exact")
    split = (binomtest(only_a, only_a + only_b).proportion_ci(1 - alpha, method="exact")
             if only_a + only_b else type(share)(0.0, 1.0))
    low = (2 * split.low - 1) * (share.high if split.low < 0.5 else share.low)
    high = (2 * split.high - 1) * (share.high if split.high > 0.5 else share.low)
    return min(interval[0], low), max(interval[1], high)


def compare(a_correct: Any, b_correct: Any, names: Sequence[str] = ("A", "B"), confidence: float = 0.95,
            resamples: int = RESAMPLES, seed: int = 0, margin: float | None = None) -> Comparison:
    """Compare two arms scored on the same test items, *paired*: each item counts once for both.

    Only the items where they disagree carry information about which is better.

    - One run per arm: a claim about *these trained models*. The p-value is McNemar's exact test,
      and the interval holds both a paired bootstrap and the exact test's own interval
      (:func:`_exact_paired`), so the verdict never contradicts the p-value printed next to it.
    - Several seeds (``correct[seed, item]``, seed ``s`` of A paired with seed ``s`` of B): a claim
      about *the recipe*, seed and item chance covered; p is the level at which it reaches 0.

    ``margin``: an equivalence margin, declared before the run (see :class:`Comparison`).
    >>> print(compare(ft.correct, probe.correct, names=("fine-tuned", "probe"), margin=0.03))
    """
    _check(confidence, names, resamples)
    a, b = check_correct(a_correct), check_correct(b_correct)
    if a.shape != b.shape:
        raise ValueError(f"A paired comparison needs both arms on the same items (and seeds): got shapes "
                         f"{a.shape} and {b.shape}. Score both on the same test loader, in the same order.")
    if margin is not None and not 0 < margin < 1:
        raise ValueError(f"margin is a difference in accuracy, between 0 and 1 (0.02 = 2 points), not {margin}.")
    names = (str(names[0]), str(names[1]))
    diff = a - b  # per seed and item: +1, 0 or -1
    n_seeds, n = diff.shape
    estimate = float(diff.mean())
    if n_seeds == 1:
        draws = bootstrap(lambda idx: diff[0][idx].mean(1), n, resamples, seed)
        only_a, only_b = int((diff > 0).sum()), int((diff < 0).sum())
        v_items, v_seeds = _rule_of_three((only_a + only_b) / n, n) / n, 0.0
        test = f"McNemar exact: {only_a} vs {only_b} items only one got right (1 run: these models)"

        def interval(level: float) -> tuple[float, float, float]:
            tail = (1 - level) / 2
            low, high, p = _exact_paired(only_a, only_b, n, level)
            return min(float(np.quantile(draws, tail)), low), max(float(np.quantile(draws, 1 - tail)), high), p
    else:
        v_items, v_seeds = _variances(diff) if diff.any() else (_rule_of_three(0.0, n) / n, 0.0)
        p_value = _t_p_value(estimate, v_items, v_seeds, n, n_seeds)
        test = f"{n_seeds} seeds x {n} items (the recipe: seed and item chance)"
        only_a = only_b = None if diff.any() else 0  # identical at every seed: bound them as one run

        def interval(level: float) -> tuple[float, float, float]:
            half = _half_width(v_items, v_seeds, n, n_seeds, level)
            return estimate - half, estimate + half, p_value

    def at(level: float) -> Comparison:
        low, high, p = interval(level)
        tost = (math.nan, math.nan)
        if margin is not None:
            tost = interval(2 * level - 1)[:2]
            if only_a is not None and only_b is not None and only_a + only_b < 10:  # too few to resample
                tost = _unconditional(tost, only_a, only_b, n, 2 * level - 1)
        detectable = _half_width(v_items, v_seeds, n, n_seeds, level, POWER) if n > 1 else math.nan
        return Comparison(names, accuracy(a, level), accuracy(b, level), estimate, low, high, p, test,
                          detectable, margin, tost, level, "", at)

    return at(confidence)


def holm(comparisons: Sequence[Comparison], confidence: float = 0.95) -> list[Comparison]:
    """Many verdicts from one experiment, the chance of any false "ahead" held at ``1 - confidence``.

    Holm's step-down: sorted by p-value, the k-th of m is judged on its interval at ``1 - alpha /
    (m - k + 1)``; after the first that cannot be called, none is (its interval is stretched to 0, and
    says so). p-values Holm-adjusted by statsmodels. A margin's TOST runs at the difference's level.
    """
    from statsmodels.stats.multitest import multipletests

    if not comparisons:
        return []
    _check(confidence)
    alpha, m = 1 - confidence, len(comparisons)
    adjusted = multipletests([c.p_value for c in comparisons], alpha=alpha, method="holm")[1]
    out: dict[int, Comparison] = {}
    stopped = False
    for k, i in enumerate(np.argsort([c.p_value for c in comparisons], kind="stable")):
        if not stopped:
            level = 1 - alpha / (m - k)
        redone = comparisons[i].at(level)
        family = f"Holm over {m}"
        stopped = stopped or not (redone.low > 0 or redone.high < 0)
        if stopped and (redone.low > 0 or redone.high < 0):  # after the first "can't tell", none is called
            redone = replace(redone, low=min(redone.low, 0.0), high=max(redone.high, 0.0))
            family += ", not called: a smaller p stopped the steps"
        out[i] = replace(redone, p_value=float(adjusted[i]), family=family)
    return [out[i] for i in range(m)]


def detectable_difference(disagreement_rate: float, n: int, power: float = POWER, confidence: float = 0.95) -> float:
    """The smallest true difference a paired test on ``n`` items finds with probability ``power``,
    when the arms disagree on a share ``disagreement_rate`` of the items (one run).

    >>> detectable_difference(0.10, 600)   # two models disagreeing on 60 of 600 items: ~0.036
    """
    if not 0 <= disagreement_rate <= 1 or n < 2:
        raise ValueError(f"Need a disagreement rate in [0, 1] and at least 2 items, not {disagreement_rate}, {n}.")
    return _half_width(_rule_of_three(disagreement_rate, n) / n, 0.0, n, 1, confidence, power)


def items_needed(difference: float, disagreement_rate: float, power: float = POWER, confidence: float = 0.95) -> int:
    """How many paired test items find a true ``difference`` with probability ``power``, when the
    arms disagree on a share ``disagreement_rate`` of them (seed variance needs more seeds, not items).

    >>> items_needed(0.02, 0.10)   # 2 points between models that disagree on 10% of items: ~1,960
    """
    from scipy.stats import norm

    if not 0 < abs(difference) <= 1 or not 0 < disagreement_rate <= 1:
        raise ValueError(f"Need a difference and a disagreement rate in (0, 1], not {difference}, {disagreement_rate}.")
    z = norm.ppf((1 + confidence) / 2) + norm.ppf(power)
    return math.ceil(z ** 2 * disagreement_rate / difference ** 2)
