"""Checkpoints and weight copies: what ``fit`` writes to disk, and what it keeps to go back to.

A checkpoint is one file written with ``torch.save``: plain state dicts (model, best weights,
optimizer, scheduler, loss scaler) and the History as a dict. It is read back with
``torch.load(weights_only=True)``, which refuses to run code hidden in a file. Writes go to a
temporary file that then replaces the old one, so a crash never leaves half a checkpoint.

    >>> save_checkpoint("run.pt", model, optimizer, history=history)
    >>> history, best = load_checkpoint("run.pt", model, optimizer)   # refuses another architecture

``fit`` also calls :func:`check_new_run` (a new run never replaces a file that holds one) and
:func:`resume_run` (a checkpoint's History, and its best weights as a :class:`BestWeights`).

:class:`BestWeights` is the one copy of the weights ``fit`` holds: the weights it started from
until an epoch scores, then the best epoch's; :func:`rollback` goes back to it on Ctrl-C or an error.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checks import check_writable, reason
from .records import History

__all__ = ["save_checkpoint", "load_checkpoint", "copy_weights", "BestWeights", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "transferlib-checkpoint-2"
SPILL_BYTES = 64 * 2**20  # weights larger than this are copied through a temporary file


def copy_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model.state_dict()`` that ``model.load_state_dict`` can restore later.

    Small models are copied in memory (``clone`` per tensor: five times faster than ``deepcopy`` of
    the state dict for MobileNetV2). A model over ``SPILL_BYTES`` (64 MB: a BERT-size encoder,
    not a MobileNet) is written to a temporary file and mapped back with ``torch.load(mmap=True)``:
    the copy then sits in the operating system's file cache, not in this process's memory, until
    it is restored (docs/design.md, Memory).

    >>> before = copy_weights(model); fit(model, loader); model.load_state_dict(before)
    """
    state = model.state_dict()
    if sum(t.numel() * t.element_size() for t in state.values()) <= SPILL_BYTES:
        return {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()}
    with tempfile.TemporaryDirectory(prefix="transferlib-", ignore_cleanup_errors=True) as tmp:
        path = Path(tmp) / "weights.pt"
        torch.save(state, path)
        # The mapping outlives the file's name (removed on leaving this block) on Linux and macOS.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


class BestWeights:
    """The weights to go back to: those of the start until an epoch scores, then the best epoch's.

    One copy at a time: the old copy is dropped before a new one is made.

    >>> best = BestWeights(model)
    >>> if best.offer(epoch=3, score=0.91): print("new best")
    >>> best.restore()
    """

    def __init__(self, model: nn.Module, state: dict[str, torch.Tensor] | None = None,
                 epoch: int | None = None, score: float = -math.inf) -> None:
        self.model = model
        self.state = copy_weights(model) if state is None else state
        self.epoch, self.score = epoch, score

    @property
    def is_start(self) -> bool:
        """True while no epoch of this run has been kept (the copy is of the starting weights)."""
        return self.epoch is None

    def offer(self, epoch: int, score: float) -> bool:
        """Keep the model's current weights if ``score`` beats the best so far (NaN never does)."""
        if not score > self.score:
            return False
        self.state = None  # free the old copy first: never two in memory
        self.state, self.epoch, self.score = copy_weights(self.model), epoch, score
        return True

    def restore(self) -> None:
        self.model.load_state_dict(self.state)


