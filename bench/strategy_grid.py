"""Measure the strategy grid behind lesson 5 and `transferlib.recommend_strategy`.

Five strategies x three targets of measured similarity to ImageNet x two label budgets x seeds,
each with its test accuracy and the seconds it took, written with its provenance to
transferlib/data/strategy_grid.json (the lesson loads it and re-runs a slice live).

    python bench/strategy_grid.py                 # the full grid: 3 seeds, about 15-20 min on 2 cores
    python bench/strategy_grid.py --seeds 1 --out /tmp/grid.json --targets silhouettes

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

import torch

import transferlib as tl
from transferlib.strategy import GRID_FILE, STRATEGIES, TARGETS, measure, source_similarity

ROOT = Path(__file__).resolve().parent.parent

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--out", type=Path, default=GRID_FILE)
    args = parser.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
