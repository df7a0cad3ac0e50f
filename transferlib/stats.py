"""Honest comparisons: an accuracy with its interval, two arms compared on the same items, a
verdict read off the interval (with equivalence and power), and choices made on validation only.

    >>> a = evaluate(model_a, test_loader).correct         # one True/False per test item
    >>> b = evaluate(model_b, test_loader).correct         # the same items, in the same order
    >>> print(accuracy(a))                                  # 0.853 [0.825, 0.877] on 500 items
    >>> result = compare(a, b, names=("fine-tuned", "frozen"), margin=0.02)
    >>> result.verdict    # "fine-tuned ahead", "frozen ahead", "equivalent within ±0.020" or "can't tell..."
    >>> result.detectable                  # the smallest difference this test finds 80% of the time
    >>> best_C = choose([0.01, 0.1, 1.0], lambda C, val: score(C, val), val_set)   # refuses a test split

With several seeds, pass one row per seed (``correct[seed, item]``). The interval then covers what
a learner gets by running the *recipe* again: another seed and other test items. Each source of
chance gets its own Student t quantile, with the degrees of freedom of its own sample
(``seeds - 1`` and ``items - 1``): 3 seeds give an honest, wide interval. ``bench/stats_coverage.py``
measures it by simulation. Plain numpy and scipy underneath; Holm's correction from statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from .datasets import role_of

__all__ = ["Estimate", "Comparison", "accuracy", "compare", "holm", "detectable_difference", "items_needed",
           "choose", "RESAMPLES", "POWER"]

RESAMPLES = 10_000  # bootstrap resamples: the third decimal of an interval stops moving around here
POWER = 0.8         # the power at which a "can't tell" says what the test could have detected
T = TypeVar("T")


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

    ``margin`` (declared before the run, never after) adds equivalence: a TOST at the same level,
    i.e. the ``2 * confidence - 1`` interval inside ``±margin``. ``noninferior``: A is not worse than
    B by ``margin`` or more (the lower end of that interval is above ``-margin``).
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
    family: str = ""                # "Holm, 1 of 16" when the verdict is one of many
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
            raise ValueError("This comparison was not made by compare(); it cannot be recomputed.")
        return self._at(confidence)

    def __str__(self) -> str:
        p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"
        lines = [f"{self.names[0]} {self.a.value:.3f} vs {self.names[1]} {self.b.value:.3f}: "
                 f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}] -> {self.verdict}",
                 f"  {p}{', ' + self.family if self.family else ''}; {self.test}"]
        if self.margin is not None:
            lines.append(f"  margin ±{self.margin:.3f} (declared): {self.confidence * 2 - 1:.0%} interval "
                         f"[{self.tost[0]:+.3f}, {self.tost[1]:+.3f}]")
        if self.verdict.startswith(("can't", "equivalent")) and not math.isnan(self.detectable):
            lines.append(f"  this test could detect a difference of {self.detectable:.3f} or more "
                         f"({POWER:.0%} power)")
        return "\n".join(lines)


def _as_rows(correct: Any) -> np.ndarray:
    rows = np.atleast_2d(np.asarray(correct, dtype=float))
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"Expected one 0/1 value per test item (or one row per seed), got shape "
                         f"{np.shape(correct)}. Pass evaluate(model, loader).correct.")
    if not np.isin(rows, (0.0, 1.0)).all():
        raise ValueError("Correctness must be 0/1 (or True/False) per item: pass evaluate(...).correct, "
                         "not probabilities or labels.")
    return rows


def _variances(rows: np.ndarray) -> tuple[float, float]:
    """The variance of the grand mean from the test items and from the seeds, estimated apart:
    the spread of the per-item means (over seeds) / items, and of the per-seed means / seeds."""
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
        if df < 1:
            return 0.0
        return float(t.ppf((1 + confidence) / 2, df) + (t.ppf(power, df) if power else 0.0))

    return math.sqrt(q(n - 1) ** 2 * v_items + q(n_seeds - 1) ** 2 * v_seeds)


def _t_p_value(estimate: float, v_items: float, v_seeds: float, n: int, n_seeds: int) -> float:
    """The p-value that matches the interval: the level at which it just reaches 0."""
    from scipy.optimize import brentq

    if estimate == 0:
        return 1.0
    if v_items + v_seeds == 0:
        return 0.0
    def gap(p: float) -> float:
        return _half_width(v_items, v_seeds, n, n_seeds, 1 - p) - abs(estimate)
    if gap(1e-12) < 0:
        return 1e-12
    return float(brentq(gap, 1e-12, 1 - 1e-12, xtol=1e-10))


def accuracy(correct: Any, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """The accuracy of per-item correctness, with a ``confidence`` interval.

    One run: Wilson's score interval for a binomial proportion. The test items are a sample of all
    the items the model could meet; with ``n`` of them, the accuracy we measure is off from the true
    one by about ``2 * sqrt(p (1 - p) / n)`` (12 points on 34 photos, 3 points on 500 images).
    Several seeds (one row each, the same items): the interval covers another seed *and* other
    items (module docstring); with 3 seeds it is wide, because 3 seeds say little about a fourth.
    ``resamples`` and ``seed`` are kept for callers of the older bootstrap and are not used.

    >>> print(accuracy(evaluate(model, test_loader).correct))
    """
    from scipy.stats import binomtest

    rows = _as_rows(correct)
    n_seeds, n = rows.shape
    value = float(rows.mean())
    if n_seeds == 1:
        ci = binomtest(int(rows.sum()), n).proportion_ci(confidence, method="wilson")
        return Estimate(value, float(ci.low), float(ci.high), n)
    half = _half_width(*_variances(rows), n, n_seeds, confidence)
    return Estimate(value, max(0.0, value - half), min(1.0, value + half), n, n_seeds)


def _bootstrap_differences(diff: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Mean difference on ``resamples`` resamples of the items (one run)."""
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for start in range(0, resamples, 500):  # in chunks: 500 x 2,000 items stays a few MB
        size = min(500, resamples - start)
        out[start:start + size] = diff[rng.integers(0, diff.size, (size, diff.size))].mean(1)
    return out


