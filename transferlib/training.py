"""Training: one ``fit`` for image and text models, and ``evaluate``.

``fit`` is the plain PyTorch loop (forward, cross-entropy, backward, step) with what a
course needs around it, each in a helper of its own: a :class:`~transferlib.records.History`,
keep-best weights and early stopping (:class:`~transferlib.checkpoints.BestWeights`),
checkpoints that resume bit-identically, and a rollback that keeps the best weights on
Ctrl-C or an error.

    >>> model.to(device)                                   # fit trains where the model is
    >>> history = fit(model, train_loader, val_loader, epochs=10, lr=1e-3, patience=3)
    >>> print(evaluate(model, test_loader))

Optimizers built here receive trainable parameters only, so weight decay and momentum
cannot move a frozen weight.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoints import BestWeights, load_checkpoint, read_checkpoint, save_checkpoint
from .checks import bad_label, check_batch, check_loader, check_optimizer, check_run, check_writable, num_outputs
from .devices import batches, device_of, mode
from .freezing import blocks
from .heads import Classifier
from .progress import progress_bar
from .records import Evaluation, History

__all__ = ["make_optimizer", "param_groups", "fit", "evaluate", "logits_of"]


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
    raise ValueError(f"kind must be 'adamw' or 'sgd', not {kind!r}.")


# --------------------------------------------------------------------------- a model's logits

def logits_of(model: nn.Module, x: Any) -> torch.Tensor:
    """``model(x)`` as logits: a Hugging Face model gets the tokenizer's dict as keywords and
    returns an object with ``.logits``; a transferlib ``Classifier`` takes the dict as it is."""
    out = model(**x) if isinstance(x, dict) and not isinstance(model, Classifier) else model(x)
    return getattr(out, "logits", out)


# --------------------------------------------------------------------------- one pass over a loader

def _cross_entropy(logits: torch.Tensor, y: torch.Tensor, where: str, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy, with a label outside the model's outputs named instead of torch's index error."""
    try:
        return nn.functional.cross_entropy(logits, y, reduction=reduction)
    except (IndexError, RuntimeError) as err:  # e.g. "Target 7 is out of bounds"
        raise bad_label(y.cpu(), logits.shape[-1], where) or err from None


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


@contextmanager
def _rollback(history: History, best: BestWeights) -> Iterator[None]:
    """Ctrl-C keeps the best weights (or the starting ones before any epoch ended) and returns.
    Any other error does the same, then raises; during a call's first epoch it also leaves the
    History as it was, as if ``fit`` had not been called."""
    start_len, start_flags = len(history), (history.best_epoch, history.stopped_early, history.interrupted)
    try:
        yield
    except KeyboardInterrupt:
        history.interrupted = True
        best.restore()
        print("Interrupted before the first epoch ended; the model is as it was." if best.is_start else
              f"Interrupted after {len(history)} epochs; keeping the best weights (epoch {best.epoch}).")
    except BaseException:
        best.restore()
        if best.is_start:
            history.truncate(start_len)
            history.best_epoch, history.stopped_early, history.interrupted = start_flags
        raise


def _resume(path: Path, model, optimizer, scheduler, scaler) -> tuple[History, BestWeights]:
    history, state = load_checkpoint(path, model, optimizer, scheduler, scaler)
    if state is None or history.best_epoch is None:
        return history, BestWeights(model)
    score = history.score(history.epoch.index(history.best_epoch))
    return history, BestWeights(model, state, history.best_epoch, score)


# --------------------------------------------------------------------------- fit

