"""The engine :func:`~transferlib.tryout.try_strategies` runs for photos (:mod:`tryphotos`) and texts
(:mod:`trytexts`) alike: strategies (:class:`Arm`) tested by nested cross-validation, other splits into
folds as the time budget allows, the honest pick, the choice of strategy nested too, a temperature and
prediction sets measured out of fold, and the :class:`TryReport` that holds it all.

A few hundred items leave no test set to spare: each is tested once by nested cross-validation
(the outer folds test; inside each outer training fold ``fit_probe`` chooses ``C``), with copies and
near twins in one fold, once per split into folds (``splits``: the intervals cover the split too).
Strategies are compared paired on the same items and splits; the pick is the cheapest shown
non-inferior to the best within a margin declared first. Lesson 8 does it by hand.

    >>> logits, inner, Cs, heads = nested_cv(x, y, outer_folds(y, group, 5, seed=0), classes, group)
    >>> best, pick, comparisons = choose(arms, margin=0.03)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import stats
from .audit import NEAR
from .calibration import conformal_threshold, ece, fit_temperature, prediction_sets
from .probing import PROBE_CS, fit_probe

__all__ = ["Arm", "TryReport", "nested_cv", "outer_folds", "logit_rows", "choose", "more_splits", "conclude"]

DOUBTFUL = 12      # photos listed to check by eye: the lowest label quality (cleanlab's self-confidence)


@dataclass
class Arm:
    """One strategy by nested cross-validation: correctness per split and photo; the first split's probes."""

    name: str
    arch: str
    correct: np.ndarray           # splits x photos: True where the outer fold that held the photo out got it right
    logits: np.ndarray            # photos x classes, out of fold (the first split)
    inner: np.ndarray             # splits x outer folds: the inner cross-validation score at the C each fold chose
    Cs: list[float]               # the C each outer fold of the first split chose
    heads: list[tuple[np.ndarray, np.ndarray]]  # those folds' probes, each as one linear layer (W, b) on the features
    gflops: float                 # per photo, counted (torch.utils.flop_counter): the cost the pick ranks by
    ms_per_image: float           # reading, preprocessing and the network, per photo at batch 16, this machine
    megabytes: float              # the network's weights, float32
    seconds: float                # features and the nested cross-validations, this run
    about: str = "pretrained on ImageNet, frozen"   # what the model card says of the network
    grid: tuple[float, ...] = PROBE_CS                # the values of C each fold chose from

    @property
    def accuracy(self) -> stats.Estimate:      # over photos (Wilson's interval), and splits where there are several
        return stats.accuracy(self.correct)


@dataclass
class TryReport:
    """What :func:`try_strategies` found. ``print(report)`` shows it; :mod:`handover` writes it out."""

    data: Any                            # the readable photos (ImageFiles), or the texts (TextDataset)
    counts: dict[str, int]
    unreadable: list[str]                # files with an image's name that PIL cannot decode
    duplicates: list[list[int]]          # groups of identical files
    near: list[tuple[int, int, int]]     # pairs of near twins, with their hashes' distance in bits
    fold: np.ndarray                     # the outer fold that tested each photo, in the first split
    arms: list[Arm]
    skipped: dict[str, str]              # strategy -> why it did not run
    comparisons: dict[str, stats.Comparison]  # arm name -> the arm against the best
    best: Arm
    pick: Arm
    margin: float
    chosen_inside: stats.Estimate        # the accuracy of the whole procedure, the choice of strategy included
    flagged: list[int]                   # the photos cleanlab's find_label_issues flags, most doubtful first
    doubtful: list[int]                  # the DOUBTFUL photos whose label the held-out model believes least
    temperature: float                   # fitted on every photo's out-of-fold logits (the saved model's)
    calibration: stats.Estimate          # the ECE of held-out photos, temperature from the other half
    coverage: float                      # the prediction sets' target
    threshold: float                     # the conformal threshold on 1 - p(class), from every photo
    covered: stats.Estimate              # the coverage measured on each half, calibrated on the other half
    set_size: float                      # the sets' mean size, measured the same way
    held_probs: np.ndarray               # the pick's out-of-fold probabilities, calibrated on the other half
    seconds: float                       # this run, features read from the cache where they were
    budget: float
    notes: list[str] = field(default_factory=list)
    near_rule: str = f"difference hashes within {NEAR} of 64 bits"
    unit: str = "photo"                  # what the data is made of: "photo" or "text"
    source: str = ""                     # the folder or file read, as the report names it
    seed: int = 0                        # the first split's; the others take seed + 1, seed + 2...
    final: tuple[Any, Any] | None = None  # (the model handed over: the pick's fold probes averaged, its weights)
    files: dict[str, Path] = field(default_factory=dict)

    def __str__(self) -> str:
        from .handover import summary
        return summary(self)


