"""Devices: data follows the model.

Every ``transferlib`` function that runs a model runs it where the model already is, moves
each batch there, and hands its results back on the CPU. Nothing here moves a model: you
choose the device once, in a lesson's parameters cell, and move the model yourself.

    >>> device = pick_device(DEVICE)          # "cpu" (the lessons' default), "cuda", "mps" or "auto"
    >>> model.to(device)
    >>> for x, y in batches(loader, device_of(model), "features"):
    ...     out = model(x)                    # x is on the model's device; y stays where it was
"""

from __future__ import annotations

import contextlib
from typing import Any
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from .progress import progress_bar

__all__ = ["pick_device", "device_of", "to_device", "batches", "mode", "release_memory", "PeakMemory"]


def pick_device(name: str | torch.device = "cpu") -> torch.device:
    """The device called ``name``, checked to exist: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``,
    or ``"auto"`` for CUDA if there is one, then Apple's MPS, then the CPU.

    >>> pick_device("cpu")
    device(type='cpu')
    >>> pick_device("auto")                   # cuda on a Colab GPU runtime, mps on a recent Mac
    """
    if str(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{name!r} is not a device name ({err}). Use 'cpu', 'cuda', 'cuda:0', 'mps' or 'auto'.") \
            from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "this PyTorch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"DEVICE = {name!r}, but {why}. Use 'cpu', or 'auto' to take a GPU only where one "
                             "exists (on Colab: Runtime > Change runtime type > GPU).")
        if device.index is not None and device.index >= count:
            raise ValueError(f"DEVICE = {name!r}, but this machine has {count} CUDA device(s): "
                             f"{', '.join(f'cuda:{i}' for i in range(count))}.")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"DEVICE = {name!r}, but Apple's MPS backend is not available here (it needs a Mac with "
                         "Apple silicon and macOS 12.3 or later). Use 'cpu' or 'auto'.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"DEVICE = {name!r}: transferlib runs on 'cpu', 'cuda' or 'mps'.")
    return device


def device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters (or, failing those, its buffers) are; the CPU for an empty module.

    >>> device_of(nn.Linear(2, 2))
    device(type='cpu')
    """
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """A tensor, or a dict / list / tuple of them (a tokenizer's batch), on ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batches(loader: Iterable, device: torch.device | None = None, desc: str = "",
            progress: bool = True) -> Iterator[tuple[Any, Any]]:
    """``for x, y in loader``, with ``x`` moved to ``device`` and a progress bar.

    A batch of images on the CPU comes channels-last (the same numbers, stored pixel by pixel):
    oneDNN's convolutions run faster that way, 1.1-2x for MobileNetV2's features and 1.1-1.5x for
    its training steps on 2 cores (``bench/channels_last.py``). The model is not touched.

    The bar counts batches (``total=len(loader)``) rather than wrapping the loader: wrapping a
    DataLoader in ``tqdm.auto`` creates its iterator twice. It vanishes when the loop ends.
    """
    with progress_bar(total=len(loader), desc=desc, leave=False, disable=not progress) as bar:  # type: ignore[arg-type]
        for batch in loader:
            if isinstance(batch, dict) or not isinstance(batch, (list, tuple)) or len(batch) != 2:
                raise TypeError(f"Each batch must be (inputs, labels); this loader gives {_describe(batch)}. "
                                "Give each item a label (a dataset's item is (input, label)); for texts use "
                                "text_loader(dataset, tokenizer), which yields (tokens, labels).")
            x, y = batch
            x = x if device is None else to_device(x, device)
            if torch.is_tensor(x) and x.ndim == 4 and x.is_floating_point() and x.device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y
            bar.update()


def _describe(batch: Any) -> str:
    if isinstance(batch, dict):
        return f"a dict (keys {', '.join(map(str, batch))})"
    if torch.is_tensor(batch):
        return f"one tensor of shape {tuple(batch.shape)}, with no labels"
    if isinstance(batch, (list, tuple)):
        return f"a {type(batch).__name__} of {len(batch)}"
    return f"a {type(batch).__name__}"


@contextlib.contextmanager
def mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """``model.train(training)`` for the block; afterwards every submodule is back in *its own* mode.

    ``model.train(was_training)`` would not do: a pretrained encoder loaded in eval mode inside a new
    wrapper (a ``Classifier``, a ``MeanPooledEncoder``) that is in train mode would come back in
    train mode, dropout on, and the next forward pass a learner writes by hand would be random.

    >>> with mode(model, training=False):
    ...     logits = model(x)
    """
    before = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for m, was in before:
            m.training = was


def release_memory() -> None:
    """Hand memory freed by finished runs back: garbage collection, glibc's ``malloc_trim`` (Linux),
    and PyTorch's cached GPU blocks. Worth calling between big runs in one kernel (lesson 4 fine-tunes
    a 22.7-million-parameter encoder several times); a no-op where there is nothing to trim.

    >>> history = fit(model, train_loader, epochs=3); release_memory()
    """
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # macOS, Windows, musl: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class PeakMemory:
    """The most memory a block of code held, in MB, above what was held when it started.

    On a CUDA device: PyTorch's own peak of allocated tensor memory. On the CPU (and MPS, whose memory
    is the machine's): the process's resident memory, sampled every 5 ms by a background thread, so a
    peak shorter than that can be missed. Call :func:`release_memory` before, so the start is honest.

    >>> with PeakMemory(device) as peak:
    ...     fit(model, loader, epochs=3)
    >>> print(f"{peak.mb:.0f} MB")
    """

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.005) -> None:
        self.device, self.interval, self.mb = torch.device(device), interval, 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        import threading

        import psutil

        process = psutil.Process()
        self._start = self._peak = process.memory_info().rss
        self._done = threading.Event()

        def sample() -> None:
            while not self._done.wait(self.interval):
                self._peak = max(self._peak, process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._done.set()
            self._thread.join()
            import psutil

            peak = max(self._peak, psutil.Process().memory_info().rss)
        self.mb = max(0, peak - self._start) / 2**20
