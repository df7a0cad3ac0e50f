"""Calibration: how far to trust a model's confidence, and temperature scaling to repair it.

A model is *calibrated* when, of the predictions it makes with confidence 0.8, 80% are right.
The reliability diagram bins the test predictions by confidence and plots each bin's accuracy
against its mean confidence; the expected calibration error (ECE, Guo et al., 2017) is the
average gap, each bin weighted by its share of the items. On a few hundred items the plain gap
counts noise as error, so the ECE here subtracts each bin's noise first, and its interval's
coverage is measured by simulation (``bench/ece_coverage.py``; docs/design.md, Calibration).
Temperature scaling divides every logit by one number T, fitted on validation: the ranking, so the
accuracy, does not change.

    >>> T = fit_temperature(val_logits, val_labels)                      # on validation, never on test
    >>> print(ece(torch.softmax(test_logits / T, -1), test_labels))     # with its 95% interval
    >>> print(compare_ece(softmax(test_logits), softmax(test_logits / T), test_labels,
    ...                   names=("uncalibrated", "temperature-scaled")))     # paired, with a verdict
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch

from .checks import check_confidence, check_labels, check_number
from .intervals import RESAMPLES, Estimate, bootstrap
from .stats import Paired, check_names

__all__ = ["Reliability", "reliability", "ece", "compare_ece", "ECEComparison", "fit_temperature",
           "conformal_threshold", "prediction_sets"]

BINS = 10  # equal-width confidence bins, as in Guo et al.
CHUNK = 500  # bootstrap resamples computed at once: memory stays at CHUNK x items, whatever the test set


def _numpy(x: Any, dtype: Any) -> np.ndarray:
    """A tensor on any device (or an array, or a list) as a numpy array on the CPU."""
    return (x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)).astype(dtype)


def _scores(values: Any, labels: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (probs or logits, items x classes, finite) and their labels (class indices), checked."""
    v, n = _numpy(values, np.float64), int(np.prod(np.shape(labels)))
    if v.ndim != 2 or v.shape[0] != n or v.shape[1] < 2:
        wanted = "the logits, the model's outputs before the softmax" if what == "logits" else \
            "torch.softmax(logits, -1)"
        raise ValueError(f"{what} must be items x classes (2 or more), with one label per item: got {what} of shape "
                         f"{v.shape} and {n} labels. Pass {wanted}, not the predicted labels.")
    if not len(v):
        raise ValueError(f"{what} and labels are empty: there is nothing to measure. Pass the model's outputs on "
                         "at least one item (on a few hundred, for an interval worth reading).")
    bad = np.flatnonzero(~np.isfinite(v).all(1))
    if bad.size:
        raise ValueError(f"Row {bad[0]} of {what} is not finite ({v[bad[0]][:4].tolist()}...; {bad.size} such rows): "
                         "the model produced NaN or inf. Check its weights and inputs (a diverged run?) first.")
    return v, check_labels(labels, v.shape[1], "labels")


def _probabilities(v: np.ndarray) -> bool:
    """Whether every row is >= 0 and sums to 1 (to 1e-3): probabilities, not logits."""
    return bool(np.allclose(v.sum(1), 1.0, atol=1e-3) and v.min() >= 0)


def _top(probs: Any, labels: Any, what: str = "probs") -> tuple[np.ndarray, np.ndarray]:
    """(confidence of the top class, whether it is right), per item."""
    p, y = _scores(probs, labels, what)
    if not _probabilities(p):
        raise ValueError(f"Each row of {what} must sum to 1: pass torch.softmax(logits, -1), not the logits.")
    return p.max(1), (p.argmax(1) == y).astype(np.float64)


def _settings(bins: Any, confidence: Any = 0.95, resamples: Any = 1) -> None:
    check_number("bins", bins, 1, whole=True, advice="10 equal-width bins is the usual choice.")
    check_number("resamples", resamples, 1, whole=True, advice="10_000 is the default.")
    check_confidence(confidence)


def _bin_of(conf: np.ndarray, bins: int) -> np.ndarray:
    """Each confidence's bin: ``bins`` equal widths on [0, 1], a confidence of exactly 1 in the last."""
    return np.minimum((conf * bins).astype(int), bins - 1)


