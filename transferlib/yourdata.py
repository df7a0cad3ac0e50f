"""Your own data: a folder of photos with one sub-folder per class, or a CSV of texts and labels.

    >>> photos = load_image_folder("my_photos", transform=image_transform(weights))
    >>> photos.classes
    ['cat', 'dog']
    >>> reviews = load_text_csv("reviews.csv", text_column="review", label_column="stars")

Problems with the files are reported with the file's name and what to do about it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .datasets import DatasetInfo, TextDataset
from .transforms import open_rgb

if TYPE_CHECKING:
    from torchvision.datasets import ImageFolder

__all__ = ["load_image_folder", "load_text_csv"]


def load_image_folder(root: str | Path, transform: Callable | None = None) -> ImageFolder:
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
        folder = ImageFolder(str(root), transform=transform, loader=open_rgb)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{root} holds no images in class sub-folders ({err}). "
                                "Put each class's images in root/<class name>/.") from None
    if len(folder.classes) < 2:
        raise ValueError(f"{root} has images of one class only ({folder.classes[0]!r}). A classifier needs at "
                         "least two: add a sub-folder per class.")
    return folder


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
