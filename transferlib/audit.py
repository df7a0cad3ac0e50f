"""Auditing data before trusting it: photos that do not decode, identical files, and near twins (a
photo re-saved, resized or recompressed; a text retyped with other case or punctuation), grouped so
that a cross-validation keeps each group in one fold. Lesson 8 does each step by hand first.

    >>> photos, unreadable = readable(load_image_folder("my_photos"))
    >>> identical, near, group = twins([path for path, _ in photos.samples])
    >>> StratifiedGroupKFold(5).split(x, y, group)            # twins never straddle train and test
    >>> identical, near, group = text_twins(load_text_csv("reviews.csv").texts)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from .transforms import open_rgb
from .yourdata import ImageFiles

__all__ = ["readable", "dhash", "twins", "text_twins", "enough", "NEAR"]

NEAR = 4   # difference hashes at most this many bits apart (of 64) are near twins; declared, measured in docs/design.md


def readable(data: ImageFiles) -> tuple[ImageFiles, list[str]]:
    """The photos PIL can decode, and the names of those it cannot: an image's name is not enough.

    >>> photos, unreadable = readable(load_image_folder("my_photos"))
    """
    kept, bad = [], []
    for path, label in data.samples:
        try:
            open_rgb(path)
        except Exception:                  # PIL raises several types for a truncated or empty file
            bad.append(str(Path(path).relative_to(data.root)))
        else:
            kept.append((path, label))
    return ImageFiles(data.root, data.classes, kept, data.transform), bad


def dhash(image: Any, size: int = 8) -> np.ndarray:
    """A difference hash: the image in grey at (size + 1) x size pixels, one bit per pair of neighbours
    (is the right one brighter?). A re-saved, resized or recompressed copy differs in a few of its 64 bits.

    >>> (dhash(open_rgb("a.jpg")) != dhash(open_rgb("a_small.jpg"))).sum()     # 0 to 2 for a re-save
    """
    from PIL import Image

    grey = np.asarray(image.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS), dtype=float)
    return grey[:, 1:] > grey[:, :-1]


def twins(files: list[str]) -> tuple[list[list[int]], list[tuple[int, int, int]], np.ndarray]:
    """Groups of byte-identical files, pairs of other photos whose difference hashes are at most NEAR bits
    apart, and a group per photo: the first photo it is a copy or twin of (through any chain of them).

    >>> identical, near, group = twins([path for path, _ in photos.samples])
    """
    by_hash: dict[str, list[int]] = {}
    for i, path in enumerate(files):
        by_hash.setdefault(hashlib.sha256(Path(path).read_bytes()).hexdigest(), []).append(i)
    identical = [g for g in by_hash.values() if len(g) > 1]
    bits = np.array([dhash(open_rgb(f)).ravel() for f in files]).reshape(len(files), -1)
    same, near = {(i, j) for g in identical for i in g for j in g}, []
    for start in range(0, len(files), 256):           # 256 rows at a time: no n x n x 64 array in memory
        apart = (bits[start:start + 256, None, :] != bits[None, :, :]).sum(-1)
        near += [(int(start + i), int(j), int(apart[i, j])) for i, j in zip(*np.nonzero(apart <= NEAR))
                 if start + i < j and (start + i, j) not in same]
    return identical, near, _groups(len(files), identical, near)


def _groups(n: int, identical: list[list[int]], near: list[tuple[int, int, int]]) -> np.ndarray:
    """A group per item: the first item it is a copy or twin of, through any chain of them."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b = np.array([(g[0], j) for g in identical for j in g[1:]] + [(i, j) for i, j, _ in near], int).reshape(-1, 2).T
    label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), (n, n)), directed=False)[1]
    _, first, which = np.unique(label, return_index=True, return_inverse=True)   # name a group by its first item
    return first[which]


def text_twins(texts: list[str]) -> tuple[list[list[int]], list[tuple[int, int, int]], np.ndarray]:
    """As :func:`twins` for texts: groups of identical texts, pairs of other texts with the same words in
    the same order once case, punctuation and spacing are ignored ("Great film!" and "great film"), and
    a group per text. The pairs' distance is 0: only such exact retypings count, nothing looser.

    >>> identical, near, group = text_twins(["Great film!", "great film", "Great film!"])
    """
    by_text: dict[str, list[int]] = {}
    by_words: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        by_text.setdefault(text, []).append(i)
        words = " ".join(re.findall(r"\w+", text.casefold()))
        if words:                         # texts of punctuation or emoji alone are not twins of each other
            by_words.setdefault(words, []).append(by_text[text][0])
    identical = [g for g in by_text.values() if len(g) > 1]
    near = [(g[0], j, 0) for g in map(sorted, map(set, by_words.values())) for j in g[1:]]
    return identical, near, _groups(len(texts), identical, near)


def enough(where: str | Path, y: np.ndarray, classes: list[str], groups: np.ndarray, unit: str = "photo") -> int:
    """Refuse data that nested cross-validation cannot test: fewer than 3 items of a class, or fewer than 3
    once copies and twins count once (``groups``). Returns the fewest distinct items of any class.

    >>> enough("my_photos", y, photos.classes, group)
    """
    for count, what in ((lambda i: int((y == i).sum()), "readable " * (unit == "photo")),
                        (lambda i: len(set(groups[y == i])), "distinct ")):
        n = {c: count(i) for i, c in enumerate(classes)}
        if min(n.values()) < 3:
            few = ", ".join(f"{c!r} has {k} {what}{unit}{'s' * (k != 1)}" for c, k in n.items() if k < 3)
            once = f" once identical {unit}s and near twins count once" * (what == "distinct ")
            raise ValueError(f"{where}: {few}{once}. Testing every {unit} once while choosing inside the rest "
                             f"needs at least 3 per class: add {unit}s, or remove the class.")
    return min(len(set(groups[y == i])) for i in range(len(classes)))
