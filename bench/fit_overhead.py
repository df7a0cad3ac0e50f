"""Bench (b): the per-epoch overhead of ``fit`` over a hand-written PyTorch loop.

    python bench/fit_overhead.py [--rounds 8] [--size 160]

Same model (MobileNetV2, last 3 blocks and head trainable), same data (136 Tux Paint
photos), same optimizer settings. After one warm-up epoch, rounds alternate which loop
goes first, so that a warming cache or CPU clock favours neither; the median epoch
time of each is compared.
Target: overhead <= 5%.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch.nn.functional as F

import transferlib as tl


def hand_loop(model, loader, optimizer) -> float:
    model.train()
    start = time.perf_counter()
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += int((logits.argmax(-1) == y).sum())
        seen += len(y)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--size", type=int, default=160)
    args = ap.parse_args()
    model, weights = tl.build_classifier("mobilenet_v2", num_classes=6)
    tl.freeze_all_but_last(model, 4)
    train = tl.load_dataset("tuxpaint_photos", "train", transform=tl.image_transform(weights, size=args.size))
    loader = tl.make_loader(train, 16, shuffle=True)
    hand, ours = [], []

    def run_hand() -> None:
        hand.append(hand_loop(model, loader, tl.make_optimizer(model, 1e-4)))

    def run_fit() -> None:
        start = time.perf_counter()  # the whole call: set-up, snapshot of the best weights and all
        tl.fit(model, loader, epochs=1, lr=1e-4, progress=True)
        ours.append(time.perf_counter() - start)

    run_hand()  # warm-up, not counted: the first pass pays for lazy initialisation
    hand.clear()
    for i in range(args.rounds):  # alternate which goes first
        for run in (run_hand, run_fit) if i % 2 == 0 else (run_fit, run_hand):
            run()
    h, o = statistics.median(hand), statistics.median(ours)
    print(f"hand-written loop: {h:.2f} s/epoch  (rounds: {', '.join(f'{t:.2f}' for t in hand)})")
    print(f"transferlib.fit:   {o:.2f} s/epoch  (rounds: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"overhead: {(o / h - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
