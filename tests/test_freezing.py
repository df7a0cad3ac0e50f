"""Freezing, the BatchNorm policy, summaries with exact counts, heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import transferlib as tl


def count(model: nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in model.parameters() if trainable is None or p.requires_grad == trainable)


@pytest.fixture(scope="module")
def models():
    out = {name: tl.build_classifier(name, 6, pretrained=False)[0]
           for name in ("mobilenet_v2", "efficientnet_lite0", "resnet18", "resnet50")}
    out["minilm"] = tl.build_text_classifier("minilm", 2)[0]
    out["minilm_hf"] = tl.load_text_model("minilm", num_labels=2)[0]
    out["mobilenet_v2_imagenet"] = tl.load_model("mobilenet_v2", pretrained=False)[0]
    return out


MODEL_NAMES = ["mobilenet_v2", "efficientnet_lite0", "resnet18", "resnet50", "minilm", "minilm_hf",
               "mobilenet_v2_imagenet"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_blocks_cover_every_parameter_once(models, name):
    model = models[name]
    ids = [id(p) for b in tl.blocks(model) for p in b.parameters()]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("k", [0, 1, 3])
def test_summary_counts_are_exact(models, name, k):
    model = models[name]
    tl.freeze_all_but_last(model, k)
    s = tl.summary(model)
    assert s.total == count(model)
    assert s.trainable == count(model, True)
    assert s.non_trainable == count(model, False)
    assert sum(r[2] for r in s.rows) == s.total and sum(r[3] for r in s.rows) == s.trainable
    trainable_rows = [r[0] for r in s.rows if r[3] > 0]
    assert trainable_rows == [b.name for b in tl.blocks(model)][len(s.rows) - k:]
    assert f"Trainable params:     {s.trainable:>12,}" in str(s)
    tl.unfreeze(model)


def test_expected_block_names(models):
    names = lambda m: [b.name for b in tl.blocks(models[m])]  # noqa: E731
    assert names("mobilenet_v2")[-2:] == ["backbone.features.18", "head"]
    assert len(names("mobilenet_v2")) == 20
    assert names("efficientnet_lite0")[:2] == ["backbone.stem", "backbone.blocks.0.0"]
    assert names("resnet50")[-2:] == ["backbone.layer4.2", "head"]
    assert names("minilm")[-2:] == ["backbone.bert.encoder.layer.5", "head"]
    assert names("minilm_hf")[0] == "bert.embeddings" and names("minilm_hf")[-1] == "classifier"


def test_freeze_whole_and_named(models):
    model = models["resnet18"]
    tl.freeze(model)
    assert count(model, True) == 0
    tl.unfreeze(model, ["head", "backbone.layer4.1"])
    assert count(model, True) == count(model.head) + count(model.backbone.layer4[1])
    tl.freeze(model, "backbone.layer4.1.conv1")  # any module path works too
    assert not model.backbone.layer4[1].conv1.weight.requires_grad
    with pytest.raises(ValueError, match="no block or module 'layer9'.*Its blocks are: backbone.stem"):
        tl.freeze(model, ["layer9"])
    with pytest.raises(ValueError, match="k must be between 0 and 10"):
        tl.freeze_all_but_last(model, 11)
    tl.unfreeze(model)


def test_frozen_batchnorm_stays_in_inference_mode_after_train(models):
    model = models["mobilenet_v2"]
    tl.freeze_all_but_last(model, 1)
    model.train()
    bn = model.backbone.features[0][1]
    before = bn.running_mean.clone()
    model(torch.randn(4, 3, 32, 32))
    assert torch.equal(bn.running_mean, before) and not bn.training
    assert tl.summary(model).rows[0][4] == "frozen"

    tl.freeze_all_but_last(model, 1, train_bn=True)  # the policy can be switched off
    model.train()
    model(torch.randn(4, 3, 32, 32))
    assert not torch.equal(bn.running_mean, before)
    assert tl.summary(model).rows[0][4] == "updates"
    tl.unfreeze(model)


def test_unfreeze_can_keep_batchnorm_statistics_fixed(models):
    model = models["mobilenet_v2"]
    tl.unfreeze(model, train_bn=False)  # weights train, running statistics stay
    model.train()
    bn = model.backbone.features[5].conv[0][1]
    before = bn.running_mean.clone()
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    assert torch.equal(bn.running_mean, before) and not bn.training
    assert bn.weight.requires_grad and bn.weight.grad is not None
    assert count(model, trainable=True) == count(model)
    assert {row[4] for row in tl.summary(model).rows} == {"frozen", "-"}
    model.zero_grad(set_to_none=True)
    tl.unfreeze(model)
    model.train()
    model(torch.randn(4, 3, 32, 32))
    assert bn.training and not torch.equal(bn.running_mean, before)


def test_unfrozen_batchnorm_trains_normally(models):
    model = models["resnet18"]
    tl.freeze(model)
    tl.unfreeze(model)
    model.train()
    bn = model.backbone.bn1
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    assert bn.training and not torch.equal(bn.running_mean, before)


def test_head_sizes_and_split(models):
    assert count(tl.make_head(2048, 10, hidden=256)) == 527_114  # the seed tutorial's head, counted
    assert count(tl.make_head(1280, 6)) == 1280 * 6 + 6
    x = torch.randn(2, 3, 64, 64)
    for name, dim in [("mobilenet_v2", 1280), ("efficientnet_lite0", 1280), ("resnet50", 2048)]:
        model = models[name].eval()
        assert model.num_features == dim
        assert model.backbone(x).shape == (2, dim)
        assert model(x).shape == (2, 6) and model.num_classes == 6
    with pytest.raises(ValueError, match="at least 2"):
        tl.make_head(10, 1)


def test_text_classifier_mean_pools_and_drops_the_unused_pooler():
    model, tokenizer = tl.build_text_classifier("minilm", 3, hidden=64)
    assert model.backbone.bert.pooler is None
    assert count(model.backbone) == 22_713_216 - (384 * 384 + 384)
    batch = dict(tokenizer(["a short one", "a somewhat longer sentence here"], padding=True, return_tensors="pt"))
    assert model.eval()(batch).shape == (2, 3)


def test_replace_head_on_a_loaded_model():
    net, _ = tl.load_model("efficientnet_lite0", pretrained=False)
    model = tl.replace_head(net, 4, dropout=0.1)
    assert model.num_classes == 4 and model.num_features == 1280
    with pytest.raises(TypeError, match="Don't know where the classifier"):
        tl.replace_head(nn.Sequential(nn.Linear(3, 3)), 2)


def test_adapt_batchnorm_averages_only_the_statistics_that_will_update():
    """AdaBN: the last block's statistics become the data's plain mean and variance; frozen blocks,
    weights, modes and momenta are untouched, and no random numbers are drawn (the head's dropout)."""
    torch.manual_seed(0)
    model, _ = tl.build_classifier("mobilenet_v2", 3, pretrained=False)
    tl.freeze_all_but_last(model, 2)                       # features.18 and the head train
    model.train()
    frozen_bn, last_bn = model.backbone.features[0][1], model.backbone.features[18][1]
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    frozen_before = frozen_bn.running_mean.clone()
    x = torch.randn(12, 3, 32, 32) * 3 + 1
    from helpers import LabelledTensors

    loader = tl.make_loader(LabelledTensors(x, torch.arange(12) % 3, 3), 4)   # 3 batches of 4
    rng, modes = torch.get_rng_state(), [m.training for m in model.modules()]
    tl.adapt_batchnorm(model, loader)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(frozen_bn.running_mean, frozen_before)
    assert [m.training for m in model.modules()] == modes                 # every module's own mode back
    with torch.no_grad():                                   # the last block's input, on all 12 images
        inputs = model.backbone.features[:18].eval()(x)
        conv_out = model.backbone.features[18][0](inputs)
    batch_means = conv_out.reshape(3, 4, *conv_out.shape[1:]).mean(dim=(1, 3, 4))   # per batch, per channel
    assert torch.allclose(last_bn.running_mean, batch_means.mean(0), atol=1e-5)        # a plain average
    assert last_bn.momentum == 0.1 and int(last_bn.num_batches_tracked) == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    with pytest.raises(ValueError, match="no batches"):
        tl.adapt_batchnorm(model, [])
