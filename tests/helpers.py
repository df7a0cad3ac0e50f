"""Small, fast fixtures shared by the unit tests."""

from __future__ import annotations

import functools
import importlib.util
import socket
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parents[1]
FAST_SEED = 1  # the fast-mode runs in CI use another seed than the stored learner-mode runs (tests/conftest.py)
GRADED_UNSOLVED = "00"  # the one lesson whose student copy CI grades end to end (tests/conftest.py)


def load_script(name: str):
    """scripts/<name>.py, or a path under the repository such as bench/x.py, as a module (the scripts
    are not a package)."""
    path = ROOT / name if name.endswith(".py") else ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(Path(name).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_course():
    """scripts/course.py as a module."""
    return load_script("course")


class LabelledTensors(TensorDataset):
    """A TensorDataset with ``classes`` and ``targets``, like the course's datasets."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
        super().__init__(x, y)
        self.targets = y.tolist()
        self.classes = [f"c{i}" for i in range(num_classes)]


def blobs(n: int = 120, dim: int = 16, num_classes: int = 3, seed: int = 0, noise: float = 1.0) -> LabelledTensors:
    """Gaussian blobs: learnable in a few epochs by a tiny network."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(123)) * 2
    y = torch.arange(n) % num_classes
    x = centres[y] + noise * torch.randn(n, dim, generator=g)
    return LabelledTensors(x, y, num_classes)


class TinyNet(nn.Module):
    """Linear -> BatchNorm -> ReLU -> Dropout -> Linear, so BatchNorm and dropout are exercised."""

    def __init__(self, dim: int = 16, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def no_network(monkeypatch) -> list:
    """A machine with no network, made deterministic: every connection attempt is refused at once
    and recorded. "Fails at once" is then a count of attempts, not a time a loaded machine can miss.
    """
    attempts: list = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"no network (a test): {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    from transferlib import assets  # a fresh probe for this test (its answer is cached per process)
    monkeypatch.setattr(assets, "_probe_says_offline", functools.cache(assets._probe_says_offline.__wrapped__))
    return attempts
