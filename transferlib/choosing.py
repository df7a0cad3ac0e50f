"""Choices made on validation data only: the option with the best validation score, never a test split;
a numeric grid extended once past an edge that wins; and a validation split carved out of a few-shot
budget, so that "k labels per class" counts every label.

    >>> lr = choose([1e-4, 3e-4, 1e-3], lambda lr, val: evaluate(train(lr), val).accuracy, val_loader)
    >>> lr, scores = choose_on_grid([1e-4, 3e-4, 1e-3], score, val_loader)   # 3e-3 too, if 1e-3 wins
    >>> fit_set, val_set = split_budget(k_shot(pool, 10))     # 8 to train, 2 to choose on, per class

Also ``tl.stats.choose`` and ``tl.stats.choose_on_grid``: the lessons call them beside the
comparisons they protect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from .datasets import classes_of, role_of, targets_of
from .splits import split_per_class

__all__ = ["choose", "choose_on_grid", "split_budget"]

T = TypeVar("T")


def choose(options: Sequence[T], score: Callable[[T, Any], float], validation: Any) -> T:
    """The option with the best ``score(option, validation)``; the first one on a tie.

    Anything a comparison tunes (a learning rate, an epoch count, a block, C) is chosen on
    validation data, never on the test set: a test set used for choosing is no longer a fair
    measure of the choice. ``validation`` is refused if it is a test split (``load_dataset(...,
    "test")``, the second half of ``stratified_split``, or anything drawn from them). When the choice
    is the smallest or largest of three or more numbers and scored higher than every other one, a
    note says so: the best value may lie beyond the grid (``choose_on_grid`` extends it once). A tie
    with a value inside the grid shows no slope to follow, and gets no note.

    >>> lr = choose([1e-4, 3e-4, 1e-3], lambda lr, val: evaluate(train(lr), val).accuracy, val_loader)
    """
    best, scores = _best(options, score, validation, "choose()")
    if _edge_wins(options, scores, best):
        side = "largest" if best == max(options) else "smallest"  # type: ignore[type-var]
        print(f"note: choose() picked {best:g}, the {side} of {len(options)} values, ahead of every other: "
              f"the best may lie past the grid.")  # type: ignore[str-format]
    return best


def choose_on_grid(grid: Sequence[float], score: Callable[[float, Any], float], validation: Any,
                   step: float = 3.0) -> tuple[float, dict[float, float]]:
    """``choose`` over a grid of numbers, extended once past an edge that wins; returns the choice and
    every value's score.

    When the best value of three or more is the smallest or the largest and scored higher than every
    other value, the best may lie beyond the grid: one more value, ``step`` times further out (one
    significant digit: 1e-3 -> 3e-3, 3e-4 -> 1e-4), is scored and the choice made again over all of
    them, once. A tie with a value inside the grid is no sign of a slope and does not extend it.
    ``score`` is called once per value; memoise the training inside it if it trains.

    >>> lr, scores = choose_on_grid([1e-4, 3e-4, 1e-3], lambda lr, val: evaluate(train(lr), val).accuracy, val)
    """
    values = list(grid)
    best, scores = _best(values, score, validation, "choose_on_grid()")
    if _edge_wins(values, scores, best):
        beyond = float(f"{best * step if best == max(values) else best / step:.0e}")
        values.append(beyond)
        scores.append(score(beyond, validation))
        order = np.argsort(values, kind="stable")
        values, scores = [values[i] for i in order], [scores[i] for i in order]
        best = values[int(np.argmax(scores))]
        print(f"grid extended once to {beyond:g}; chosen {best:g}")
    return best, dict(zip(values, scores))


def _best(options: Sequence[T], score: Callable[[T, Any], float], validation: Any, who: str) -> tuple[T, list]:
    if role_of(validation) == "test":
        raise ValueError(f"{who} was given a test split to choose on. Hold out a validation split from the "
                         "training data (split_per_class or stratified_split of the training part) and choose "
                         "on that; score the chosen option on the test split once, at the end.")
    if not options:
        raise ValueError(f"{who} needs at least one option.")
    scores = [score(option, validation) for option in options]
    return options[int(np.argmax(scores))], scores


def _edge_wins(options: Sequence[Any], scores: list, best: Any) -> bool:
    """The best of three or more numbers is on the grid's edge and strictly ahead of every other value."""
    numbers = len(options) >= 3 and all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options)
    if not numbers or best not in (min(options), max(options)):
        return False
    top = max(scores)
    return sum(s == top for s in scores) == 1


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
