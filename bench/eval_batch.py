"""Bench: how fast MobileNetV2 evaluates on a CPU, by batch size and memory layout.

    python bench/eval_batch.py [--images 512]

The lessons evaluate and extract features without gradients. On a CPU the batch size that keeps a
layer's activations in the cache is faster than a large one: at 64 px a batch of 256 holds
32 x 32 x 32 x 256 floats (34 MB) after the first convolution, a batch of 32 about 4 MB. This
bench times the same images through the same pretrained MobileNetV2 (eval mode, inference mode) at
64 px (lesson 3's size) and 224 px (ImageNet's), for several batch sizes, with the inputs in the
default layout (NCHW) and channels-last (NHWC; the model's weights untouched, as `transferlib`
never moves a model). Each setting runs twice after a warm-up; prints the faster, in milliseconds
per image, its ratio to the slowest batch size's NCHW time, and the largest difference between the
two layouts' outputs. Target: the same outputs (to float rounding); the fastest setting named.
"""

from __future__ import annotations

import argparse
import time

import torch

import transferlib as tl

SETTINGS = {64: [16, 32, 64, 256], 224: [8, 16, 32, 64]}


def ms_per_image(model: torch.nn.Module, images: torch.Tensor, batch: int) -> float:
    best = float("inf")
    with torch.inference_mode():
        model(images[:batch])                                   # warm-up: oneDNN builds its kernels
        for _ in range(2):
            start = time.perf_counter()
            for chunk in images.split(batch):
                model(chunk)
            best = min(best, time.perf_counter() - start)
    return best / len(images) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512)
    images = parser.parse_args().images
    model, _ = tl.load_model("mobilenet_v2")
    model.eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; MobileNetV2, eval mode, "
          f"{images} images (224 px: {images // 8})")
    for size, batches in SETTINGS.items():
        torch.manual_seed(0)
        x = torch.randn(images if size == 64 else images // 8, 3, size, size)
        nhwc = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            gap = float((model(x[:8]) - model(nhwc[:8])).abs().max())
        times = {(b, layout): ms_per_image(model, data, b) for b in batches
                 for layout, data in (("NCHW", x), ("NHWC", nhwc))}
        slowest = max(times[b, "NCHW"] for b in batches)
        for (b, layout), ms in times.items():
            print(f"{size:>4} px  batch {b:>3}  {layout}  {ms:6.2f} ms/image  {slowest / ms:4.2f}x")
        (b, layout), ms = min(times.items(), key=lambda item: item[1])
        print(f"{size:>4} px: fastest batch {b}, {layout}, {slowest / ms:.2f}x the slowest NCHW batch; "
              f"layouts differ by at most {gap:.1e}")


if __name__ == "__main__":
    main()
