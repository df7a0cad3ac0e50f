"""Transforms: any image in, the tensor a model expects out.

Preprocessing comes from the weights (torchvision's ``Weights`` idea), so a learner cannot
normalise wrongly; grey, transparent, 16-bit and CMYK images become RGB first, and phone photos
are turned the way their EXIF orientation says.

    >>> preprocess = image_transform(weights)                         # the weights' own: 224 px, their mean/std
    >>> train_tf = image_transform(weights, augment=True, size=64)    # crop + flip, then the same at 64 px
    >>> scratch = image_transform(None, size=28)                      # a CNN from scratch: [-1, 1], channels kept
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = ["preprocessing", "image_transform", "ToRGB", "open_rgb", "upright", "flatten_alpha"]

ORIENTATION = 0x0112  # the EXIF tag phones set instead of rotating the pixels


def open_rgb(path: str) -> Image.Image:
    """Open any image as RGB, the right way up: a phone's EXIF orientation is applied (a portrait
    photo is stored sideways with a note saying so), transparency goes onto white, grey and CMYK
    are converted.

    >>> open_rgb("portrait.jpg").size     # (3024, 4032), as every photo viewer shows it
    """
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # PIL raises several types for broken files
        raise OSError(f"Cannot read the image {path}: {err}. Delete or replace that file.") from None
    return flatten_alpha(upright(img))


def upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says (what viewers show); unchanged without one, or
    when the EXIF block is damaged (some edited photos): the photo is then kept as stored."""
    try:
        if img.getexif().get(ORIENTATION, 1) == 1:
            return img
        return ImageOps.exif_transpose(img)
    except Exception:  # PIL raises SyntaxError, TypeError... for a malformed EXIF block
        return img


def flatten_alpha(img: Image.Image) -> Image.Image:
    """RGB; transparent pixels become white (cut-out photos); grey (8, 16 or 32 bit) and CMYK are converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # high bit depth: scale to 0..255, don't clip
        a = np.asarray(img, dtype=np.float64)
        span = a.max() - a.min()
        img = Image.fromarray(np.uint8(np.round(255 * (a - a.min()) / span)) if span else np.zeros(a.shape, np.uint8))
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def preprocessing(weights: Any, size: int | None = None) -> dict[str, Any]:
    """The numbers behind ``weights``' preprocessing at ``size``: what :func:`image_transform` builds
    from, and what :func:`~transferlib.inference.save_for_inference` stores beside a model.

    ``weights`` is any object with torchvision's ``transforms()`` (torchvision's own weights, or
    :class:`~transferlib.models.Weights`); ``size`` replaces both the resize and the crop.

    >>> preprocessing(weights, size=64)
    {'resize_size': 64, 'crop_size': 64, 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225],
     'interpolation': 'bilinear'}
    """
    if not callable(getattr(weights, "transforms", None)):
        raise TypeError(f"preprocessing() needs a weights object with a transforms() method, such as the second "
                        f"value load_model() returns; it got {type(weights).__name__}.")
    ref = weights.transforms()  # torchvision's ImageClassification: the one place its fields are read
    return {"resize_size": size or ref.resize_size[0], "crop_size": size or ref.crop_size[0],
            "mean": list(ref.mean), "std": list(ref.std), "interpolation": ref.interpolation.value}


def image_transform(weights: Any = None, augment: bool = False, size: int | None = None) -> Callable:
    """The preprocessing of ``weights``, for any image: grey, RGBA or CMYK become RGB first.

    ``size`` overrides the resolution (``size=64`` is 12x cheaper than 224 on a CPU, and
    enough for 28 px data). ``augment=True`` adds a random resized crop and a horizontal
    flip *before* the weights' own resize, crop and normalisation.

    With ``weights=None`` (a network trained from scratch) the image keeps its channels
    and is scaled to [-1, 1]; ``augment`` adds the same crop and flip.

    >>> train = load_dataset("animal_mnist", transform=image_transform(weights, augment=True, size=64))
    >>> scratch = image_transform(None, augment=True, size=28)     # 1 x 28 x 28 for a SmallCNN
    """
    from torchvision.transforms import v2

    if weights is None:
        if size is None:
            raise ValueError("image_transform(None, ...) needs a size, e.g. size=28 for a SmallCNN.")
        aug = [v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip()]
        return v2.Compose([v2.PILToTensor(), *(aug if augment else [v2.Resize((size, size), antialias=True)]),
                           v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.5])])
    from torchvision import transforms as T

    p = preprocessing(weights, size)
    steps: list[Callable] = [ToRGB()]
    if augment:
        steps += [v2.RandomResizedCrop(p["resize_size"], scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    # What the weights' own transforms() does (torchvision's ImageClassification), step by step:
    # resize the short side, crop the centre, scale to [0, 1], normalise.
    steps += [T.Resize(p["resize_size"], interpolation=T.InterpolationMode(p["interpolation"]), antialias=True),
              T.CenterCrop(p["crop_size"]), T.PILToTensor(), T.ConvertImageDtype(torch.float),
              T.Normalize(p["mean"], p["std"])]
    return v2.Compose(steps)


class ToRGB:
    """Any PIL image to RGB (transparency onto white), the right way up (its EXIF orientation, for a
    photo opened with ``Image.open``). A class, so its repr is stable for cache keys."""

    def __call__(self, img: Image.Image) -> Image.Image:
        img = upright(img)
        return img if img.mode == "RGB" else flatten_alpha(img)

    def __repr__(self) -> str:
        return "ToRGB(exif)"  # not "ToRGB()": features cached before EXIF was applied are not reused
