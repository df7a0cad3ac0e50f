"""Choosing a strategy from measurements: how ImageNet-like a dataset is, and what the grid says.

The grid (``transferlib/data/strategy_grid.json``) is written by ``bench/strategy_grid.py``:
five strategies (from scratch, features from the last block, features from an earlier block,
fine-tuning the top blocks, full fine-tuning) on three targets of different similarity to
ImageNet, at several label budgets and seeds, with accuracy and seconds for every run and the
provenance of the whole (date, commit, machine, seeds).

>>> sim = source_similarity(tl.load_dataset("animal_mnist"))
>>> print(recommend_strategy(labels_per_class=10, similarity=sim, budget_seconds=30))
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

GRID_FILE = Path(__file__).parent / "data" / "strategy_grid.json"
STRATEGIES = ("from scratch", "features, last block", "features, earlier block", "fine-tune top blocks",
              "full fine-tune")


# name: (dataset, size for MobileNetV2, size and channels for the SmallCNN, budgets, test images per class)
TARGETS: dict[str, tuple[str, int, tuple[int, int], list[int | str], int | None]] = {
    "photos": ("tuxpaint_photos", 96, (64, 3), [5, "all"], None),
    "silhouettes": ("animal_mnist", 64, (28, 1), [10, 100], 50),
    "digits": ("mnist5k", 64, (28, 1), [10, 100], 50),
}


def _epochs(n_images: int, scratch: bool = False) -> int:
    """12 epochs under 300 training images, 6 above; twice that from scratch (a CNN from random weights
    needs more passes: lesson 2)."""
    base = 12 if n_images < 300 else 6
    return base * 2 if scratch else base


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, k: int | str, seed: int = 0, strategies: Sequence[str] = STRATEGIES,
            log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the five strategies on one grid cell: target ``name`` (a key of ``TARGETS``), ``k`` labels per
    class (or ``"all"``), one ``seed``; ``strategies`` picks some of the five. Returns one row per strategy: accuracy on the target's test
    images and the seconds of training (for features: extracting the training set and fitting).

    Recipes are fixed, not tuned per cell:
    - from scratch: lesson 2's SmallCNN, AdamW 1e-3, weight decay 1e-4, one-cycle, augmentation;
    - features, last / earlier block: frozen MobileNetV2, the pooled output of ``features.18`` /
      ``features.13``, standardised logistic regression (C = 1);
    - fine-tune top blocks / full: lesson 3's recipe (random head, AdamW 1e-3, weight decay 1e-4,
      one-cycle, batches of 32, augmentation); top = the last 3 blocks and the head;
    - epochs: 12 under 300 training images, 6 above; from scratch twice as many.
    Images are 64 px for the 28 px targets and 96 px for the photos (``TARGETS``).

    >>> rows = measure("silhouettes", 10, seed=0)
    """
    from .datasets import classes_of, image_transform, in_memory, k_shot, load_dataset, make_loader, with_transform
    from .features import extract_features, logistic_probe
    from .freezing import freeze_all_but_last, unfreeze
    from .heads import build_classifier
    from .models import SmallCNN, load_model
    from .training import evaluate, fit

    if name not in TARGETS:
        raise ValueError(f"Unknown target {name!r}; the grid's targets are {', '.join(TARGETS)}.")
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"Unknown strategies {sorted(unknown)}; the five are {', '.join(STRATEGIES)}.")
    pretrained, weights = load_model("mobilenet_v2")  # frozen: both feature strategies cut their backbone from it
    dataset, size, (cnn_size, channels), _, test_k = TARGETS[name]
    train_all = load_dataset(dataset, "train")
    train = train_all if k == "all" else k_shot(train_all, k, seed=seed)
    test = load_dataset(dataset, "test")
    if test_k is not None:
        test = k_shot(test, test_k, seed=0)  # the same test images for every cell
    classes = len(classes_of(train_all))
    per_class = len(train) / classes
    plain, augment = image_transform(weights, size=size), image_transform(weights, augment=True, size=size)
    test_loader = make_loader(in_memory(with_transform(test, plain)), 128)
    rows = []

    def record(strategy: str, accuracy: float, seconds: float) -> None:
        rows.append({"target": name, "labels_per_class": round(per_class, 2), "strategy": strategy, "seed": seed,
                     "accuracy": round(accuracy, 4), "seconds": round(seconds, 2), "train_images": len(train)})
        log(f"{name:12} {per_class:6.1f}/class seed {seed}  {strategy:24} {accuracy:.3f}  {seconds:6.1f} s")

    if STRATEGIES[0] in strategies:  # from scratch
        torch.manual_seed(seed)
        cnn = SmallCNN(channels, classes, cnn_size)
        loader = make_loader(with_transform(train, image_transform(None, augment=True, size=cnn_size)), 32,
                             shuffle=True, seed=seed)
        secs = _timed(lambda: fit(cnn, loader, epochs=_epochs(len(train), scratch=True), lr=1e-3,
                                  weight_decay=1e-4, schedule="onecycle", seed=seed, progress=False))
        cnn_test = make_loader(with_transform(test, image_transform(None, size=cnn_size)), 256)
        record(STRATEGIES[0], evaluate(cnn, cnn_test).accuracy, secs)

    # features from the last block and from an earlier one
    for strategy, cut in ((STRATEGIES[1], 19), (STRATEGIES[2], 14)):
        if strategy not in strategies:
            continue
        backbone = nn.Sequential(pretrained.features[:cut], nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
        start = time.perf_counter()
        tr_x, tr_y = extract_features(backbone, with_transform(train, plain), progress=False)
        seconds = time.perf_counter() - start
        te_x, te_y = extract_features(backbone, with_transform(test, plain), progress=False)
        start = time.perf_counter()
        accuracy, _ = logistic_probe(tr_x, tr_y, te_x, te_y, C=1.0)
        record(strategy, accuracy, seconds + time.perf_counter() - start)

    # fine-tuning: the top blocks, then everything
    for strategy, blocks in ((STRATEGIES[3], 4), (STRATEGIES[4], None)):
        if strategy not in strategies:
            continue
        torch.manual_seed(seed)
        model, _ = build_classifier("mobilenet_v2", classes)
        if blocks is None:
            unfreeze(model)
        else:
            freeze_all_but_last(model, blocks)  # the head and the last 3 blocks
        loader = make_loader(with_transform(train, augment), 32, shuffle=True, seed=seed)
        secs = _timed(lambda: fit(model, loader, epochs=_epochs(len(train)), lr=1e-3, weight_decay=1e-4,
                                  schedule="onecycle", seed=seed, progress=False))
        record(strategy, evaluate(model, test_loader).accuracy, secs)
    return rows


def source_similarity(dataset: Dataset, n: int = 200, model: str = "mobilenet_v2", seed: int = 0,
                      batch_size: int = 16) -> float:
    """How familiar ``dataset`` looks to an ImageNet classifier: the mean of its top-1 softmax
    probability over ``n`` images (the maximum-softmax-probability score of Hendrycks and Gimpel,
    2017, used there to detect out-of-distribution inputs). 1 = every image is a confident
    ImageNet class; 1/1000 = a uniform guess. Labels are not used. ``dataset`` hands out raw
    images (loaded without a transform); the model's own preprocessing is applied here.

    >>> source_similarity(tl.load_dataset("tuxpaint_photos"))   # natural photos: high
    """
    from .datasets import image_transform, make_loader, with_transform
    from .models import load_model

    net, weights = load_model(model)
    net.eval()
    count = len(dataset)  # type: ignore[arg-type]
    rows = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[: min(n, count)].tolist()
    subset = torch.utils.data.Subset(dataset, rows)
    scores = []
    with torch.inference_mode():
        for x, _ in make_loader(with_transform(subset, image_transform(weights)), batch_size):
            scores.append(net(x).softmax(-1).amax(-1))
    return float(torch.cat(scores).mean())


@dataclass
class Cell:
    """One (target, labels per class, strategy) of the grid, over its seeds."""

    target: str
    labels_per_class: float
    strategy: str
    accuracies: list[float]
    seconds: list[float]

    @property
    def accuracy(self) -> float:
        return mean(self.accuracies)

    @property
    def spread(self) -> float:
        """The seeds' standard deviation (0 with one seed)."""
        return stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    @property
    def time(self) -> float:
        return mean(self.seconds)


@dataclass
class StrategyGrid:
    """The measured grid: ``targets`` (name -> dataset, similarity...), ``cells`` and ``provenance``."""

    targets: dict[str, dict[str, Any]]
    cells: list[Cell]
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = GRID_FILE) -> "StrategyGrid":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No strategy grid at {path}. Run `python bench/strategy_grid.py` to measure it.")
        data = json.loads(path.read_text())
        runs: dict[tuple[str, float, str], Cell] = {}
        for r in data["runs"]:
            key = (r["target"], r["labels_per_class"], r["strategy"])
            cell = runs.setdefault(key, Cell(*key, [], []))
            cell.accuracies.append(r["accuracy"])
            cell.seconds.append(r["seconds"])
        return cls(data["targets"], list(runs.values()), data.get("provenance", {}))

    def cell(self, target: str, labels_per_class: float, strategy: str) -> Cell:
        for c in self.cells:
            if (c.target, c.labels_per_class, c.strategy) == (target, labels_per_class, strategy):
                return c
        raise KeyError(f"No cell ({target!r}, {labels_per_class}, {strategy!r}) in the grid.")

    def budgets(self, target: str) -> list[float]:
        return sorted({c.labels_per_class for c in self.cells if c.target == target})


