"""Your own photos, end to end: audit them, try the strategies that fit a time budget under the
course's protocol, pick honestly, and hand over the pick (:mod:`handover` writes the files).

    >>> report = try_strategies("my_photos", minutes=5, out="my_model")
    >>> print(report)         # the audit, each strategy's accuracy with its interval, the pick
    $ python -m transferlib try my_photos --minutes 5 --out my_model

With a few hundred labelled photos there is no test set to spare, so every choice is made inside
the labels and every photo is tested once (nested cross-validation): the outer folds test, and
inside each outer training fold ``fit_probe`` chooses ``C`` by its own cross-validation. Identical
files and near twins are kept in one fold. The strategies are compared paired on the same photos
(``tl.stats.compare``); the pick is the cheapest one shown non-inferior to the best within a margin
declared before the run. Lesson 8 does each step by hand first.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import stats
from .calibration import conformal_threshold, ece, fit_temperature, prediction_sets
from .devices import pick_device
from .features import cached_features
from .heads import build_classifier, linear_layers
from .probing import fit_probe
from .transforms import image_transform, open_rgb
from .yourdata import ImageFiles, load_image_folder

__all__ = ["try_strategies", "TryReport", "Arm", "twins", "choose", "STRATEGIES", "NEAR"]

STRATEGIES = {"MobileNetV2, frozen + probe": "mobilenet_v2", "EfficientNet-Lite0, frozen + probe": "efficientnet_lite0"}
NEAR = 0.95        # feature cosine at or above which two photos count as near twins (declared, not tuned)


@dataclass
class Arm:
    """One strategy, tested by nested cross-validation: every photo's correctness and out-of-fold logits."""

    name: str
    arch: str
    correct: np.ndarray           # one bool per photo, from the outer fold that held it out
    logits: np.ndarray            # photos x classes, out of fold
    inner: np.ndarray             # each outer fold's inner cross-validation score at the C it chose
    Cs: list[float]               # the C each outer fold chose
    gflops: float                 # per photo, counted (torch.utils.flop_counter): the cost the pick ranks by
    ms_per_image: float           # reading, preprocessing and the network, per photo at batch 16, this machine
    megabytes: float              # the network's weights, float32
    seconds: float                # features and the nested cross-validation, this run

    @property
    def accuracy(self) -> stats.Estimate:
        return stats.accuracy(self.correct)


@dataclass
class TryReport:
    """What :func:`try_strategies` found. ``print(report)`` shows it; :mod:`handover` writes it out."""

    data: ImageFiles                     # the readable photos
    counts: dict[str, int]
    unreadable: list[str]                # files with an image's name that PIL cannot decode
    duplicates: list[list[int]]          # groups of identical files
    near: list[tuple[int, int, float]]   # pairs of near twins, with their cosine
    fold: np.ndarray                     # the outer fold that tested each photo
    arms: list[Arm]
    skipped: dict[str, str]              # strategy -> why it did not run
    comparisons: dict[str, stats.Comparison]  # arm name -> the arm against the best
    best: Arm
    pick: Arm
    margin: float
    chosen_inside: stats.Estimate        # the accuracy of the whole procedure, the choice of strategy included
    suspects: list[int]                  # every photo cleanlab flags, most suspicious first
    temperature: float                   # fitted on every photo's out-of-fold logits (the saved model's)
    calibration: stats.Estimate          # the ECE of held-out photos, temperature from the other half
    coverage: float                      # the prediction sets' target
    threshold: float                     # the conformal threshold on 1 - p(class), from every photo
    covered: stats.Estimate              # the coverage measured on each half, calibrated on the other half
    set_size: float                      # the sets' mean size, measured the same way
    held_probs: np.ndarray               # the pick's out-of-fold probabilities, calibrated on the other half
    final_C: float                       # the C of the model handed over, chosen inside all the photos
    seconds: float
    budget: float
    notes: list[str] = field(default_factory=list)
    near_cosine: float = NEAR
    final: tuple[Any, Any] | None = None  # (the pick trained on every photo, its weights)
    files: dict[str, Path] = field(default_factory=dict)

    def __str__(self) -> str:
        from .handover import summary

        return summary(self)


