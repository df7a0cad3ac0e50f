"""Probing: what a network computes at each depth, and how similar two representations are.

    >>> acts = activations(model, ["features.3", "features.10"], images)   # {name: (N, C)}
    >>> linear_cka(acts["features.3"], acts["features.10"])
    >>> probe_by_depth(model, ["features.3", "features.10"], train_set, test_set)

Spatial maps (N, C, H, W) are averaged over H and W, token sequences (N, T, C) over T,
so every layer gives one vector per input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .datasets import make_loader
from .devices import batches, device_of
from .features import logistic_probe

__all__ = ["activations", "linear_cka", "probe_by_depth"]


def _pool(out: Any) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "last_hidden_state", out)
    if out.dim() == 4:
        return out.mean(dim=(2, 3))
    if out.dim() == 3:
        return out.mean(dim=1)
    return out.flatten(1)


def activations(model: nn.Module, layers: list[str], data: torch.Tensor | Dataset | DataLoader,
                pool: bool = True, batch_size: int = 16,
                progress: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Outputs of the named submodules (forward hooks), in eval mode without gradients, on the model's
    device; the activations come back on the CPU.

    ``data`` is a batch tensor, a Dataset or a DataLoader of ``(x, y)``. Returns the
    activations by layer name and the labels (``None`` for a bare tensor). With
    ``pool=False`` full maps are kept: mind the memory. Batches of 16, as in
    :func:`~transferlib.features.extract_features`, keep 224 px inputs to a few hundred MB.
    """
    missing = [name for name in layers if name not in dict(model.named_modules())]
    if missing:
        raise ValueError(f"{type(model).__name__} has no module {missing[0]!r}. Names look like: "
                         f"{', '.join(n for n, _ in list(model.named_modules())[1:6])}...")
    device = device_of(model)
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda m, i, o, name=name: store[name].append((_pool(o) if pool else o).float().cpu()))
        for name in layers]
    was_training = model.training
    model.eval()
    labels = []
    try:
        with torch.inference_mode():
            if torch.is_tensor(data):
                model(data.to(device))
            else:
                loader = data if isinstance(data, DataLoader) else make_loader(data, batch_size)
                for x, y in batches(loader, device, "activations", progress):
                    model(x)
                    labels.append(torch.as_tensor(y))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {name: torch.cat(parts) for name, parts in store.items()}, (torch.cat(labels) if labels else None)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) between two sets of activations of the same inputs.

    ``CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` on column-centred matrices;
    1 means the same representation up to rotation and scale, 0 means unrelated.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA compares the same inputs: got {x.shape[0]} and {y.shape[0]} rows.")
    x = x.double().flatten(1)
    y = y.double().flatten(1)
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = (y.T @ x).norm() ** 2
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()))


def probe_by_depth(model: nn.Module, layers: list[str], train: Dataset | DataLoader,
                   test: Dataset | DataLoader, C: float = 1.0, progress: bool = True) -> dict[str, float]:
    """Test accuracy of a logistic-regression probe on each layer's pooled activations."""
    train_acts, train_y = activations(model, layers, train, progress=progress)
    test_acts, test_y = activations(model, layers, test, progress=progress)
    return {name: logistic_probe(train_acts[name], train_y, test_acts[name], test_y, C)[0] for name in layers}
