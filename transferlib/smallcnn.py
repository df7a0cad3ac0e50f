"""A small CNN to train from scratch: the honest baseline for small images.

Lesson 2 measures frozen pretrained features against it (lesson 3 and lesson 5's grid reuse
that recipe), and lesson 1 copies and freezes its conv layers one at a time::

    >>> model = SmallCNN(in_channels=1, num_classes=10, image_size=28)   # 28 px silhouettes
    >>> [b.name for b in tl.blocks(model)]
    ['conv1', 'conv2', 'conv3', 'conv4', 'head']
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """A small CNN to train from scratch: the honest baseline for small images.

    Four 3x3 conv layers (conv -> BatchNorm -> ReLU; ``width``, ``width``, ``2*width``,
    ``2*width`` channels, a 2x2 max-pool after the 2nd and 4th) and a linear head with
    dropout. Each conv layer is its own block (``conv1``...``conv4``, then ``head``), so
    layer-by-layer transfer experiments can copy and freeze them one at a time.

    With ``global_pool=True`` the head averages each final map to one number, as ImageNet
    networks do: it then sees only ``2*width`` features, so the conv layers must do the
    work (a flattened head can classify well even on random conv features).

    >>> SmallCNN(in_channels=1, num_classes=10, image_size=28)    # 28 px silhouettes, ~99 k params
    >>> SmallCNN(1, 5, 28, width=16, global_pool=True)            # 4x cheaper, for many short runs
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 dropout: float = 0.3, width: int = 32, global_pool: bool = False) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4 (two 2x2 pools), not {image_size}.")

        def conv(cin: int, cout: int, pool: bool) -> nn.Sequential:
            layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            return nn.Sequential(*layers, *([nn.MaxPool2d(2)] if pool else []))

        self.conv1 = conv(in_channels, width, pool=False)
        self.conv2 = conv(width, width, pool=True)
        self.conv3 = conv(width, 2 * width, pool=False)
        self.conv4 = conv(2 * width, 2 * width, pool=True)
        pool = [nn.AdaptiveAvgPool2d(1)] if global_pool else []
        features = 2 * width * (1 if global_pool else (image_size // 4) ** 2)
        self.head = nn.Sequential(*pool, nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, num_classes))
        self.num_classes, self.in_channels, self.image_size = num_classes, in_channels, image_size
        self.global_pool = global_pool
        # Weights stored channels-last: the same numbers, and oneDNN's small convolutions ran
        # 1.04-1.22x faster on 2 CPU cores in that layout (docs/design.md, "SmallCNN's layout").
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            kind = {1: "grey", 3: "RGB"}.get(self.in_channels, "?")
            raise ValueError(f"This SmallCNN was built for {self.in_channels}-channel ({kind}) images, batched as "
                             f"(N, {self.in_channels}, H, W); it got a batch of shape {tuple(x.shape)}. Build "
                             f"SmallCNN(in_channels={x.shape[1] if x.ndim == 4 else '?'}, ...) for these images, "
                             "or convert them (PIL: image.convert('L') is grey, 'RGB' colour).")
        if not self.global_pool and tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"This SmallCNN was built for {self.image_size} px images; it got {x.shape[-1]}x"
                             f"{x.shape[-2]}. Resize them (image_transform(None, size={self.image_size})) or "
                             f"build SmallCNN(..., image_size={x.shape[-1]}).")
        return self.head(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
