"""Bench: MobileNetV2 fed channels-last batches (what ``tl.devices.batches`` hands a model on the
CPU since 2026-12-07) against the default (NCHW) layout.

    python bench/channels_last.py [--reps 3]

Feature extraction at 224 px in batches of 8 and 16 (lessons 0, 2, 5, 7, 8), and AdamW training
steps of the whole network at 96 px, batch 32 (lesson 3, appendix C) and 160 px, batch 8 (appendix
A's PyTorch arm). The weights stay as torchvision stores them: only the input's layout changes.
Prints images or milliseconds per step, the ratio, and the largest difference between the two
layouts' outputs. Target: faster, the same outputs to float rounding.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

import transferlib as tl


def best_of(fn, reps: int) -> float:
    fn()                                            # warm-up: oneDNN picks its kernels
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    model, _ = tl.load_model("mobilenet_v2")
    model.eval()
    x = torch.randn(32, 3, 224, 224)
    layouts = {"NCHW": lambda t: t, "channels-last": lambda t: t.contiguous(memory_format=torch.channels_last)}
    with torch.inference_mode():
        diff = (model(layouts["channels-last"](x[:8])) - model(x[:8])).abs().max().item()
    for batch in (8, 16):
        rate = {}
        for name, layout in layouts.items():
            def extract(layout=layout, batch=batch):
                with torch.inference_mode():
                    for i in range(0, len(x), batch):
                        model(layout(x[i:i + batch]))
            rate[name] = len(x) / best_of(extract, args.reps)
        print(f"features, 224 px, batch {batch:2}: NCHW {rate['NCHW']:5.1f} img/s, channels-last "
              f"{rate['channels-last']:5.1f} img/s, {rate['channels-last'] / rate['NCHW']:.2f}x")
    print(f"  largest difference between the layouts' outputs: {diff:.1e}")
    for size, batch in ((96, 32), (160, 8)):
        xt, yt = torch.randn(batch, 3, size, size), torch.randint(0, 1000, (batch,))
        ms = {}
        for name, layout in layouts.items():
            net = copy.deepcopy(model).train()
            optimizer = torch.optim.AdamW(net.parameters(), 1e-4)

            def steps(net=net, optimizer=optimizer, layout=layout, xt=xt, yt=yt):
                for _ in range(4):
                    loss = torch.nn.functional.cross_entropy(net(layout(xt)), yt)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            ms[name] = best_of(steps, max(1, args.reps - 1)) / 4 * 1000
        print(f"training, {size} px, batch {batch:2}: NCHW {ms['NCHW']:5.0f} ms/step, channels-last "
              f"{ms['channels-last']:5.0f} ms/step, {ms['NCHW'] / ms['channels-last']:.2f}x")


if __name__ == "__main__":
    main()