@dataclass
class Recommendation:
    """What the grid recommends, and the measurements it rests on."""

    strategy: str
    cell: Cell
    alternatives: list[Cell]
    reason: str

    def __str__(self) -> str:
        lines = [f"recommended: {self.strategy}. {self.reason}",
                 f"measured on {self.cell.target!r} at {self.cell.labels_per_class:g} labels per class:"]
        for c in sorted(self.alternatives, key=lambda c: -c.accuracy):
            lines.append(f"  {c.strategy:24} accuracy {c.accuracy:.3f} ± {c.spread:.3f}   {c.time:6.1f} s")
        return "\n".join(lines)


def recommend_strategy(labels_per_class: float, similarity: float, budget_seconds: float | None = None,
                       grid: StrategyGrid | None = None) -> Recommendation:
    """The best measured strategy in the grid cell nearest to your data.

    The nearest target is the one whose measured :func:`source_similarity` is closest to
    ``similarity``; the nearest budget is the closest in log scale. Among the strategies whose
    measured seconds fit ``budget_seconds``, the most accurate wins; when the runner-up is within
    the seeds' spread, the cheaper of the two is recommended and the reason says so.

    >>> print(recommend_strategy(10, similarity=0.3, budget_seconds=20))
    """
    grid = grid or StrategyGrid.load()
    target = min(grid.targets, key=lambda t: abs(grid.targets[t]["similarity"] - similarity))
    budget = min(grid.budgets(target), key=lambda k: abs(math.log(k) - math.log(labels_per_class)))
    cells = [c for c in grid.cells if c.target == target and c.labels_per_class == budget]
    affordable = [c for c in cells if budget_seconds is None or c.time <= budget_seconds]
    if not affordable:
        cheapest = min(cells, key=lambda c: c.time)
        return Recommendation(cheapest.strategy, cheapest, cells,
                              f"nothing measured fits {budget_seconds:g} s; this is the cheapest ({cheapest.time:.1f} s).")
    ranked = sorted(affordable, key=lambda c: -c.accuracy)
    best = ranked[0]
    reason = (f"Your data is nearest to {target!r} (similarity {grid.targets[target]['similarity']:.3f} vs "
              f"yours {similarity:.3f}), and its budget nearest to your {labels_per_class:g} labels per class "
              f"is {budget:g}.")
    if len(ranked) > 1:
        second = ranked[1]
        noise = max(best.spread, second.spread)
        if best.accuracy - second.accuracy <= noise and second.time < best.time:
            return Recommendation(second.strategy, second, cells, reason + (
                f" {best.strategy} was {best.accuracy - second.accuracy:.3f} more accurate, within the seeds' "
                f"spread ({noise:.3f}), and {second.strategy} is cheaper ({second.time:.1f} s vs {best.time:.1f} s)."))
        reason += f" It beat {second.strategy} by {best.accuracy - second.accuracy:.3f} (seed spread {noise:.3f})."
    if budget_seconds is not None and len(affordable) < len(cells):
        dropped = ", ".join(c.strategy for c in cells if c not in affordable)
        reason += f" Over your {budget_seconds:g} s budget, not considered: {dropped}."
    return Recommendation(best.strategy, best, cells, reason)
