"""transferlib.transforms: one preprocessing, read from the weights, built from public transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import transferlib as tl


def _photos() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    shapes = [(300, 400), (53, 37), (224, 224), (28, 28)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in shapes]


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite0"])
def test_image_transform_is_the_weights_own_preprocessing_bit_for_bit(name):
    _, weights = tl.load_model(name, pretrained=False)
    ours, theirs = tl.image_transform(weights), weights.transforms()
    for photo in _photos():
        assert torch.equal(ours(photo), theirs(photo)), f"{name}: image_transform differs from weights.transforms()"


def test_preprocessing_reads_the_weights_and_size_replaces_resize_and_crop():
    _, weights = tl.load_model("efficientnet_lite0", pretrained=False)
    p = tl.preprocessing(weights)
    assert p == {"resize_size": 256, "crop_size": 224, "mean": [0.5] * 3, "std": [0.5] * 3,
                 "interpolation": "bicubic"}
    assert tl.preprocessing(weights, size=64) | {"mean": None, "std": None} == \
        {"resize_size": 64, "crop_size": 64, "mean": None, "std": None, "interpolation": "bicubic"}
    x = tl.image_transform(weights, size=64)(_photos()[0])
    assert x.shape == (3, 64, 64)


def test_preprocessing_of_something_that_is_not_weights_says_what_to_pass():
    model, _ = tl.load_model("mobilenet_v2", pretrained=False)
    with pytest.raises(TypeError, match="second value load_model\\(\\) returns; it got MobileNetV2"):
        tl.preprocessing(model)


def test_no_private_torchvision_module_is_read_outside_the_weights_class():
    from pathlib import Path

    root = Path(tl.__file__).parent
    users = sorted(p.name for p in root.glob("*.py") if "_presets" in p.read_text())
    assert users == ["models.py"], f"torchvision's private _presets is imported in {users}"
