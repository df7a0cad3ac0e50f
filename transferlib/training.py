"""Training: one ``fit`` for image and text models, ``evaluate``, and the optimizers they build.

``fit`` is the plain PyTorch loop in plain sight, one comment per step. What is not the loop is
one call each: the checks (:mod:`transferlib.checks`), ``_setup`` (optimizer, schedule, loss
scaler, a checkpoint to resume), :class:`~transferlib.checkpoints.BestWeights` and ``rollback``.
Optimizers built here hold the trainable parameters only: weight decay cannot move a frozen one.

    >>> model.to(device)                                   # fit trains where the model is
    >>> history = fit(model, train_loader, val_loader, epochs=10, lr=1e-3, patience=3)
    >>> print(evaluate(model, test_loader))
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoints import BestWeights, check_new_run, resume_run, rollback, save_checkpoint
from .checks import bad_label, check_batch, check_loader, check_optimizer, check_run, num_outputs
from .devices import batches, device_of, mode
from .freezing import blocks
from .heads import Classifier
from .progress import progress_bar
from .records import Evaluation, History

__all__ = ["make_optimizer", "param_groups", "fit", "evaluate", "logits_of"]


def fit(model: nn.Module, train: DataLoader, val: DataLoader | None = None, epochs: int = 10,
        lr: float = 1e-3, *, optimizer: torch.optim.Optimizer | None = None, weight_decay: float = 0.0,
        discriminative: float | None = None, schedule: str | None = None, patience: int | None = None,
        history: History | None = None, checkpoint: str | Path | None = None, resume: bool = False,
        overwrite: bool = False, seed: int = 0, amp: bool | None = None, progress: bool = True,
        on_epoch: Callable[[History], None] | None = None,
        should_stop: Callable[[], bool] | None = None) -> History:
    """Train ``model`` where it is (its device), keeping the weights of the best validation epoch;
    without ``val``, those of the last epoch (nothing to choose on: training accuracy is not a choice).

    - ``epochs``: the length of the run. A fresh call trains that many; ``history=`` (a run to
      extend) or ``resume=True`` train until the History holds ``epochs`` epochs;
    - ``optimizer``: yours, or AdamW over trainable parameters (``make_optimizer``);
    - ``schedule="onecycle"``: torch's OneCycleLR over this call's steps, peaking at ``lr``;
    - ``patience``: stop after that many epochs without a better validation accuracy;
    - ``checkpoint``: a file written after every epoch. ``resume=True`` continues it, with the
      same losses as an uninterrupted run (each epoch reseeds from ``seed`` and its number);
      a new run refuses an existing file unless ``overwrite=True``;
    - ``amp``: mixed precision, on by default for a model on CUDA;
    - ``on_epoch(history)``: called after every epoch (live plots), the model in train mode;
    - ``should_stop()``: checked after every batch; True stops like Ctrl-C (a Stop button).

    The model trains in train mode, is validated in eval mode, and every submodule comes back in
    the mode it came in with, with or without ``val``. Ctrl-C keeps the best weights and returns;
    the History records it. So does a training loss that becomes NaN or infinite
    (``history.diverged`` is the epoch), with a message naming the learning rate. Gradients are
    released on return. Bad inputs fail before anything trains (:mod:`transferlib.checks`).

    >>> history = fit(model, train_loader, val_loader, epochs=5, lr=1e-3, patience=2)
    """
    check_run(epochs, patience, lr)
    if patience is not None and val is None:
        raise ValueError("patience stops training when validation accuracy stops improving, and no val loader "
                         "was given: pass val=..., or leave patience out (fit then trains every epoch and "
                         "keeps the last).")
    check_loader(model, train, "training")
    if val is not None:
        check_loader(model, val, "validation")
    optimizer, scheduler, scaler, amp, history, best, resumed = _setup(
        model, train, epochs, lr, optimizer, weight_decay, discriminative, schedule, history, checkpoint, resume,
        overwrite, amp)
    if resumed and history.stopped_early:
        print(f"{checkpoint} stopped early at epoch {history.epoch[-1]}; nothing to resume.")
        return history
    with mode(model, True), rollback(history, best), \
            progress_bar(max(epochs - len(history), 0), "epochs", disable=not progress) as bar:
        for epoch in range(len(history) + 1, epochs + 1):
            # Reseed from (seed, epoch): the same batches and dropout, so a resumed run repeats an unbroken one.
            epoch_seed = seed * 100_003 + epoch
            torch.manual_seed(epoch_seed)
            if getattr(train, "generator", None) is not None:
                train.generator.manual_seed(epoch_seed)
            tic = time.perf_counter()
            # Train: one pass, an optimizer step per batch, in train mode (on_epoch may have switched it).
            model.train()
            tr_loss, tr_acc, seen = _epoch(model, train, optimizer, scheduler, scaler, amp, f"epoch {epoch}",
                                           progress, should_stop)
            # A NaN or infinite loss ends the run, back at the best weights: NaN is never kept nor saved.
            if not math.isfinite(tr_loss):
                history.diverged = epoch
                best.restore()
                print(_diverged(epoch, tr_loss, optimizer, best))
                break
            # Validate in eval mode (no dropout, BatchNorm's running statistics), then back to train mode.
            va_loss, va_acc = math.nan, math.nan
            if val is not None:
                with mode(model, False):
                    va_loss, va_acc, _ = _epoch(model, val, amp=amp, desc="validate", progress=progress)
            # Record the epoch; its lr is the head's (the last group) at the end of the epoch.
            history.append(epoch=epoch, train_loss=tr_loss, train_acc=tr_acc, val_loss=va_loss, val_acc=va_acc,
                           lr=optimizer.param_groups[-1]["lr"], seconds=time.perf_counter() - tic,
                           steps_per_epoch=len(train), examples=seen)
            # Keep the best epoch's weights: the best validation accuracy; without val, the last epoch.
            if best.offer(epoch, history.score(-1)):
                history.best_epoch = epoch
            # Stop early after `patience` epochs without a better one (once this epoch is saved).
            history.stopped_early = patience is not None and history.epochs_since_best >= patience
            # Checkpoint everything a resume needs: weights, best weights, optimizer, schedule, History.
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, history, best.state, scaler)
            bar.update()
            if on_epoch is not None:
                on_epoch(history)
            if history.stopped_early:
                break
    # Back to the best weights, unless the model holds them already (the last epoch was the best).
    if best.is_start or not history.epoch or best.epoch != history.epoch[-1]:
        best.restore()
    for p in model.parameters():  # the weights are kept, their gradients are not
        p.grad = None
    return history


def _setup(model: nn.Module, train: DataLoader, epochs: int, lr: float, optimizer: torch.optim.Optimizer | None,
           weight_decay: float, discriminative: float | None, schedule: str | None, history: History | None,
           checkpoint: str | Path | None, resume: bool, overwrite: bool, amp: bool | None) -> tuple[
               torch.optim.Optimizer, Any, torch.amp.GradScaler, bool, History, BestWeights, bool]:
    """``fit``'s set-up: (optimizer, schedule, loss scaler, amp, History, best weights, resumed).
    Checks the checkpoint and a given optimizer, then builds the optimizer, the schedule and the
    scaler in that order, and loads the checkpoint into all of them and the model to resume."""
    check_new_run(checkpoint, resume, overwrite)
    if optimizer is not None:
        check_optimizer(model, optimizer)
    device = device_of(model)
    amp = device.type == "cuda" if amp is None else amp
    optimizer = optimizer or make_optimizer(model, lr, weight_decay, discriminative)
    scheduler = None
    if schedule is not None:  # one cycle over this call's steps (those left, when extending `history`)
        if schedule != "onecycle":
            raise ValueError(f"schedule must be None (a constant rate) or 'onecycle', not {schedule!r}.")
        steps = (epochs - (len(history) if history is not None else 0)) * len(train)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                        total_steps=max(steps, 1))
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    resumed = resume and checkpoint is not None and Path(checkpoint).exists()
    if resumed:
        history, best = resume_run(checkpoint, model, optimizer, scheduler, scaler)
    else:
        history, best = history if history is not None else History(), BestWeights(model)
    return optimizer, scheduler, scaler, amp, history, best, resumed


def _epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer | None = None,
           scheduler: Any = None, scaler: Any = None, amp: bool = False, desc: str = "", progress: bool = True,
           should_stop: Callable[[], bool] | None = None) -> tuple[float, float, int]:
    """One pass over ``loader``; trains when an optimizer is given. Returns (mean loss, accuracy, items).

    Sums stay on the model's device, so a GPU is not made to wait for the CPU after every batch.
    """
    device = device_of(model)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    name = "training" if optimizer is not None else "validation"
    with torch.enable_grad() if optimizer is not None else torch.inference_mode():
        for x, y in batches(loader, device, desc, progress):
            with torch.autocast(device.type, enabled=amp):
                logits = logits_of(model, x)
            if not seen:  # the first batch: labels and logits as fit needs them
                check_batch(model, x, y, logits, name)
            y = y.to(device, non_blocking=True)
            loss = _cross_entropy(logits.float(), y, "batch")
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(-1) == y).sum()
            seen += len(y)
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt  # handled by fit exactly like Ctrl-C
    return float(loss_sum) / seen, int(correct) / seen, seen


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor, where: str, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy, with a label outside the model's outputs named instead of torch's index error."""
    try:
        return nn.functional.cross_entropy(logits, y, reduction=reduction)
    except (IndexError, RuntimeError) as err:  # e.g. "Target 7 is out of bounds"
        raise bad_label(y.cpu(), logits.shape[-1], where) or err from None


