"""Plots: training curves, confusion matrices, image grids, filters and feature maps.

Each function draws with matplotlib and returns the figure. This module imports nothing from the
rest of transferlib: it reads records (a History, an Evaluation, an LRFinder) by their fields.

    >>> plot_history(history); plot_confusion(evaluate(model, test_loader))
    >>> plot_filters(model.features[0][0].weight)
"""

from __future__ import annotations

from typing import Any
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["plot_history", "plot_confusion", "image_grid", "plot_filters", "plot_feature_maps", "plot_lr_find",
           "plot_reliability"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Any, title: str = "", pyplot: bool = True):
    """Loss and accuracy against epoch, training and validation; the kept epoch is marked.

    ``pyplot=False`` builds a bare Figure, safe to make from a background thread.

    >>> plot_history(fit(model, train_loader, val_loader, epochs=5))    # or history.plot()
    """
    if pyplot:
        fig, (ax1, ax2) = _plt().subplots(1, 2, figsize=(10, 3.5))
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.5))
        ax1, ax2 = fig.subplots(1, 2)
    for ax, key in ((ax1, "loss"), (ax2, "acc")):
        ax.plot(history.epoch, getattr(history, f"train_{key}"), "o-", label="train")
        if not all(np.isnan(getattr(history, f"val_{key}"))):
            ax.plot(history.epoch, getattr(history, f"val_{key}"), "o-", label="validation")
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch, color="grey", ls=":", label="kept")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "loss")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(evaluation: Any, normalize: bool = True):
    """The confusion matrix: rows are true classes, columns predictions.

    >>> plot_confusion(evaluate(model, test_loader))                    # or evaluation.plot()
    """
    plt = _plt()
    m = evaluation.confusion.astype(float)
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(evaluation.classes)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * n, 0.8 + 0.6 * n))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{m[i, j]:.2f}" if normalize else int(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] > 0.5 * m.max() else "black", fontsize=8)
    ax.set_xticks(range(n), evaluation.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), evaluation.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {evaluation.accuracy:.3f}")
    fig.tight_layout()
    return fig


def image_grid(images: Sequence, true: Sequence[int], pred: Sequence[int] | None = None,
               classes: Sequence[str] | None = None, cols: int = 8):
    """Images with their true (and predicted) labels; wrong predictions in red.

    ``images`` are PIL images, HxW(xC) arrays or CxHxW tensors (shown min-max scaled).

    >>> wrong = np.flatnonzero(~evaluation.correct)[:8]
    >>> image_grid([test[i][0] for i in wrong], evaluation.y_true[wrong], evaluation.y_pred[wrong], classes)
    """
    plt = _plt()
    rows = (len(images) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    name = (lambda i: classes[i]) if classes else str
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= len(images):
            continue
        img = images[k]
        if torch.is_tensor(img):
            img = img.detach().float().cpu()
            img = ((img - img.min()) / (img.max() - img.min() + 1e-8)).permute(1, 2, 0).squeeze(-1).numpy()
        ax.imshow(np.asarray(img), cmap="gray")
        label = name(int(true[k]))
        if pred is not None:
            ok = int(pred[k]) == int(true[k])
            ax.set_title(f"{label}\n→ {name(int(pred[k]))}", fontsize=8, color="black" if ok else "red")
        else:
            ax.set_title(label, fontsize=8)
    fig.tight_layout()
    return fig


def plot_filters(weight: torch.Tensor, cols: int = 8, title: str = ""):
    """First-layer convolution filters (out, 3, k, k) as small RGB images, each scaled to [0, 1].

    >>> plot_filters(model.backbone.features[0][0].weight)             # MobileNetV2's 32 first filters
    """
    plt = _plt()
    w = weight.detach().float().cpu()
    if w.dim() != 4:
        raise ValueError(f"Expected a conv weight of shape (out, in, k, k), got {tuple(w.shape)}.")
    rows = (w.shape[0] + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < w.shape[0]:
            f = w[k]
            f = (f - f.min()) / (f.max() - f.min() + 1e-8)
            ax.imshow(f.permute(1, 2, 0).numpy() if f.shape[0] == 3 else f[0].numpy(),
                      cmap=None if f.shape[0] == 3 else "gray", interpolation="nearest")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_feature_maps(maps: dict[str, torch.Tensor], channels: int = 6):
    """For each named layer, the first ``channels`` maps of one input (C, H, W).

    >>> maps, _ = activations(model.backbone, ["features.1", "features.6"], image[None], pool=False)
    >>> plot_feature_maps(maps)
    """
    plt = _plt()
    fig, axes = plt.subplots(len(maps), channels, figsize=(1.6 * channels, 1.7 * len(maps)), squeeze=False)
    for row, (name, m) in zip(axes, maps.items()):
        m = m.detach().float().cpu()
        m = m[0] if m.dim() == 4 else m
        for c, ax in enumerate(row):
            ax.axis("off")
            if c < m.shape[0]:
                ax.imshow(m[c].numpy(), cmap="viridis")
        row[0].set_title(f"{name} ({m.shape[1]}×{m.shape[2]})", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def plot_lr_find(finder: Any):
    """Smoothed loss against learning rate (log scale), with the suggested rate."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(finder.lrs, finder.losses)
    ax.axvline(finder.suggestion, color="red", ls=":", label=f"suggested {finder.suggestion:.1e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_reliability(curves: dict[str, Any], title: str = ""):
    """Reliability diagrams side by side: accuracy against confidence per bin, with the diagonal of a
    calibrated model; ``curves`` maps a name to a :class:`~transferlib.calibration.Reliability`.
    Each red dot is a bin's accuracy placed at its items' mean confidence (a bar's left edge is the
    bin's), so its height above or below the diagonal is the bin's gap; the title's ECE is the
    noise-corrected one (:func:`~transferlib.calibration.ece`), not the plain gap the bars show.

    >>> plot_reliability({"before": reliability(p, y), "after": reliability(p_t, y)})
    """
    fig, axes = _plt().subplots(1, len(curves), figsize=(3.6 * len(curves), 3.4), squeeze=False)
    for ax, (name, r) in zip(axes[0], curves.items()):
        width = r.edges[1] - r.edges[0]
        used = r.count > 0
        ax.bar(r.edges[:-1][used], r.accuracy[used], width=width, align="edge", edgecolor="black",
               color="tab:blue", alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="calibrated")
        ax.plot(r.confidence[used], r.accuracy[used], "o", color="tab:red", ms=4,
                label="accuracy at the bin's\nmean confidence")
        for left, n in zip(r.edges[:-1][used], r.count[used]):  # at the bar's foot, clear of the red dots
            ax.text(left + width / 2, 0.02, str(n), ha="center", va="bottom", fontsize=7)
        ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence", ylabel="accuracy",
               title=f"{name}\nECE {r.ece:.3f} (noise-corrected)")
    axes[0][0].legend(loc="upper left", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
