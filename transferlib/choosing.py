"""Choices made on validation data only: the option with the best validation score, never a test split.

    >>> lr = choose([1e-4, 3e-4, 1e-3], lambda lr, val: evaluate(train(lr), val).accuracy, val_loader)

Also ``tl.stats.choose``: the lessons call it beside the comparisons it protects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from .datasets import role_of

__all__ = ["choose"]

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
        print(f"note: choose() picked {best:g}, the {side} of {len(options)} values tried; "  # type: ignore[str-format]
              f"the best may lie beyond the grid.")
    return best
