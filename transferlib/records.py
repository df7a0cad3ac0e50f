"""Records: what a training run did (:class:`History`), what a model scores (:class:`Evaluation`), and
what it says of one input (:class:`Prediction`, from ``tl.predict``).

    >>> history = fit(model, train_loader, val_loader, epochs=5)
    >>> history.best_epoch, history.best_val_acc, history.steps      # steps: optimizer steps in all
    >>> history.plot()
    >>> result = evaluate(model, test_loader); print(result); result.plot()

Both are plain dataclasses holding Python numbers and numpy arrays, on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["History", "Evaluation", "Prediction"]


@dataclass
class History:
    """One row per epoch. ``best_epoch`` is the epoch whose weights were kept; ``steps_per_epoch``
    and ``examples`` count optimizer steps and training examples seen in each epoch, ``steps``
    the optimizer steps of the whole run."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    steps_per_epoch: list[int] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False
    diverged: int | None = None  # the epoch whose training loss became NaN or infinite (not recorded)

    SERIES = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "steps_per_epoch",
              "examples")

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, **row: float) -> None:
        """Add one epoch: a value for every name in ``SERIES``."""
        if set(row) != set(self.SERIES):
            raise ValueError(f"An epoch needs exactly {', '.join(self.SERIES)}; got {', '.join(sorted(row))}.")
        for name in self.SERIES:
            getattr(self, name).append(row[name])

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` epochs."""
        for name in self.SERIES:
            del getattr(self, name)[n:]

    def score(self, i: int) -> float:
        """What keep-best and early stopping compare for row ``i``: validation accuracy. Without
        validation data nothing is chosen: each epoch outranks the one before, so the last is kept
        (the best *training* accuracy would be a choice made on the training data)."""
        return float(self.epoch[i]) if math.isnan(self.val_acc[i]) else self.val_acc[i]

    @property
    def steps(self) -> int:
        """Optimizer steps taken over all epochs: the effort a run had, whatever its batch size."""
        return sum(self.steps_per_epoch)

    @property
    def epochs_since_best(self) -> int:
        return len(self) if self.best_epoch is None else len(self) - 1 - self.epoch.index(self.best_epoch)

    @property
    def best_val_acc(self) -> float | None:
        """Validation accuracy of the kept epoch; None without validation data or epochs."""
        if self.best_epoch is None:
            return None
        value = self.val_acc[self.epoch.index(self.best_epoch)]
        return None if math.isnan(value) else value

    @property
    def best_acc(self) -> float | None:
        """Accuracy of the kept epoch: validation if there was any, else training."""
        if self.best_epoch is None:
            return None
        i = self.epoch.index(self.best_epoch)
        return self.train_acc[i] if math.isnan(self.val_acc[i]) else self.val_acc[i]

    def plot(self, title: str = ""):
        """Loss and accuracy per epoch, training and validation."""
        from .plots import plot_history

        return plot_history(self, title)


@dataclass
class Evaluation:
    """Accuracy, mean loss, confusion matrix (rows: true class) and per-class accuracy.

    ``y_true``, ``y_pred`` and ``probs`` (softmax, one row per item) keep every prediction, so
    that :mod:`transferlib.stats` can put an interval on the accuracy or pair two models.
    """

    accuracy: float
    loss: float
    confusion: np.ndarray
    classes: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray | None = None

    @property
    def correct(self) -> np.ndarray:
        """Per-item correctness (booleans), in the loader's order."""
        return self.y_true == self.y_pred

    @property
    def per_class(self) -> dict[str, float]:
        totals = self.confusion.sum(axis=1)
        return {c: float(self.confusion[i, i] / totals[i]) if totals[i] else float("nan")
                for i, c in enumerate(self.classes)}

    def __str__(self) -> str:
        lines = [f"accuracy {self.accuracy:.3f}, loss {self.loss:.3f}, {len(self.y_true)} examples"]
        lines += [f"  {c:20} {a:.3f}" for c, a in self.per_class.items()]
        return "\n".join(lines)

    __repr__ = __str__

    def plot(self, normalize: bool = True):
        from .plots import plot_confusion

        return plot_confusion(self, normalize)


@dataclass(frozen=True)
class Prediction:
    """One image's (or text's) prediction: the top label, its probability, and every class's probability."""

    label: str
    probability: float
    source: str
    probabilities: dict[str, float]

    @classmethod
    def each(cls, classes: list[str], sources: list[str], probs: Any) -> list[Prediction]:
        """One Prediction per row of ``probs`` (items x classes), the top class first."""
        return [cls(classes[int(p.argmax())], float(p.max()), s, {c: float(v) for c, v in zip(classes, p)})
                for s, p in zip(sources, probs)]

    def __repr__(self) -> str:
        return f"Prediction(label={self.label!r}, probability={self.probability:.3f}, source={self.source!r})"
