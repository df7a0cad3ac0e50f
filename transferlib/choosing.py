"""Choices made on validation data only: the option with the best validation score, never a test split,
and a validation split carved out of a few-shot budget, so that "k labels per class" counts every label.

    >>> lr = choose([1e-4, 3e-4, 1e-3], lambda lr, val: evaluate(train(lr), val).accuracy, val_loader)
    >>> fit_set, val_set = split_budget(k_shot(pool, 10))     # 8 to train, 2 to choose on, per class

Also ``tl.stats.choose``: the lessons call it beside the comparisons it protects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from .datasets import classes_of, role_of, targets_of
from .splits import split_per_class

__all__ = ["choose", "split_budget"]

T = TypeVar("T")


def choose(options: Sequence[T], score: Callable[[T, Any], float], validation: Any) -> T:
    """The option with the best ``score(option, validation)``; the first one on a tie.

    Anything a comparison tunes (a learning rate, an epoch count, a block, C) is chosen on
    validation data, never on the test set: a test set used for choosing is no longer a fair
    measure of the choice. ``validation`` is refused if it is a test split (``load_dataset(...,
    "test")``, the second half of ``stratified_split``, or anything drawn from them). When the choice
    is the smallest or largest of three or more numbers, a note says so: the best value may lie
    beyond the grid, and the grid should be extended once.

    >>> lr = choose([1e-4, 3e-4, 1e-3], lambda lr, val: evaluate(train(lr), val).accuracy, val_loader)
    """
    if role_of(validation) == "test":
        raise ValueError("choose() was given a test split to choose on. Hold out a validation split from the "
                         "training data (split_per_class or stratified_split of the training part) and choose "
                         "on that; score the chosen option on the test split once, at the end.")
    if not options:
        raise ValueError("choose() needs at least one option.")
    scores = [score(option, validation) for option in options]
    best = options[int(np.argmax(scores))]
    numbers = len(options) >= 3 and all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options)
    if numbers and best in (min(options), max(options)):  # type: ignore[type-var]
        side = "largest" if best == max(options) else "smallest"  # type: ignore[type-var]
        print(f"note: choose() picked {best:g}, the {side} of {len(options)} values: "  # type: ignore[str-format]
              f"the best may lie past the grid.")
    return best


def split_budget(labelled: Any, seed: int = 0, fraction: float = 0.2, at_least: int = 2) -> tuple[Any, Any]:
    """``(train, validation)`` inside a budget of labels: ``fraction`` of the rarest class's count per
    class (``at_least`` per class) is held out to choose on, the rest trains.

    A few-shot learner has no spare labels: a validation split drawn from elsewhere makes "10 labels
    per class" mean 30 (Perez, Kiela and Cho 2021, "True few-shot learning"). A probe can choose by
    cross-validation inside its labels (``fit_probe(train)``); a network that picks a learning rate or
    an epoch on held-out data takes it from its own budget, here.

    >>> fit_set, val_set = split_budget(k_shot(pool, 10, seed=0))   # 8 + 2 per class: the budget is 10
    """
    counts = np.bincount(np.asarray(targets_of(labelled)), minlength=len(classes_of(labelled)))
    held = max(at_least, int(counts.min() * fraction))
    if counts.min() <= held:
        raise ValueError(f"split_budget needs more than {held} labels of every class to keep some for training; "
                         f"the rarest class has {counts.min()}. Choose by cross-validation instead "
                         f"(fit_probe(train) for a probe), or fix the setting before looking at the labels.")
    val, train = split_per_class(labelled, held, seed=seed)
    return train, val
