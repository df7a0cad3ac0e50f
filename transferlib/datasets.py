"""Datasets: the containers the course's data comes in, the views on them, and the loaders that feed them.

Every dataset here has ``classes`` (names), ``targets`` (one integer label per item) and a
``role`` (what the split is for), so that every helper can count, split and stratify it
without loading a single image, and refuse to choose on a test split.

    >>> tops = select_classes(fashion, ["T-shirt/top", "Shirt"])      # labels 0, 1
    >>> for_cnn = with_transform(tops, image_transform(None, size=28))  # the same items, preprocessed
    >>> loader = make_loader(for_cnn, batch_size=32, shuffle=True, seed=0)

Splits of them (k-shot budgets, stratified splits, hold-outs) come from :mod:`transferlib.splits`,
the course's own datasets from :mod:`transferlib.catalogue`, yours from :mod:`transferlib.yourdata`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["DatasetInfo", "ArrayImageDataset", "TextDataset", "Transformed", "ClassSubset", "InMemory",
           "select_classes", "in_memory", "with_transform", "targets_of", "classes_of", "role_of", "make_loader"]


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset comes from and under which terms you may use it."""

    name: str
    description: str
    source: str
    license: str
    citation: str = ""


class ArrayImageDataset(Dataset):
    """Greyscale images held in a ``uint8`` array of shape (N, H, W), like torchvision's MNIST.

    ``dataset[i]`` is ``(transform(PIL image), label)``. ``role`` is set by ``load_dataset`` (:func:`role_of`).
    """

    role: str | None = None

    def __init__(self, images: np.ndarray, targets: Sequence[int], classes: list[str],
                 info: DatasetInfo, transform: Callable | None = None) -> None:
        self.data = np.asarray(images, dtype=np.uint8)
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)
        self.info = info
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.data[i], mode="L")
        return (self.transform(image) if self.transform else image), self.targets[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, n={len(self)}, classes={len(self.classes)})"


class TextDataset(Dataset):
    """Texts with integer labels. ``dataset[i]`` is ``(text, label)``. ``role``: as :class:`ArrayImageDataset`'s."""

    role: str | None = None

    def __init__(self, texts: Sequence[str], targets: Sequence[int], classes: list[str],
                 info: DatasetInfo) -> None:
        self.texts = list(texts)
        bad = [i for i, t in enumerate(self.texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts[{bad[0]}] is {self.texts[bad[0]]!r} (a {type(self.texts[bad[0]]).__name__}), not "
                            f"a text ({len(bad)} of {len(self.texts)} are not strings). pandas reads an empty cell as "
                            "nan: drop those rows first (df.dropna(subset=['text'])), or load the file with "
                            "load_text_csv.")
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)
        self.info = info

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], self.targets[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, n={len(self)}, classes={len(self.classes)})"


class Transformed(Dataset):
    """``dataset`` with ``transform`` applied to its inputs; ``targets``, ``classes`` and ``role`` pass through."""

    def __init__(self, dataset: Dataset, transform: Callable) -> None:
        self.dataset, self.transform = dataset, transform
        self.targets, self.classes, self.role = targets_of(dataset), classes_of(dataset), role_of(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i]
        return self.transform(x), y


class ClassSubset(Dataset):
    """The examples of some classes only, relabelled 0..len(classes)-1 in the order given; ``role`` passes through."""

    def __init__(self, dataset: Dataset, classes: Sequence[str | int]) -> None:
        names = classes_of(dataset)
        chosen = [names[c] if isinstance(c, int) else c for c in classes]
        unknown = [c for c in chosen if c not in names]
        if unknown or len(set(chosen)) < 2:
            raise ValueError(f"Pick at least two of the dataset's classes {names}; got {list(classes)}.")
        old = [names.index(c) for c in chosen]
        targets = np.asarray(targets_of(dataset))
        self.dataset, self.classes, self.role = dataset, chosen, role_of(dataset)
        self.indices = np.flatnonzero(np.isin(targets, old)).tolist()
        remap = {o: n for n, o in enumerate(old)}
        self.targets = [remap[int(targets[i])] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]][0], self.targets[i]


def select_classes(dataset: Dataset, classes: Sequence[str | int]) -> ClassSubset:
    """Keep some classes, by name or index, and number them 0, 1, ... in the order given.

    >>> fashion = load_dataset("fashion_mnist")
    >>> tops = select_classes(fashion, ["T-shirt/top", "Pullover", "Coat", "Shirt"])   # labels 0..3
    """
    return ClassSubset(dataset, classes)