def _diverged(epoch: int, loss: float, optimizer: torch.optim.Optimizer, best: BestWeights) -> str:
    kept = "its starting weights" if best.is_start else f"the best weights (epoch {best.epoch})"
    return (f"Epoch {epoch}: the training loss became {loss} at learning rate "
            f"{optimizer.param_groups[-1]['lr']:.3g}; training stopped and the model is back to {kept}. "
            "Try a learning rate 10 times lower (lr_find suggests one).")


def evaluate(model: nn.Module, loader: DataLoader, classes: list[str] | None = None,
             progress: bool = False) -> Evaluation:
    """Accuracy, loss, confusion matrix and every prediction, in eval mode without gradients,
    on the model's device; the results are on the CPU. The model's train/eval mode is restored.
    The loader gets the checks ``fit`` runs: a Dataset, an empty loader, the model's classes.

    >>> print(evaluate(model, test_loader))
    """
    from sklearn.metrics import confusion_matrix

    check_loader(model, loader, "evaluation")
    if classes is not None:  # before the pass, where the model says how many outputs it has
        _check_names(classes, num_outputs(model))
    device = device_of(model)
    losses, trues, preds, probs = [], [], [], []
    with mode(model, training=False), torch.inference_mode():
        for x, y in batches(loader, device, "evaluate", progress):
            logits = logits_of(model, x).float()
            if not trues:  # the first batch: labels and logits as evaluation needs them
                check_batch(model, x, y, logits, "evaluation")
            y = y.to(device)
            losses.append(_cross_entropy(logits, y, "evaluation batch", reduction="sum"))
            trues.append(y.cpu())
            preds.append(logits.argmax(-1).cpu())
            probs.append(logits.softmax(-1).cpu())
    y_true, y_pred, p = (torch.cat(t).numpy() for t in (trues, preds, probs))
    classes = classes or getattr(getattr(loader, "dataset", None), "classes", None) or \
        [str(i) for i in range(p.shape[1])]
    _check_names(classes, p.shape[1])
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    return Evaluation(float((y_true == y_pred).mean()), float(sum(losses)) / len(y_true), matrix, list(classes),
                      y_true, y_pred, p)


