"""Freezing: which parameters train, and BatchNorm that stays frozen when its block is.

Freezing a parameter is one line of plain PyTorch, ``p.requires_grad = False``. What
this module adds is the *blocks* of each supported network, so that "all but the last
k blocks" means something, a Keras-style :func:`summary` whose counts are exact, and a
BatchNorm policy:

**BatchNorm policy.** A BatchNorm layer inside a frozen block stays in inference mode
(it uses and keeps its running mean and variance) even after ``model.train()``.
Otherwise ``model.train()`` silently re-enables the statistics updates and the "frozen"
backbone drifts towards the new data (pytorch/pytorch#86590). Pass ``train_bn=True`` to
let frozen BatchNorm layers update their statistics anyway. :func:`adapt_batchnorm`
re-estimates the statistics that will update, on your data, before training (AdaBN).

    >>> model, _ = build_classifier("mobilenet_v2", num_classes=6)
    >>> freeze_all_but_last(model, 1)            # only the head trains
    >>> print(summary(model))
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .devices import batches, device_of, mode

__all__ = ["Block", "blocks", "freeze", "unfreeze", "freeze_all_but_last", "adapt_batchnorm", "summary",
           "Summary"]

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@dataclass
class Block:
    """A named group of modules that is frozen or trained together."""

    name: str
    modules: list[nn.Module]

    def parameters(self) -> Iterator[nn.Parameter]:
        for m in self.modules:
            yield from m.parameters()

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def blocks(model: nn.Module) -> list[Block]:
    """The blocks of a supported network, from input to output; the last one is the head.

    Supported: transferlib's ``Classifier`` around any of the below, torchvision
    MobileNetV2 and ResNets, timm EfficientNet(-Lite), Hugging Face BERT models.
    Anything else is split into its top-level children.

    >>> [b.name for b in blocks(model)][-3:]
    ['backbone.features.17', 'backbone.features.18', 'head']
    """
    from .heads import Classifier, MeanPooledEncoder  # here: heads brings in models, needed only now

    if isinstance(model, Classifier):
        inner = model.backbone.bert if isinstance(model.backbone, MeanPooledEncoder) else model.backbone
        prefix = "backbone.bert." if isinstance(model.backbone, MeanPooledEncoder) else "backbone."
        body = [Block(prefix + b.name, b.modules) for b in blocks(inner) if b.num_params]
        return body + [Block("head", [model.head])]
    named = dict(model.named_children())
    if {"features", "classifier"} <= named.keys() and isinstance(named["features"], nn.Sequential):
        # torchvision MobileNet / EfficientNet / VGG style
        return [Block(f"features.{i}", [m]) for i, m in enumerate(model.features)] + \
            [Block("classifier", [model.classifier])]
    if {"conv_stem", "blocks", "conv_head"} <= named.keys():  # timm EfficientNet
        out = [Block("stem", [model.conv_stem, model.bn1])]
        out += [Block(f"blocks.{i}.{j}", [b]) for i, stage in enumerate(model.blocks) for j, b in enumerate(stage)]
        return out + [Block("conv_head", [model.conv_head, model.bn2]), Block("classifier", [model.classifier])]
    if {"conv1", "layer1", "fc"} <= named.keys():  # torchvision ResNet
        out = [Block("stem", [model.conv1, model.bn1])]
        for layer in ("layer1", "layer2", "layer3", "layer4"):
            out += [Block(f"{layer}.{j}", [b]) for j, b in enumerate(getattr(model, layer))]
        return out + [Block("fc", [model.fc])]
    if hasattr(model, "config") and getattr(model.config, "model_type", "") == "bert":
        bert = model.bert if hasattr(model, "bert") else model
        prefix = "bert." if bert is not model else ""
        out = [Block(prefix + "embeddings", [bert.embeddings])]
        out += [Block(f"{prefix}encoder.layer.{i}", [layer]) for i, layer in enumerate(bert.encoder.layer)]
        if getattr(bert, "pooler", None) is not None:
            out.append(Block(prefix + "pooler", [bert.pooler]))
        if hasattr(model, "classifier"):
            out.append(Block("classifier", [model.classifier]))
        return out
    return [Block(name, [m]) for name, m in named.items() if any(True for _ in m.parameters())]


def _select(model: nn.Module, names: Iterable[str] | None) -> list[nn.Module]:
    if names is None:
        return [model]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names or any(not isinstance(n, str) or not n.strip() for n in names):
        raise ValueError(f"names must be block or module names, not {names!r} (an empty name is the whole "
                         "model). Pass names=None to mean the whole model, or names such as blocks(model)[0].name.")
    by_name = {b.name: b for b in blocks(model)}
    out = []
    for name in names:
        if name in by_name:
            out += by_name[name].modules
            continue
        try:
            out.append(model.get_submodule(name))
        except AttributeError:
            raise ValueError(f"{type(model).__name__} has no block or module {name!r}. "
                             f"Its blocks are: {', '.join(by_name)}.") from None
    return out


def _set_trainable(model: nn.Module, names: Iterable[str] | str | None, trainable: bool, train_bn: bool) -> nn.Module:
    """What freeze and unfreeze do: ``requires_grad`` on the selected modules' parameters, and the
    BatchNorm policy on the BatchNorm layers inside them."""
    for module in _select(model, names):
        for p in module.parameters():
            p.requires_grad = trainable
        for bn in module.modules():
            if isinstance(bn, _BATCHNORM):
                _set_bn_frozen(bn, not train_bn)
    return model


def freeze(model: nn.Module, names: Iterable[str] | str | None = None, train_bn: bool = False) -> nn.Module:
    """Stop gradients for the whole model, or for the named blocks / modules.

    BatchNorm layers inside become inference-only unless ``train_bn=True`` (module docstring).

    >>> freeze(model)                              # everything
    >>> freeze(model, ["backbone.features.0"])     # one block
    """
    return _set_trainable(model, names, False, train_bn)


def unfreeze(model: nn.Module, names: Iterable[str] | str | None = None, train_bn: bool = True) -> nn.Module:
    """Let the whole model, or the named blocks / modules, train again.

    ``train_bn=False`` trains the weights (BatchNorm's scale and shift included) but keeps
    the BatchNorm running statistics fixed: Keras's advice for fine-tuning on small data.

    >>> unfreeze(model)                            # everything trains, statistics update
    >>> unfreeze(model, train_bn=False)            # weights train, statistics stay ImageNet's
    """
    return _set_trainable(model, names, True, train_bn)


def freeze_all_but_last(model: nn.Module, k: int, train_bn: bool = False) -> nn.Module:
    """Freeze every block except the last ``k``. The head is a block: ``k=1`` trains only the head.

    ``train_bn`` is for the frozen blocks' BatchNorm; the last ``k`` blocks' statistics update.

    >>> freeze_all_but_last(model, 4)   # the head and the last 3 backbone blocks train
    """
    all_blocks = blocks(model)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k <= len(all_blocks):
        raise ValueError(f"k must be between 0 and {len(all_blocks)} (the number of blocks), not {k!r}.")
    unfreeze(model)
    frozen = all_blocks[: len(all_blocks) - k]
    if frozen:
        freeze(model, [b.name for b in frozen], train_bn=train_bn)
    return model


# BatchNorm policy ----------------------------------------------------------------------

def _keep_eval(bn: nn.Module, args) -> None:
    if bn.transferlib_frozen and bn.training:
        bn.train(False)


def _set_bn_frozen(bn: nn.Module, frozen: bool) -> None:
    bn.transferlib_frozen = frozen
    if not getattr(bn, "_transferlib_hooked", False):
        bn.register_forward_pre_hook(_keep_eval)
        bn._transferlib_hooked = True
    if frozen:
        bn.train(False)


def bn_is_frozen(bn: nn.Module) -> bool:
    """True when this BatchNorm layer keeps its running statistics fixed in training."""
    return getattr(bn, "transferlib_frozen", False)


def adapt_batchnorm(model: nn.Module, data: Iterable, progress: bool = False) -> nn.Module:
    """AdaBN (Li et al., 2016): the running statistics of every BatchNorm layer that will update in
    training, re-estimated as the plain average over ``data``'s batches. Weights and frozen layers
    are untouched, and nothing else runs in training mode (no dropout, no random numbers drawn).

    Fit a probe *after* this when fine-tuning will update the statistics: fitted under ImageNet's,
    it meets other features from the first step (lesson 3).

    >>> unfreeze(model)                          # statistics update: re-estimate them first
    >>> adapt_batchnorm(model, train_loader)
    """
    layers = [m for m in model.modules() if isinstance(m, _BATCHNORM) and m.track_running_stats
              and not bn_is_frozen(m)]
    if not layers:
        return model
    if not len(data):
        raise ValueError("adapt_batchnorm got no batches: pass the training loader (or dataset batches) "
                         "whose statistics the BatchNorm layers should learn.")
    momenta = [bn.momentum for bn in layers]
    with mode(model, training=False), torch.no_grad():     # every module's own mode comes back after
        for bn in layers:
            bn.reset_running_stats()
            bn.momentum = None             # a cumulative average over the batches, not a moving one
            bn.train()
        try:
            for x, _ in batches(data, device_of(model), "AdaBN", progress):
                model(x)
        finally:
            for bn, momentum in zip(layers, momenta):
                bn.momentum = momentum
    return model


# Summary --------------------------------------------------------------------------------

@dataclass
class Summary:
    """Per-block parameter counts with totals, like Keras's ``model.summary()``."""

    rows: list[tuple[str, str, int, int, str]]  # name, type, params, trainable, BatchNorm mode
    total: int
    trainable: int
    buffers: int

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable

    def __str__(self) -> str:
        width = max(len(r[0]) for r in self.rows) + 2  # 88 characters wide for MobileNetV2's blocks
        lines = [f"{'block':{width}}{'type':21}{'params':>11}{'trainable':>11}  {'train?':7}{'BatchNorm'}",
                 "-" * (width + 61)]
        for name, kind, n, t, bn in self.rows:
            flag = "yes" if t == n else "no" if t == 0 else "partly"
            lines.append(f"{name:{width}}{kind[:20]:21}{n:>11,}{t:>11,}  {flag:7}{bn}")
        lines += ["-" * (width + 61),
                  f"Total params:         {self.total:>12,}",
                  f"Trainable params:     {self.trainable:>12,}",
                  f"Non-trainable params: {self.non_trainable:>12,}",
                  f"(plus {self.buffers:,} buffer values, e.g. BatchNorm running statistics: not parameters)"]
        return "\n".join(lines)

    __repr__ = __str__


def summary(model: nn.Module) -> Summary:
    """A table of blocks with exact parameter counts, trainable flags and BatchNorm mode.

    Totals are computed from ``model.parameters()`` directly; parameters that belong to
    no block (if any) appear in an ``(other)`` row, so the rows always add up.

    >>> s = summary(model); s.trainable, s.non_trainable
    """
    rows, seen = [], set()
    for b in blocks(model):
        params = [p for p in b.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        bns = [m for mod in b.modules for m in mod.modules() if isinstance(m, _BATCHNORM)]
        bn = "-" if not bns else "frozen" if all(map(bn_is_frozen, bns)) else \
            "updates" if not any(map(bn_is_frozen, bns)) else "mixed"
        kind = type(b.modules[0]).__name__ if len(b.modules) == 1 else "+".join(type(m).__name__ for m in b.modules)
        rows.append((b.name, kind, sum(p.numel() for p in params),
                     sum(p.numel() for p in params if p.requires_grad), bn))
    other = [p for p in model.parameters() if id(p) not in seen]
    if other:
        rows.append(("(other)", "-", sum(p.numel() for p in other),
                     sum(p.numel() for p in other if p.requires_grad), "-"))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for b in model.buffers())
    return Summary(rows, total, trainable, buffers)