class InMemory(torch.utils.data.TensorDataset):
    """Tensors computed once from a dataset, with its ``targets``, ``classes`` and ``role``."""

    def __init__(self, dataset: Dataset) -> None:
        if not len(dataset):
            raise ValueError("in_memory() was given an empty dataset: nothing to keep.")
        first = dataset[0][0]
        if not torch.is_tensor(first):
            raise TypeError(f"in_memory() keeps tensors, and this dataset's inputs are {type(first).__name__}s. "
                            "Give it a transform first: in_memory(with_transform(data, image_transform(weights))).")
        images = torch.stack([first, *(dataset[i][0] for i in range(1, len(dataset)))])
        self.targets, self.classes, self.role = targets_of(dataset), classes_of(dataset), role_of(dataset)
        super().__init__(images, torch.as_tensor(self.targets))


def in_memory(dataset: Dataset) -> InMemory:
    """Apply the transform once and keep the tensors: for small images and many short runs.

    Random augmentation would be frozen too, so use it for fixed transforms only.

    >>> train = in_memory(with_transform(k_shot(fashion, 50), image_transform(None, size=28)))
    """
    return InMemory(dataset)


def with_transform(dataset: Dataset, transform: Callable) -> Transformed:
    """The same examples through another transform: one split, two models' preprocessing.

    The dataset should hand out raw images (loaded with ``transform=None``).

    >>> few = k_shot(load_dataset("animal_mnist"), k=10)
    >>> for_cnn = with_transform(few, image_transform(None, augment=True, size=28))
    >>> for_mobilenet = with_transform(few, image_transform(weights, size=96))
    """
    return Transformed(dataset, transform)


def targets_of(dataset: Dataset) -> list[int]:
    """The labels of a dataset, or of a torch ``Subset`` of one (looked up, not loaded)."""
    if hasattr(dataset, "targets"):
        return [int(t) for t in dataset.targets]
    if isinstance(dataset, Subset):
        parent = targets_of(dataset.dataset)
        return [parent[i] for i in dataset.indices]
    raise TypeError(f"{type(dataset).__name__} has no .targets: give it a list of integer labels.")


def classes_of(dataset: Dataset) -> list[str]:
    """The class names of a dataset, or of a torch ``Subset`` of one."""
    while not hasattr(dataset, "classes") and isinstance(dataset, Subset):
        dataset = dataset.dataset
    if not hasattr(dataset, "classes"):
        raise TypeError(f"{type(dataset).__name__} has no .classes: give it a list of class names.")
    return list(dataset.classes)


def role_of(data: Any) -> str | None:
    """``"train"``, ``"validation"`` or ``"test"``: what a split is for, as far as it can be traced.

    ``load_dataset(name, "test")``, the second half of ``stratified_split`` and anything drawn from
    them (k-shot budgets, transforms, features) are ``"test"``; what ``split_per_class`` holds out of
    training data is ``"validation"`` (:mod:`transferlib.splits`). ``None`` when nothing says. The
    datasets here, splits and features declare their ``role``; a wrapper that does not (a DataLoader,
    a torch ``Subset``, one of yours) is looked through to its ``.dataset``.

    >>> role_of(load_dataset("animal_mnist", "test")), role_of(split_per_class(train, 20)[0])
    ('test', 'validation')
    """
    seen = set()
    while data is not None and not hasattr(data, "role") and id(data) not in seen:
        seen.add(id(data))
        data = getattr(data, "dataset", None)
    return getattr(data, "role", None)


def make_loader(dataset: Dataset, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                num_workers: int = 0, collate_fn: Callable | None = None) -> DataLoader:
    """A DataLoader for a small CPU: batches of 32, no worker processes by default.

    Worker processes cost start-up time and memory and misbehave in some notebook
    front ends; on 2 cores the model's own threads are the better use. Shuffling is
    seeded, so the same ``seed`` gives the same batches.

    >>> train_loader = make_loader(with_transform(train, transform), shuffle=True, seed=SEED)
    """
    generator = torch.Generator().manual_seed(seed)
    shuffle = shuffle and len(dataset) > 0  # nothing to shuffle: fit and evaluate say the loader is empty
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, collate_fn=collate_fn)
