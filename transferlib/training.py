"""Training: one ``fit`` for image and text models, evaluation, checkpoints, fine-tuning recipes.

``fit`` is a plain PyTorch loop (forward, cross-entropy, backward, step) with the
things a course needs around it: progress bars, a :class:`History`, early stopping
that restores the best weights, checkpoints that resume bit-identically, and Ctrl-C
that keeps the best weights instead of losing the run.

    >>> history = fit(model, train_loader, val_loader, epochs=10, lr=1e-3, patience=3)
    >>> history.plot()
    >>> print(evaluate(model, test_loader))

Optimizers built here receive trainable parameters only, so weight decay and momentum
cannot move a frozen weight.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .freezing import blocks, freeze_all_but_last, unfreeze

__all__ = ["History", "Evaluation", "pick_device", "make_optimizer", "param_groups", "fit", "evaluate",
           "save_checkpoint", "load_checkpoint", "lr_find", "LRFinder", "gradual_unfreeze", "lp_ft", "release_memory",
           "copy_weights"]


# --------------------------------------------------------------------------- memory

def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # macOS, Windows, musl
        return None


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the operating system (glibc's
    ``malloc_trim``), so that a notebook of many short runs does not grow run after run.
    ``fit`` calls it at the end of every run; elsewhere than glibc it only collects garbage."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


# --------------------------------------------------------------------------- records

@dataclass
class History:
    """What happened in each epoch. ``best_epoch`` is the one whose weights were kept."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False

    _SERIES = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")

    def __len__(self) -> int:
        return len(self.epoch)

    def _truncate(self, n: int) -> None:
        for name in self._SERIES:
            del getattr(self, name)[n:]

    @property
    def best_val_acc(self) -> float | None:
        """Validation accuracy of the kept epoch; None without validation data or epochs."""
        if self.best_epoch is None:
            return None
        value = self.val_acc[self.epoch.index(self.best_epoch)]
        return None if math.isnan(value) else value

    @property
    def best_acc(self) -> float | None:
        """Accuracy of the kept epoch: validation if there was any, else training."""
        if self.best_epoch is None:
            return None
        i = self.epoch.index(self.best_epoch)
        return self.train_acc[i] if math.isnan(self.val_acc[i]) else self.val_acc[i]

    def plot(self, title: str = ""):
        """Loss and accuracy per epoch, training and validation."""
        from .plots import plot_history

        return plot_history(self, title)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "History":
        return cls(**json.loads(text))


@dataclass
class Evaluation:
    """Accuracy, mean loss, confusion matrix (rows: true class) and per-class accuracy."""

    accuracy: float
    loss: float
    confusion: np.ndarray
    classes: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray

    @property
    def per_class(self) -> dict[str, float]:
        totals = self.confusion.sum(axis=1)
        return {c: float(self.confusion[i, i] / totals[i]) if totals[i] else float("nan")
                for i, c in enumerate(self.classes)}

    def __str__(self) -> str:
        lines = [f"accuracy {self.accuracy:.3f}, loss {self.loss:.3f}, {len(self.y_true)} examples"]
        lines += [f"  {c:20} {a:.3f}" for c, a in self.per_class.items()]
        return "\n".join(lines)

    __repr__ = __str__

    def plot(self, normalize: bool = True):
        from .plots import plot_confusion

        return plot_confusion(self, normalize)


# --------------------------------------------------------------------------- devices and optimizers

def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA, then Apple's MPS, then the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def param_groups(model: nn.Module, lr: float, factor: float = 2.6) -> list[dict[str, Any]]:
    """Discriminative learning rates (ULMFiT): the head gets ``lr``, each block below it
    ``factor`` times less than the block above. Frozen parameters are left out.

    >>> [round(g["lr"], 6) for g in param_groups(model, 1e-3)][-3:]
    [0.000148, 0.000385, 0.001]
    """
    groups = []
    all_blocks = blocks(model)
    for depth, block in enumerate(reversed(all_blocks)):
        params = [p for p in block.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lr / factor ** depth, "name": block.name})
    return groups[::-1]


def make_optimizer(model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0,
                   discriminative: float | None = None, kind: str = "adamw") -> torch.optim.Optimizer:
    """AdamW (or SGD with momentum 0.9) over the *trainable* parameters only.

    ``discriminative=2.6`` gives each block its own learning rate (:func:`param_groups`).
    """
    if discriminative:
        groups = param_groups(model, lr, discriminative)
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


# --------------------------------------------------------------------------- the loop

def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, dict):
        return {k: v.to(device) for k, v in x.items()}
    return x.to(device)


