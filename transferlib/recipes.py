"""Fine-tuning recipes: short functions around :func:`~transferlib.training.fit`.

- :func:`lr_find` (Smith 2015): sweep the learning rate over a few dozen batches;
- :func:`gradual_unfreeze` (Howard & Ruder 2018, ULMFiT): one more block per stage,
  with discriminative learning rates;
- :func:`lp_ft` (Kumar et al. 2022): a linear probe first, then fine-tuning.

    >>> finder = lr_find(model, train_loader); finder.plot(); finder.suggestion
    >>> history = lp_ft(model, train_loader, val_loader, probe_epochs=5, finetune_epochs=5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoints import copy_weights
from .checks import bad_label, check_batch, check_number
from .devices import device_of, mode, to_device
from .freezing import adapt_batchnorm, freeze, freeze_all_but_last, unfreeze
from .progress import progress_bar
from .records import History
from .checks import check_loader
from .training import fit, logits_of, make_optimizer

__all__ = ["LRFinder", "lr_find", "gradual_unfreeze", "lp_ft"]


@dataclass
class LRFinder:
    """Loss against learning rate from :func:`lr_find`, and a suggested rate."""

    lrs: list[float]
    losses: list[float]
    suggestion: float

    def plot(self):
        from .plots import plot_lr_find

        return plot_lr_find(self)


def lr_find(model: nn.Module, train: DataLoader, start_lr: float = 1e-7, end_lr: float = 1.0,
            num_steps: int = 100, seed: int = 0, progress: bool = True) -> LRFinder:
    """Sweep the learning rate exponentially over ``num_steps`` batches and suggest the rate where
    the smoothed loss falls fastest. Runs where the model is; the weights are restored afterwards.

    >>> finder = lr_find(model, train_loader); finder.plot(); finder.suggestion
    """
    check_number("num_steps", num_steps, 3, whole=True, advice="The suggestion reads the loss's slope over the "
                 "sweep: 100 steps is the default.")
    check_number("start_lr", start_lr, 1e-12, advice="1e-7 is the default.")
    check_number("end_lr", end_lr, start_lr * 10, advice="The sweep needs a range: end_lr >= 10 x start_lr.")
    check_loader(model, train, "training")
    device = device_of(model)
    saved = copy_weights(model)
    optimizer = make_optimizer(model, start_lr)
    gamma = (end_lr / start_lr) ** (1 / max(num_steps - 1, 1))
    torch.manual_seed(seed)
    lrs, losses, smooth, best = [], [], 0.0, math.inf
    batches = iter(())
    with mode(model, training=True):  # every submodule back in its own mode afterwards
        try:
            with progress_bar(num_steps, "lr_find", leave=False, disable=not progress) as bar:
                for step in range(num_steps):
                    try:
                        x, y = next(batches)
                    except StopIteration:
                        batches = iter(train)
                        x, y = next(batches)
                    lr = start_lr * gamma ** step
                    for g in optimizer.param_groups:
                        g["lr"] = lr
                    logits = logits_of(model, to_device(x, device))
                    if step == 0:  # the first batch: labels and logits as fit checks them
                        check_batch(model, x, y, logits, "training")
                        error = bad_label(y, logits.shape[-1], "training data")
                        if error:
                            raise error
                    loss = nn.functional.cross_entropy(logits, y.to(device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    smooth = 0.9 * smooth + 0.1 * float(loss.detach())
                    value = smooth / (1 - 0.9 ** (step + 1))  # bias-corrected moving average
                    lrs.append(lr)
                    losses.append(value)
                    best = min(best, value)
                    bar.update()
                    if not math.isfinite(value) or value > 4 * best:
                        break
        finally:
            model.load_state_dict(saved)
            for p in model.parameters():
                p.grad = None
    if len(lrs) < 3:
        raise ValueError(f"The loss blew up (NaN, or 4 times its lowest value) after {len(lrs)} steps (learning rate "
                         f"{lrs[-1]:.2g}): too few to suggest a rate. Start lower (start_lr={start_lr / 100:g}), or "
                         "check the labels.")
    log_lr = np.log10(lrs)
    slopes = np.gradient(np.asarray(losses), log_lr)
    skip = max(len(lrs) // 10, 1)  # the first steps barely move the loss: their slope is noise
    stop = max(int(np.argmin(losses)) + 1, skip + 1)
    suggestion = float(lrs[skip + int(np.argmin(slopes[skip:stop]))])
    return LRFinder(lrs, losses, suggestion)


def gradual_unfreeze(model: nn.Module, train: DataLoader, val: DataLoader | None, stages: int,
                     epochs_per_stage: int = 1, lr: float = 1e-3, factor: float = 2.6,
                     **fit_kwargs: Any) -> History:
    """ULMFiT's gradual unfreezing: train the head, then one more block from the top per stage,
    with discriminative learning rates (``factor``). Returns one History for all stages.

    >>> history = gradual_unfreeze(model, train_loader, val_loader, stages=3)
    """
    history = History()
    for stage in range(1, stages + 1):
        freeze_all_but_last(model, stage)
        history = fit(model, train, val, stage * epochs_per_stage, lr, discriminative=factor, history=history,
                      **fit_kwargs)
        if history.interrupted:
            break
    return history


def lp_ft(model: nn.Module, train: DataLoader, val: DataLoader | None, probe_epochs: int = 5,
          finetune_epochs: int = 5, probe_lr: float = 1e-3, finetune_lr: float = 1e-4,
          unfreeze_blocks: Iterable[str] | None = None, **fit_kwargs: Any) -> History:
    """LP-FT: fit the head on the frozen backbone, then fine-tune everything (or
    ``unfreeze_blocks``) from that head at a lower rate.

    The BatchNorm statistics that fine-tuning will update are re-estimated on ``train`` first
    (:func:`adapt_batchnorm`), so the probe is fitted on the features fine-tuning starts from.

    >>> history = lp_ft(model, train_loader, val_loader, probe_epochs=5, finetune_epochs=5)
    """
    freeze(model)                                          # set up as fine-tuning will train,
    adapt_batchnorm(unfreeze(model, unfreeze_blocks), train)   # and those statistics re-estimated
    freeze_all_but_last(model, 1)
    history = fit(model, train, val, probe_epochs, probe_lr, **fit_kwargs)
    if history.interrupted:
        return history
    unfreeze(model, unfreeze_blocks)
    return fit(model, train, val, probe_epochs + finetune_epochs, finetune_lr, history=history, **fit_kwargs)
