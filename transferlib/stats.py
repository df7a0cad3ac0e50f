"""Honest comparisons: an accuracy with its interval, two models compared on the same items, and
choices made on validation data only.

    >>> a = evaluate(model_a, test_loader).correct         # one True/False per test item
    >>> b = evaluate(model_b, test_loader).correct         # the same items, in the same order
    >>> print(accuracy(a))                                  # 0.853 [0.825, 0.877] on 500 items
    >>> result = compare(a, b, names=("fine-tuned", "frozen"))
    >>> result.verdict              # "fine-tuned ahead", "frozen ahead" or "can't tell at this size"
    >>> best_C = choose([0.01, 0.1, 1.0], lambda C, val: score(C, val), val_set)   # refuses a test split

With several seeds, pass one row per seed (``correct[seed, item]``): the interval then covers
both the test items and the seeds. Plain numpy and scipy underneath.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from .datasets import role_of

__all__ = ["Estimate", "Comparison", "accuracy", "compare", "choose", "RESAMPLES"]

RESAMPLES = 10_000  # bootstrap resamples: the third decimal of an interval stops moving around here
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
    """Two arms scored on the same items: their accuracies, the difference A - B with its 95%
    interval, a p-value, and the verdict the interval supports."""

    names: tuple[str, str]
    a: Estimate
    b: Estimate
    difference: float
    low: float
    high: float
    p_value: float
    test: str

    @property
    def verdict(self) -> str:
        """``"<A> ahead"`` if the whole interval is above 0, ``"<B> ahead"`` if below, else
        ``"can't tell at this size"``."""
        if self.low > 0:
            return f"{self.names[0]} ahead"
        if self.high < 0:
            return f"{self.names[1]} ahead"
        return "can't tell at this size"

    def __str__(self) -> str:
        p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"
        return (f"{self.names[0]} {self.a.value:.3f} vs {self.names[1]} {self.b.value:.3f}: difference "
                f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}], {p} ({self.test}) -> {self.verdict}")


def _as_rows(correct: Any) -> np.ndarray:
    rows = np.atleast_2d(np.asarray(correct, dtype=float))
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"Expected one 0/1 value per test item (or one row per seed), got shape "
                         f"{np.shape(correct)}. Pass evaluate(model, loader).correct.")
    if not np.isin(rows, (0.0, 1.0)).all():
        raise ValueError("Correctness must be 0/1 (or True/False) per item: pass evaluate(...).correct, "
                         "not probabilities or labels.")
    return rows


def _bootstrap(rows: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], resamples: int,
               seed: int) -> np.ndarray:
    """``statistic`` on resamples of seeds (rows) and items (columns), the same items for every seed."""
    rng = np.random.default_rng(seed)
    n_seeds, n_items = rows.shape[-2:]
    out = np.empty(resamples)
    for start in range(0, resamples, 500):  # in chunks: 500 x 2,000 items stays a few MB
        size = min(500, resamples - start)
        items = rng.integers(0, n_items, (size, n_items))
        seeds = rng.integers(0, n_seeds, (size, n_seeds)) if n_seeds > 1 else np.zeros((size, 1), int)
        out[start:start + size] = statistic(rows, seeds, items)
    return out


def _mean_accuracy(rows: np.ndarray, seeds: np.ndarray, items: np.ndarray) -> np.ndarray:
    picked = rows[seeds[:, :, None], items[:, None, :]]  # (resamples, seeds, items)
    return picked.mean(axis=(1, 2))


def accuracy(correct: Any, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """The accuracy of per-item correctness, with a ``confidence`` interval for test-set sampling.

    One run: Wilson's score interval for a binomial proportion. The test items are a sample of all
    the items the model could meet; with ``n`` of them, the accuracy we measure is off from the true
    one by about ``2 * sqrt(p (1 - p) / n)`` (12 points on 34 photos, 3 points on 500 images), and
    the interval says so. Several seeds (one row each, the same items): a bootstrap that resamples
    seeds and items together, so the interval covers both kinds of chance.

    >>> print(accuracy(evaluate(model, test_loader).correct))
    """
    from scipy.stats import binomtest

    rows = _as_rows(correct)
    n_seeds, n = rows.shape
    value = float(rows.mean())
    if n_seeds == 1:
        ci = binomtest(int(rows.sum()), n).proportion_ci(confidence, method="wilson")
        return Estimate(value, float(ci.low), float(ci.high), n)
    draws = _bootstrap(rows, _mean_accuracy, resamples, seed)
    tail = (1 - confidence) / 2
    return Estimate(value, float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail)), n, n_seeds)


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
            resamples: int = RESAMPLES, seed: int = 0) -> Comparison:
    """Compare two arms scored on the same test items, *paired*: each item counts once for both.

    Pairing removes the items both get right or both get wrong; only the items where they disagree
    carry information about which is better. The interval of the difference comes from a paired
    bootstrap (the same resampled items for both arms; with several seeds, resampled seeds too). For
    one run the p-value is McNemar's exact test (among the items only one arm gets right, is the split
    further from 50/50 than chance allows?), and the interval is widened to hold the exact test's own
    interval (:func:`_exact_paired`): with few disagreements a bootstrap alone can exclude 0 where the
    exact test does not, and the verdict would contradict the p-value printed next to it.

    >>> print(compare(ft.correct, probe.correct, names=("fine-tuned", "probe")))
    """
    a, b = _as_rows(a_correct), _as_rows(b_correct)
    if a.shape != b.shape:
        raise ValueError(f"A paired comparison needs both arms on the same items (and seeds): got shapes "
                         f"{a.shape} and {b.shape}. Score both on the same test loader, in the same order.")
    names = (str(names[0]), str(names[1]))
    diff = a - b  # per seed and item: +1, 0 or -1
    tail = (1 - confidence) / 2
    draws = _bootstrap(diff, _mean_accuracy, resamples, seed)
    low, high = float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))
    if a.shape[0] == 1:
        only_a, only_b = int((diff > 0).sum()), int((diff < 0).sum())
        exact_low, exact_high, p = _exact_paired(only_a, only_b, diff.size, confidence)
        low, high = min(low, exact_low), max(high, exact_high)  # never "ahead" where McNemar's test is not
        test = f"McNemar exact, {only_a} vs {only_b} items only one arm got right"
    else:
        p = min(1.0, 2 * min(float((draws <= 0).mean()), float((draws >= 0).mean())))
        test = f"paired bootstrap over {a.shape[0]} seeds and {a.shape[1]} items"
    return Comparison(names, accuracy(a, confidence, resamples, seed), accuracy(b, confidence, resamples, seed),
                      float(diff.mean()), low, high, float(p), test)


def choose(options: Sequence[T], score: Callable[[T, Any], float], validation: Any) -> T:
    """The option with the best ``score(option, validation)``; the first one on a tie.

    Anything a comparison tunes (a learning rate, an epoch count, a block, C) is chosen on
    validation data, never on the test set: a test set used for choosing is no longer a fair
    measure of the choice. ``validation`` is refused if it is a test split (``load_dataset(...,
    "test")``, the second half of ``stratified_split``, or anything drawn from them).

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
    return options[int(np.argmax(scores))]
