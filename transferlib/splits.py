"""Splits: k-shot budgets, stratified splits and per-class hold-outs, each a :class:`LabelledSubset`
that knows its labels, its class names and what it is for (its ``role``).

    >>> val, pool = split_per_class(train, 20)                 # a stratified hold-out: "validation"
    >>> few = k_shot(pool, k=10, seed=0)                       # 10 labels per class, nested budgets
    >>> train, test = stratified_split(photos, test_size=0.2)  # "train" and "test"
    >>> few.role, val.role, role_of(with_transform(test, transform))
    ('train', 'validation', 'test')

A part of a test split is a test split: whatever is drawn from one keeps its role, so
``tl.stats.choose`` and ``fit_probe`` can refuse to choose on it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset, Subset

from .datasets import classes_of, role_of, targets_of

__all__ = ["LabelledSubset", "subset", "stratified_indices", "split_per_class", "stratified_split", "k_shot"]


class LabelledSubset(Subset):
    """A torch ``Subset`` that declares what the helpers look up: ``targets`` (its items' labels,
    looked up in ``dataset``, not loaded), ``classes`` (the dataset's names) and ``role``: "train",
    "validation", "test" or None (:func:`~transferlib.datasets.role_of`), by default ``dataset``'s.

    >>> part = LabelledSubset(load_dataset("digits", "test"), [0, 5, 9])
    >>> part.targets, part.classes[:3], part.role, part.indices
    ([1, 9, 2], ['0', '1', '2'], 'test', [0, 5, 9])
    """

    targets: list[int]
    classes: list[str]
    role: str | None

    def __init__(self, dataset: Dataset, indices: Sequence[int], role: str | None = None) -> None:
        index = np.asarray(indices, dtype=int)
        super().__init__(dataset, index.tolist())
        self.targets = np.asarray(targets_of(dataset))[index].tolist()
        self.classes = classes_of(dataset)
        self.role = role if role is not None else role_of(dataset)


def subset(dataset: Dataset, indices: Sequence[int]) -> LabelledSubset:
    """A torch ``Subset`` that keeps ``targets``, ``classes`` and ``role``, so every helper accepts it.

    >>> for train_idx, test_idx in StratifiedKFold(5).split(x, y):
    ...     train = subset(photos, train_idx)
    """
    return LabelledSubset(dataset, indices)


def stratified_indices(targets: Sequence[int], part: str, test_size: float = 0.2, seed: int = 0) -> np.ndarray:
    """Sorted indices of the ``"train"`` or ``"test"`` part of a stratified split (or ``"all"``)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(targets))
    if part == "all":
        return index
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=targets)
    return np.sort(train if part == "train" else test)


def _per_class(dataset: Dataset, k: int, seed: int) -> np.ndarray:
    """Sorted indices of ``k`` random examples of every class: a prefix of one seeded permutation per class."""
    targets, classes = np.asarray(targets_of(dataset)), classes_of(dataset)
    counts = np.bincount(targets, minlength=len(classes))
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 or k > counts.min():
        smallest = classes[int(counts.argmin())]
        raise ValueError(f"k must be a whole number between 1 and {counts.min()} (class {smallest!r} has only "
                         f"{counts.min()} examples), not {k!r}.")
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(targets == c))[:k] for c in range(len(classes))]))


def split_per_class(dataset: Dataset, k: int, seed: int = 0) -> tuple[LabelledSubset, LabelledSubset]:
    """``k`` random examples of every class, and all the others: a stratified hold-out.

    The hold-out of training data is a ``"validation"`` split (of a test split, still ``"test"``);
    the others keep ``dataset``'s role.

    >>> val, pool = split_per_class(train, 20)     # 20 per class to validate on; train from the pool
    """
    chosen = _per_class(dataset, k, seed)
    rest = np.setdiff1d(np.arange(len(targets_of(dataset))), chosen)
    held_out = "test" if role_of(dataset) == "test" else "validation"
    return LabelledSubset(dataset, chosen, held_out), LabelledSubset(dataset, rest)


def stratified_split(dataset: Dataset, test_size: float = 0.2,
                     seed: int = 0) -> tuple[LabelledSubset, LabelledSubset]:
    """``(train, test)`` with every class in the same proportion in both: the split ``load_dataset`` uses.

    Their roles are ``"train"`` and ``"test"`` (both ``"test"`` for a split of a test split).

    >>> photos = load_image_folder("my_photos")
    >>> train, test = stratified_split(photos, test_size=0.2)
    """
    targets = np.asarray(targets_of(dataset))
    if np.bincount(targets).min() < 2:
        raise ValueError("stratified_split needs at least 2 examples of every class; "
                         f"counts are {np.bincount(targets).tolist()}. Add images to the small classes.")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0 < test_size < 1:
        raise ValueError(f"test_size is the share of the data to test on, between 0 and 1 (0.2 = 20%), not "
                         f"{test_size!r}.")
    n, n_classes = len(targets), len(np.unique(targets))
    n_test = math.ceil(test_size * n)
    if min(n_test, n - n_test) < n_classes:
        raise ValueError(f"test_size={test_size} splits {n} items into {n - n_test} to train on and {n_test} to "
                         f"test on, and each part needs one item of each of the {n_classes} classes. Use a "
                         f"test_size between {math.ceil(100 * n_classes / n) / 100:.2f} and "
                         f"{math.floor(100 * (1 - n_classes / n)) / 100:.2f}.")
    train_role = "test" if role_of(dataset) == "test" else "train"
    return (LabelledSubset(dataset, stratified_indices(targets, "train", test_size, seed), train_role),
            LabelledSubset(dataset, stratified_indices(targets, "test", test_size, seed), "test"))


def k_shot(dataset: Dataset, k: int, seed: int = 0) -> LabelledSubset:
    """A stratified subset with ``k`` examples of every class, drawn with ``seed``; it keeps ``dataset``'s role.

    Budgets are nested: with the same seed, the 10-shot subset is inside the 25-shot one,
    so a learning curve adds labels instead of swapping them.

    >>> few = k_shot(train, k=10, seed=0)     # 10 labels per class
    """
    return LabelledSubset(dataset, _per_class(dataset, k, seed))