def _exact_paired(only_a: int, only_b: int, n: int, confidence: float) -> tuple[float, float, float]:
    """One run: McNemar's exact p-value and the interval of the difference from the same test.

    Given the ``only_a + only_b`` items the arms disagree on, the share A wins has a Clopper-Pearson
    interval; the difference is ``(2 * share - 1) * disagreements / n``. That interval excludes 0
    exactly when the p-value is below ``1 - confidence`` (5 disagreements all won by A: p = 0.0625,
    and the interval reaches 0, where a bootstrap alone excludes it).
    """
    from scipy.stats import binomtest

    discordant = only_a + only_b
    if not discordant:
        return 0.0, 0.0, 1.0
    result = binomtest(only_a, discordant, 0.5)
    ci = result.proportion_ci(confidence, method="exact")
    scale = discordant / n
    return (2 * ci.low - 1) * scale, (2 * ci.high - 1) * scale, float(result.pvalue)


def compare(a_correct: Any, b_correct: Any, names: Sequence[str] = ("A", "B"), confidence: float = 0.95,
            resamples: int = RESAMPLES, seed: int = 0, margin: float | None = None) -> Comparison:
    """Compare two arms scored on the same test items, *paired*: each item counts once for both.

    Pairing removes the items both get right or both get wrong; only the items where they disagree
    carry information about which is better.

    - One run per arm: a claim about *these trained models*. The p-value is McNemar's exact test,
      and the interval holds both a paired bootstrap and the exact test's own interval
      (:func:`_exact_paired`), so the verdict never contradicts the p-value printed next to it.
    - Several seeds (``correct[seed, item]``, seed ``s`` of A paired with seed ``s`` of B): a claim
      about *the recipe*. The interval covers seed and item chance (module docstring), and the
      p-value is the level at which that interval reaches 0.

    ``margin``: an equivalence margin, declared before the run (see :class:`Comparison`).

    >>> print(compare(ft.correct, probe.correct, names=("fine-tuned", "probe"), margin=0.03))
    """
    a, b = _as_rows(a_correct), _as_rows(b_correct)
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
        draws = _bootstrap_differences(diff[0], resamples, seed)
        only_a, only_b = int((diff > 0).sum()), int((diff < 0).sum())
        rate = max((only_a + only_b) / n, min(1.0, 3 / n))  # no disagreement seen: at most ~3/n (rule of three)
        v_items, v_seeds = rate / n, 0.0
        test = f"McNemar exact, {only_a} vs {only_b} items only one arm got right (1 run: these models)"

        def interval(level: float) -> tuple[float, float, float]:
            tail = (1 - level) / 2
            low, high, p = _exact_paired(only_a, only_b, n, level)
            return min(float(np.quantile(draws, tail)), low), max(float(np.quantile(draws, 1 - tail)), high), p
    else:
        v_items, v_seeds = _variances(diff)
        p_value = _t_p_value(estimate, v_items, v_seeds, n, n_seeds)
        test = f"{n_seeds} seeds x {n} items (the recipe: seed and item chance)"

        def interval(level: float) -> tuple[float, float, float]:
            half = _half_width(v_items, v_seeds, n, n_seeds, level)
            return estimate - half, estimate + half, p_value

    detectable = _half_width(v_items, v_seeds, n, n_seeds, confidence, POWER)

    def at(level: float) -> Comparison:
        low, high, p = interval(level)
        tost = interval(2 * level - 1)[:2] if margin is not None else (math.nan, math.nan)
        return Comparison(names, accuracy(a, level), accuracy(b, level), estimate, low, high, p, test,
                          detectable, margin, tost, level, "", at)

    return at(confidence)