@contextmanager
def rollback(history: History, best: BestWeights) -> Iterator[None]:
    """Around ``fit``'s loop: Ctrl-C puts the best weights back (the starting ones before an epoch
    ended), prints what was kept and returns. Any other error puts them back and raises; during a
    call's first epoch it also leaves the History as it was, as if ``fit`` had not been called.

    >>> with rollback(history, best):
    ...     train_some_epochs()                 # Ctrl-C here: the model holds best's weights
    """
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


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, history: History | None = None,
                    best_state: dict[str, torch.Tensor] | None = None, scaler: Any = None) -> Path:
    """Everything needed to resume, in one file, written atomically. Returns the path.

    >>> save_checkpoint("runs/photos.pt", model, optimizer, history=history)
    """
    path = check_writable(path)
    state = {
        "format": CHECKPOINT_FORMAT, "model_class": type(model).__name__, "shapes": _shapes(model),
        "model": model.state_dict(), "best": best_state,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "history": None if history is None else asdict(history),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)  # never leave a half-written checkpoint behind
    finally:
        tmp.unlink(missing_ok=True)  # a disk that filled up keeps neither half a file nor its .tmp
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents as saved (tensors on the CPU), or a clear error for anything else."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file. Pass the file, e.g. {path / 'run.pt'}.")
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}. Check the name, or train first with "
                                f"fit(..., checkpoint={str(path)!r}).")
    try:
        with open(path, "rb") as f, warnings.catch_warnings():  # a file object: torch.load would read a
            warnings.simplefilter("ignore", UserWarning)           # *.safetensors path as safetensors
            state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code in it, a safetensors file, a truncated file...
        raise ValueError(f"{path} is not a transferlib checkpoint, or it is damaged ({reason(err)}). Checkpoints are "
                         "written by fit(checkpoint=...) or save_checkpoint; plain weights load with "
                         "model.load_state_dict(torch.load(path, weights_only=True)).") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a transferlib checkpoint ({CHECKPOINT_FORMAT}). Plain weights load with "
                         "model.load_state_dict(torch.load(path, weights_only=True)).")
    return state


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, scaler: Any = None) -> tuple[History, dict[str, torch.Tensor] | None]:
    """Load a :func:`save_checkpoint` file into ``model`` (and optimizer, scheduler, scaler).

    Returns the History and the best weights. Everything is checked before anything changes:
    another architecture, another set of trainable parameters or another one-cycle length raises
    ``ValueError`` and leaves the model and optimizer as they were.

    >>> history, best = load_checkpoint("runs/photos.pt", model)
    """
    state = read_checkpoint(path)
    ours = _shapes(model)
    if state["shapes"] != ours:
        theirs = state["shapes"]
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise ValueError(f"{path} was saved from a different architecture ({state['model_class']}, {len(theirs)} "
                         f"tensors) than this {type(model).__name__} ({len(ours)} tensors); first differences: "
                         f"{', '.join(diff[:3])}. Build the same model (name, num_classes, hidden) before loading.")
    if scheduler is not None and state["scheduler"] is not None:
        saved, now = state["scheduler"].get("total_steps"), getattr(scheduler, "total_steps", None)
        if saved != now:
            raise ValueError(f"{path} was trained with a one-cycle schedule of {saved} steps; resume with the same "
                             f"epochs and batch size (this call would make {now} steps).")
    if optimizer is not None and state["optimizer"] is not None:
        sizes = [len(g["params"]) for g in state["optimizer"]["param_groups"]]
        if sizes != [len(g["params"]) for g in optimizer.param_groups]:
            raise ValueError(f"{path} was saved while other parameters were trainable (optimizer groups of "
                             f"{sizes} tensors; now {[len(g['params']) for g in optimizer.param_groups]}). "
                             "Freeze and unfreeze the same blocks as in the saved run before resuming.")
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    model.load_state_dict(state["model"])
    history = History(**state["history"]) if state["history"] is not None else History()
    return history, state["best"]


def check_new_run(path: str | Path | None, resume: bool, overwrite: bool) -> None:
    """``path`` can be written, and a new run (neither ``resume`` nor ``overwrite``) would not replace a run.

    >>> check_new_run("runs/photos.pt", resume=False, overwrite=False)   # FileExistsError if it holds a run
    """
    if path is None or not check_writable(path).exists() or resume or overwrite:
        return
    path = Path(path)
    try:
        saved = read_checkpoint(path)["history"] or {}
        held = f" ({len(saved.get('epoch', []))} epochs, best epoch {saved.get('best_epoch')})"
    except (OSError, ValueError):
        held = ""
    raise FileExistsError(f"{path} already holds a run{held}. Pass resume=True to continue it, overwrite=True to "
                          "replace it with this new run, or choose another file name.")


def resume_run(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
               scheduler: Any = None, scaler: Any = None) -> tuple[History, BestWeights]:
    """:func:`load_checkpoint`, with the best weights to go back to as a :class:`BestWeights`: the saved
    best epoch's, or the loaded weights if no epoch was kept.

    >>> history, best = resume_run("runs/photos.pt", model, optimizer)
    """
    history, state = load_checkpoint(path, model, optimizer, scheduler, scaler)
    if state is None or history.best_epoch is None:
        return history, BestWeights(model)
    score = history.score(history.epoch.index(history.best_epoch))
    return history, BestWeights(model, state, history.best_epoch, score)