def _bins(conf: np.ndarray, correct: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (resamples x items) and bin: the count, the mean gap (right - confidence), and the
    squared gap with the sampling variance of its mean subtracted: an unbiased estimate of the bin's
    true squared gap (Kumar et al., 2019). Empty and one-item bins get 0."""
    rows = conf.shape[0]
    which = (_bin_of(conf, bins) + bins * np.arange(rows)[:, None]).ravel()
    gap = (correct - conf).ravel()

    def per_bin(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(which, weights, minlength=rows * bins).reshape(rows, bins).astype(float)

    count, total, squares = per_bin(None), per_bin(gap), per_bin(gap * gap)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        variance_of_mean = (squares / count - mean**2) / np.maximum(count - 1, 1)
        unbiased_square = np.where(count > 1, mean**2 - variance_of_mean, 0.0)
    return count, np.nan_to_num(mean), unbiased_square


def _ece_rows(conf: np.ndarray, correct: np.ndarray, bins: int) -> np.ndarray:
    """The noise-corrected ECE of each row of ``conf`` / ``correct`` (resamples x items), all at once.

    A bin's plain gap |mean(right - confidence)| counts the sampling noise of that mean as error, so a
    perfectly calibrated model scores above 0. Here each bin's gap is the square root of its unbiased
    squared gap (:func:`_bins`), floored at 0. That removes the upward bias near 0 and leans low where
    the gap is about the size of the noise (docs/design.md has both, measured).
    """
    count, _, square = _bins(conf, correct, bins)
    return (count * np.sqrt(np.maximum(square, 0.0))).sum(1) / conf.shape[1]


def _squared_rows(conf: np.ndarray, correct: np.ndarray, bins: int) -> np.ndarray:
    """The unbiased squared calibration error of each row: the bins' unbiased squared gaps, weighted by
    their share of the items. It can come out below 0 by chance; its expectation is the true value."""
    count, _, square = _bins(conf, correct, bins)
    return (count * square).sum(1) / conf.shape[1]


def _interval(value: float, draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """``value`` plus or minus the larger of the bootstrap's two tails.

    The percentile interval misses an ECE near 0 (every resample adds noise), its mirror image (the
    basic bootstrap) misses larger ones; the wider of the two covers both (``bench/ece_coverage.py``).
    """
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    half = max(value - low, high - value)
    return value - half, value + half


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: the items' mean confidence, their accuracy and their count (NaN where empty),
    and the (noise-corrected) ECE of them all."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float


def reliability(probs: Any, labels: Any, bins: int = BINS) -> Reliability:
    """The reliability diagram's numbers for ``probs`` (items x classes) against ``labels``.

    >>> r = reliability(torch.softmax(logits, -1), labels); r.accuracy - r.confidence
    """
    _settings(bins)
    conf, correct = _top(probs, labels)
    which = _bin_of(conf, bins)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, minlength=bins) / count
        acc = np.bincount(which, correct, minlength=bins) / count
    return Reliability(np.linspace(0, 1, bins + 1), mean_conf, acc, count.astype(int),
                       float(_ece_rows(conf[None], correct[None], bins)[0]))


def ece(probs: Any, labels: Any, bins: int = BINS, confidence: float = 0.95, resamples: int = RESAMPLES,
        seed: int = 0) -> Estimate:
    """The expected calibration error (noise-corrected per bin, see :func:`_ece_rows`) with a 95%
    bootstrap interval over the test items. To compare two models, use :func:`compare_ece` on the same
    items.

    >>> print(ece(probs, labels))            # the ECE [low, high] on n items
    """
    _settings(bins, confidence, resamples)
    return _ece(*_top(probs, labels), bins, confidence, resamples, seed)


def _ece(conf: np.ndarray, correct: np.ndarray, bins: int, confidence: float, resamples: int,
         seed: int) -> Estimate:
    value = float(_ece_rows(conf[None], correct[None], bins)[0])
    draws = bootstrap(lambda idx: _ece_rows(conf[idx], correct[idx], bins), len(conf), resamples, seed, CHUNK)
    low, high = _interval(value, draws, confidence)
    return Estimate(value, max(low, 0.0), high, len(conf))  # an error is never negative


@dataclass(frozen=True)
class ECEComparison(Paired):
    """Two sets of probabilities on the same items: each one's ECE with its interval (``a``, ``b``), and
    the verdict from the paired difference (A - B) of their unbiased squared calibration errors.

    >>> compare_ece(before, after, labels).verdict       # "B better calibrated", or "can't tell at this size"
    """

    @property
    def verdict(self) -> str:
        """The lower error is better: ``"<B> better calibrated"`` if the whole interval of A - B is above
        0, ``"<A> better calibrated"`` if below, else ``"can't tell at this size"``."""
        if self.high < 0:
            return f"{self.names[0]} better calibrated"
        if self.low > 0:
            return f"{self.names[1]} better calibrated"
        return "can't tell at this size"

    def __str__(self) -> str:
        return (f"ECE {self.names[0]} {self.a.value:.3f} vs {self.names[1]} {self.b.value:.3f}\n"
                f"  squared calibration error, difference {self.difference:+.4f} "
                f"[{self.low:+.4f}, {self.high:+.4f}]\n"
                f"  -> {self.verdict} (paired bootstrap over {self.a.n} items)")


def compare_ece(a_probs: Any, b_probs: Any, labels: Any, names: Sequence[str] = ("A", "B"), bins: int = BINS,
                confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> ECEComparison:
    """Two models' (or one model's before and after) calibration on the same items, *paired*.

    Each gets its :func:`ece`. The verdict comes from the difference of their *squared* calibration
    errors, whose per-bin estimate is unbiased (:func:`_bins`), so the difference is too; its interval
    is the same wider-tail bootstrap as :func:`ece`'s, on the same resampled items for both arms. The
    noise-corrected ECE leans low by different amounts for the two arms, so an interval of *its*
    difference misses the truth far more often (``bench/ece_coverage.py`` measures both).

    >>> print(compare_ece(before, after, labels, names=("uncalibrated", "temperature-scaled")))
    """
    _settings(bins, confidence, resamples)
    names = check_names(names)
    (ca, ka), (cb, kb) = _top(a_probs, labels, "a_probs"), _top(b_probs, labels, "b_probs")
    a, b = _ece(ca, ka, bins, confidence, resamples, seed), _ece(cb, kb, bins, confidence, resamples, seed)

    def difference(idx: np.ndarray) -> np.ndarray:  # the same resampled items for both arms
        return _squared_rows(ca[idx], ka[idx], bins) - _squared_rows(cb[idx], kb[idx], bins)

    value = float(_squared_rows(ca[None], ka[None], bins)[0] - _squared_rows(cb[None], kb[None], bins)[0])
    low, high = _interval(value, bootstrap(difference, len(ca), resamples, seed, CHUNK), confidence)
    return ECEComparison(names, a, b, value, float(low), float(high))


def fit_temperature(logits: Any, labels: Any) -> float:
    """The temperature T that minimises the cross-entropy of ``softmax(logits / T)`` on these items.

    Fit it on validation logits: fitted on the test set, the test ECE would no longer measure it.
    T > 1 softens an over-confident model, T < 1 sharpens an under-confident one.

    >>> T = fit_temperature(val_logits, val_labels); calibrated = torch.softmax(test_logits / T, -1)
    """
    from scipy.optimize import minimize_scalar

    v, y = _scores(logits, labels, "logits")
    if _probabilities(v):
        raise ValueError("Every row of logits is >= 0 and sums to 1: these are probabilities. Pass the logits, "
                         "the model's outputs before the softmax: fit_temperature(val_logits, val_labels).")
    z, y = torch.from_numpy(v), torch.from_numpy(y)

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(z / np.exp(log_t), y))

    low, high = np.log(0.05), np.log(20.0)
    best = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-5})
    if min(nll(low), nll(high)) <= best.fun + 1e-9:  # as good at a bound: the cross-entropy has no minimum inside
        raise ValueError(f"The best temperature is at the search's bound ({np.exp(best.x):.3g}): on these "
                         f"{len(y)} validation items the cross-entropy keeps falling (all right and ever more "
                         "confident, or all wrong). Fit it on more validation items, or on ones the model errs on.")
    return float(np.exp(best.x))


def conformal_threshold(probs: Any, labels: Any, coverage: float = 0.9) -> float:
    """Split conformal: the threshold on ``1 - p(true class)`` that ``coverage`` of new items stay under.

    The ``ceil((n + 1) * coverage)``-th smallest score of the ``n`` calibration items (held out from
    the model that scored them), or 1.0 (every class) when that rank is past ``n``. A new item from
    the same distribution has its true class in its set with probability at least ``coverage``.

    >>> q = conformal_threshold(val_probs, val_labels, 0.9); sets = prediction_sets(test_probs, q)
    """
    p, y = _scores(probs, labels, "probs")
    check_number("coverage", coverage, 0, 1, advice="0.9: the true class in the set 9 times in 10.")
    scores = 1 - p[np.arange(len(y)), y]
    rank = int(np.ceil((len(scores) + 1) * coverage))
    return float(np.sort(scores)[rank - 1]) if rank <= len(scores) else 1.0


def prediction_sets(probs: Any, threshold: float) -> np.ndarray:
    """Items x classes, True for every class whose ``1 - p`` is at most ``threshold``."""
    return 1 - _numpy(probs, np.float64) <= threshold