def holm(comparisons: Sequence[Comparison], confidence: float = 0.95) -> list[Comparison]:
    """Many verdicts from one experiment, with the chance of any false "ahead" held at ``1 - confidence``.

    Holm's step-down: sorted by p-value, the k-th comparison (of m) is judged on an interval at
    ``1 - alpha / (m - k + 1)``, until one cannot be called; it and all after it are judged at that
    level. The p-values printed are Holm-adjusted (statsmodels' ``multipletests``).

    >>> table = holm([compare(a, b), compare(a, c), compare(b, c), ...])
    """
    from statsmodels.stats.multitest import multipletests

    if not comparisons:
        return []
    alpha, m = 1 - confidence, len(comparisons)
    adjusted = multipletests([c.p_value for c in comparisons], alpha=alpha, method="holm")[1]
    out: list[Comparison | None] = [None] * m
    stopped = False
    for k, i in enumerate(np.argsort([c.p_value for c in comparisons], kind="stable")):
        if not stopped:
            level = 1 - alpha / (m - k)
        redone = comparisons[i].at(level)
        stopped = stopped or not (redone.low > 0 or redone.high < 0)
        if stopped and (redone.low > 0 or redone.high < 0):  # after the first "can't tell", none is called
            redone = replace(redone, low=min(redone.low, 0.0), high=max(redone.high, 0.0))
        out[i] = replace(redone, p_value=float(adjusted[i]), family=f"Holm over {m}")
    return [c for c in out if c is not None]


def detectable_difference(disagreement_rate: float, n: int, power: float = POWER, confidence: float = 0.95) -> float:
    """The smallest true difference a paired test on ``n`` items finds with probability ``power``,
    when the arms disagree on a share ``disagreement_rate`` of the items (one run).

    >>> detectable_difference(0.10, 600)   # two models disagreeing on 60 of 600 items: ~0.036
    """
    if not 0 <= disagreement_rate <= 1 or n < 2:
        raise ValueError(f"Need a disagreement rate in [0, 1] and at least 2 items, not {disagreement_rate}, {n}.")
    return _half_width(disagreement_rate / n, 0.0, n, 1, confidence, power)


def items_needed(difference: float, disagreement_rate: float, power: float = POWER, confidence: float = 0.95) -> int:
    """How many paired test items find a true ``difference`` with probability ``power``, when the
    arms disagree on a share ``disagreement_rate`` of them. Seeds add variance that more items do not
    remove: with several seeds, also run more seeds.

    >>> items_needed(0.02, 0.10)   # 2 points between models that disagree on 10% of items: ~1,960
    """
    from scipy.stats import norm

    if not 0 < abs(difference) <= 1 or not 0 < disagreement_rate <= 1:
        raise ValueError(f"Need a difference in (0, 1] and a disagreement rate in (0, 1], not {difference}, "
                         f"{disagreement_rate}.")
    z = norm.ppf((1 + confidence) / 2) + norm.ppf(power)
    return math.ceil(z ** 2 * disagreement_rate / difference ** 2)


def choose(options: Sequence[T], score: Callable[[T, Any], float], validation: Any) -> T:
    """The option with the best ``score(option, validation)``; the first one on a tie.

    Anything a comparison tunes (a learning rate, an epoch count, a block, C) is chosen on
    validation data, never on the test set: a test set used for choosing is no longer a fair
    measure of the choice. ``validation`` is refused if it is a test split (``load_dataset(...,
    "test")``, the second half of ``stratified_split``, or anything drawn from them). When the choice
    is the smallest or largest of three or more numbers, a note says so: the best value may lie
    beyond the grid, and the grid should be extended once.

    >>> lr = choose([1e-4, 3e-4, 1e-3], lambda lr, val: evaluate(train(lr), val).accuracy, val_loader)
    """
    role = role_of(validation)
    if role == "test":
        raise ValueError("choose() was given a test split to choose on. Hold out a validation split from the "
                         "training data (split_per_class or stratified_split of the training part) and choose "
                         "on that; score the chosen option on the test split once, at the end.")
    if not options:
        raise ValueError("choose() needs at least one option.")
    scores = [score(option, validation) for option in options]
    best = options[int(np.argmax(scores))]
    if at_edge(options, best):
        side = "largest" if best == max(options) else "smallest"  # type: ignore[type-var]
        print(f"note: choose() picked {best:g}, the {side} of {len(options)} values tried; "  # type: ignore[str-format]
              f"the best may lie beyond the grid.")
    return best


def at_edge(options: Sequence[Any], chosen: Any) -> bool:
    """Whether ``chosen`` is the smallest or largest of three or more numeric ``options``."""
    if len(options) < 3 or not all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options):
        return False
    return chosen in (min(options), max(options))
