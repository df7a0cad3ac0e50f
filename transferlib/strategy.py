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
from statistics import mean, stdev
from typing import Any

import torch
from torch.utils.data import Dataset

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
    def load(cls, path: str | Path = GRID_FILE) -> StrategyGrid:
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
        return Recommendation(cheapest.strategy, cheapest, cells, f"nothing measured fits {budget_seconds:g} s; "
                              f"this is the cheapest ({cheapest.time:.1f} s).")
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
