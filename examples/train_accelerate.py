"""The loop of train_ddp.py written with Hugging Face Accelerate: the same run, fewer lines to change.

    torchrun --standalone --nproc_per_node=2 examples/train_accelerate.py --out runs/acc.safetensors
    python examples/train_accelerate.py --out runs/one.safetensors                   # 1 process

``Accelerator`` reads the environment torchrun set (``accelerate launch`` sets the same on GPUs)
and joins the process group; ``prepare`` wraps the model in DDP, moves it to this process's
device and shards the loader (each process takes every second batch); ``accelerator.backward``
averages the gradients. The same script runs on one CPU, several processes, or several GPUs
(``--device cuda``: Accelerate then places the model and every batch on this process's GPU). Its
changes from the one-process loop are marked with the word accelerate in a comment.
"""

from __future__ import annotations

import time

import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from torch.utils.data import DataLoader
from train_ddp import WEIGHTS, arguments, photo_model, photos

import transferlib as tl


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda: one GPU per process")
    args = parser.parse_args()

    # accelerate: the same shuffle in every process and every run, whatever the number of processes
    same_order = DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed)
    accelerator = Accelerator(cpu=args.device == "cpu", dataloader_config=same_order)  # accelerate
    world = accelerator.num_processes
    classes, train = photos(args.seed, args.size, args.limit)
    model = photo_model(args.seed, args.blocks)
    loader = DataLoader(train, batch_size=args.global_batch // world, shuffle=True, drop_last=True)
    optimizer = tl.make_optimizer(model, lr=args.lr, kind=args.optimizer)
    net, optimizer, loader = accelerator.prepare(model, optimizer, loader)  # accelerate
    start, steps = time.perf_counter(), 0
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)                                 # accelerate: a new shuffle each epoch
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            accelerator.backward(loss)                          # accelerate: instead of loss.backward()
            optimizer.step()
            steps += 1
    if accelerator.is_main_process:                             # accelerate: one process saves
        tl.save_for_inference(args.out, accelerator.unwrap_model(net), classes, WEIGHTS, size=args.size)
        print(f"{world} process{'es' if world > 1 else ''} (accelerate): {steps} steps in "
              f"{time.perf_counter() - start:.1f} s; saved {args.out}")
    accelerator.end_training()                                  # accelerate: leaves the process group


if __name__ == "__main__":
    main()
