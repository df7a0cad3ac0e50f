"""Features: run a frozen backbone once, cache what it computes, train heads on the cache.

A frozen backbone computes the same features every epoch, so computing them once and
training the head on the stored vectors is many times faster (``bench/cached_features.py``).
Extraction runs in eval mode (BatchNorm uses its running statistics, dropout is off)
and under ``torch.inference_mode()`` (no autograd graph, a fraction of the memory).

    >>> feats, labels = cached_features(model.backbone, train_set)       # (N, 1280), (N,)
    >>> head, history = train_head(feats, labels, num_classes=6, val=(test_feats, test_labels))
    >>> probe = fit_probe((feats, labels), val=(val_feats, val_labels))     # transferlib.probing

The cache key covers the backbone's weights, the dataset's content and its transform,
so a changed input never reuses a stale cache.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .checks import check_loader, reason
from .datasets import ArrayImageDataset, ClassSubset, TextDataset, Transformed, make_loader, role_of
from .devices import batches, device_of, mode
from .heads import make_head
from .records import History
from .text import TextCollator
from .training import fit

__all__ = ["Features", "extract_features", "cached_features", "train_head", "fingerprint", "cache_dir"]


@dataclass(frozen=True, eq=False)
class Features:
    """``(features, labels)`` that also remember which split they came from (``role``: "train",
    "validation", "test" or None), so that a choice made on them can refuse test data.

    It unpacks and indexes like the pair it holds: ``x, y = features``, ``features[0]``, ``f(*features)``.

    >>> val = cached_features(backbone, val_set)
    >>> x, y = val; val.role
    'validation'
    """

    features: torch.Tensor
    labels: torch.Tensor
    role: str | None = None

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.features, self.labels))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int | slice) -> Any:
        return (self.features, self.labels)[i]


def cache_dir() -> Path:
    """``$TRANSFERLIB_CACHE`` or ``~/.cache/transferlib``."""
    return Path(os.environ.get("TRANSFERLIB_CACHE", Path.home() / ".cache" / "transferlib"))


def extract_features(backbone: nn.Module, data: Dataset | DataLoader, batch_size: int = 16,
                     tokenizer: Any = None, progress: bool = True) -> Features:
    """``(features, labels)`` for every item, on the CPU, computed in eval mode under ``inference_mode``
    on the backbone's device.

    Batches of 16 keep MobileNetV2 at 224 px to about 200 MB of activations (EfficientNet-Lite0:
    about 550 MB); on a 2-core CPU they were also faster than 32 or 64.

    Pass a ``tokenizer`` for a :class:`TextDataset`. The backbone's train/eval mode is restored.

    >>> feats, labels = extract_features(model.backbone, test_set)     # (N, 1280), (N,)
    """
    if isinstance(data, DataLoader):
        loader = data
    else:
        collate = TextCollator(tokenizer) if tokenizer is not None else None
        loader = make_loader(data, batch_size, shuffle=False, collate_fn=collate)
    check_loader(backbone, loader, "data", outputs=False)  # a backbone's outputs are features, not classes
    feats, labels = [], []
    with mode(backbone, training=False), torch.inference_mode():
        for x, y in batches(loader, device_of(backbone), "features", progress):
            feats.append(backbone(x).float().cpu())
            labels.append(torch.as_tensor(y))
    return Features(torch.cat(feats), torch.cat(labels), role_of(data))


def fingerprint(obj: Any) -> str:
    """A sha256 of what determines the features: model weights, dataset content, transform."""
    h = hashlib.sha256()
    if isinstance(obj, nn.Module):
        for name, tensor in obj.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Subset):
        h.update(fingerprint(obj.dataset).encode())
        h.update(np.asarray(obj.indices, dtype=np.int64).tobytes())
    elif isinstance(obj, ClassSubset):
        h.update(fingerprint(obj.dataset).encode())
        h.update(np.asarray(obj.indices, dtype=np.int64).tobytes())
        h.update(np.asarray(obj.targets, dtype=np.int64).tobytes())
    elif isinstance(obj, Transformed):
        h.update(fingerprint(obj.dataset).encode())
        h.update(_transform_repr(obj.transform).encode())
    elif isinstance(obj, ArrayImageDataset):
        h.update(obj.data.tobytes())
        h.update(np.asarray(obj.targets, dtype=np.int64).tobytes())
        h.update(_transform_repr(obj.transform).encode())
    elif isinstance(obj, TextDataset):
        h.update("\x00".join(obj.texts).encode())
        h.update(np.asarray(obj.targets, dtype=np.int64).tobytes())
    elif hasattr(obj, "samples") and hasattr(obj, "transform"):  # torchvision ImageFolder
        for path, target in obj.samples:
            h.update(f"{Path(path).name}:{target}:".encode())
            h.update(Path(path).read_bytes())
        h.update(_transform_repr(obj.transform).encode())
    else:
        raise TypeError(f"Cannot fingerprint a {type(obj).__name__}: pass key='something unique' to "
                        "cached_features, or use extract_features without a cache.")
    return h.hexdigest()


def _transform_repr(transform: Any) -> str:
    """The transform's repr, if it pins the transform down: no lambdas, no memory addresses."""
    text = repr(transform)
    if " at 0x" in text or "Lambda" in text:
        raise TypeError(f"The transform {text!r} contains a function whose code its repr does not show, so a "
                        "cache key could go stale or never match. Pass key='something unique' to "
                        "cached_features, or use a transform class with a descriptive __repr__.")
    return text


