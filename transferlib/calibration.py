"""Calibration: how far to trust a model's confidence, and temperature scaling to repair it.

A model is *calibrated* when, of the predictions it makes with confidence 0.8, 80% are right.
The reliability diagram bins the test predictions by confidence and plots each bin's accuracy
against its mean confidence; the expected calibration error (ECE, Guo et al., 2017) is the
average gap, each bin weighted by its share of the items. On a few hundred items the plain gap is
inflated by noise, so the ECE here is debiased per bin (Kumar et al., 2019), and its interval is
checked by simulation (docs/design.md, Calibration). Temperature scaling divides every
logit by one number T, fitted on validation: the ranking, so the accuracy, does not change.

    >>> T = fit_temperature(val_logits, val_labels)                      # on validation, never on test
    >>> print(ece(torch.softmax(test_logits / T, -1), test_labels))     # with its 95% interval
    >>> print(compare_ece(softmax(test_logits), softmax(test_logits / T), test_labels,
    ...                   names=("uncalibrated", "temperature-scaled")))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch

from .stats import RESAMPLES, Estimate

__all__ = ["Reliability", "reliability", "ece", "compare_ece", "ECEComparison", "fit_temperature"]

BINS = 10  # equal-width confidence bins, as in Guo et al.


def _top(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """(confidence of the top class, whether it is right), per item."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"probs must be items x classes with one label per item: got probs of shape {p.shape} "
                         f"and {len(y)} labels. Pass softmax(logits, -1), not the logits or the predicted labels.")
    if not np.allclose(p.sum(1), 1.0, atol=1e-3) or p.min() < 0:
        raise ValueError("Each row of probs must sum to 1: pass torch.softmax(logits, -1), not the logits.")
    return p.max(1), (p.argmax(1) == y).astype(np.float64)


def _ece_rows(conf: np.ndarray, correct: np.ndarray, bins: int) -> np.ndarray:
    """The debiased ECE of each row of ``conf`` / ``correct`` (resamples x items), all rows at once.

    In each bin the gap is the mean of (right - confidence). Its absolute value is biased upwards:
    noise alone makes it positive (a perfectly calibrated model scores about 0.07 on 170 items). As
    in Kumar et al. (2019), the bin's squared gap is debiased by subtracting the sampling variance of
    its mean; the square root of what is left (at least 0) is the bin's gap.
    """
    rows, n = conf.shape
    which = (np.minimum((conf * bins).astype(int), bins - 1) + bins * np.arange(rows)[:, None]).ravel()
    gap = (correct - conf).ravel()

    def per_bin(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(which, weights, minlength=rows * bins).reshape(rows, bins).astype(float)

    count, total, squares = per_bin(None), per_bin(gap), per_bin(gap * gap)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        variance_of_mean = (squares / count - mean**2) / np.maximum(count - 1, 1)
        debiased = np.where(count > 1, np.maximum(mean**2 - variance_of_mean, 0.0), 0.0)
    return (count * np.sqrt(debiased)).sum(1) / n


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(value: float, draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """``value`` plus or minus the larger of the bootstrap's two tails.

    Neither the percentile interval nor its mirror image (the basic bootstrap) covers an ECE near 0 and
    one near 0.15 alike; the wider of the two does (coverage 94-97% in docs/design.md's simulation).
    """
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    half = max(value - low, high - value)
    return value - half, value + half


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: the items' mean confidence, their accuracy and their count (NaN where empty),
    and the (debiased) ECE of them all."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float


def reliability(probs: Any, labels: Any, bins: int = BINS) -> Reliability:
    """The reliability diagram's numbers for ``probs`` (items x classes) against ``labels``.

    >>> r = reliability(torch.softmax(logits, -1), labels); r.accuracy - r.confidence
    """
    conf, correct = _top(probs, labels)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, minlength=bins) / count
        acc = np.bincount(which, correct, minlength=bins) / count
    return Reliability(np.linspace(0, 1, bins + 1), mean_conf, acc, count.astype(int),
                       float(_ece_rows(conf[None], correct[None], bins)[0]))


def ece(probs: Any, labels: Any, bins: int = BINS, confidence: float = 0.95, resamples: int = RESAMPLES,
        seed: int = 0) -> Estimate:
    """The expected calibration error (debiased per bin, see :func:`_ece_rows`) with a 95% bootstrap
    interval over the test items. To compare two models, use :func:`compare_ece` on the same items.

    >>> print(ece(probs, labels))            # the ECE [low, high] on n items
    """
    conf, correct = _top(probs, labels)
    value = float(_ece_rows(conf[None], correct[None], bins)[0])
    idx = _resamples(len(conf), resamples, seed)
    low, high = _interval(value, _ece_rows(conf[idx], correct[idx], bins), confidence)
    low = max(low, 0.0)  # an error is never negative
    return Estimate(value, low, high, len(conf))


@dataclass(frozen=True)
class ECEComparison:
    """The ECE of two sets of probabilities on the same items, and A's ECE minus B's with its interval."""

    names: tuple[str, str]
    a: Estimate
    b: Estimate
    difference: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """Lower ECE is better: ``"<A> better calibrated"`` if the whole interval is below 0, and so on."""
        if self.high < 0:
            return f"{self.names[0]} better calibrated"
        if self.low > 0:
            return f"{self.names[1]} better calibrated"
        return "can't tell at this size"

    def __str__(self) -> str:
        return (f"ECE {self.names[0]} {self.a.value:.3f} vs {self.names[1]} {self.b.value:.3f}: difference "
                f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (paired bootstrap over {self.a.n} "
                f"items) -> {self.verdict}")


def compare_ece(a_probs: Any, b_probs: Any, labels: Any, names: Sequence[str] = ("A", "B"), bins: int = BINS,
                confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> ECEComparison:
    """Two models' (or one model's before and after) ECE on the same items, *paired*: every bootstrap
    resample draws the same items for both, so the interval of the difference holds test sampling only once.

    >>> print(compare_ece(before, after, labels, names=("uncalibrated", "temperature-scaled")))
    """
    (ca, ka), (cb, kb) = _top(a_probs, labels), _top(b_probs, labels)
    a, b = ece(a_probs, labels, bins, confidence, resamples, seed), ece(b_probs, labels, bins, confidence, resamples,
                                                                       seed)
    idx = _resamples(len(ca), resamples, seed)
    draws = _ece_rows(ca[idx], ka[idx], bins) - _ece_rows(cb[idx], kb[idx], bins)
    low, high = _interval(a.value - b.value, draws, confidence)
    return ECEComparison((str(names[0]), str(names[1])), a, b, a.value - b.value, low, high)


def fit_temperature(logits: Any, labels: Any) -> float:
    """The temperature T that minimises the cross-entropy of ``softmax(logits / T)`` on these items.

    Fit it on validation logits: fitted on the test set, the test ECE would no longer measure it.
    T > 1 softens an over-confident model, T < 1 sharpens an under-confident one.

    >>> T = fit_temperature(val_logits, val_labels); calibrated = torch.softmax(test_logits / T, -1)
    """
    from scipy.optimize import minimize_scalar

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"logits must be items x classes with one label per item: got {tuple(z.shape)} and "
                         f"{len(y)} labels.")

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(z / np.exp(log_t), y))

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                           options={"xatol": 1e-5})  # the cross-entropy is convex in 1 / T
    return float(np.exp(best.x))
