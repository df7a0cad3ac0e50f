"""Your own data: a folder of photos with one sub-folder per class, or a CSV of texts and labels,
as they come from a zip file, a phone, Jupyter or a spreadsheet.

    >>> photos = load_image_folder("my_photos", transform=image_transform(weights))
    >>> photos.classes
    ['cat', 'dog']
    >>> reviews = load_text_csv("reviews.csv", text_column="review", label_column="stars")

What is not data is skipped with a one-line note: hidden folders and files, ``__MACOSX``,
``.ipynb_checkpoints``, files PIL cannot read, a second link to the same image. A spreadsheet's
byte-order mark, its delimiter (comma, semicolon, tab or bar) and a file that is not UTF-8 are
detected. Anything that cannot be right (one class, rows without a label, split folders read as
classes) is refused with the file's name and what to do about it.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .datasets import DatasetInfo, TextDataset
from .transforms import open_rgb

__all__ = ["load_image_folder", "load_text_csv", "list_images", "ImageFiles"]

NOT_CLASSES = {"__MACOSX", "__pycache__", ".ipynb_checkpoints"}   # and every name starting with "."
SPLIT_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing", "dev"}
MISSING_LABELS = {"", "nan", "na", "n/a", "null", "none"}          # compared lower-cased
DELIMITERS = (",", ";", "\t", "|")


class ImageFiles(Dataset):
    """Image files and their labels, read as RGB when indexed: ``dataset[i]`` is ``(transform(image), label)``.

    It has the attributes of torchvision's ``ImageFolder`` (``classes``, ``class_to_idx``,
    ``samples``, ``targets``, ``root``), so code written for one works with the other, and the
    ``role`` ``load_dataset`` gives a split (:func:`~transferlib.datasets.role_of`).
    """

    role: str | None = None

    def __init__(self, root: str | Path, classes: list[str], samples: list[tuple[str, int]],
                 transform: Callable | None = None) -> None:
        self.root, self.classes, self.samples, self.transform = str(root), list(classes), list(samples), transform
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.targets = [t for _, t in self.samples]
        self.imgs = self.samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, target = self.samples[i]
        image = open_rgb(path)
        return (self.transform(image) if self.transform else image), target

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r}, n={len(self)}, classes={self.classes})"


NOT_PIXELS = {"MPEG", "EPS"}  # PIL identifies these but cannot decode them (EPS needs Ghostscript)


def _image_extensions() -> set[str]:
    """Every extension PIL can decode (.jpg, .jfif, .png, .gif, .webp, .tif...), lower-case. Formats PIL
    only identifies (HDF5, GRIB, BUFR, WMF stubs; MPEG; EPS) are left out: a results.h5 or a clip.mpg
    beside the photos is skipped, not an error when its turn comes."""
    import inspect

    from PIL import Image, ImageFile

    def decodes(fmt: str) -> bool:
        factory = Image.OPEN[fmt][0]
        stub = inspect.isclass(factory) and issubclass(factory, ImageFile.StubImageFile)
        return not stub and fmt not in NOT_PIXELS

    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN and decodes(fmt)}


def _not_a_class(name: str) -> bool:
    return name.startswith(".") or name in NOT_CLASSES


def _scan_class(folder: Path, extensions: set[str], skipped: Counter) -> list[str]:
    """The image files under ``folder`` (sub-folders included, links followed once), sorted."""
    found, seen_dirs, seen_files = [], set(), set()
    for here, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in seen_dirs:  # a link back up the tree: walked once, not forever
            dirs[:] = []
            skipped["links to a folder already read"] += 1
            continue
        seen_dirs.add(real)
        dirs[:] = sorted(d for d in dirs if not _not_a_class(d))
        for name in sorted(files):
            path = os.path.join(here, name)
            ext = os.path.splitext(name)[1].lower()
            if name.startswith("."):   # .DS_Store, ._IMG_0001.jpg (macOS), .~lock files
                skipped["hidden files"] += 1
            elif ext not in extensions:
                skipped[f"{ext or 'no extension'} files"] += 1
            elif (real_file := os.path.realpath(path)) in seen_files:
                skipped["second links to the same image"] += 1
            else:
                seen_files.add(real_file)
                found.append(path)
    return found


def list_images(folder: str | Path, skipped: Counter | None = None) -> list[str]:
    """The image files under ``folder`` (sub-folders too), sorted. Hidden files and files that are not
    images are left out, and counted by kind in ``skipped`` if one is given.

    >>> list_images("holiday_photos")[:2]
    """
    return _scan_class(Path(folder), _image_extensions(), Counter() if skipped is None else skipped)


def load_image_folder(root: str | Path, transform: Callable | None = None) -> ImageFiles:
    """Your own photos, one sub-folder per class (``root/cat/x.jpg``, ``root/dog/y.png``...).

    Images are read as RGB (cut-outs with transparency on a white background, grey and CMYK
    converted), in sub-folders of a class too. What is not an image or not a class is skipped
    and counted in one printed line.

    >>> photos = load_image_folder("my_photos", transform=weights.transforms())
    >>> photos.classes
    ['cat', 'dog']
    """
    root = Path(root)
    if not root.is_dir():
        what = "a file" if root.exists() else "not there"
        raise FileNotFoundError(f"{root} is {what}, not a folder. Pass a folder with one sub-folder per class "
                                f"(a zip file: unzip it first).")
    subfolders = sorted(p for p in root.iterdir() if p.is_dir())
    ignored = [p.name for p in subfolders if _not_a_class(p.name)]
    class_dirs = [p for p in subfolders if not _not_a_class(p.name)]
    if not class_dirs:
        raise FileNotFoundError(f"{root} holds no images in class sub-folders (it has no sub-folders"
                                f"{' but ' + ', '.join(ignored) if ignored else ''}). Put each class's images in "
                                f"{root}/<class name>/.")
    splits = [p.name for p in class_dirs if p.name.lower() in SPLIT_NAMES]
    if splits and len(splits) == len(class_dirs):
        raise ValueError(f"{root} holds split folders ({', '.join(splits)}), not classes. Load each split on its "
                         f"own, e.g. load_image_folder({str(root / splits[0])!r}), or move the class folders up.")
    extensions, skipped = _image_extensions(), Counter()
    files = {p.name: _scan_class(p, extensions, skipped) for p in class_dirs}
    empty = [name for name, found in files.items() if not found]
    if empty:
        raise FileNotFoundError(f"{root}: the class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                                f"hold{'' if len(empty) > 1 else 's'} no images PIL can read"
                                f"{f' (skipped: {_said(skipped)})' if skipped else ''}. Add images or remove "
                                "the folder.")
    classes = sorted(files)
    if len(classes) < 2:
        raise ValueError(f"{root} has images of one class only ({classes[0]!r}). A classifier needs at least two: "
                         "add a sub-folder per class.")
    note = "" if not ignored else f"1 folder that is not a class ({ignored[0]})" if len(ignored) == 1 else \
        f"{len(ignored)} folders that are not classes ({', '.join(ignored)})"
    if note or skipped:
        heic = " (convert .heic photos to JPEG to use them)" if skipped.get(".heic files") else ""
        print(f"{root.resolve().name}/: skipped {', '.join(filter(None, [note, _said(skipped)]))}{heic}.")
    samples = [(path, i) for i, name in enumerate(classes) for path in files[name]]
    return ImageFiles(root, classes, samples, transform)


def _said(counts: Counter) -> str:
    """'1 .txt file, 2 hidden files': the counts' plural keys, singular where the count is 1."""
    return ", ".join(f"{n} {what if n > 1 else what.replace(' files', ' file').replace('links ', 'link ')}"
                     for what, n in counts.most_common())


