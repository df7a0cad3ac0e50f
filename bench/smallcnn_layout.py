"""Bench: ``tl.SmallCNN`` training steps with its weights channels-last (what the class does since
2026-12-07) against the same network in the default (NCHW) layout.

    python bench/smallcnn_layout.py [--steps 60]

The three SmallCNNs the lessons train: lesson 1's (grey 28 px, width 16, averaged head, batch 32),
lesson 2's and 3's on silhouettes (grey 28 px, width 32, flattened head, batch 32) and lesson 2's on
photos (RGB 64 px, batch 16). Each layout runs twice, alternating, after 10 warm-up steps; prints
milliseconds per AdamW step, the ratio of the faster runs, and the largest difference between the
two layouts' outputs for the same weights. Target: the same outputs (to float rounding), faster.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

import transferlib as tl

SETTINGS = {"lesson 1 (28 px, width 16, pooled)": (1, 28, 16, True, 32),
            "lessons 2-3, silhouettes (28 px)": (1, 28, 32, False, 32),
            "lesson 2, photos (RGB 64 px)": (3, 64, 32, False, 16)}


def ms_per_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    for i in range(10 + steps):
        if i == 10:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    steps = parser.parse_args().steps
    for name, (channels, size, width, pooled, batch) in SETTINGS.items():
        torch.manual_seed(0)
        last = tl.SmallCNN(channels, 10, size, width=width, global_pool=pooled)
        plain = copy.deepcopy(last)
        for p in plain.parameters():
            p.data = p.data.contiguous()
        x, y = torch.randn(batch, channels, size, size), torch.randint(0, 10, (batch,))
        with torch.no_grad():
            gap = float((last.eval()(x) - plain.eval()(x)).abs().max())
        times = {"NCHW": [], "channels-last": []}
        for _ in range(2):
            times["NCHW"].append(ms_per_step(copy.deepcopy(plain).train(), x, y, steps))
            times["channels-last"].append(ms_per_step(copy.deepcopy(last).train(), x, y, steps))
        best = {k: min(v) for k, v in times.items()}
        print(f"{name}: NCHW {best['NCHW']:.1f} ms/step, channels-last {best['channels-last']:.1f} ms/step, "
              f"{best['NCHW'] / best['channels-last']:.2f}x; outputs differ by at most {gap:.1e}")


if __name__ == "__main__":
    main()
