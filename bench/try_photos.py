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


def run_try(data: Path, minutes: float) -> None:
    """``python -m transferlib try DATA`` in a fresh process with an empty cache; its summary, then its
    wall time and peak memory against the budget."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TRANSFERLIB_CACHE": tmp, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "transferlib", "try", str(data), "--minutes", str(minutes),
                               "--out", str(Path(tmp) / "out")], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux -> GiB
    print(done.stdout)
    print(f"exit code {done.returncode}; {seconds:.0f} s wall of {60 * minutes:.0f} s asked "
          f"({seconds / (60 * minutes):.2f} of the budget); peak memory {peak:.2f} GiB of 2 "
          f"({peak / 2:.2f} of the budget)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    run_try(ROOT / "datasets" / "tuxpaint_photos", ap.parse_args().minutes)


if __name__ == "__main__":
    main()
