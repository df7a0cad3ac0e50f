"""Bench (a): train a head for E epochs on cached features vs through the frozen backbone.

    python bench/cached_features.py [--epochs 10] [--size 224]

Same data (the 136 Tux Paint training photos), same pretrained MobileNetV2, same head
initialisation, same batches (seeded), no augmentation. Timed:

- backbone each epoch: ``fit`` of the frozen-backbone Classifier for E epochs;
- cached: extracting the training features once, then ``train_head`` for E epochs.

Test accuracy is measured on the 34 test photos. Target: cached >= 8x faster, accuracy
within 1 point.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

import transferlib as tl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    os.environ["TRANSFERLIB_CACHE"] = tempfile.mkdtemp()  # a cold cache: extraction is timed

    model, weights = tl.build_classifier("mobilenet_v2", num_classes=6)
    transform = tl.image_transform(weights, size=args.size)
    train = tl.load_dataset("tuxpaint_photos", "train", transform=transform)
    test = tl.load_dataset("tuxpaint_photos", "test", transform=transform)
    torch.manual_seed(0)
    model.head = tl.make_head(model.num_features, 6)  # the same initialisation train_head uses
    tl.freeze_all_but_last(model, 1)

    start = time.perf_counter()
    tl.fit(model, tl.make_loader(train, 16, shuffle=True), epochs=args.epochs, lr=1e-3, weight_decay=1e-4,
           progress=False)
    t_backbone = time.perf_counter() - start
    acc_backbone = tl.evaluate(model, tl.make_loader(test, 64)).accuracy

    start = time.perf_counter()
    feats, labels = tl.cached_features(model.backbone, train, batch_size=16, progress=False)
    head, _ = tl.train_head(feats, labels, 6, epochs=args.epochs, lr=1e-3, batch_size=16, progress=False)
    t_cached = time.perf_counter() - start
    test_feats, test_labels = tl.cached_features(model.backbone, test, progress=False)
    with torch.inference_mode():
        acc_cached = float((head.eval()(test_feats).argmax(1) == test_labels).float().mean())

    print(f"{args.epochs} epochs, {len(train)} training photos at {args.size} px, {torch.get_num_threads()} threads")
    print(f"backbone each epoch: {t_backbone:7.2f} s   test accuracy {acc_backbone:.3f}")
    print(f"cached features:     {t_cached:7.2f} s   test accuracy {acc_cached:.3f}")
    print(f"speed-up: {t_backbone / t_cached:.1f}x   "
          f"accuracy difference: {abs(acc_backbone - acc_cached) * 100:.1f} points")


if __name__ == "__main__":
    main()