def twins(files: list[str], features: np.ndarray) -> tuple[list[list[int]], list[tuple[int, int, float]], np.ndarray]:
    """Groups of byte-identical files, pairs of other photos with feature cosine >= NEAR, and a group per
    photo: the index of the first photo it is a copy or twin of (through any chain of them).

    >>> identical, near, group = twins([path for path, _ in photos.samples], features)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    by_hash: dict[str, list[int]] = {}
    for i, path in enumerate(files):
        by_hash.setdefault(hashlib.sha256(Path(path).read_bytes()).hexdigest(), []).append(i)
    identical = [g for g in by_hash.values() if len(g) > 1]
    unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    same = {(i, j) for g in identical for i in g for j in g}
    near = []
    for start in range(0, len(files), 1024):          # 1,024 rows at a time: no n x n matrix in memory
        cos = unit[start:start + 1024] @ unit.T
        near += [(int(start + i), int(j), float(cos[i, j])) for i, j in zip(*np.nonzero(cos >= NEAR))
                 if start + i < j and (start + i, j) not in same]
    pairs = [(g[0], j) for g in identical for j in g[1:]] + [(i, j) for i, j, _ in near]
    a, b = np.array([p[0] for p in pairs], int), np.array([p[1] for p in pairs], int)
    label = connected_components(coo_matrix((np.ones(len(pairs)), (a, b)), (len(files),) * 2), directed=False)[1]
    _, first, which = np.unique(label, return_index=True, return_inverse=True)   # name a group by its first photo
    return identical, near, first[which]


def _readable(data: ImageFiles) -> tuple[ImageFiles, list[str]]:
    """The photos PIL can decode, and the names of those it cannot (an image's name is not enough)."""
    kept, bad = [], []
    for path, label in data.samples:
        try:
            open_rgb(path)
        except Exception:                  # PIL raises several types for a truncated or empty file
            bad.append(str(Path(path).relative_to(data.root)))
        else:
            kept.append((path, label))
    return ImageFiles(data.root, data.classes, kept, data.transform), bad


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


def _nested_cv(x: np.ndarray, y: np.ndarray, folds: list, classes: list[str]) -> tuple[np.ndarray, list, list]:
    """Out-of-fold logits, and each outer fold's C and its inner score (``fit_probe``'s cross-validation)."""
    logits, inner, Cs = np.zeros((len(y), len(classes))), [], []
    with threadpool_limits(1, "blas"):  # BLAS threads fight PyTorch's after a forward pass (bench/probe_threads.py)
        for n, (train, test) in enumerate(folds, start=1):
            try:
                probe = fit_probe((x[train], y[train]))
            except ValueError:
                few = [c for i, c in enumerate(classes) if (y[train] == i).sum() < 2]
                raise ValueError(f"Outer fold {n}'s training photos hold fewer than 2 of {', '.join(few)} once copies "
                                 "and twins are kept together: add photos of that class.") from None
            d = probe.decision_function(x[test])
            logits[test] = np.stack([np.zeros_like(d), d], 1) if d.ndim == 1 else d  # two classes: [0, d]
            inner.append(probe.val_scores[probe.C])
            Cs.append(probe.C)
    return logits, np.array(inner), Cs


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
                   margin: float = 0.03, coverage: float = 0.9, seed: int = 0) -> TryReport:
    """Audit a folder of photos, try each strategy that fits in ``minutes``, pick, and (with ``out``)
    write ``model.safetensors``, ``report.html``, ``MODEL_CARD.md`` and ``prediction_sets.json``.

    ``margin``: how much accuracy you would give up for a cheaper model, declared before the run.
    ``coverage``: the prediction sets' target (0.9: the true class is in the set 9 times in 10).

    >>> report = try_strategies("my_photos", minutes=5, out="my_model"); report.pick.name
    """
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedGroupKFold

    start = time.perf_counter()
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
        raise ValueError(f"minutes={minutes!r}: give the time you can wait, a positive number (5 is the default).")
    if not 0 < margin < 1 or not 0 < coverage < 1:
        raise ValueError(f"margin={margin!r} and coverage={coverage!r} are fractions: 0.03 is 3 points, 0.9 is 90%.")
    if Path(path).suffix.lower() in {".csv", ".tsv", ".txt"}:
        raise ValueError(f"{path}: try_strategies reads a folder of photos, one sub-folder per class; texts in a "
                         "CSV are not supported yet. Use lessons 4 and 6 (tl.load_text_csv) for texts.")
    data, unreadable = _readable(load_image_folder(path))
    y, notes = np.array(data.targets), []
    counts = {c: int((y == i).sum()) for i, c in enumerate(data.classes)}
    if min(counts.values()) < 3:
        small = ", ".join(f"{c!r} has {n} readable image{'s' * (n != 1)}" for c, n in counts.items() if n < 3)
        raise ValueError(f"{path}: {small}. Testing every photo once while choosing inside the rest needs at "
                         "least 3 per class: add photos, or remove the class.")
    budget, where = 60.0 * minutes, pick_device(device)
    arms, skipped, features, folds = [], {}, {}, []
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
        x = features[name] = cached_features(backbone, images, progress=True)[0].numpy()
        if not folds:                  # the first strategy's features find the twins, for every strategy
            identical, near, groups = twins([p for p, _ in data.samples], x)
            per_class = min(len(set(groups[y == i])) for i in range(len(data.classes)))
            folds = list(StratifiedGroupKFold(min(5, per_class), shuffle=True, random_state=seed).split(x, y, groups))
        logits, inner, Cs = _nested_cv(x, y, folds, data.classes)
        size = sum(p.numel() for p in backbone.parameters()) * 4 / 2**20
        arms.append(Arm(name, arch, logits.argmax(1) == y, logits, inner, Cs, gflops, ms, size,
                        time.perf_counter() - arm_start))
    best, pick, comparisons = choose(arms, margin)
    chosen, fold = np.zeros(len(y), bool), np.zeros(len(y), int)   # the choice nested too: each outer fold
    for n, (_, test) in enumerate(folds):                               # picks by its inner score
        chosen[test], fold[test] = max(arms, key=lambda a: (a.inner[n], -a.gflops)).correct[test], n
    cal = _calibrate(pick.logits, y, coverage, seed)
    notes += [cal["note"]] if cal["note"] else []
    suspects = find_label_issues(y, cal["held_probs"], return_indices_ranked_by="self_confidence")
    model, weights, final_C = _final_model(pick, features[pick.name], y, data.classes)
    report = TryReport(data=data, counts=counts, unreadable=unreadable, duplicates=identical, near=near, fold=fold,
                       arms=arms, skipped=skipped, comparisons=comparisons, best=best, pick=pick, margin=margin,
                       chosen_inside=stats.accuracy(chosen), suspects=[int(i) for i in suspects],
                       temperature=cal["temperature"], calibration=ece(cal["held_probs"], y), coverage=coverage,
                       threshold=cal["threshold"], covered=cal["covered"], set_size=cal["set_size"],
                       held_probs=cal["held_probs"], final_C=final_C, seconds=time.perf_counter() - start,
                       budget=budget, notes=notes, final=(model, weights))
    if out is not None:               # the files are written after the clock stops: not counted
        from .handover import write

        report.files = write(report, Path(out))
    return report


