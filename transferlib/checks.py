"""Checks at the boundary of the library: what a learner passes in, checked before anything
trains or changes, with a message that names the bad input and says what to do next.

    >>> check_loader(model, train_loader, "training")     # a Dataset, an empty loader, wrong classes
    >>> check_batch(model, x, y, logits, "training")      # labels' type, logits' shape (first batch)
    >>> check_number("bins", bins, 1, whole=True)         # a count, a share, a rate
    >>> y = check_labels(labels, 3, "labels")             # class indices 0..2, one per item
    >>> check_writable("runs/photos.pt")                  # not a folder, no file in the way, not too long

``fit``, ``evaluate``, ``lr_find``, ``extract_features`` and ``cached_features`` run the loader
checks; the statistics and calibration functions run the number and label checks. Every check
runs once per call (or on the first batch), never per step.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .heads import linear_layers

__all__ = ["check_loader", "check_batch", "check_run", "check_optimizer", "check_number", "check_confidence",
           "check_labels", "check_correct", "check_writable", "bad_label", "num_outputs", "reason"]


def reason(err: BaseException, limit: int = 160) -> str:
    """The first line of ``err``'s message (its type's name if it has none), to quote in a message of ours.

    >>> reason(ValueError("header too long\nmore detail"))     # 'header too long'
    """
    return (str(err).strip() or type(err).__name__).splitlines()[0][:limit]


def num_outputs(model: nn.Module) -> int | None:
    """How many classes ``model`` predicts, if it says (``num_classes``, a Hugging Face config, its last Linear)."""
    if hasattr(model, "num_classes"):
        return int(model.num_classes)
    if hasattr(model, "config") and hasattr(model.config, "num_labels"):
        return int(model.config.num_labels)
    linears = linear_layers(model)
    return linears[-1].out_features if linears else None


def bad_label(labels: torch.Tensor | np.ndarray, n_out: int, where: str) -> ValueError | None:
    """The error for the first label outside 0..n_out-1, or None."""
    t = np.asarray(labels)
    if t.dtype.kind not in "iu":  # strings or floats: check_batch says what is wrong with them
        return None
    bad = t[(t < 0) | (t >= n_out)]
    if not bad.size:
        return None
    return ValueError(f"The {where} has label {int(bad[0])}, outside 0..{n_out - 1} for a model with {n_out} "
                      "outputs. Labels must be class indices.")


def _vocabulary(model: nn.Module) -> int | None:
    """Rows of the model's token embedding (a text model), else None."""
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            return module.num_embeddings
    return None


def check_loader(model: nn.Module, loader: Any, name: str, outputs: bool = True) -> None:
    """Fail before training: a Dataset or an empty loader, a class count that is not the model's,
    labels outside its outputs, a tokenizer whose ids the model's embedding does not have.
    ``outputs=False`` (a backbone, whose outputs are features, not classes) skips the class checks.

    >>> check_loader(model, make_loader(photos, 32), "training")
    """
    if isinstance(loader, Dataset) or not isinstance(loader, Iterable):
        what = "a Dataset" if isinstance(loader, Dataset) else f"a {type(loader).__name__}"
        raise TypeError(f"The {name} data is {what}, not a loader of batches. Wrap it: "
                        f"make_loader(data, batch_size=32{', shuffle=True' if name == 'training' else ''}) "
                        "(text_loader(data, tokenizer) for texts).")
    try:
        size = len(loader)
    except TypeError:
        size = None
    dataset = getattr(loader, "dataset", None)
    if size == 0:
        held = f" (its dataset holds {len(dataset)} items)" if dataset is not None else ""
        raise ValueError(f"The {name} loader has no batches{held}. Give it at least one example"
                         f"{', or drop_last=False' if dataset is not None and len(dataset) else ''}.")
    n_out = num_outputs(model) if outputs else None
    classes = getattr(dataset, "classes", None)
    if n_out is not None and classes is not None and len(classes) != n_out:
        raise ValueError(f"The model has {n_out} outputs but the {name} data has {len(classes)} classes "
                         f"({', '.join(map(str, classes[:6]))}{'...' if len(classes) > 6 else ''}). Build the "
                         f"head with num_classes={len(classes)}.")
    targets = getattr(dataset, "targets", None)
    if targets is not None and n_out is not None and len(targets):
        error = bad_label(targets, n_out, f"{name} data")
        if error:
            raise error
    tokenizer = getattr(getattr(loader, "collate_fn", None), "tokenizer", None)
    rows = _vocabulary(model)
    if tokenizer is not None and rows is not None and len(tokenizer) > rows:
        raise ValueError(f"The {name} loader's tokenizer ({getattr(tokenizer, 'name_or_path', '?')}) has "
                         f"{len(tokenizer)} tokens but the model's embedding has {rows}: the tokenizer belongs to "
                         "another model. Use the tokenizer load_text_model returned with this model.")


