"""Heads: a pretrained backbone plus a new classifier, with a clean backbone / head split.

``Classifier.backbone`` turns an input into one feature vector; ``Classifier.head``
turns that vector into logits. Frozen-feature workflows cache the backbone's output and
train the head alone; fine-tuning trains both.

    >>> model, weights = build_classifier("mobilenet_v2", num_classes=6, hidden=256, dropout=0.2)
    >>> model.backbone(x).shape, model.head          # (N, 1280), the new head
    >>> model, tokenizer = build_text_classifier("minilm", num_classes=2)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .models import load_model, load_text_model

__all__ = ["Classifier", "MeanPooledEncoder", "make_head", "replace_head", "build_classifier",
           "build_text_classifier"]


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    """Every ``nn.Linear`` in ``module``, in registration order: a head's first and last layers.

    >>> [m.out_features for m in linear_layers(make_head(1280, 6, hidden=256))]
    [256, 6]
    """
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


class Classifier(nn.Module):
    """``head(backbone(x))``, where the backbone outputs ``num_features`` numbers per input."""

    def __init__(self, backbone: nn.Module, head: nn.Module, num_features: int, arch: str | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_features = num_features
        self.arch = arch  # the backbone's name in list_models(), so save_for_inference can rebuild it

    def forward(self, x: Any) -> torch.Tensor:
        return self.head(self.backbone(x))

    @property
    def num_classes(self) -> int:
        return linear_layers(self.head)[-1].out_features


class MeanPooledEncoder(nn.Module):
    """A BERT encoder that returns the mean of its token vectors (padding excluded).

    Takes the tokenizer's batch (a dict with ``input_ids`` and ``attention_mask``).
    """

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        bert.pooler = None  # the [CLS] pooler is unused with mean pooling: don't count or train it
        self.bert = bert

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def make_head(num_features: int, num_classes: int, hidden: int | None = None, dropout: float = 0.0) -> nn.Sequential:
    """A linear head, or ``Linear -> ReLU -> Dropout -> Linear`` with a ``hidden`` layer.

    >>> sum(p.numel() for p in make_head(2048, 10, hidden=256).parameters())
    527114
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, not {num_classes}.")
    if hidden is None:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, num_classes))
    return nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


def replace_head(model: nn.Module, num_classes: int, hidden: int | None = None,
                 dropout: float = 0.0) -> Classifier:
    """Cut the ImageNet classifier off a loaded model and put a new head in its place.

    >>> net, weights = load_model("efficientnet_lite0")
    >>> model = replace_head(net, num_classes=10)
    """
    if hasattr(model, "reset_classifier"):  # timm
        num_features = model.num_features
        model.reset_classifier(0)
    elif hasattr(model, "fc") and isinstance(model.fc, nn.Linear):  # torchvision ResNet
        num_features = model.fc.in_features
        model.fc = nn.Identity()
    elif hasattr(model, "classifier") and isinstance(model.classifier, nn.Sequential):  # torchvision MobileNet
        num_features = linear_layers(model.classifier)[0].in_features
        model.classifier = nn.Identity()
    else:
        raise TypeError(f"Don't know where the classifier of {type(model).__name__} is. Build a "
                        "Classifier(backbone, make_head(num_features, num_classes), num_features) yourself.")
    return Classifier(model, make_head(num_features, num_classes, hidden, dropout), num_features)


def build_classifier(name: str, num_classes: int, hidden: int | None = None, dropout: float = 0.0,
                     pretrained: bool = True) -> tuple[Classifier, Any]:
    """A pretrained image backbone with a new head for ``num_classes``, and its weights object.

    >>> model, weights = build_classifier("mobilenet_v2", num_classes=6)
    >>> model.backbone, model.head                       # ImageNet's features; a new Linear(1280, 6)
    """
    model, weights = load_model(name, pretrained=pretrained)
    classifier = replace_head(model, num_classes, hidden, dropout)
    classifier.arch = name
    return classifier, weights


def build_text_classifier(name: str, num_classes: int, hidden: int | None = None,
                          dropout: float = 0.1) -> tuple[Classifier, Any]:
    """A pretrained BERT-family encoder, mean-pooled, with a new head; and its tokenizer.

    >>> model, tokenizer = build_text_classifier("minilm", num_classes=2)
    >>> model(tokenizer(["what a day"], return_tensors="pt")).shape     # logits: (1, 2)
    """
    bert, tokenizer = load_text_model(name)
    dim = bert.config.hidden_size
    return Classifier(MeanPooledEncoder(bert), make_head(dim, num_classes, hidden, dropout), dim), tokenizer