def _logits(model: nn.Module, x: Any) -> torch.Tensor:
    out = model(**x) if isinstance(x, dict) and not _takes_dict(model) else model(x)
    return getattr(out, "logits", out)  # Hugging Face models return an object with .logits


def _takes_dict(model: nn.Module) -> bool:
    from .heads import Classifier

    return isinstance(model, Classifier)


def _num_outputs(model: nn.Module) -> int | None:
    if hasattr(model, "num_classes"):
        return int(model.num_classes)
    if hasattr(model, "config") and hasattr(model.config, "num_labels"):
        return int(model.config.num_labels)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def _check_data(model: nn.Module, loader: DataLoader, name: str) -> None:
    """Fail before training, with a message that says what to fix."""
    n_out = _num_outputs(model)
    dataset = loader.dataset
    classes = getattr(dataset, "classes", None)
    if n_out is not None and classes is not None and len(classes) != n_out:
        raise ValueError(f"The model has {n_out} outputs but the {name} data has {len(classes)} classes "
                         f"({', '.join(map(str, classes[:6]))}{'...' if len(classes) > 6 else ''}). Build the "
                         f"head with num_classes={len(classes)}.")
    targets = getattr(dataset, "targets", None)
    if targets is not None and n_out is not None and len(targets):
        t = np.asarray(targets)
        bad = t[(t < 0) | (t >= n_out)]
        if bad.size:
            raise ValueError(f"The {name} data has label {int(bad[0])}, outside 0..{n_out - 1} for a model with "
                             f"{n_out} outputs. Labels must be class indices.")


def _run_epoch(model, loader, device, optimizer=None, scheduler=None, scaler=None, amp=False,
               desc="", progress=True, should_stop=None) -> tuple[float, float]:
    """One pass over ``loader``; trains when an optimizer is given. Returns (mean loss, accuracy)."""
    train = optimizer is not None
    loss_sum, correct, seen = 0.0, 0, 0
    # tqdm(total=...) rather than tqdm(loader): tqdm.auto would create the loader's iterator twice.
    bar = tqdm(total=len(loader), desc=desc, leave=False, disable=not progress)
    context = torch.enable_grad() if train else torch.inference_mode()
    with context, bar:
        for x, y in loader:
            x, y = _to(x, device), y.to(device)
            with torch.autocast(device.type, enabled=amp):
                logits = _logits(model, x)
                n_out = logits.shape[-1]
                if n_out <= int(y.max()) or int(y.min()) < 0:
                    bad = int(y[(y < 0) | (y >= n_out)][0])
                    raise ValueError(f"A batch has label {bad}, outside 0..{n_out - 1} for a model with {n_out} "
                                     "outputs. Labels must be class indices.")
                loss = nn.functional.cross_entropy(logits.float(), y)
            if train:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
            bar.update()
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt  # handled by fit exactly like Ctrl-C
    return loss_sum / seen, correct / seen


def iterate(loader: Iterable, desc: str, progress: bool = True) -> Iterator:
    """``for item in loader`` with a progress bar that never iterates the loader itself."""
    with tqdm(total=len(loader), desc=desc, leave=False, disable=not progress) as bar:
        for item in loader:
            yield item
            bar.update()


SPILL_BYTES = 64 * 2**20  # weights larger than this are copied through a temporary file