# --------------------------------------------------------------------------- CSV files

def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 (with or without Excel's byte-order mark), UTF-16, else Windows-1252 with a note."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        encoding = "cp1252"
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            encoding, text = "latin-1", raw.decode("latin-1")
        line = raw[:err.start].count(b"\n") + 1
        print(f"{path.name} is not UTF-8 (line {line} has the byte {raw[err.start]:#04x}); read it as "
              f"{encoding}. If accents look wrong, save it as 'CSV UTF-8' and load it again.")
        return text


def _delimiter(text: str, wanted: set[str]) -> str:
    """The delimiter whose header holds the wanted columns; else the one that splits it most."""
    header = text.splitlines()[0] if text.strip() else ""
    columns = {d: [c.strip() for c in next(csv.reader([header], delimiter=d))] for d in DELIMITERS}
    return next((d for d in DELIMITERS if wanted <= set(columns[d])), max(DELIMITERS, key=lambda d: len(columns[d])))


def _label_order(labels: set[str]) -> list[str]:
    """Numbers in numeric order ("2" before "10"), anything else alphabetically."""
    try:
        return sorted(labels, key=lambda s: (float(s), s))
    except ValueError:
        return sorted(labels)


def _rows(reader: csv.DictReader) -> Iterator[dict[str | None, Any]]:
    """The reader's rows, with no limit on a cell's length (csv's own is 131,072 characters; a long
    text is truncated later, by the tokenizer)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        yield from reader
    finally:
        csv.field_size_limit(limit)


def _lines(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:8])) + (f" and {len(numbers) - 8} more" if len(numbers) > 8 else "")


def load_text_csv(path: str | Path, text_column: str = "text", label_column: str = "label") -> TextDataset:
    """Your own texts: a CSV file with a text column and a label column (any label values).

    Labels are stripped of spaces; numeric labels are ordered as numbers. Rows without a label
    (blank, "NaN", "NA"...) or without a text are refused with their line numbers; empty rows are
    skipped.

    >>> reviews = load_text_csv("reviews.csv", text_column="review", label_column="stars")
    >>> reviews.classes          # the distinct labels: ['1', '2', ..., '10'], not ['1', '10', '2', ...]
    """
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise FileNotFoundError(f"{path} is {'a folder' if path.is_dir() else 'not there'}. Pass a CSV file.")
    text = _decode(path, path.read_bytes())
    if not text.strip():
        raise ValueError(f"{path} is empty. Export the sheet again with a header row ({text_column}, "
                         f"{label_column}) and one row per text.")
    reader = csv.DictReader(io.StringIO(text, newline=""),
                            delimiter=_delimiter(text, {text_column, label_column}))
    reader.fieldnames = [(c or "").strip() for c in reader.fieldnames or []]
    missing = {text_column, label_column} - set(reader.fieldnames)
    if missing:
        raise ValueError(f"{path} has no column {', '.join(sorted(map(repr, missing)))}. Its columns are: "
                         f"{', '.join(reader.fieldnames)}. Pass text_column= and label_column=.")
    texts, labels, no_text, no_label, extra = [], [], [], [], []
    for row in _rows(reader):
        if not any((v or "").strip() for k, v in row.items() if k is not None):
            continue  # an empty row, as spreadsheets leave at the end
        if any((v or "").strip() for v in row.get(None) or []):  # more fields than the header: a comma in an
            # unquoted text (a trailing empty field, "good,pos,", is harmless)
            extra.append(reader.line_num)
            continue
        body, label = row[text_column] or "", (row[label_column] or "").strip()
        if not body.strip():
            no_text.append(reader.line_num)
        if label.lower() in MISSING_LABELS:
            no_label.append(reader.line_num)
        texts.append(body)
        labels.append(label)
    if extra:
        raise ValueError(f"{path}, line {_lines(extra)}: more fields than the header's {len(reader.fieldnames)} "
                         f"({', '.join(reader.fieldnames)}). A text with a comma in it must be in quotes "
                         '("bad, really bad"); spreadsheets add them when you save as CSV.')
    if no_text:
        raise ValueError(f"{path}, line {_lines(no_text)}: the text is empty. Remove those rows or fill them in.")
    if no_label:
        raise ValueError(f"{path}, line {_lines(no_label)}: no label (blank, NaN or NA). Label those rows or "
                         "remove them.")
    if not texts:
        raise ValueError(f"{path} has a header but no rows.")
    classes = _label_order(set(labels))
    if len(classes) < 2:
        raise ValueError(f"{path}: every row has the label {classes[0]!r}. A classifier needs at least two "
                         f"classes in {label_column!r}; is it the right column?")
    info = DatasetInfo(path.stem, f"{len(texts)} texts from {path.name}", str(path), "yours")
    index = {c: i for i, c in enumerate(classes)}
    return TextDataset(texts, [index[label] for label in labels], classes, info)
