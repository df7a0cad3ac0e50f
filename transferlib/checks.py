"""Checks at the boundary of ``fit`` and ``evaluate``: what a learner passes in, checked before
anything trains, with a message that names the bad input and says what to do next.

    >>> check_loader(model, train_loader, "training")     # a Dataset, an empty loader, wrong classes
    >>> check_batch(model, x, y, logits, "training")      # labels' type, logits' shape (first batch)

Every check runs once per call (or on the first batch), never per step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

__all__ = ["check_loader", "check_batch", "check_run", "check_optimizer", "bad_label", "num_outputs"]


def num_outputs(model: nn.Module) -> int | None:
    """How many classes ``model`` predicts, if it says (``num_classes``, a Hugging Face config, its last Linear)."""
    if hasattr(model, "num_classes"):
        return int(model.num_classes)
    if hasattr(model, "config") and hasattr(model.config, "num_labels"):
        return int(model.config.num_labels)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
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


def check_loader(model: nn.Module, loader: Any, name: str) -> None:
    """Fail before training: a Dataset or an empty loader, a class count that is not the model's,
    labels outside its outputs, a tokenizer whose ids the model's embedding does not have.

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
    n_out = num_outputs(model)
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
                         "labels; fit needs (items, classes). End the model with pooling, flatten and a Linear "
                         "head (build_classifier does).")
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
