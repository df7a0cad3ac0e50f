"""Your own photos, end to end: :func:`try_photos` is what :func:`~transferlib.tryout.try_strategies`
runs for a folder of photos (one sub-folder per class). The strategies are pretrained ImageNet networks,
frozen, each with a probe whose ``C`` is chosen inside every training fold; the engine they share with
texts (nested cross-validation, splits, the pick, calibration and sets) is :mod:`nested`'s.

    >>> report = try_photos("my_photos", minutes=5, out="my_model")   # as try_strategies("my_photos", ...)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audit import enough, readable, twins
from .devices import pick_device
from .features import cached_features
from .heads import build_classifier, linear_layers
from .transforms import image_transform
from .nested import Arm, TryReport, conclude, more_splits, nested_cv, outer_folds
from .yourdata import ImageFiles, load_image_folder

__all__ = ["try_photos", "STRATEGIES"]

STRATEGIES = {"MobileNetV2, frozen + probe": "mobilenet_v2", "EfficientNet-Lite0, frozen + probe": "efficientnet_lite0"}


def try_photos(path: str | Path, minutes: float, out: str | Path | None, device: str, margin: float,
               coverage: float, seed: int, splits: int, start: float) -> TryReport:
    """:func:`~transferlib.tryout.try_strategies` for a folder of photos (arguments checked there; ``start``:
    when its clock started)."""
    data, unreadable = readable(load_image_folder(path))
    y, notes = np.array(data.targets), []
    identical, near, groups = twins([p for p, _ in data.samples])      # kept in one fold below
    per_class = enough(path, y, data.classes, groups)                  # before any model loads
    budget, where = 60.0 * minutes, pick_device(device)
    arms, skipped, folds, features, cv_seconds = [], {}, [], {}, 0.0
    for name, arch in STRATEGIES.items():
        model, weights = build_classifier(arch, len(data.classes))
        backbone = model.backbone.eval().to(where)
        images = ImageFiles(data.root, data.classes, data.samples, image_transform(weights))
        arm_start = time.perf_counter()
        gflops, ms = _cost(backbone, images, where)
        need, left = 1.5 * ms * len(y) / 1000 + 5.0, budget - (time.perf_counter() - start)
        if need > left and arms:
            skipped[name] = f"needs about {need:.0f} s (measured {ms:.0f} ms per photo); {max(left, 0):.0f} s left"
            continue
        if need > left:                # the first strategy runs anyway: without it there is nothing to report
            notes.append(f"{name} alone needs about {need:.0f} s, more than the {budget:.0f} s asked for")
        features[name] = x = cached_features(backbone, images, progress=True)[0].numpy()
        folds = folds or [outer_folds(y, groups, min(5, per_class), seed)]
        cv_start = time.perf_counter()
        logits, inner, Cs, heads = nested_cv(x, y, folds[0], data.classes, groups)
        cv_seconds += time.perf_counter() - cv_start
        arms.append(Arm(name, arch, (logits.argmax(1) == y)[None], logits, inner[None], Cs, heads, gflops, ms,
                        sum(p.numel() for p in backbone.parameters()) * 4 / 2**20, time.perf_counter() - arm_start))
    more_splits(arms, lambda arm, split: nested_cv(features[arm.name], y, split, data.classes, groups)[:2],
                y, groups, folds, splits, seed, 1.5 * cv_seconds + 1.0, budget - (time.perf_counter() - start), notes)
    return conclude(data, arms, folds, groups, margin, coverage, seed, start, budget, notes, out,
                    lambda pick: _final_model(pick, len(data.classes)), unreadable=unreadable,
                    duplicates=identical, near=near, skipped=skipped, source=Path(data.root).resolve().name + "/")


def _cost(backbone: torch.nn.Module, data: ImageFiles, device: torch.device) -> tuple[float, float]:
    """GFLOPs per photo, counted, and milliseconds per photo (read, preprocessed, run) at batch 16."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            backbone(data[0][0][None].to(device))           # also the warm-up
        start = time.perf_counter()
        x = torch.stack([data[i][0] for i in range(min(16, len(data)))]).to(device)
        backbone(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return counter.get_total_flops() / 1e9, 1000 * (time.perf_counter() - start) / len(x)


def _final_model(arm: Arm, classes: int) -> tuple[Any, Any]:
    """The model handed over: the frozen network and the average of the outer folds' probes as its linear
    head. Its logits are the mean of the fold probes' logits, the probes whose out-of-fold logits set the
    temperature and the conformal threshold (a cross-fit ensemble); no probe is refitted on other data."""
    model, weights = build_classifier(arm.arch, classes)
    linear = linear_layers(model.head)[-1]
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.mean([w for w, _ in arm.heads], 0)).float())
        linear.bias.copy_(torch.from_numpy(np.mean([b for _, b in arm.heads], 0)).float())
    return model.eval(), weights