def _check_names(classes: Sequence[str], outputs: int | None) -> None:
    """One class name per output (``outputs=None``: the model does not say)."""
    if outputs is not None and len(classes) != outputs:
        raise ValueError(f"{len(classes)} class names for a model with {outputs} outputs. Pass the training "
                         "data's classes (dataset.classes), in the order of the labels.")


def logits_of(model: nn.Module, x: Any) -> torch.Tensor:
    """``model(x)`` as logits: a Hugging Face model gets the tokenizer's dict as keywords and
    returns an object with ``.logits``; a transferlib ``Classifier`` takes the dict as it is.

    >>> logits = logits_of(model, x)          # (batch, classes), for an image or a text model
    """
    out = model(**x) if isinstance(x, dict) and not isinstance(model, Classifier) else model(x)
    return getattr(out, "logits", out)


def param_groups(model: nn.Module, lr: float, factor: float = 2.6) -> list[dict[str, Any]]:
    """Discriminative learning rates (ULMFiT): the head gets ``lr``, each block below it
    ``factor`` times less than the block above. Frozen parameters are left out.

    >>> [round(g["lr"], 6) for g in param_groups(model, 1e-3)][-3:]
    [0.000148, 0.000385, 0.001]
    """
    groups = []
    for depth, block in enumerate(reversed(blocks(model))):
        params = [p for p in block.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr / factor ** depth, "name": block.name})
    return groups[::-1]


def make_optimizer(model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0,
                   discriminative: float | None = None, kind: str = "adamw") -> torch.optim.Optimizer:
    """AdamW (or SGD with momentum 0.9) over the *trainable* parameters only.

    ``discriminative=2.6`` gives each block its own learning rate (:func:`param_groups`).

    >>> optimizer = make_optimizer(model, lr=1e-4, weight_decay=1e-4)
    """
    if discriminative:
        groups = param_groups(model, lr, discriminative)
        covered = {id(p) for g in groups for p in g["params"]}
        left = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in covered)
        if left:
            raise ValueError(f"discriminative={discriminative} gives each block its own learning rate, but "
                             f"{left:,} trainable parameters of this {type(model).__name__} are in no block "
                             f"(blocks: {', '.join(b.name for b in blocks(model)[-4:]) or 'none'}). Pass "
                             "discriminative=None, or wrap the model in build_classifier.")
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    if not any(g["params"] for g in groups):
        raise ValueError("Every parameter is frozen: nothing to train. Unfreeze the head at least "
                         "(freeze_all_but_last(model, 1)).")
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"kind must be 'adamw' (the default) or 'sgd' (momentum 0.9), not {kind!r}.")