def _linear(probe: Any, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A probe (standardise, then logistic regression) as one linear layer on the raw features: W (x - mean)
    / scale + b = (W / scale) x + (b - W mean / scale). Two classes: one row d, as the logits [0, d]."""
    w = probe[-1].coef_ / probe[0].scale_
    return logit_rows(w, probe[-1].intercept_ - (w * probe[0].mean_).sum(1), classes)


def logit_rows(w: np.ndarray, b: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear model's (W, b) with one row per class: scikit-learn gives two classes one row d, here [0, d].

    >>> w, b = logit_rows(lr.coef_, lr.intercept_, len(classes))
    """
    return (np.vstack([np.zeros_like(w), w]), np.r_[0.0, b]) if classes == 2 else (w, b)


def nested_cv(x: np.ndarray, y: np.ndarray, folds: list, classes: list[str], groups: np.ndarray,
               unit: str = "photo", grid: tuple[float, ...] = PROBE_CS) -> tuple[np.ndarray, list, list, list]:
    """Out-of-fold logits, and each outer fold's inner score, C and probe (``fit_probe`` chooses C inside,
    with twins in one inner fold too), for features ``x``; ``grid``: the values of C to choose from.

    >>> logits, inner, Cs, heads = nested_cv(x, y, outer_folds(y, group, 5, seed=0), classes, group)
    """
    logits, inner, Cs, heads = np.zeros((len(y), len(classes))), [], [], []
    for n, (train, test) in enumerate(folds, start=1):
        try:
            probe = fit_probe((x[train], y[train]), groups=groups[train], Cs=grid)
        except ValueError:
            few = [c for i, c in enumerate(classes) if len(set(groups[train][y[train] == i])) < 2]
            raise ValueError(f"Outer fold {n}'s training {unit}s hold fewer than 2 of {', '.join(few)} once copies "
                             f"and twins are kept together: add {unit}s of that class.") from None
        w, b = _linear(probe, len(classes))
        logits[test] = x[test] @ w.T + b
        inner.append(probe.val_scores[probe.C])
        Cs.append(probe.C)
        heads.append((w, b))
    return logits, np.array(inner), Cs, heads


def outer_folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list:
    """``k`` outer folds, stratified, each group (an item, its copies and near twins) in one fold.

    >>> for train, test in outer_folds(y, group, 5, seed=0): ...
    """
    from sklearn.model_selection import StratifiedGroupKFold
    return list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(y, y, groups))


def choose(arms: list[Arm], margin: float) -> tuple[Arm, Arm, dict[str, stats.Comparison]]:
    """(the best, the pick, each other arm against the best): the best accuracy, a tie going to the cheaper;
    the pick is the cheapest arm that is the best or shown non-inferior to it within ``margin``."""
    best = max(arms, key=lambda a: (a.correct.mean(), -a.gflops))
    short = {a.name: a.name.split(",")[0] for a in arms}       # "EfficientNet-Lite0 ahead" fits a line
    comparisons = {a.name: stats.compare(a.correct, best.correct, (short[a.name], short[best.name]), margin=margin)
                   for a in arms if a is not best}
    pick = min((a for a in arms if a is best or comparisons[a.name].noninferior), key=lambda a: (a.gflops, a.megabytes))
    return best, pick, comparisons


def more_splits(arms: list[Arm], cv: Any, y: np.ndarray, groups: np.ndarray, folds: list, splits: int, seed: int,
                need: float, left: float, notes: list[str]) -> None:
    """Other splits into folds (seeds ``seed + 1``...), while ``need`` seconds each fit in ``left``: each
    arm's ``correct`` and ``inner`` gain a row; ``cv(arm, split)`` gives an arm's (out-of-fold logits, inner)."""
    stop = time.perf_counter() + left
    for s in range(1, splits):
        if time.perf_counter() + need > stop:
            notes.append(f"{s} of the {splits} splits into folds asked for: another needs about {need:.0f} s, "
                         f"{max(stop - time.perf_counter(), 0):.0f} s were left")
            break
        split, runs = outer_folds(y, groups, len(folds[0]), seed + s), []
        try:
            for arm in arms:
                t = time.perf_counter()
                logits, inner = cv(arm, split)
                runs.append((logits.argmax(1) == y, inner, time.perf_counter() - t))
        except ValueError as err:   # this split left a class too few items in a training fold
            notes.append(f"{s} of the {splits} splits into folds asked for: with seed {seed + s}, {err}")
            break
        folds.append(split)
        for arm, (right, inner, seconds) in zip(arms, runs):
            arm.correct, arm.inner = np.vstack([arm.correct, right]), np.vstack([arm.inner, inner])
            arm.seconds += seconds