def _temperature(logits: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    try:
        return fit_temperature(logits, y), ""
    except ValueError as err:         # e.g. every photo right: the cross-entropy has no minimum
        return 1.0, f"temperature not fitted ({str(err).split(':')[0]}); 1.0 kept"


def _calibrate(logits: np.ndarray, y: np.ndarray, coverage: float, seed: int) -> dict[str, Any]:
    """Temperature and conformal threshold from every photo (what the saved model uses), and what they
    are worth measured on held-out photos: each half of the photos is calibrated on the other half."""
    def softmax(z: np.ndarray, t: float) -> np.ndarray:
        return torch.softmax(torch.from_numpy(z / t), 1).numpy()

    halves = np.random.default_rng(seed).permutation(len(y)) % 2 == 0
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


def _final_model(arm: Arm, x: np.ndarray, y: np.ndarray, classes: list[str]) -> tuple[Any, Any, float]:
    """The pick trained on every photo (C by cross-validation inside them), as one torch Classifier:
    the probe's standardisation folded into its linear head, so ``tl.load_predictor`` can run it."""
    with threadpool_limits(1, "blas"):
        probe = fit_probe((x, y))
    scaler, lr = probe[0], probe[-1]
    w = lr.coef_ / scaler.scale_                        # W (x - mean) / scale + b = (W / scale) x + b - ...
    b = lr.intercept_ - (w * scaler.mean_).sum(1)
    if len(classes) == 2:                               # binary: one row, p(1) = softmax([0, w x + b])
        w, b = np.vstack([np.zeros_like(w), w]), np.r_[0.0, b]
    model, weights = build_classifier(arm.arch, len(classes))
    linear = linear_layers(model.head)[-1]
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w).float())
        linear.bias.copy_(torch.from_numpy(b).float())
    return model.eval(), weights, probe.C