def fit(model: nn.Module, train: DataLoader, val: DataLoader | None = None, epochs: int = 10,
        lr: float = 1e-3, *, optimizer: torch.optim.Optimizer | None = None, weight_decay: float = 0.0,
        discriminative: float | None = None, schedule: str | None = None, patience: int | None = None,
        history: History | None = None, checkpoint: str | Path | None = None, resume: bool = False,
        overwrite: bool = False, seed: int = 0, amp: bool | None = None, progress: bool = True,
        on_epoch: Callable[[History], None] | None = None,
        should_stop: Callable[[], bool] | None = None) -> History:
    """Train ``model`` where it is (its device), keeping the weights of the best validation epoch;
    without ``val``, those of the last epoch (nothing to choose on: training accuracy is not a choice).

    ``epochs`` is the length of the run: ``fit`` trains until the History holds ``epochs``
    epochs. A fresh call trains that many; ``history=`` (a run to extend) or ``resume=True``
    train the rest.

    - ``optimizer``: yours, or AdamW over trainable parameters (``make_optimizer``);
    - ``schedule="onecycle"``: torch's OneCycleLR over this call's steps, peaking at ``lr``;
    - ``patience``: stop after that many epochs without a better validation accuracy;
    - ``checkpoint``: a file written after every epoch. ``resume=True`` continues it, with the
      same losses as an uninterrupted run (each epoch reseeds from ``seed`` and its number);
      a new run refuses an existing file unless ``overwrite=True``;
    - ``amp``: mixed precision, on by default for a model on CUDA;
    - ``on_epoch(history)``: called after every epoch (live plots);
    - ``should_stop()``: checked after every batch; True stops like Ctrl-C (a Stop button).

    The model comes back in the train/eval mode it came in with, as from :func:`evaluate`.
    Ctrl-C keeps the best weights and returns; the History records it. So does a training loss
    that becomes NaN or infinite (``history.diverged`` is the epoch), with a message naming the
    learning rate. Gradients are released when ``fit`` returns. Bad inputs (a Dataset instead of
    a loader, string labels, an optimizer of another model...) fail before anything trains
    (:mod:`transferlib.checks`).

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
    if checkpoint is not None and check_writable(checkpoint).exists() and not (resume or overwrite):
        raise FileExistsError(_existing_run(Path(checkpoint)))
    if optimizer is not None:
        check_optimizer(model, optimizer)
    device = device_of(model)
    amp = device.type == "cuda" if amp is None else amp
    optimizer = optimizer or make_optimizer(model, lr, weight_decay, discriminative)
    done = len(history) if history is not None else 0
    scheduler = _schedule(schedule, optimizer, (epochs - done) * len(train))
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    if resume and checkpoint is not None and Path(checkpoint).exists():
        history, best = _resume(Path(checkpoint), model, optimizer, scheduler, scaler)
        if history.stopped_early:
            print(f"{checkpoint} stopped early at epoch {history.epoch[-1]}; nothing to resume.")
            return history
    else:
        history, best = history if history is not None else History(), BestWeights(model)
    diverged = None
    with mode(model, True), _rollback(history, best), \
            progress_bar(max(epochs - len(history), 0), "epochs", disable=not progress) as bar:
        for epoch in range(len(history) + 1, epochs + 1):
            epoch_seed = seed * 100_003 + epoch  # same seed and epoch => same batches, same dropout
            torch.manual_seed(epoch_seed)
            if getattr(train, "generator", None) is not None:
                train.generator.manual_seed(epoch_seed)
            tic = time.perf_counter()
            model.train()
            tr_loss, tr_acc, seen = _epoch(model, train, optimizer, scheduler, scaler, amp, f"epoch {epoch}",
                                           progress, should_stop)
            if not math.isfinite(tr_loss):  # NaN weights are never kept, nor written to the checkpoint
                history.diverged = diverged = epoch
                print(_diverged(epoch, tr_loss, optimizer, best))
                break
            va_loss, va_acc, _ = _epoch(model.eval(), val, amp=amp, desc="validate", progress=progress) \
                if val is not None else (math.nan, math.nan, 0)
            history.append(epoch=epoch, train_loss=tr_loss, train_acc=tr_acc, val_loss=va_loss, val_acc=va_acc,
                           lr=optimizer.param_groups[-1]["lr"], seconds=time.perf_counter() - tic,
                           steps_per_epoch=len(train), examples=seen)
            if best.offer(epoch, history.score(-1)):
                history.best_epoch = epoch
            history.stopped_early = patience is not None and history.epochs_since_best >= patience
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, history, best.state, scaler)
            bar.update()
            if on_epoch is not None:
                on_epoch(history)
            if history.stopped_early:
                break
    if diverged or best.is_start or not history.epoch or best.epoch != history.epoch[-1]:
        best.restore()            # (when the last epoch was the best, the model already holds its weights)
    for p in model.parameters():  # the weights are kept, their gradients are not
        p.grad = None
    return history


def _existing_run(path: Path) -> str:
    try:
        saved = read_checkpoint(path)["history"] or {}
        held = f" ({len(saved.get('epoch', []))} epochs, best epoch {saved.get('best_epoch')})"
    except (OSError, ValueError):
        held = ""
    return (f"{path} already holds a run{held}. Pass resume=True to continue it, overwrite=True to replace it "
            "with this new run, or choose another file name.")


def _diverged(epoch: int, loss: float, optimizer: torch.optim.Optimizer, best: BestWeights) -> str:
    kept = "its starting weights" if best.is_start else f"the best weights (epoch {best.epoch})"
    return (f"Epoch {epoch}: the training loss became {loss} at learning rate "
            f"{optimizer.param_groups[-1]['lr']:.3g}; training stopped and the model is back to {kept}. "
            "Try a learning rate 10 times lower (lr_find suggests one).")


def _schedule(schedule: str | None, optimizer: torch.optim.Optimizer, steps: int) -> Any:
    if schedule is None:
        return None
    if schedule != "onecycle":
        raise ValueError(f"schedule must be None or 'onecycle', not {schedule!r}.")
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                               total_steps=max(steps, 1))


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
