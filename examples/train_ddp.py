"""Lesson 7's photo model, trained on several processes with PyTorch's DistributedDataParallel (appendix B).

    torchrun --standalone --nproc_per_node=2 examples/train_ddp.py --out runs/ddp.safetensors   # 2 processes
    python examples/train_ddp.py --out runs/one.safetensors                                       # 1 process

Both runs use the same *global* batch (16 photos per optimizer step), so they compute the same
updates and end with the same weights, up to floating-point rounding. What differs from the
one-process loop is marked with DDP in a comment:

1. ``init_process_group``: torchrun starts the processes and sets RANK, WORLD_SIZE and a
   rendezvous address; each process joins the group ("gloo" on CPUs, "nccl" on NVIDIA GPUs).
2. ``DistributedSampler``: each process reads its own share of the photos, a different share
   each epoch once ``set_epoch`` is called (without it, every epoch repeats epoch 0's order).
3. ``DistributedDataParallel``: after each ``backward`` it averages the gradients of all
   processes, so every process takes the same optimizer step and the copies stay equal.
4. The per-process batch is the global batch divided by the number of processes.
5. Only rank 0 saves: the others hold the same weights.

The optimizer is SGD with momentum. Adam divides each step by the gradient's running size, so a
gradient that is zero but for rounding gets a full-size step whose sign is the rounding's: the
two runs then agree in accuracy but not to floating-point tolerance.

BatchNorm and dropout are kept in eval mode: with BatchNorm in training mode each process would
normalise with its own 8 photos, not the global 16, and the runs would differ (use
``nn.SyncBatchNorm`` on GPUs for that). transferlib's ``fit`` is a one-process loop: this is the
loop it runs, written out, with the five changes.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
from torchvision.models import MobileNet_V2_Weights

import transferlib as tl


def photos(seed: int, size: int, limit: int | None = None):
    """Lesson 7's training photos (its split: 60% train, 20% validation, 20% test), preprocessed once."""
    data = tl.load_image_folder(tl.load_dataset("tuxpaint_photos", "all").root)
    train_val, _ = tl.stratified_split(data, test_size=0.2, seed=seed)
    train, _ = tl.stratified_split(train_val, test_size=0.25, seed=seed)
    if limit:
        train = tl.subset(train, range(limit))
    return data.classes, tl.in_memory(tl.with_transform(train, tl.image_transform(WEIGHTS, size=size)))


def photo_model(seed: int, blocks: int) -> tl.Classifier:
    """MobileNetV2 with a new head; the head and the last ``blocks - 1`` blocks train."""
    torch.manual_seed(seed)  # the same new head in every process (DDP also copies rank 0's weights to all)
    model, _ = tl.build_classifier("mobilenet_v2", num_classes=6)
    tl.freeze_all_but_last(model, blocks)
    return model.eval()  # BatchNorm statistics and dropout fixed: see the module's docstring


def arguments(description: str) -> argparse.ArgumentParser:
    """The options of this script and of train_accelerate.py: the same run, launched two ways."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="where rank 0 saves the model (.safetensors)")
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd", help="see the docstring")
    parser.add_argument("--blocks", type=int, default=2, help="trainable blocks, the head included")
    parser.add_argument("--size", type=int, default=160, help="image size in pixels")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N photos only (tests)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()

    distributed = "WORLD_SIZE" in os.environ                    # DDP: set by torchrun
    if distributed:
        dist.init_process_group("gloo")                        # DDP: "nccl" for NVIDIA GPUs
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if args.global_batch % world:
        raise SystemExit(f"--global-batch {args.global_batch} does not split over {world} processes.")

    classes, train = photos(args.seed, args.size, args.limit)
    model = photo_model(args.seed, args.blocks)
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)  # DDP
    loader = DataLoader(train, batch_size=args.global_batch // world, sampler=sampler, drop_last=True)  # DDP
    net = DDP(model) if distributed else model                  # DDP: averages gradients in backward()
    optimizer = tl.make_optimizer(model, lr=args.lr, kind=args.optimizer)

    start, steps = time.perf_counter(), 0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)                                # DDP: a new shuffle each epoch
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
    if rank == 0:                                               # DDP: one process saves
        tl.save_for_inference(args.out, model, classes, WEIGHTS, size=args.size)
        print(f"{world} process{'es' if world > 1 else ''}: {steps} steps of {args.global_batch // world} photos "
              f"each in {time.perf_counter() - start:.1f} s; saved {args.out}")
    if distributed:
        dist.destroy_process_group()


WEIGHTS = MobileNet_V2_Weights.IMAGENET1K_V1  # what tl.load_model("mobilenet_v2") returns: its preprocessing

if __name__ == "__main__":
    main()
