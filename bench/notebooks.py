"""Time and peak memory of every lesson, in fast (CI) and full (learner) mode.

    python bench/notebooks.py [--fast-only] [--only 02_]

Each notebook runs in its own process through papermill, with an empty feature cache (a
learner's first run); the peak resident memory is the largest of that process and its
children (the Jupyter kernel), from getrusage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import papermill as pm
path, out, fast = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
start = time.perf_counter()
pm.execute_notebook(path, out, parameters={"FAST": fast}, kernel_name="python3",
                    cwd=str(__import__("pathlib").Path(path).parent), progress_bar=False)
seconds = time.perf_counter() - start
peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast-only", action="store_true")
    ap.add_argument("--only", default="", help="run the notebooks whose name contains this")
    args = ap.parse_args()
    modes = [True] if args.fast_only else [True, False]
    print(f"{'notebook':45} {'mode':5} {'seconds':>8} {'peak MB':>8}")
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if args.only not in path.name:
            continue
        for fast in modes:
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "TRANSFERLIB_CACHE": tmp}
                result = subprocess.run([sys.executable, "-c", CHILD, str(path), f"{tmp}/out.ipynb",
                                         "1" if fast else "0"], capture_output=True, text=True, check=True, env=env)
            stats = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"{path.name:45} {'fast' if fast else 'full':5} {stats['seconds']:8.1f} {stats['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
