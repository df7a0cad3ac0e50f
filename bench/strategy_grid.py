"""Measure the strategy grid behind lesson 5 and `transferlib.recommend_strategy`.

Five strategies x three targets of measured similarity to ImageNet x two label budgets x five
seeds, each run with which test items it got right (so that the lesson can put intervals on every
cell and compare cells paired), its training seconds and steps, and what it chose, written with
its provenance to transferlib/data/strategy_grid.json.

    python bench/strategy_grid.py                 # the full grid, about 40 min on 2 cores
    python bench/strategy_grid.py --seeds 1 --out /tmp/grid.json --targets silhouettes
    python bench/strategy_grid.py --out /tmp/grid.json --check   # re-measure, then compare with the saved grid
    python bench/strategy_grid.py --strategies "features, last block" --merge   # re-measure one strategy in place

The protocol (docs/authoring.md) for every run:
- a budget of k labels per class counts every label, the ones used for choosing too: there is no
  validation split from outside the budget. The probes choose C by stratified cross-validation
  inside their k (`tl.fit_probe(train)`, 4 values, every run); the networks hold out a fifth of the
  k, at least 2 per class (`tl.split_budget`), train on the rest, and choose their learning rate
  (3 values, at the first seed of each target and budget, then kept; a choice on the grid's edge
  extends it once past that edge) and their best epoch on it;
- the photos are tested by repeated stratified cross-validation: each seed is one repetition of
  3 folds, so every one of the 170 photos is tested once per seed;
- from scratch is lesson 2's baseline (a SmallCNN, augmentation, 30 one-cycle epochs, the best
  epoch on validation kept), not a weaker one.

`--check` compares every re-measured cell with the saved one, over the same seeds: the new mean
must fall inside the saved cell's 95% interval, and each similarity within 1e-3 as the lesson
asserts. It prints each cell and exits with 1 if any disagrees.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import transferlib as tl
from transferlib.strategy import GRID_FILE, STRATEGIES, source_similarity

ROOT = Path(__file__).resolve().parent.parent

# name: (dataset, size for MobileNetV2, size and channels for the SmallCNN, budgets, test images per class)
TARGETS: dict[str, tuple[str, int, tuple[int, int], list[int | str], int | None]] = {
    "photos": ("tuxpaint_photos", 96, (64, 3), [6, "all"], None),
    "silhouettes": ("animal_mnist", 64, (28, 1), [10, 100], 50),
    "digits": ("mnist5k", 64, (28, 1), [10, 100], 50),
}
SCRATCH_LRS = (1e-3, 3e-3, 1e-2)       # lesson 2's three rates for a network from scratch
FINETUNE_LRS = (1e-4, 1e-3, 1e-2)      # lesson 3's three rates for fine-tuning
SCRATCH_EPOCHS = 30
PHOTO_FOLDS = 3
TRIALS: dict[tuple[str, Any, str], int] = {}   # (target, budget, network): learning rates tried at its first seed


def _finetune_epochs(n_images: int) -> int:
    """12 epochs under 300 training images, 6 above (the best on validation is kept)."""
    return 12 if n_images < 300 else 6


def splits(name: str, k: int | str, seed: int) -> list[tuple[Any, Any, np.ndarray]]:
    """(the labelled budget, test, test positions) for one run: one split for a target with a test
    split; one per fold of a repetition of stratified cross-validation for the photos. The budget is
    every label the run may use, to train and to choose."""
    from sklearn.model_selection import StratifiedKFold

    dataset, _, _, budgets, test_k = TARGETS[name]
    if name == "photos":
        photos = tl.load_dataset(dataset, "all")
        y = np.asarray(photos.targets)
        out = []
        for tr, te in StratifiedKFold(PHOTO_FOLDS, shuffle=True, random_state=seed).split(y, y):
            labelled = tl.subset(photos, tr)
            out.append((labelled if k == "all" else tl.k_shot(labelled, k, seed=seed), tl.subset(photos, te), te))
        return out
    train_all = tl.load_dataset(dataset, "train")
    largest = tl.k_shot(train_all, max(b for b in budgets if b != "all"), seed=0)   # each seed draws from it
    test = tl.k_shot(tl.load_dataset(dataset, "test"), test_k, seed=0)   # the same test images for every run
    return [(tl.k_shot(largest, k, seed=seed), test, np.arange(len(test)))]


def measure(name: str, k: int | str, seed: int = 0, strategies: Sequence[str] = STRATEGIES,
            tuned: dict[str, float] | None = None, log: Callable[[str], None] = print,
            device: str = "cpu") -> list[dict[str, Any]]:
    """Run strategies on one grid cell: target ``name`` (a key of ``TARGETS``), ``k`` labels per class
    (or ``"all"``), one ``seed``. Returns one row per strategy, with which test items it got right.

    Every label of the budget is counted: a probe chooses C by cross-validation inside it; a network
    holds out a fifth of it (``tl.split_budget``) to choose on. ``tuned`` maps a network strategy to
    the learning rate chosen at an earlier seed; a strategy missing from it tries its three rates on
    the held-out labels of this run's first fold, and the choice is written into ``tuned`` for the
    next seeds. The recipes:
    - from scratch: lesson 2's SmallCNN, AdamW with weight decay 1e-4, augmentation, one-cycle for 30
      epochs, the best epoch on validation kept; learning rate from ``SCRATCH_LRS``;
    - features, last / earlier block: frozen MobileNetV2, the pooled output of ``features.18`` (1,280
      numbers) / ``features.13`` (96), a logistic regression with C chosen from 4 values by
      cross-validation inside the budget (``tl.fit_probe(train)``), every run;
    - fine-tune top blocks / full: a new head on MobileNetV2, AdamW with weight decay 1e-4,
      augmentation, one-cycle, 12 epochs under 300 training images and 6 above, the best epoch kept;
      learning rate from ``FINETUNE_LRS``; top = the last 3 blocks and the head.
    Images are 64 px for the 28 px targets and 96 px for the photos (``TARGETS``).

    >>> tuned = {}; rows = measure("silhouettes", 10, seed=0, tuned=tuned)   # tunes, fills `tuned`
    """
    if name not in TARGETS:
        raise ValueError(f"Unknown target {name!r}; the grid's targets are {', '.join(TARGETS)}.")
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"Unknown strategies {sorted(unknown)}; the five are {', '.join(STRATEGIES)}.")
    tuned = {} if tuned is None else tuned
    pretrained, weights = tl.load_model("mobilenet_v2")
    pretrained = pretrained.to(device)
    _, size, (cnn_size, channels), _, _ = TARGETS[name]
    runs = splits(name, k, seed)
    n_test = sum(len(te) for *_, te in runs)
    classes = len(runs[0][0].classes)
    per_class = float(np.mean([len(labelled) for labelled, *_ in runs])) / classes
    plain, augment = tl.image_transform(weights, size=size), tl.image_transform(weights, augment=True, size=size)
    cnn_plain = tl.image_transform(None, size=cnn_size)
    cnn_augment = tl.image_transform(None, augment=True, size=cnn_size)
    rows = []

    def network(make: Callable[[], nn.Module], train, val, transform, val_transform, epochs, lr):
        torch.manual_seed(seed)
        model = make().to(device)
        history = tl.fit(model, tl.make_loader(tl.with_transform(train, transform), 32, shuffle=True, seed=seed),
                         tl.make_loader(tl.in_memory(tl.with_transform(val, val_transform)), 256), epochs=epochs,
                         lr=lr, weight_decay=1e-4, schedule="onecycle", seed=seed, progress=False)
        return model, history

    def scratch_model():
        return tl.SmallCNN(channels, classes, cnn_size)

    def finetune_model(blocks: int | None) -> Callable[[], nn.Module]:
        def make() -> nn.Module:
            model, _ = tl.build_classifier("mobilenet_v2", classes)
            return tl.unfreeze(model) if blocks is None else tl.freeze_all_but_last(model, blocks)
        return make

    recipes = {STRATEGIES[0]: (scratch_model, cnn_augment, cnn_plain, lambda n: SCRATCH_EPOCHS, SCRATCH_LRS),
               STRATEGIES[3]: (finetune_model(4), augment, plain, _finetune_epochs, FINETUNE_LRS),
               STRATEGIES[4]: (finetune_model(None), augment, plain, _finetune_epochs, FINETUNE_LRS)}
    cuts = {STRATEGIES[1]: 19, STRATEGIES[2]: 14}
    for strategy in strategies:
        correct = np.zeros(n_test, bool)
        seconds, steps, chosen = 0.0, 0, []
        trained_on = []
        for labelled, test, positions in runs:
            start = time.perf_counter()
            if strategy in cuts:  # frozen features: C chosen by cross-validation inside the budget, every run
                backbone = nn.Sequential(pretrained.features[:cuts[strategy]], nn.AdaptiveAvgPool2d(1),
                                         nn.Flatten()).eval()
                train_f = tl.extract_features(backbone, tl.with_transform(labelled, plain), progress=False)
                probe = tl.fit_probe(train_f)
                seconds += time.perf_counter() - start
                test_f = tl.extract_features(backbone, tl.with_transform(test, plain), progress=False)
                correct[positions] = probe.predict(test_f[0].numpy()) == test_f[1].numpy()
                chosen.append(f"C {probe.C:g}")
                trained_on.append(len(labelled))
                continue
            train, val = tl.split_budget(labelled, seed=seed)   # a fifth of the budget to choose on
            trained_on.append(len(train))
            make, transform, val_transform, epochs, lrs = recipes[strategy]
            n_epochs = epochs(len(train))
            if strategy not in tuned:  # the first fold of the first seed: try every rate on the held-out labels
                tried = {lr: network(make, train, val, transform, val_transform, n_epochs, lr) for lr in lrs}
                score = lambda lr, v, tried=tried: tried[lr][1].best_val_acc  # noqa: E731
                lr = tl.stats.choose(list(lrs), score, val)
                if lr in (min(lrs), max(lrs)):   # on the grid's edge: extend it once past that edge
                    beyond = float(f"{lr / 3:.0e}") if lr == min(lrs) else float(f"{lr * 3:.0e}")
                    tried[beyond] = network(make, train, val, transform, val_transform, n_epochs, beyond)
                    lr = tl.stats.choose(sorted(tried), score, val)
                    log(f"{strategy}: grid extended once to {beyond:g}; chosen {lr:g}")
                tuned[strategy] = lr
                TRIALS[name, k, strategy] = len(tried)
                model, history = tried[lr]
            else:
                model, history = network(make, train, val, transform, val_transform, n_epochs, tuned[strategy])
            steps += history.steps          # one run at the chosen rate: the tuning runs are not counted
            seconds += sum(history.seconds)
            test_transform = cnn_plain if strategy == STRATEGIES[0] else plain
            test_loader = tl.make_loader(tl.with_transform(test, test_transform), 256)
            correct[positions] = tl.evaluate(model, test_loader).correct
            chosen.append(f"lr {tuned[strategy]:g}")
        rows.append({"target": name, "labels_per_class": round(per_class, 2), "strategy": strategy, "seed": seed,
                     "accuracy": round(float(correct.mean()), 4),
                     "correct": "".join("1" if c else "0" for c in correct),
                     "seconds": round(seconds, 2), "steps": steps, "tuned": sorted(set(chosen)),
                     "trials": len(tl.probing.PROBE_CS) if strategy in cuts else TRIALS.get((name, k, strategy)),
                     "train_images": int(np.mean(trained_on))})
        log(f"{name:12} {per_class:6.1f}/class seed {seed}  {strategy:24} {correct.mean():.3f}  {seconds:6.1f} s  "
            f"({', '.join(sorted(set(chosen)))})")
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
        "command": shlex.join(["python", "bench/strategy_grid.py", *sys.argv[1:]]),
    }


def check(saved: list[dict], new: list[dict], log: Callable[[str], None] = print) -> list[str]:
    """Compare re-measured runs with saved ones, cell by cell over the same seeds; return the disagreements.
    A cell agrees when its new mean lies inside the saved runs' 95% interval (the same seeds).

    >>> check(saved_grid["runs"], new_grid["runs"])  # [] when the grid reproduces
    """
    def cells(runs: list[dict]) -> dict[tuple, dict[int, dict]]:
        out: dict[tuple, dict[int, dict]] = {}
        for r in runs:
            out.setdefault((r["target"], r["labels_per_class"], r["strategy"]), {})[r["seed"]] = r
        return out

    def rows(runs: dict[int, dict], seeds: list[int]) -> np.ndarray:
        return np.array([[c == "1" for c in runs[s]["correct"]] for s in seeds])

    old, fresh = cells(saved), cells(new)
    failures, identical, compared = [], 0, 0
    for key, runs in fresh.items():
        if key not in old or not set(runs) <= set(old[key]):
            failures.append(f"{key}: seeds {sorted(runs)} are not all in the saved grid")
            continue
        seeds = sorted(runs)
        before, after = rows(old[key], seeds), rows(runs, seeds)
        interval = tl.stats.accuracy(before)
        identical += sum(bool((a == b).all()) for a, b in zip(after, before))
        compared += len(seeds)
        ok = interval.low <= after.mean() <= interval.high
        line = (f"{key[0]:12} {key[1]:6.1f}/class  {key[2]:24} saved {interval}  now {after.mean():.3f}  "
                f"{'ok' if ok else 'DISAGREES'}")
        log(line)
        if not ok:
            failures.append(line)
    log(f"{identical} of {compared} runs identical; {len(fresh) - len(failures)} of {len(fresh)} cells "
        f"inside the saved cell's 95% interval")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--out", type=Path, default=GRID_FILE)
    parser.add_argument("--check", action="store_true", help="compare the new runs with the saved grid")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--merge", action="store_true",
                        help="replace only the measured runs in the --out grid; its provenance lists the re-measure")
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
            tuned: dict[str, float] = {}  # chosen at the first seed of this target and budget, kept for the others
            for seed in range(args.seeds):
                runs += measure(name, k, seed, strategies=args.strategies, tuned=tuned,
                                log=lambda s: print(s, flush=True))
    made = provenance(list(range(args.seeds)), time.perf_counter() - start)
    if args.merge:   # e.g. the probes again after a change to fit_probe, the networks' runs kept
        grid = json.loads(args.out.read_text())
        key = lambda r: (r["target"], r["labels_per_class"], r["strategy"], r["seed"])  # noqa: E731
        new_keys = {key(r) for r in runs}
        grid["runs"] = [r for r in grid["runs"] if key(r) not in new_keys] + runs
        grid["provenance"].setdefault("remeasured", []).append(made | {"strategies": args.strategies})
    else:
        grid = {"provenance": made, "strategies": list(STRATEGIES), "targets": targets, "runs": runs}
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
