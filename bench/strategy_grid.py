"""Measure the strategy grid behind lesson 5 and `transferlib.recommend_strategy`.

Five strategies x three targets of measured similarity to ImageNet x two label budgets x seeds,
each with its test accuracy and the seconds it took, written with its provenance to
transferlib/data/strategy_grid.json (the lesson loads it and re-runs a slice live).

    python bench/strategy_grid.py                 # the full grid: 3 seeds, about 10 min on 2 cores
    python bench/strategy_grid.py --seeds 1 --out /tmp/grid.json --targets silhouettes
    python bench/strategy_grid.py --out /tmp/grid.json --check   # re-measure, then compare with the saved grid

`--check` compares every re-measured cell with the saved one, over the same seeds: the means must
agree within the saved seeds' spread (standard deviation), or 0.02 where that spread is smaller
(one test image of the 34 photos is 0.029), and each similarity within 1e-3 as the lesson asserts.
It prints each cell and exits with 1 if any disagrees.

Each cell is `measure` below (its docstring gives the fixed recipes), the same function lesson 5
imports to re-run one cell live.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean, stdev
from typing import Any
from collections.abc import Callable, Sequence

import torch
from torch import nn

import transferlib as tl
from transferlib.strategy import GRID_FILE, STRATEGIES, source_similarity

ROOT = Path(__file__).resolve().parent.parent
FLOOR = 0.02  # the smallest tolerance --check allows, for cells whose seeds agree exactly


# name: (dataset, size for MobileNetV2, size and channels for the SmallCNN, budgets, test images per class)
TARGETS: dict[str, tuple[str, int, tuple[int, int], list[int | str], int | None]] = {
    "photos": ("tuxpaint_photos", 96, (64, 3), [5, "all"], None),
    "silhouettes": ("animal_mnist", 64, (28, 1), [10, 100], 50),
    "digits": ("mnist5k", 64, (28, 1), [10, 100], 50),
}


def _epochs(n_images: int, scratch: bool = False) -> int:
    """12 epochs under 300 training images, 6 above; twice that from scratch (a CNN from random weights
    needs more passes: lesson 2)."""
    base = 12 if n_images < 300 else 6
    return base * 2 if scratch else base


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, k: int | str, seed: int = 0, strategies: Sequence[str] = STRATEGIES,
            log: Callable[[str], None] = print, device: str = "cpu") -> list[dict[str, Any]]:
    """Run the five strategies on one grid cell: target ``name`` (a key of ``TARGETS``), ``k`` labels per
    class (or ``"all"``), one ``seed``; ``strategies`` picks some of the five. Returns one row per strategy:
    accuracy on the target's test images and the seconds of training (for features: extracting the
    training set and fitting).

    This is the experiment itself, so it lives here in bench/, not in the library; lesson 5 imports it
    to re-run one cell live. Recipes are fixed, not tuned per cell:
    - from scratch: lesson 2's SmallCNN, AdamW 1e-3, weight decay 1e-4, one-cycle, augmentation;
    - features, last / earlier block: frozen MobileNetV2, the pooled output of ``features.18`` /
      ``features.13``, standardised logistic regression (C = 1);
    - fine-tune top blocks / full: lesson 3's recipe (random head, AdamW 1e-3, weight decay 1e-4,
      one-cycle, batches of 32, augmentation); top = the last 3 blocks and the head;
    - epochs: 12 under 300 training images, 6 above; from scratch twice as many.
    Images are 64 px for the 28 px targets and 96 px for the photos (``TARGETS``).

    >>> rows = measure("silhouettes", 10, seed=0)
    """
    from transferlib import (SmallCNN, build_classifier, evaluate, extract_features, fit, freeze_all_but_last,
                             image_transform, in_memory, k_shot, load_dataset, load_model, logistic_probe,
                             make_loader, unfreeze, with_transform)
    from transferlib.datasets import classes_of

    if name not in TARGETS:
        raise ValueError(f"Unknown target {name!r}; the grid's targets are {', '.join(TARGETS)}.")
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"Unknown strategies {sorted(unknown)}; the five are {', '.join(STRATEGIES)}.")
    pretrained, weights = load_model("mobilenet_v2")  # frozen: both feature strategies cut their backbone from it
    dataset, size, (cnn_size, channels), _, test_k = TARGETS[name]
    train_all = load_dataset(dataset, "train")
    train = train_all if k == "all" else k_shot(train_all, k, seed=seed)
    test = load_dataset(dataset, "test")
    if test_k is not None:
        test = k_shot(test, test_k, seed=0)  # the same test images for every cell
    classes = len(classes_of(train_all))
    per_class = len(train) / classes
    plain, augment = image_transform(weights, size=size), image_transform(weights, augment=True, size=size)
    test_loader = make_loader(in_memory(with_transform(test, plain)), 128)
    rows = []

    def record(strategy: str, accuracy: float, seconds: float) -> None:
        rows.append({"target": name, "labels_per_class": round(per_class, 2), "strategy": strategy, "seed": seed,
                     "accuracy": round(accuracy, 4), "seconds": round(seconds, 2), "train_images": len(train)})
        log(f"{name:12} {per_class:6.1f}/class seed {seed}  {strategy:24} {accuracy:.3f}  {seconds:6.1f} s")

    if STRATEGIES[0] in strategies:  # from scratch
        torch.manual_seed(seed)
        cnn = SmallCNN(channels, classes, cnn_size).to(device)
        loader = make_loader(with_transform(train, image_transform(None, augment=True, size=cnn_size)), 32,
                             shuffle=True, seed=seed)
        secs = _timed(lambda: fit(cnn, loader, epochs=_epochs(len(train), scratch=True), lr=1e-3,
                                  weight_decay=1e-4, schedule="onecycle", seed=seed, progress=False))
        cnn_test = make_loader(with_transform(test, image_transform(None, size=cnn_size)), 256)
        record(STRATEGIES[0], evaluate(cnn, cnn_test).accuracy, secs)

    # features from the last block and from an earlier one
    for strategy, cut in ((STRATEGIES[1], 19), (STRATEGIES[2], 14)):
        if strategy not in strategies:
            continue
        backbone = nn.Sequential(pretrained.features[:cut], nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval().to(device)
        start = time.perf_counter()
        tr_x, tr_y = extract_features(backbone, with_transform(train, plain), progress=False)
        seconds = time.perf_counter() - start
        te_x, te_y = extract_features(backbone, with_transform(test, plain), progress=False)
        start = time.perf_counter()
        accuracy, _ = logistic_probe(tr_x, tr_y, te_x, te_y, C=1.0)
        record(strategy, accuracy, seconds + time.perf_counter() - start)

    # fine-tuning: the top blocks, then everything
    for strategy, blocks in ((STRATEGIES[3], 4), (STRATEGIES[4], None)):
        if strategy not in strategies:
            continue
        torch.manual_seed(seed)
        model, _ = build_classifier("mobilenet_v2", classes)
        model = model.to(device)
        if blocks is None:
            unfreeze(model)
        else:
            freeze_all_but_last(model, blocks)  # the head and the last 3 blocks
        loader = make_loader(with_transform(train, augment), 32, shuffle=True, seed=seed)
        secs = _timed(lambda model=model, loader=loader: fit(model, loader, epochs=_epochs(len(train)), lr=1e-3,
                                                             weight_decay=1e-4, schedule="onecycle", seed=seed,
                                                             progress=False))
        record(strategy, evaluate(model, test_loader).accuracy, secs)
    return rows



def provenance(seeds: list[int], seconds: float) -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "seeds": seeds,
        "seconds": round(seconds, 1),
        "command": " ".join(["python", "bench/strategy_grid.py", *sys.argv[1:]]),
    }


def check(saved: list[dict], new: list[dict], log: Callable[[str], None] = print) -> list[str]:
    """Compare re-measured runs with saved ones, cell by cell over the same seeds; return the disagreements.

    >>> check(saved_grid["runs"], new_grid["runs"])  # [] when the grid reproduces
    """
    def cells(runs: list[dict]) -> dict[tuple, dict[int, float]]:
        out: dict[tuple, dict[int, float]] = {}
        for r in runs:
            out.setdefault((r["target"], r["labels_per_class"], r["strategy"]), {})[r["seed"]] = r["accuracy"]
        return out

    old, fresh = cells(saved), cells(new)
    failures, identical, compared = [], 0, 0
    for key, runs in fresh.items():
        if key not in old or not set(runs) <= set(old[key]):
            failures.append(f"{key}: seeds {sorted(runs)} are not all in the saved grid")
            continue
        before = [old[key][s] for s in sorted(runs)]
        after = [runs[s] for s in sorted(runs)]
        spread = stdev(old[key].values()) if len(old[key]) > 1 else 0.0
        gap = abs(mean(after) - mean(before))
        identical += sum(a == b for a, b in zip(after, before))
        compared += len(after)
        ok = gap <= max(spread, FLOOR)
        line = (f"{key[0]:12} {key[1]:6.1f}/class  {key[2]:24} saved {mean(before):.3f}  now {mean(after):.3f}"
                f"  gap {gap:.3f}  spread {spread:.3f}  {'ok' if ok else 'DISAGREES'}")
        log(line)
        if not ok:
            failures.append(line)
    log(f"{identical} of {compared} runs identical; {len(fresh) - len(failures)} of {len(fresh)} cells "
        f"within the saved seed spread (or {FLOOR})")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--out", type=Path, default=GRID_FILE)
    parser.add_argument("--check", action="store_true", help="compare the new runs with the saved grid")
    args = parser.parse_args(argv)
    if args.check and args.out.resolve() == GRID_FILE.resolve():
        parser.error("--check compares with the saved grid, so write the new one elsewhere: --out /tmp/grid.json")
    saved = json.loads(GRID_FILE.read_text()) if args.check else None
    start = time.perf_counter()
    targets, runs = {}, []
    for name in args.targets:
        dataset = TARGETS[name][0]
        similarity = source_similarity(tl.load_dataset(dataset, "train"))
        targets[name] = {"dataset": dataset, "similarity": round(similarity, 4), "image_size": TARGETS[name][1]}
        print(f"{name}: similarity to ImageNet {similarity:.3f}", flush=True)
        for k in TARGETS[name][3]:
            for seed in range(args.seeds):
                runs += measure(name, k, seed, log=lambda s: print(s, flush=True))
    grid = {"provenance": provenance(list(range(args.seeds)), time.perf_counter() - start),
            "strategies": list(STRATEGIES), "targets": targets, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(grid, indent=1) + "\n")
    print(f"{len(runs)} runs in {time.perf_counter() - start:.0f} s -> {args.out}")
    if saved is None:
        return 0
    moved = []
    for name, target in targets.items():
        before, now = saved["targets"][name]["similarity"], target["similarity"]
        print(f"{name}: similarity saved {before:.4f}, now {now:.4f}")
        if abs(now - before) >= 1e-3:  # the lesson asserts the same tolerance on its live measure
            moved.append(name)
    return 1 if check(saved["runs"], runs) or moved else 0


if __name__ == "__main__":
    sys.exit(main())
