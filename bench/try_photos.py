"""Bench: ``python -m transferlib try`` on the course's 170 Tux Paint photos (6 classes), cold cache.

    python bench/try_photos.py [--minutes 5]

Runs the command as a learner would, in a fresh process with an empty feature cache, and prints its
wall time and peak memory (the child's maximum resident set) against the budget: within the
minutes asked for, and 2 GB. The command's own summary (the strategy table, the audit, the
prediction sets' coverage) is printed above.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TRANSFERLIB_CACHE": tmp, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "transferlib", "try", str(ROOT / "datasets" / "tuxpaint_photos"),
                               "--minutes", str(args.minutes), "--out", str(Path(tmp) / "out")], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux -> GiB
    print(done.stdout)
    print(f"exit code {done.returncode}; {seconds:.0f} s wall of {60 * args.minutes:.0f} s asked "
          f"({seconds / (60 * args.minutes):.2f} of the budget); peak memory {peak:.2f} GiB of 2 "
          f"({peak / 2:.2f} of the budget)")


if __name__ == "__main__":
    main()