def check_batch(model: nn.Module, x: Any, y: Any, logits: torch.Tensor, name: str) -> None:
    """The first batch: integer labels, one per item, and logits of shape (items, outputs).

    >>> check_batch(model, x, y, model(x), "training")
    """
    if isinstance(y, (list, tuple)) and y and isinstance(y[0], str):
        raise TypeError(f"The {name} labels are strings ({', '.join(map(repr, y[:3]))}...). Labels must be class "
                        "indices: number the classes (classes.index(label)), as load_text_csv does.")
    if not torch.is_tensor(y):
        raise TypeError(f"The {name} batches' labels are {type(y).__name__}, not a tensor of class indices. Each "
                        "batch must be (inputs, labels); a dataset's item must be (input, label).")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"The {name} labels are {y.dtype} ({', '.join(f'{v:g}' for v in y[:3].tolist())}...). "
                        "Labels must be integer class indices: targets=[int(t) for t in targets].")
    if logits.ndim != 2 or logits.shape[0] != len(y):
        raise ValueError(f"The model returned logits of shape {tuple(logits.shape)} for a {name} batch of {len(y)} "
                         "labels; a classifier's must be (items, classes). End the model with pooling, flatten "
                         "and a Linear head (build_classifier does).")
    tokens = x.get("input_ids") if isinstance(x, dict) else None
    rows = _vocabulary(model)
    if tokens is not None and rows is not None and int(tokens.max()) >= rows:
        raise ValueError(f"The {name} batch has token id {int(tokens.max())} but the model's embedding has "
                         f"{rows} rows: the tokenizer belongs to another model. Use the tokenizer "
                         "load_text_model returned with this model.")


def check_run(epochs: Any, patience: Any, lr: Any) -> None:
    """``fit``'s numbers: whole epochs >= 1, patience None or >= 1, a positive finite learning rate."""
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1 (the length of the run), not {epochs!r}.")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, numbers.Integral)
                                 or patience < 1):
        raise ValueError(f"patience must be None or a whole number >= 1, not {patience!r}: patience=0 would "
                         "stop right after an improvement. patience=3 stops after 3 epochs without one.")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive number, not {lr!r}. Try 1e-3 (lr_find suggests one).")


def check_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Refuse an optimizer that holds none of ``model``'s trainable parameters (it would train nothing)."""
    ours = {id(p) for p in model.parameters() if p.requires_grad}
    theirs = [p for g in optimizer.param_groups for p in g["params"]]
    if not any(id(p) in ours for p in theirs):
        raise ValueError(f"The optimizer holds {len(theirs)} tensors, none of them a trainable parameter of this "
                         f"{type(model).__name__}: it was made for another model (or before a rebuild), and "
                         "would train nothing. Make it from this model: make_optimizer(model, lr).")


