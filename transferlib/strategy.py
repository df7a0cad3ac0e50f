"""Choosing a strategy from measurements: how ImageNet-like a dataset is, and what the grid says.

The grid (``transferlib/data/strategy_grid.json``) is measured by ``bench/strategy_grid.py`` (the
experiment lives there, not in the library):
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
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .stats import Comparison, Estimate, accuracy, compare

GRID_FILE = Path(__file__).parent / "data" / "strategy_grid.json"
STRATEGIES = ("from scratch", "features, last block", "features, earlier block", "fine-tune top blocks",
              "full fine-tune")


def source_similarity(dataset: Dataset, n: int = 200, model: str = "mobilenet_v2", seed: int = 0,
                      batch_size: int = 16, device: str | torch.device = "cpu") -> float:
    """How familiar ``dataset`` looks to an ImageNet classifier: the mean of its top-1 softmax
    probability over ``n`` images (the maximum-softmax-probability score of Hendrycks and Gimpel,
    2017, used there to detect out-of-distribution inputs). 1 = every image is a confident
    ImageNet class; 1/1000 = a uniform guess. Labels are not used. ``dataset`` hands out raw
    images (loaded without a transform); the model's own preprocessing is applied here. The
    ImageNet model is loaded here and runs on ``device``.

    >>> source_similarity(tl.load_dataset("tuxpaint_photos"))   # natural photos: high
    """
    from .datasets import make_loader, with_transform
    from .devices import pick_device
    from .models import load_model
    from .transforms import image_transform

    device = pick_device(device)
    net, weights = load_model(model)
    net.to(device).eval()
    count = len(dataset)  # type: ignore[arg-type]
    rows = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[: min(n, count)].tolist()
    subset = torch.utils.data.Subset(dataset, rows)
    scores = []
    with torch.inference_mode():
        for x, _ in make_loader(with_transform(subset, image_transform(weights)), batch_size):
            scores.append(net(x.to(device)).softmax(-1).amax(-1).cpu())
    return float(torch.cat(scores).mean())


@dataclass(eq=False)  # cells hold arrays: compare them by identity
class Cell:
    """One (target, labels per class, strategy) of the grid: which test items each seed got right."""

    target: str
    labels_per_class: float
    strategy: str
    correct: np.ndarray          # (seeds, test items) of True/False
    seconds: list[float]
    tuned: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def accuracies(self) -> list[float]:
        """One accuracy per seed."""
        return [float(row.mean()) for row in self.correct]

    @property
    def estimate(self) -> Estimate:
        """The accuracy with its 95% interval over the seeds and the test items."""
        return accuracy(self.correct)

    @property
    def time(self) -> float:
        """Mean training seconds of one run (the tuning runs of the first seed not counted)."""
        return mean(self.seconds)


@dataclass
class StrategyGrid:
    """The measured grid: ``targets`` (name -> dataset, similarity...), ``cells`` and ``provenance``."""

    targets: dict[str, dict[str, Any]]
    cells: list[Cell]
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = GRID_FILE) -> StrategyGrid:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No strategy grid at {path}. Run `python bench/strategy_grid.py` to measure it.")
        data = json.loads(path.read_text())
        runs: dict[tuple[str, float, str], list[dict]] = {}
        for r in data["runs"]:
            runs.setdefault((r["target"], r["labels_per_class"], r["strategy"]), []).append(r)
        cells = []
        for key, rs in runs.items():
            rs = sorted(rs, key=lambda r: r["seed"])
            correct = np.array([[c == "1" for c in r["correct"]] for r in rs])
            cells.append(Cell(*key, correct, [r["seconds"] for r in rs], sorted({t for r in rs for t in r["tuned"]})))
        return cls(data["targets"], cells, data.get("provenance", {}))

    def cell(self, target: str, labels_per_class: float, strategy: str) -> Cell:
        for c in self.cells:
            if (c.target, c.labels_per_class, c.strategy) == (target, labels_per_class, strategy):
                return c
        raise KeyError(f"No cell ({target!r}, {labels_per_class}, {strategy!r}) in the grid.")

    def budgets(self, target: str) -> list[float]:
        return sorted({c.labels_per_class for c in self.cells if c.target == target})

    def compare(self, a: Cell, b: Cell) -> Comparison:
        """``a`` against ``b``, paired on the same test items and seeds."""
        return compare(a.correct, b.correct, names=(a.strategy, b.strategy))

    def contenders(self, cells: list[Cell]) -> tuple[Cell, list[Cell]]:
        """The most accurate of ``cells``, and those that cannot be told apart from it (itself included)."""
        best = max(cells, key=lambda c: c.accuracy)
        return best, [c for c in cells if c is best or not self.compare(best, c).verdict.endswith(" ahead")]


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
            e = c.estimate
            lines.append(f"  {c.strategy:24} accuracy {e.value:.3f} [{e.low:.3f}, {e.high:.3f}]   {c.time:6.1f} s")
        return "\n".join(lines)


def recommend_strategy(labels_per_class: float, similarity: float, budget_seconds: float | None = None,
                       grid: StrategyGrid | None = None) -> Recommendation:
    """The cheapest strategy that the measurements cannot tell apart from the best, in the grid cell
    nearest to your data.

    The nearest target is the one whose measured :func:`source_similarity` is closest to
    ``similarity``; the nearest budget is the closest in log scale. Among the strategies whose
    measured seconds fit ``budget_seconds``, the most accurate is the best; every strategy whose paired
    comparison with it reads "can't tell at this size" is as good as far as the grid can say, and the
    cheapest of those is recommended. The reason says which cell was used and why.

    >>> print(recommend_strategy(10, similarity=0.3, budget_seconds=20))
    """
    if labels_per_class <= 0:
        raise ValueError(f"labels_per_class must be positive, not {labels_per_class}.")
    if not 0 <= similarity <= 1:
        raise ValueError(f"similarity must be between 0 and 1 (a mean softmax probability: source_similarity), "
                         f"not {similarity}.")
    grid = grid or StrategyGrid.load()
    target = min(grid.targets, key=lambda t: abs(grid.targets[t]["similarity"] - similarity))
    budget = min(grid.budgets(target), key=lambda k: abs(math.log(k) - math.log(labels_per_class)))
    cells = [c for c in grid.cells if c.target == target and c.labels_per_class == budget]
    affordable = [c for c in cells if budget_seconds is None or c.time <= budget_seconds]
    if not affordable:
        cheapest = min(cells, key=lambda c: c.time)
        return Recommendation(cheapest.strategy, cheapest, cells, f"nothing measured fits {budget_seconds:g} s; "
                              f"this is the cheapest ({cheapest.time:.1f} s).")
    best, tied = grid.contenders(affordable)
    pick = min(tied, key=lambda c: c.time)
    reason = (f"Your data is nearest to {target!r} (similarity {grid.targets[target]['similarity']:.3f} vs "
              f"yours {similarity:.3f}), and its budget nearest to your {labels_per_class:g} labels per class "
              f"is {budget:g}.")
    others = [c.strategy for c in tied if c is not best]
    if pick is not best:
        reason += (f" {best.strategy} measured highest, but {', '.join(others)} could not be told apart from it "
                   f"(paired, 95%), and {pick.strategy} is the cheapest of them ({pick.time:.1f} s vs "
                   f"{best.time:.1f} s).")
    elif others:
        reason += f" It measured highest; {', '.join(others)} could not be told apart from it, and cost more."
    else:
        reason += " It measured highest, ahead of every other strategy by the paired 95% interval."
    if budget_seconds is not None and len(affordable) < len(cells):
        dropped = ", ".join(c.strategy for c in cells if c not in affordable)
        reason += f" Over your {budget_seconds:g} s budget, not considered: {dropped}."
    return Recommendation(pick.strategy, pick, cells, reason)