def conclude(data: Any, arms: list[Arm], folds: list, groups: np.ndarray, margin: float, coverage: float, seed: int,
             start: float, budget: float, notes: list[str], out: str | Path | None, final: Any, **audit: Any
             ) -> TryReport:
    """The pick, the choice nested too, calibration, sets, cleanlab's candidates; the files with ``out``.
    ``final(pick)`` builds the model handed over; ``audit``: the report's audit fields."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.array(data.targets)
    best, pick, comparisons = choose(arms, margin)
    chosen, fold = np.zeros_like(best.correct), np.zeros(len(y), int)  # the choice nested too: each outer
    for s, split in enumerate(folds):                                   # fold picks by its inner score
        for n, (_, test) in enumerate(split):
            chosen[s, test] = max(arms, key=lambda a: (a.inner[s, n], -a.gflops)).correct[s, test]
    for n, (_, test) in enumerate(folds[0]):
        fold[test] = n
    for arm in arms:              # said, not fixed: a wider grid was not tried
        edge = sum(C in (arm.grid[0], arm.grid[-1]) for C in arm.Cs)
        if 2 * edge > len(arm.Cs):
            notes.append(f"{arm.name.split(',')[0]} chose C on the edge of its grid ({arm.grid[0]:g} to "
                         f"{arm.grid[-1]:g}) in {edge} of the first split's {len(arm.Cs)} folds; a wider grid was "
                         "not tried")
    cal = _calibrate(pick.logits, y, groups, coverage, seed)
    notes += [cal["note"]] if cal["note"] else []
    flagged = find_label_issues(y, cal["held_probs"], return_indices_ranked_by="self_confidence")
    counts = {c: int((y == i).sum()) for i, c in enumerate(data.classes)}
    report = TryReport(data=data, counts=counts, fold=fold, arms=arms, comparisons=comparisons, best=best, pick=pick,
                       margin=margin, chosen_inside=stats.accuracy(chosen), flagged=[int(i) for i in flagged],
                       doubtful=[int(i) for i in np.argsort(get_label_quality_scores(y, cal["held_probs"]))[:DOUBTFUL]],
                       temperature=cal["temperature"], calibration=ece(cal["held_probs"], y), coverage=coverage,
                       threshold=cal["threshold"], covered=cal["covered"], set_size=cal["set_size"],
                       held_probs=cal["held_probs"], seconds=time.perf_counter() - start,
                       budget=budget, notes=notes, final=final(pick), seed=seed, **audit)
    if out is not None:               # the files are written after the clock stops: not counted
        from .handover import write

        report.files = write(report, Path(out))
    return report


def _temperature(logits: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    try:
        return fit_temperature(logits, y), ""
    except ValueError as err:         # e.g. every photo right: the cross-entropy has no minimum
        return 1.0, f"temperature not fitted ({str(err).split(':')[0]}); 1.0 kept"


def _calibrate(logits: np.ndarray, y: np.ndarray, groups: np.ndarray, coverage: float, seed: int) -> dict[str, Any]:
    """Temperature and conformal threshold from every photo (what the saved model uses), and what they
    are worth measured on held-out photos: each half (twins in one) is calibrated on the other half."""
    def softmax(z: np.ndarray, t: float) -> np.ndarray:
        return torch.softmax(torch.from_numpy(z / t), 1).numpy()
    halves = np.isin(groups, np.random.default_rng(seed).permutation(np.unique(groups))[::2])  # twins together
    covered, held_probs, sizes = np.zeros(len(y), bool), np.zeros_like(logits), np.zeros(len(y))
    for fit_on in (halves, ~halves):
        held, t = ~fit_on, _temperature(logits[fit_on], y[fit_on])[0]
        held_probs[held] = softmax(logits[held], t)
        sets = prediction_sets(held_probs[held], conformal_threshold(softmax(logits[fit_on], t), y[fit_on], coverage))
        covered[held], sizes[held] = sets[np.arange(held.sum()), y[held]], sets.sum(1)
    temperature, note = _temperature(logits, y)
    threshold = conformal_threshold(softmax(logits, temperature), y, coverage)
    return {"temperature": temperature, "note": note, "held_probs": held_probs, "covered": stats.accuracy(covered),
            "set_size": float(sizes.mean()), "threshold": threshold}
