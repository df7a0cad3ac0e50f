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

Each cell is `transferlib.strategy.measure` (its docstring gives the fixed recipes), the same
function the lesson runs for its live slice.
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
from typing import Callable

import torch

import transferlib as tl
from transferlib.strategy import GRID_FILE, STRATEGIES, TARGETS, measure, source_similarity

ROOT = Path(__file__).resolve().parent.parent
FLOOR = 0.02  # the smallest tolerance --check allows, for cells whose seeds agree exactly

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
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__},
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