def check_number(name: str, value: Any, low: float, high: float | None = None, *, whole: bool = False,
                 advice: str = "") -> None:
    """Refuse a ``value`` that is not a finite number in [low, high] (a whole number with ``whole``).

    >>> check_number("resamples", 0, 1, whole=True)   # ValueError: resamples must be a whole number >= 1, not 0.
    """
    kind = numbers.Integral if whole else numbers.Real
    if (isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value < low
            or (high is not None and value > high)):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {'a whole number' if whole else 'a number'} {span}, not {value!r}."
                         f"{' ' + advice if advice else ''}")


def check_confidence(confidence: Any) -> None:
    """A confidence level is a probability strictly between 0 and 1.

    >>> check_confidence(95)     # ValueError: confidence is a probability ... (0.95 for 95%), not 95.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence is a probability, between 0 and 1 (0.95 for 95%), not {confidence!r}.")


def check_correct(correct: Any) -> np.ndarray:
    """Per-item correctness (0/1 or True/False; one row per seed) as a 2-D float array, or a clear error.

    >>> check_correct([True, False, True]).shape     # (1, 3)
    """
    raw = np.asarray(correct.cpu() if hasattr(correct, "cpu") else correct)
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"Correctness must be 0/1 or True/False per item, not {raw.dtype} values like "
                         f"{raw.ravel()[:2].tolist()}: pass evaluate(...).correct, or (predicted == labels).")
    rows = np.atleast_2d(raw.astype(float))
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"Expected one 0/1 value per test item (or one row per seed), got shape "
                         f"{np.shape(correct)}. Pass evaluate(model, loader).correct.")
    if not np.isin(rows, (0.0, 1.0)).all():
        raise ValueError("Correctness must be 0/1 (or True/False) per item: pass evaluate(...).correct, "
                         "not probabilities or labels.")
    return rows


def check_labels(labels: Any, n_classes: int, name: str = "labels") -> np.ndarray:
    """``labels`` as int64 class indices in 0..n_classes-1 (whole-valued floats pass), or a clear error.

    >>> check_labels(torch.tensor([0, 2, 1]), 3)      # array([0, 2, 1])
    """
    raw = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if raw.ndim != 1:
        raise ValueError(f"{name} must hold one class index per item (1-D), not an array of shape {raw.shape}.")
    if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw % 1 == 0))):
        shown = ", ".join(map(repr, raw[:3].tolist()))
        raise ValueError(f"{name} must be whole class indices 0..{n_classes - 1}, not {raw.dtype} values "
                         f"({shown}...). Pass the true labels (dataset.targets), not probabilities or names.")
    y = raw.astype(np.int64)
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {y[bad[0]]}, outside 0..{n_classes - 1} for {n_classes} classes "
                         f"({bad.size} such items). Labels must be indices into the model's classes.")
    return y


def check_writable(path: str | Path, example: str = "run.pt") -> Path:
    """``path`` as a file name that can be written: not a folder, no file where a folder must be, no part
    longer than the system allows. Checked before anything is trained or written.

    >>> check_writable("runs/photos.pt")    # PosixPath('runs/photos.pt')
    """
    if str(path).endswith(("/", os.sep)):
        raise IsADirectoryError(f"{path} names a folder. Give a file name, e.g. {Path(path) / example}.")
    path = Path(path)
    parent = next((p for p in path.parents if len(p.name.encode()) < 256 and p.exists()), Path("."))
    try:
        longest = os.pathconf(parent if parent.is_dir() else ".", "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # Windows has no pathconf
        longest = 255
    for part in path.parts[:-1] + (path.name + ".tmp",):  # files are written as NAME.tmp, then renamed
        if len(part.encode()) > longest:
            raise ValueError(f"The name {part[:40]}... in {str(path)[:60]}... is {len(part.encode())} bytes long "
                             f"(with .tmp, as it is first written); this system allows {longest}. Choose a shorter "
                             "file name.")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder. Give a file name, e.g. {path / example}.")
    if not parent.is_dir():
        raise NotADirectoryError(f"{parent} is a file, so {path} cannot be written inside it. Choose another "
                                 "folder, or rename that file.")
    return path