# Changed whenever the library changes how it computes features, so that no cache file computed
# the old way is reused: its numbers differ in the last digits, enough to move a chaotic choice.
EXTRACTION = "channels-last image batches on the CPU (2026-12-07)"


def cached_features(backbone: nn.Module, dataset: Dataset, key: str | None = None, batch_size: int = 16,
                    tokenizer: Any = None, progress: bool = True) -> Features:
    """Like :func:`extract_features`, but stored in :func:`cache_dir` as safetensors and reused.

    The file name is a hash of the backbone's weights, the dataset (content, labels,
    transform), the tokenizer's name and :data:`EXTRACTION` (how the library computes
    features: files from an older way are not reused), unless you give a ``key``. A damaged
    file is deleted and computed again, with a note.

    >>> feats, labels = cached_features(model.backbone, with_transform(train, weights.transforms()))
    """
    from safetensors.torch import load_file, save_file

    if key is None:
        parts = [fingerprint(backbone), fingerprint(dataset), getattr(tokenizer, "name_or_path", ""), EXTRACTION]
        key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
    path = cache_dir() / "features" / f"{key}.safetensors"
    if path.exists():
        try:
            stored = load_file(str(path))
            return Features(stored["features"], stored["labels"], role_of(dataset))
        except Exception as err:  # safetensors raises several types for a damaged file
            print(f"The cached features {path} are damaged ({reason(err, 60)}); deleted, computing them again.")
            path.unlink(missing_ok=True)
    feats, labels = extract_features(backbone, dataset, batch_size, tokenizer, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        save_file({"features": feats.contiguous(), "labels": labels.contiguous()}, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return Features(feats, labels, role_of(dataset))


class _FeatureSet(TensorDataset):
    def __init__(self, feats: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        super().__init__(feats, labels)
        self.targets = labels.tolist()
        self.classes = [str(i) for i in range(num_classes)]


def train_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, hidden: int | None = None,
               dropout: float = 0.0, epochs: int = 50, lr: float = 1e-3, weight_decay: float = 1e-4,
               batch_size: int = 64, val: tuple[torch.Tensor, torch.Tensor] | None = None,
               patience: int | None = None, seed: int = 0, progress: bool = True) -> tuple[nn.Module, History]:
    """A torch head (linear, or MLP with ``hidden``) trained with :func:`fit` on stored features, on the CPU.

    >>> head, history = train_head(feats, labels, num_classes=6, epochs=100)
    """
    torch.manual_seed(seed)
    head = make_head(features.shape[1], num_classes, hidden, dropout)
    train = make_loader(_FeatureSet(features, labels, num_classes), batch_size, shuffle=True, seed=seed)
    val_loader = make_loader(_FeatureSet(*val, num_classes), 512) if val is not None else None
    history = fit(head, train, val_loader, epochs, lr, weight_decay=weight_decay, patience=patience,
                  seed=seed, progress=progress)
    return head, history
