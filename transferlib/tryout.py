"""Your own photos, end to end: audit them, try the strategies that fit a time budget under the
course's protocol, pick honestly, and hand over the pick (:mod:`handover` writes the files).

    >>> report = try_strategies("my_photos", minutes=5, out="my_model")
    >>> print(report)         # the audit, each strategy's accuracy with its interval, the pick
    $ python -m transferlib try my_photos --minutes 5 --out my_model

A few hundred photos leave no test set to spare: each is tested once by nested cross-validation
(the outer folds test; inside each outer training fold ``fit_probe`` chooses ``C``), with copies and
near twins in one fold, once per split into folds (``splits``: the intervals cover the split too).
Strategies are compared paired on the same photos and splits; the pick is the cheapest shown
non-inferior to the best within a margin declared first. Lesson 8 does it by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import stats
from .calibration import conformal_threshold, ece, fit_temperature, prediction_sets
from .devices import pick_device
from .features import cached_features
from .heads import build_classifier, linear_layers
from .probing import fit_probe
from .audit import NEAR, readable, twins
from .transforms import image_transform
from .yourdata import ImageFiles, load_image_folder

__all__ = ["try_strategies", "TryReport", "Arm", "choose", "STRATEGIES"]

STRATEGIES = {"MobileNetV2, frozen + probe": "mobilenet_v2", "EfficientNet-Lite0, frozen + probe": "efficientnet_lite0"}
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

    @property
    def accuracy(self) -> stats.Estimate:      # over photos (Wilson's interval), and splits where there are several
        return stats.accuracy(self.correct)


@dataclass
class TryReport:
    """What :func:`try_strategies` found. ``print(report)`` shows it; :mod:`handover` writes it out."""

    data: ImageFiles                     # the readable photos
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
    near_bits: int = NEAR
    seed: int = 0                        # the first split's; the others take seed + 1, seed + 2...
    final: tuple[Any, Any] | None = None  # (the model handed over: the pick's fold probes averaged, its weights)
    files: dict[str, Path] = field(default_factory=dict)

    def __str__(self) -> str:
        from .handover import summary
        return summary(self)


def _cost(backbone: torch.nn.Module, data: ImageFiles, device: torch.device) -> tuple[float, float]:
    """GFLOPs per photo, counted, and milliseconds per photo (read, preprocessed, run) at batch 16."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            backbone(data[0][0][None].to(device))           # also the warm-up
        start = time.perf_counter()
        x = torch.stack([data[i][0] for i in range(min(16, len(data)))]).to(device)
        backbone(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return counter.get_total_flops() / 1e9, 1000 * (time.perf_counter() - start) / len(x)


def _linear(probe: Any, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A probe (standardise, then logistic regression) as one linear layer on the raw features: W (x - mean)
    / scale + b = (W / scale) x + (b - W mean / scale). Two classes: one row d, as the logits [0, d]."""
    w = probe[-1].coef_ / probe[0].scale_
    b = probe[-1].intercept_ - (w * probe[0].mean_).sum(1)
    return (np.vstack([np.zeros_like(w), w]), np.r_[0.0, b]) if classes == 2 else (w, b)


def _nested_cv(x: np.ndarray, y: np.ndarray, folds: list, classes: list[str], groups: np.ndarray
               ) -> tuple[np.ndarray, list, list, list]:
    """Out-of-fold logits, and each outer fold's inner score, C and probe (``fit_probe`` chooses C inside,
    with twins in one inner fold too)."""
    logits, inner, Cs, heads = np.zeros((len(y), len(classes))), [], [], []
    for n, (train, test) in enumerate(folds, start=1):
        try:
            probe = fit_probe((x[train], y[train]), groups=groups[train])
        except ValueError:
            few = [c for i, c in enumerate(classes) if len(set(groups[train][y[train] == i])) < 2]
            raise ValueError(f"Outer fold {n}'s training photos hold fewer than 2 of {', '.join(few)} once copies "
                             "and twins are kept together: add photos of that class.") from None
        w, b = _linear(probe, len(classes))
        logits[test] = x[test] @ w.T + b
        inner.append(probe.val_scores[probe.C])
        Cs.append(probe.C)
        heads.append((w, b))
    return logits, np.array(inner), Cs, heads


def _folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list:
    """``k`` outer folds, stratified, each group (a photo, its copies and near twins) in one fold."""
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


def try_strategies(path: str | Path, minutes: float = 5.0, out: str | Path | None = None, device: str = "cpu",
                   margin: float = 0.03, coverage: float = 0.9, seed: int = 0, splits: int = 5) -> TryReport:
    """Audit a folder of photos, try each strategy that fits in ``minutes``, pick, and (with ``out``)
    write ``model.safetensors``, ``report.html``, ``MODEL_CARD.md``, ``prediction_sets.json`` and ``app.py``.

    ``margin``: how much accuracy you would give up for a cheaper model, declared before the run.
    ``coverage``: the prediction sets' target (0.9: the true class is in the set 9 times in 10).
    ``splits``: how many splits into folds (seeds ``seed``, ``seed + 1``...) test every photo, as
    time allows; the intervals and verdicts cover the photos and the splits.

    >>> report = try_strategies("my_photos", minutes=5, out="my_model"); report.pick.name
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    start = time.perf_counter()
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
        raise ValueError(f"minutes={minutes!r}: give the time you can wait, a positive number (5 is the default).")
    if not 0 < margin < 1 or not 0 < coverage < 1:
        raise ValueError(f"margin={margin!r} and coverage={coverage!r} are fractions: 0.03 is 3 points, 0.9 is 90%.")
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits={splits!r}: give how many splits into folds to test on, a whole number >= 1 (5).")
    if Path(path).suffix.lower() in {".csv", ".tsv", ".txt"}:
        raise ValueError(f"{path}: try_strategies reads a folder of photos, one sub-folder per class; texts in a "
                         "CSV are not supported yet. Use lessons 4 and 6 (tl.load_text_csv) for texts.")
    data, unreadable = readable(load_image_folder(path))
    y, notes = np.array(data.targets), []
    counts = {c: int((y == i).sum()) for i, c in enumerate(data.classes)}
    if min(counts.values()) < 3:
        small = ", ".join(f"{c!r} has {n} readable image{'s' * (n != 1)}" for c, n in counts.items() if n < 3)
        raise ValueError(f"{path}: {small}. Testing every photo once while choosing inside the rest needs at "
                         "least 3 per class: add photos, or remove the class.")
    identical, near, groups = twins([p for p, _ in data.samples])      # kept in one fold below
    distinct = {c: len(set(groups[y == i])) for i, c in enumerate(data.classes)}
    if min(distinct.values()) < 3:       # found before any model loads: copies count once
        few = ", ".join(f"{c!r} has {n}" for c, n in distinct.items() if n < 3)
        raise ValueError(f"{path}: {few} distinct photos once identical files and near twins count once. Testing "
                         "every photo once while choosing inside the rest needs at least 3: add photos.")
    per_class = min(distinct.values())
    budget, where = 60.0 * minutes, pick_device(device)
    arms, skipped, folds, features, cv_seconds = [], {}, [], {}, 0.0
    for name, arch in STRATEGIES.items():
        model, weights = build_classifier(arch, len(data.classes))
        backbone = model.backbone.eval().to(where)
        images = ImageFiles(data.root, data.classes, data.samples, image_transform(weights))
        arm_start = time.perf_counter()
        gflops, ms = _cost(backbone, images, where)
        need, left = 1.5 * ms * len(y) / 1000 + 5.0, budget - (time.perf_counter() - start)
        if need > left and arms:
            skipped[name] = f"needs about {need:.0f} s (measured {ms:.0f} ms per photo); {max(left, 0):.0f} s left"
            continue
        if need > left:                # the first strategy runs anyway: without it there is nothing to report
            notes.append(f"{name} alone needs about {need:.0f} s, more than the {budget:.0f} s asked for")
        features[name] = x = cached_features(backbone, images, progress=True)[0].numpy()
        folds = folds or [_folds(y, groups, min(5, per_class), seed)]
        cv_start = time.perf_counter()
        logits, inner, Cs, heads = _nested_cv(x, y, folds[0], data.classes, groups)
        cv_seconds += time.perf_counter() - cv_start
        arms.append(Arm(name, arch, (logits.argmax(1) == y)[None], logits, inner[None], Cs, heads, gflops, ms,
                        sum(p.numel() for p in backbone.parameters()) * 4 / 2**20, time.perf_counter() - arm_start))
    for s in range(1, splits):          # other splits into folds: the intervals then cover the split too
        need, left = 1.5 * cv_seconds + 1.0, budget - (time.perf_counter() - start)
        if need > left:
            notes.append(f"{s} of the {splits} splits into folds asked for: another needs about {need:.0f} s, "
                         f"{max(left, 0):.0f} s were left")
            break
        split, runs = _folds(y, groups, len(folds[0]), seed + s), []
        try:
            for arm in arms:
                t = time.perf_counter()
                logits, inner = _nested_cv(features[arm.name], y, split, data.classes, groups)[:2]
                runs.append((logits.argmax(1) == y, inner, time.perf_counter() - t))
        except ValueError as err:   # this split left a class too few photos in a training fold
            notes.append(f"{s} of the {splits} splits into folds asked for: with seed {seed + s}, {err}")
            break
        folds.append(split)
        for arm, (right, inner, seconds) in zip(arms, runs):
            arm.correct, arm.inner = np.vstack([arm.correct, right]), np.vstack([arm.inner, inner])
            arm.seconds += seconds
    best, pick, comparisons = choose(arms, margin)
    chosen, fold = np.zeros_like(best.correct), np.zeros(len(y), int)  # the choice nested too: each outer
    for s, split in enumerate(folds):                                   # fold picks by its inner score
        for n, (_, test) in enumerate(split):
            chosen[s, test] = max(arms, key=lambda a: (a.inner[s, n], -a.gflops)).correct[s, test]
    for n, (_, test) in enumerate(folds[0]):
        fold[test] = n
    cal = _calibrate(pick.logits, y, groups, coverage, seed)
    notes += [cal["note"]] if cal["note"] else []
    flagged = find_label_issues(y, cal["held_probs"], return_indices_ranked_by="self_confidence")
    model, weights = _final_model(pick, len(data.classes))
    report = TryReport(data=data, counts=counts, unreadable=unreadable, duplicates=identical, near=near, fold=fold,
                       arms=arms, skipped=skipped, comparisons=comparisons, best=best, pick=pick, margin=margin,
                       chosen_inside=stats.accuracy(chosen), flagged=[int(i) for i in flagged],
                       doubtful=[int(i) for i in np.argsort(get_label_quality_scores(y, cal["held_probs"]))[:DOUBTFUL]],
                       temperature=cal["temperature"], calibration=ece(cal["held_probs"], y), coverage=coverage,
                       threshold=cal["threshold"], covered=cal["covered"], set_size=cal["set_size"],
                       held_probs=cal["held_probs"], seconds=time.perf_counter() - start,
                       budget=budget, notes=notes, final=(model, weights), seed=seed)
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


def _final_model(arm: Arm, classes: int) -> tuple[Any, Any]:
    """The model handed over: the frozen network and the average of the outer folds' probes as its linear
    head. Its logits are the mean of the fold probes' logits, the probes whose out-of-fold logits set the
    temperature and the conformal threshold (a cross-fit ensemble); no probe is refitted on other data."""
    model, weights = build_classifier(arm.arch, classes)
    linear = linear_layers(model.head)[-1]
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.mean([w for w, _ in arm.heads], 0)).float())
        linear.bias.copy_(torch.from_numpy(np.mean([b for _, b in arm.heads], 0)).float())
    return model.eval(), weights
