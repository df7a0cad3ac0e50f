"""Bench: ``python -m transferlib try`` on a CSV of 300 of the course's tweets (3 sentiments), and the
wider grid of C the call does not try.

    python bench/try_texts.py [--minutes 5] [--per-class 100]

1. Writes 100 tweets of each sentiment (a seeded sample) to a CSV and runs the command on it as a
   learner would, in a fresh process, and prints its wall time and peak memory (the child's maximum
   resident set) against the budget: within the minutes asked for, and 2 GB. The command's own
   summary is printed above.
2. When a probe's C lands on an edge of the course's grid (0.01 to 10), the summary says so and does
   not try further. This part measures what a wider grid (0.001 to 100) would change: the nested
   cross-validation's accuracy, one split, the course's grid against the wider one, for MiniLM on
   these tweets and for MobileNetV2 and EfficientNet-Lite0 on the 170 Tux Paint photos, with the
   seconds each took.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WIDE = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def write_tweets(path: Path, per_class: int) -> None:
    import transferlib as tl

    tweets, rng = tl.load_dataset("tweet_sentiment_3class", "train"), np.random.default_rng(0)
    rows = [(tweets.texts[i], tweets.classes[c]) for c in range(len(tweets.classes))
            for i in rng.choice(np.flatnonzero(np.array(tweets.targets) == c), per_class, replace=False)]
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *rows])


def grids(csv_path: Path) -> None:
    import transferlib as tl
    from transferlib import audit, nested
    from transferlib.heads import MeanPooledEncoder
    from transferlib.textmodel import embed

    data = tl.load_text_csv(csv_path)
    encoder, tokenizer = tl.load_text_model("minilm")
    sets = {"MiniLM, tweets": (embed(MeanPooledEncoder(encoder).eval(), tokenizer, data.texts),
                               np.array(data.targets), audit.text_twins(data.texts)[2], data.classes)}
    photos = audit.readable(tl.load_image_folder(ROOT / "datasets" / "tuxpaint_photos"))[0]
    group = audit.twins([p for p, _ in photos.samples])[2]
    for arch in ("mobilenet_v2", "efficientnet_lite0"):
        model, weights = tl.build_classifier(arch, len(photos.classes))
        images = tl.ImageFiles(photos.root, photos.classes, photos.samples, tl.image_transform(weights))
        x = tl.cached_features(model.backbone.eval(), images, progress=False)[0].numpy()
        sets[f"{arch}, photos"] = (x, np.array(photos.targets), group, photos.classes)
    for name, (x, y, group, classes) in sets.items():
        folds = nested.outer_folds(y, group, 5, 0)
        for grid in (tl.probing.PROBE_CS, WIDE):
            start = time.perf_counter()
            logits, _, Cs, _ = nested.nested_cv(x, y, folds, classes, group, grid=grid)
            print(f"{name:28} C from {grid[0]:g} to {grid[-1]:g}: {tl.stats.accuracy(logits.argmax(1) == y)}; "
                  f"C chosen {', '.join(f'{C:g}' for C in Cs)}; {time.perf_counter() - start:.1f} s")


def main() -> None:
    from try_photos import run_try          # bench/ is on the path when this file runs as a script

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--per-class", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "tweets.csv"
        write_tweets(csv_path, args.per_class)
        run_try(csv_path, args.minutes)
        print()
        grids(csv_path)


if __name__ == "__main__":
    main()
