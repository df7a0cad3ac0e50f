"""Honest comparisons: two arms compared on the same items, and a verdict read off the interval of
their difference (with equivalence, power, and Holm's correction for many verdicts at once).

    >>> a = evaluate(model_a, test_loader).correct         # one True/False per test item
    >>> b = evaluate(model_b, test_loader).correct         # the same items, in the same order
    >>> print(accuracy(a))                                  # 0.853 [0.825, 0.877] on 500 items
    >>> result = compare(a, b, names=("fine-tuned", "frozen"), margin=0.02)
    >>> result.verdict    # "fine-tuned ahead", "frozen ahead", "equivalent within ±0.020" or "can't tell..."
    >>> result.detectable                  # the smallest difference this test finds 80% of the time
    >>> table = holm([compare(a, b), compare(a, c), ...])   # many verdicts from one experiment

With several seeds, pass one row per seed (``correct[seed, item]``, seed ``s`` of A paired with seed
``s`` of B): the interval covers another seed *and* other items (a claim about the recipe). One arm's
accuracy with its interval, the bootstrap and the power calculations live in :mod:`intervals` and are
here too, so that a lesson calls ``tl.stats.accuracy`` beside ``tl.stats.compare``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .checks import check_confidence, check_correct, check_number
from .choosing import choose, choose_on_grid
from .intervals import (POWER, RESAMPLES, Estimate, accuracy, bootstrap, detectable_difference, half_width,
                        items_needed, rule_of_three, variances)

__all__ = ["Estimate", "Paired", "Comparison", "accuracy", "compare", "holm", "detectable_difference",
           "items_needed", "choose", "choose_on_grid", "bootstrap", "check_names", "RESAMPLES", "POWER"]


@dataclass(frozen=True)
class Paired:
    """Two arms measured on the same items: each one's estimate, and the difference A - B with its
    interval. :class:`Comparison` (accuracy) and ``calibration.ECEComparison`` each add a verdict.

    >>> p = compare(a, b); p.names, p.a, p.b, p.difference, p.low, p.high
    """

    names: tuple[str, str]
    a: Estimate
    b: Estimate
    difference: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison(Paired):
    """Two arms scored on the same items: their accuracies, the difference A - B with its interval,
    a p-value, the verdict the interval supports, and the smallest difference the test could detect.

    ``margin`` (declared before the run) adds equivalence, a TOST: the ``2 * confidence - 1`` interval
    inside ``±margin``; and ``noninferior``: that interval's lower end above ``-margin``.

    >>> print(compare(a, b, names=("fine-tuned", "frozen"), margin=0.02))
    """

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


def check_names(names: Any) -> tuple[str, str]:
    """The two arms' names as strings, or an error that says what to pass.

    >>> check_names(("fine-tuned", "frozen"))      # ('fine-tuned', 'frozen'); "AB" is refused
    """
    if isinstance(names, str) or not hasattr(names, "__len__") or len(names) != 2:
        raise ValueError(f"names needs one name per arm, two in all, like ('fine-tuned', 'frozen'); got {names!r}.")
    return str(names[0]), str(names[1])


def _t_p_value(estimate: float, v_items: float, v_seeds: float, n: int, n_seeds: int) -> float:
    """The p-value that matches the interval: the level at which it just reaches 0."""
    from scipy.optimize import brentq

    if estimate == 0 or v_items + v_seeds == 0:
        return 1.0 if estimate == 0 else 0.0
    gap = lambda p: half_width(v_items, v_seeds, n, n_seeds, 1 - p) - abs(estimate)  # noqa: E731
    return 1e-12 if gap(1e-12) < 0 else float(brentq(gap, 1e-12, 1 - 1e-12, xtol=1e-10))


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
    check_confidence(confidence)
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not 0 < margin < 1):
        raise ValueError(f"margin is a difference in accuracy, between 0 and 1 (0.02 = 2 points), not {margin!r}.")
    check_number("resamples", resamples, 1, whole=True, advice="10_000 is the default.")
    names = check_names(names)
    a, b = check_correct(a_correct), check_correct(b_correct)
    if a.shape != b.shape:
        raise ValueError(f"A paired comparison needs both arms on the same items (and seeds): got shapes "
                         f"{a.shape} and {b.shape}. Score both on the same test loader, in the same order.")
    diff = a - b  # per seed and item: +1, 0 or -1
    n_seeds, n = diff.shape
    estimate = float(diff.mean())
    if n_seeds == 1:
        draws = bootstrap(lambda idx: diff[0][idx].mean(1), n, resamples, seed)
        only_a, only_b = int((diff > 0).sum()), int((diff < 0).sum())
        v_items, v_seeds = rule_of_three((only_a + only_b) / n, n) / n, 0.0
        test = f"McNemar exact: {only_a} vs {only_b} items only one got right (1 run: these models)"

        def interval(level: float) -> tuple[float, float, float]:
            tail = (1 - level) / 2
            low, high, p = _exact_paired(only_a, only_b, n, level)
            return min(float(np.quantile(draws, tail)), low), max(float(np.quantile(draws, 1 - tail)), high), p
    else:
        v_items, v_seeds = variances(diff) if diff.any() else (rule_of_three(0.0, n) / n, 0.0)
        p_value = _t_p_value(estimate, v_items, v_seeds, n, n_seeds)
        test = f"{n_seeds} seeds x {n} items (the recipe: seed and item chance)"
        only_a = only_b = None if diff.any() else 0  # identical at every seed: bound them as one run

        def interval(level: float) -> tuple[float, float, float]:
            half = half_width(v_items, v_seeds, n, n_seeds, level)
            return estimate - half, estimate + half, p_value

    def at(level: float) -> Comparison:
        low, high, p = interval(level)
        tost = (math.nan, math.nan)
        if margin is not None:
            tost = interval(2 * level - 1)[:2]
            if only_a is not None and only_b is not None and only_a + only_b < 10:  # too few to resample
                tost = _unconditional(tost, only_a, only_b, n, 2 * level - 1)
        if n < 2:
            detectable = math.nan
        elif n_seeds == 1:     # one run: a true difference d also makes the arms disagree on d of the items
            detectable = detectable_difference((only_a + only_b) / n, n, POWER, level)
        else:
            detectable = half_width(v_items, v_seeds, n, n_seeds, level, POWER)
        return Comparison(names, accuracy(a, level), accuracy(b, level), estimate, low, high, p, test,
                          detectable, margin, tost, level, "", at)

    return at(confidence)


def holm(comparisons: Sequence[Comparison], confidence: float = 0.95) -> list[Comparison]:
    """Many verdicts from one experiment, the chance of any false "ahead" held at ``1 - confidence``.

    Holm's step-down: sorted by p-value, the k-th of m is judged on its interval at ``1 - alpha /
    (m - k + 1)``; after the first that cannot be called, none is (its interval is stretched to 0, and
    says so). p-values Holm-adjusted by statsmodels. A margin's TOST runs at the difference's level.

    >>> for c in holm([compare(a, b), compare(a, c)]): print(c)     # each says "Holm over 2"
    """
    from statsmodels.stats.multitest import multipletests

    check_confidence(confidence)
    wrong = [f"item {i} ({type(c).__name__})" for i, c in enumerate(comparisons)
             if not isinstance(c, Comparison) or c._at is None]
    if wrong:
        raise TypeError(f"holm() recomputes each verdict at a stricter level, so it takes what compare() returns; "
                        f"{wrong[0]} was not made by compare(). Pass [compare(a, b), compare(a, c), ...].")
    if not comparisons:
        return []
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
