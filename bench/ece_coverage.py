"""Bench: how often the intervals of ``tl.ece`` and ``tl.compare_ece`` hold the truth, by simulation.

    python bench/ece_coverage.py [--trials 300] [--items 170]

One model: a 6-class model states a top-class confidence c (uniform on [0.25, 1]) and is right
with probability c - shift, so its true ECE is ``shift`` in every bin. Each trial draws ``items``
predictions and checks whether each 95% interval holds ``shift``: the plain binned ECE's
percentile bootstrap, and ``tl.ece`` (noise-corrected, plus or minus the wider bootstrap tail).

Two models on the same items, paired: the truth is p (uniform on [0.3, 0.85]); arm A states p + a,
arm B states p + b, so A's true ECE is |a| and B's |b|, and their squared calibration errors a^2
and b^2. ``tl.compare_ece``'s interval should hold a^2 - b^2, and its verdict name an arm only
where they differ. For contrast, the same paired bootstrap on the noise-corrected ECE itself
(holding |a| - |b|).
Target: every interval holds the truth in at least 95% of trials; wrong verdicts at most 5%.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

import transferlib as tl
from transferlib.calibration import _bins, _ece_rows
from transferlib.intervals import bootstrap

CLASSES = 6


def as_probs(top: np.ndarray) -> np.ndarray:
    """Items x 6 probabilities whose top class is class 0, with confidence ``top``."""
    return np.column_stack([top, *[(1 - top) / (CLASSES - 1)] * (CLASSES - 1)])


def plain_percentile(conf: np.ndarray, right: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple:
    """The plain binned ECE's percentile bootstrap: each bin's |mean gap|, no noise correction."""
    idx = rng.integers(0, len(conf), size=(resamples, len(conf)))
    count, mean, _ = _bins(conf[idx], right[idx], 10)
    return np.quantile((count * np.abs(mean)).sum(1) / len(conf), [0.025, 0.975])


def ece_difference(p: np.ndarray, right: np.ndarray, a: float, b: float, idx: np.ndarray) -> np.ndarray:
    return _ece_rows(p[idx] + a, right[idx], 10) - _ece_rows(p[idx] + b, right[idx], 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--items", type=int, default=170)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    rng, n = np.random.default_rng(0), args.items
    print(f"{args.trials} trials of {n} items, 95% intervals")
    for shift in (0.0, 0.05, 0.1, 0.15):
        plain_hits = ours_hits = 0
        ours = []
        for trial in range(args.trials):
            conf = rng.uniform(0.25, 1.0, n)
            right = rng.uniform(size=n) < conf - shift
            labels = np.where(right, 0, 1)
            low, high = plain_percentile(conf, right.astype(float), args.resamples, rng)
            plain_hits += low <= shift <= high
            est = tl.ece(as_probs(conf), labels, resamples=args.resamples, seed=trial)
            ours_hits += est.low <= shift <= est.high
            ours.append(est.value)
        print(f"one model, true ECE {shift:.2f}: mean tl.ece {np.mean(ours):.3f}; interval holds it: "
              f"plain percentile {plain_hits / args.trials:.1%}, tl.ece {ours_hits / args.trials:.1%}")
    for a, b in ((0.1, 0.0), (0.05, -0.05), (0.0, 0.0), (0.15, 0.05)):
        hits = l1_hits = wrong = told = 0
        for trial in range(args.trials):
            p = rng.uniform(0.3, 0.85, n)
            right = rng.uniform(size=n) < p
            labels = np.where(right, 0, 1)
            result = tl.compare_ece(as_probs(p + a), as_probs(p + b), labels, resamples=args.resamples, seed=trial)
            hits += result.low <= a * a - b * b <= result.high
            said = result.verdict != "can't tell at this size"
            told += said
            wrong += said and (a * a == b * b or (result.difference > 0) != (a * a > b * b))
            l1 = np.quantile(bootstrap(partial(ece_difference, p, right.astype(float), a, b), n, args.resamples,
                                       trial), [0.025, 0.975])
            l1_hits += l1[0] <= abs(a) - abs(b) <= l1[1]
        print(f"two models, ECE {abs(a):.2f} vs {abs(b):.2f}: compare_ece's interval holds {a * a - b * b:+.4f} in "
              f"{hits / args.trials:.1%}, a verdict in {told / args.trials:.1%}, a wrong one in "
              f"{wrong / args.trials:.1%}; the ECE difference's interval holds {abs(a) - abs(b):+.2f} in "
              f"{l1_hits / args.trials:.1%}")

if __name__ == "__main__":
    main()