def copy_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model.state_dict()`` that ``model.load_state_dict`` can restore later.

    Small models are copied in memory. A model over ``SPILL_BYTES`` (64 MB: a BERT-size encoder,
    not a MobileNet) is written to a temporary file and mapped back with ``torch.load(mmap=True)``:
    the copy then sits in the operating system's file cache, not in this process's memory, until
    it is restored. ``fit`` keeps its best weights this way, so fine-tuning holds no second
    in-memory copy of a big model (docs/design.md, Memory).

    >>> before = copy_weights(model); fit(model, loader); model.load_state_dict(before)
    """
    state = model.state_dict()
    if sum(t.numel() * t.element_size() for t in state.values()) <= SPILL_BYTES:
        return copy.deepcopy(state)
    with tempfile.TemporaryDirectory(prefix="transferlib-", ignore_cleanup_errors=True) as tmp:
        path = Path(tmp) / "weights.pt"
        torch.save(state, path)
        # The mapping outlives the file's name (removed on leaving this block) on Linux and macOS.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def fit(model: nn.Module, train: DataLoader, val: DataLoader | None = None, epochs: int = 10,
        lr: float = 1e-3, *, optimizer: torch.optim.Optimizer | None = None, weight_decay: float = 0.0,
        discriminative: float | None = None, schedule: str | None = None, patience: int | None = None,
        history: History | None = None, checkpoint: str | Path | None = None, resume: bool = False,
        seed: int = 0, device: str | torch.device | None = None, amp: bool | None = None,
        progress: bool = True, on_epoch: Callable[[History], None] | None = None,
        should_stop: Callable[[], bool] | None = None) -> History:
    """Train ``model`` on ``train`` for ``epochs``, keeping the weights of the best validation epoch.

    - ``optimizer``: yours, or AdamW over trainable parameters (``make_optimizer``);
    - ``schedule="onecycle"``: torch's OneCycleLR, peaking at ``lr`` (per group);
    - ``patience``: stop after that many epochs without a better validation accuracy;
    - ``checkpoint``: a ``.safetensors`` file written after every epoch. With ``resume=True``
      an existing one is loaded and training continues up to ``epochs`` in total, with the
      same losses as an uninterrupted run (every epoch reseeds from ``seed`` and its number);
    - ``amp``: mixed precision, on by default on CUDA only;
    - ``on_epoch(history)``: called after every epoch (live plots);
    - ``should_stop()``: checked after every batch; True stops like Ctrl-C (a Stop button).

    Ctrl-C (KeyboardInterrupt) stops after restoring the best weights; the History
    records it. Any other error during the first epoch restores the model and the History
    to how they were; after it, the error keeps the finished epochs and the best weights,
    like Ctrl-C. (So only one copy of the weights is held at a time, not two.)

    >>> history = fit(model, train_loader, val_loader, epochs=5, lr=1e-3, patience=2)
    """
    device = pick_device(device)
    amp = device.type == "cuda" if amp is None else amp
    _check_data(model, train, "training")
    if val is not None:
        _check_data(model, val, "validation")
    history = History() if history is None else history
    start_len, start_state = len(history), copy_weights(model)
    start_flags = (history.best_epoch, history.stopped_early, history.interrupted)
    model.to(device)
    optimizer = optimizer or make_optimizer(model, lr, weight_decay, discriminative)
    scheduler = None
    if schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=epochs * len(train))
    elif schedule is not None:
        raise ValueError(f"schedule must be None or 'onecycle', not {schedule!r}.")
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    best_state, since_best = None, 0
    bar = None
    try:
        if resume and checkpoint is not None and Path(checkpoint).exists():
            history, best_state = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler)
            if history.stopped_early:  # an early-stopped run is finished: resuming it changes nothing
                print(f"{checkpoint} stopped early at epoch {history.epoch[-1]}; nothing to resume.")
                return history
            if scheduler is not None and scheduler.total_steps != epochs * len(train):
                raise ValueError(f"{checkpoint} was trained with a one-cycle schedule of {scheduler.total_steps} "
                                 f"steps; resume with the same epochs and batch size ({epochs} x {len(train)} = "
                                 f"{epochs * len(train)} steps now).")
            since_best = (0 if history.best_epoch is None
                          else len(history) - history.epoch.index(history.best_epoch) - 1)
        first_epoch = len(history) + 1
        last_epoch = epochs if resume else first_epoch + epochs - 1  # with resume, `epochs` is the run's total
        monitor = "val_acc" if val is not None else "train_acc"
        best = max(getattr(history, monitor), default=-math.inf) if best_state is not None else -math.inf
        bar = tqdm(range(first_epoch, last_epoch + 1), desc="epochs", disable=not progress)
        for epoch in bar:
            torch.manual_seed(seed * 100_003 + epoch)  # same seed and epoch => same batches, dropout
            if getattr(train, "generator", None) is not None:
                train.generator.manual_seed(seed * 100_003 + epoch)
            tic = time.perf_counter()
            model.train()
            tr_loss, tr_acc = _run_epoch(model, train, device, optimizer, scheduler, scaler, amp,
                                         f"epoch {epoch}", progress, should_stop)
            va_loss, va_acc = (_run_epoch(model.eval(), val, device, amp=amp, desc="validate", progress=progress)
                               if val is not None else (float("nan"), float("nan")))
            for name, value in zip(History._SERIES, (epoch, tr_loss, tr_acc, va_loss, va_acc,
                                                     optimizer.param_groups[-1]["lr"], time.perf_counter() - tic)):
                getattr(history, name).append(value)
            score = va_acc if val is not None else tr_acc
            if score > best:
                best, since_best, history.best_epoch = score, 0, epoch
                # Free the old copies first: one copy of the weights in memory, not two or three. From
                # here on an error keeps the best weights instead of the ones fit started from.
                start_state = best_state = None
                best_state = copy_weights(model)
            else:
                since_best += 1
            history.stopped_early = patience is not None and since_best >= patience
            bar.set_postfix(loss=f"{tr_loss:.3f}", acc=f"{tr_acc:.3f}", val_acc=f"{va_acc:.3f}")
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, history, best_state, scaler)
            if on_epoch is not None:
                on_epoch(history)
            if history.stopped_early:
                break
    except KeyboardInterrupt:
        history.interrupted = True
        if best_state is None:  # stopped before this call finished an epoch: undo the partial epoch
            model.load_state_dict(start_state)
            print("Interrupted before the first epoch ended; the model is as it was.")
        else:
            print(f"Interrupted after {len(history)} epochs; keeping the best weights (epoch {history.best_epoch}).")
    except BaseException:
        if start_state is not None:  # failed in this call's first epoch: as if fit had not been called
            model.load_state_dict(start_state)
            history._truncate(start_len)
            history.best_epoch, history.stopped_early, history.interrupted = start_flags
        elif best_state is not None:  # later: keep the finished epochs and the best weights, like Ctrl-C
            model.load_state_dict(best_state)
        raise
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    del best_state, start_state, optimizer, scheduler
    release_memory()
    return history


def evaluate(model: nn.Module, loader: DataLoader, classes: list[str] | None = None,
             device: str | torch.device | None = None) -> Evaluation:
    """Accuracy, loss, confusion matrix and per-class accuracy, in eval mode without gradients."""
    from sklearn.metrics import accuracy_score, confusion_matrix

    device = pick_device(device)
    was_training = model.training
    model.to(device).eval()
    losses, trues, preds = [], [], []
    with torch.inference_mode():
        for x, y in loader:
            logits = _logits(model, _to(x, device)).float()
            y = y.to(device)
            losses.append(nn.functional.cross_entropy(logits, y, reduction="sum").item())
            trues.append(y.cpu().numpy())
            preds.append(logits.argmax(-1).cpu().numpy())
    model.train(was_training)
    y_true, y_pred = np.concatenate(trues), np.concatenate(preds)
    classes = classes or getattr(loader.dataset, "classes", None) or [str(i) for i in range(_num_outputs(model))]
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    return Evaluation(float(accuracy_score(y_true, y_pred)), sum(losses) / len(y_true), matrix, list(classes),
                      y_true, y_pred)


# --------------------------------------------------------------------------- checkpoints

def _signature(model: nn.Module) -> str:
    return json.dumps({k: list(v.shape) for k, v in model.state_dict().items()}, sort_keys=True)


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, history: History | None = None,
                    best_state: dict[str, torch.Tensor] | None = None, scaler: Any = None) -> Path:
    """Everything needed to resume, in one safetensors file (tensors) plus JSON metadata."""
    from safetensors.torch import save_file

    tensors = {f"model/{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best/{k}": v.detach().cpu().contiguous().clone() for k, v in best_state.items()})
    meta: dict[str, str] = {"format": "transferlib-checkpoint-1", "model": type(model).__name__,
                            "signature": _signature(model)}
    if optimizer is not None:
        state = optimizer.state_dict()
        for pid, pstate in state["state"].items():
            for key, value in pstate.items():
                if torch.is_tensor(value):
                    tensors[f"optim/{pid}/{key}"] = value.detach().cpu().contiguous().clone()
        meta["optim_groups"] = json.dumps(state["param_groups"])
        meta["optim_scalars"] = json.dumps({f"{pid}/{k}": v for pid, s in state["state"].items()
                                            for k, v in s.items() if not torch.is_tensor(v)})
    if scheduler is not None:
        meta["scheduler"] = json.dumps({k: v for k, v in scheduler.state_dict().items()
                                        if isinstance(v, (int, float, str, list, bool, type(None)))})
    if scaler is not None and scaler.is_enabled():  # mixed precision: the loss scale must resume too
        meta["scaler"] = json.dumps(scaler.state_dict())
    if history is not None:
        meta["history"] = history.to_json()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # never leave a half-written checkpoint behind
    return path


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, scaler: Any = None) -> tuple[History, dict[str, torch.Tensor] | None]:
    """Load a :func:`save_checkpoint` file into ``model`` (and optimizer, scheduler).

    Returns the History and the best weights. A checkpoint of another architecture
    raises ``ValueError`` before anything is changed.
    """
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != "transferlib-checkpoint-1":
        raise ValueError(f"{path} is not a transferlib checkpoint. Load plain weights with "
                         "safetensors.torch.load_file and model.load_state_dict.")
    if meta["signature"] != _signature(model):
        theirs, ours = json.loads(meta["signature"]), json.loads(_signature(model))
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise ValueError(f"{path} was saved from a different architecture ({meta['model']}, {len(theirs)} tensors) "
                         f"than this {type(model).__name__} ({len(ours)} tensors); first differences: "
                         f"{', '.join(diff[:3])}. Build the same model (name, num_classes, hidden) before loading.")
    # The optimizer first: it is the part that can still refuse (a different freeze state);
    # the model is only changed once everything else has loaded.
    if optimizer is not None and "optim_groups" in meta:
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim/"):
                _, pid, key = k.split("/", 2)
                state.setdefault(int(pid), {})[key] = v
        for k, v in json.loads(meta["optim_scalars"]).items():
            pid, key = k.split("/", 1)
            state.setdefault(int(pid), {})[key] = v
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["optim_groups"])})
    if scheduler is not None and "scheduler" in meta:
        scheduler.load_state_dict({**scheduler.state_dict(), **json.loads(meta["scheduler"])})
    if scaler is not None and "scaler" in meta:
        scaler.load_state_dict(json.loads(meta["scaler"]))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best/")} or None
    history = History.from_json(meta["history"]) if "history" in meta else History()
    return history, best


# --------------------------------------------------------------------------- fine-tuning tools

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
            num_steps: int = 100, seed: int = 0, device: str | torch.device | None = None,
            progress: bool = True) -> LRFinder:
    """Sweep the learning rate exponentially over ``num_steps`` batches (Smith 2015) and
    suggest the rate where the smoothed loss falls fastest. The model is restored afterwards.

    >>> finder = lr_find(model, train_loader); finder.plot(); finder.suggestion
    """
    device = pick_device(device)
    _check_data(model, train, "training")
    saved = copy_weights(model)
    model.to(device).train()
    optimizer = make_optimizer(model, start_lr)
    gamma = (end_lr / start_lr) ** (1 / max(num_steps - 1, 1))
    torch.manual_seed(seed)
    lrs, losses, smooth, best = [], [], 0.0, math.inf
    batches = iter(())
    try:
        for step in tqdm(range(num_steps), desc="lr_find", leave=False, disable=not progress):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(train)
                x, y = next(batches)
            lr = start_lr * gamma ** step
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss = nn.functional.cross_entropy(_logits(model, _to(x, device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            smooth = 0.9 * smooth + 0.1 * float(loss.detach())
            value = smooth / (1 - 0.9 ** (step + 1))  # bias-corrected moving average
            lrs.append(lr)
            losses.append(value)
            best = min(best, value)
            if not math.isfinite(value) or value > 4 * best:
                break
    finally:
        model.load_state_dict(saved)
    log_lr = np.log10(lrs)
    slopes = np.gradient(np.asarray(losses), log_lr) if len(lrs) > 2 else np.zeros(len(lrs))
    skip = max(len(lrs) // 10, 1)  # the first steps barely move the loss: their slope is noise
    stop = max(int(np.argmin(losses)) + 1, skip + 1)
    suggestion = float(lrs[skip + int(np.argmin(slopes[skip:stop]))])
    return LRFinder(lrs, losses, suggestion)


def gradual_unfreeze(model: nn.Module, train: DataLoader, val: DataLoader | None, stages: int,
                     epochs_per_stage: int = 1, lr: float = 1e-3, factor: float = 2.6,
                     **fit_kwargs: Any) -> History:
    """ULMFiT's gradual unfreezing: train the head, then one more block from the top per stage,
    with discriminative learning rates (``factor``). Returns one History for all stages.
    """
    history = History()
    for stage in range(1, stages + 1):
        freeze_all_but_last(model, stage)
        history = fit(model, train, val, epochs_per_stage, lr, discriminative=factor, history=history,
                      **fit_kwargs)
        if history.interrupted:
            break
    return history


def lp_ft(model: nn.Module, train: DataLoader, val: DataLoader | None, probe_epochs: int = 5,
          finetune_epochs: int = 5, probe_lr: float = 1e-3, finetune_lr: float = 1e-4,
          unfreeze_blocks: Iterable[str] | None = None, **fit_kwargs: Any) -> History:
    """LP-FT (Kumar et al. 2022): fit the head on the frozen backbone, then fine-tune everything
    (or ``unfreeze_blocks``) from that head at a lower rate.
    """
    freeze_all_but_last(model, 1)
    history = fit(model, train, val, probe_epochs, probe_lr, **fit_kwargs)
    if history.interrupted:
        return history
    unfreeze(model, unfreeze_blocks)
    return fit(model, train, val, finetune_epochs, finetune_lr, history=history, **fit_kwargs)
