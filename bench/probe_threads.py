"""Bench: a probe fitted with scikit-learn's BLAS threads free, against one BLAS thread (what
``tl.fit_probe`` does, ``tl.probing.one_blas_thread``), right after the frozen network has computed
the features.

    python bench/probe_threads.py [--per-class 100]

MobileNetV2's features of Animal-MNIST silhouettes at 96 px (lesson 2's), then ``fit_probe`` with
C chosen by cross-validation inside the labels, at 10 and at ``--per-class`` labels per class.
PyTorch's OpenMP threads keep spinning after a forward pass and compete with BLAS's threads for the
cores; one BLAS thread avoids the fight. Prints both times, the ratio and whether the two fits chose
the same C with the same scores. Target: the same choice; faster on a machine with few cores.

In the library since 2026-12-06 (``tl.probing.one_blas_thread``), at 7-18x here. A first attempt
was backed out when lesson 1's probe at features.16 chose C 0.1 instead of 10 in CI (validation
0.916 against 0.918), but the next CI, on the library without it, flipped the same C the same way:
the machine, not the thread count, moved that near tie, and nbval masks every number in a cell
tagged nbval-numbers. It landed with a full CI run of every lesson that fits probes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import contextlib
from unittest import mock

import torch

import transferlib as tl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=100)
    args = ap.parse_args()
    os.environ.setdefault("TRANSFERLIB_CACHE", tempfile.mkdtemp())
    torch.manual_seed(0)
    model, weights = tl.build_classifier("mobilenet_v2", num_classes=10)
    tl.freeze(model.backbone)
    largest = tl.k_shot(tl.load_dataset("animal_mnist", "train"), args.per_class, seed=0)
    x, y = tl.cached_features(model.backbone, tl.with_transform(largest, tl.image_transform(weights, size=96)),
                              progress=False)
    print(f"{torch.get_num_threads()} PyTorch threads; features {tuple(x.shape)}")
    for k in sorted({10, args.per_class}):
        pick = tl.k_shot(largest, k, seed=0).indices
        train = (x[pick], y[pick])
        model.backbone(torch.zeros(8, 3, 96, 96))            # PyTorch's threads were just busy, as in a lesson
        start = time.perf_counter()
        with mock.patch.object(tl.probing, "one_blas_thread", contextlib.nullcontext):
            free = tl.fit_probe(train)                         # BLAS threads free: the library before
        t_free = time.perf_counter() - start
        model.backbone(torch.zeros(8, 3, 96, 96))
        start = time.perf_counter()
        one = tl.fit_probe(train)                              # one BLAS thread: the library now
        t_one = time.perf_counter() - start
        same = free.C == one.C and free.val_scores == one.val_scores
        print(f"{k:4} per class: BLAS threads free {t_free:6.2f} s, one BLAS thread {t_one:5.2f} s "
              f"({t_free / t_one:.1f}x); same C and scores: {same}")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
