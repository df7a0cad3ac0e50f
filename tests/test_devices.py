"""Data follows the model: every entry point runs where the model is, moves nothing, returns CPU results.

Each test runs on every device this machine has (the CPU everywhere; CUDA or MPS where present).
A spy on every submodule's ``_apply`` (what ``.to()``, ``.cuda()``, ``.cpu()`` and ``.float()`` call)
fails the test if the library moves or casts a model; a forward that checks its input's device fails
it if a batch was left behind.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import transferlib as tl
from helpers import LabelledTensors, TinyNet, blobs

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + \
    (["mps"] if torch.backends.mps.is_available() else [])


class Moved(AssertionError):
    pass


def pinned(model: nn.Module) -> nn.Module:
    """``model``, made to raise if anything calls ``.to()`` / ``.cuda()`` / ``.cpu()`` / ``.float()`` on it."""
    for module in model.modules():
        module._apply = lambda *args, module=module, **kwargs: (_ for _ in ()).throw(
            Moved(f"the library moved or cast {type(module).__name__}"))
    return model


class Checked(nn.Module):
    """Wraps a model; its forward fails unless the input is on the model's device."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        assert x.device == tl.device_of(self), f"input on {x.device}, model on {tl.device_of(self)}"
        return self.inner(x)


@pytest.fixture(params=DEVICES)
def device(request):
    return tl.pick_device(request.param)


def tiny(device, num_classes=3):
    torch.manual_seed(0)
    return pinned(Checked(TinyNet(num_classes=num_classes)).to(device))


def loader(n=48):
    return tl.make_loader(blobs(n), 16, shuffle=True)


def test_fit_evaluate_and_recipes_run_where_the_model_is(device, tmp_path):
    model = tiny(device)
    history = tl.fit(model, loader(), loader(), epochs=2, lr=1e-2, checkpoint=tmp_path / "c.pt", progress=False)
    assert all(isinstance(v, float) for v in history.train_loss + history.val_acc)
    history = tl.fit(model, loader(), loader(), epochs=3, lr=1e-2, checkpoint=tmp_path / "c.pt", resume=True,
                     progress=False)
    assert len(history) == 3
    result = tl.evaluate(model, loader())
    assert isinstance(result.y_true, type(result.y_pred)) and result.probs.shape == (48, 3)
    assert tl.lr_find(model, loader(), num_steps=8, progress=False).suggestion > 0
    tl.load_checkpoint(tmp_path / "c.pt", model)
    assert tl.device_of(model).type == device.type


def test_gradual_unfreeze_and_lp_ft_run_where_the_model_is(device):
    torch.manual_seed(0)
    model = pinned(tl.build_classifier("mobilenet_v2", 3, pretrained=False)[0].to(device))
    data = tl.make_loader(LabelledTensors(torch.randn(16, 3, 32, 32), torch.arange(16) % 3, 3), 8)
    tl.gradual_unfreeze(model, data, None, stages=2, progress=False)
    tl.lp_ft(model, data, None, probe_epochs=1, finetune_epochs=1, progress=False)
    assert tl.device_of(model).type == device.type


def test_features_and_probes_come_back_on_the_cpu(device, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = pinned(tl.build_classifier("mobilenet_v2", 3, pretrained=False)[0].to(device))
    data = LabelledTensors(torch.randn(12, 3, 32, 32), torch.arange(12) % 3, 3)
    feats, labels = tl.extract_features(model.backbone, data, progress=False)
    cached, _ = tl.cached_features(model.backbone, data, key="devices", progress=False)
    acts, _ = tl.activations(model, ["backbone.features.3"], data, progress=False)
    for tensor in (feats, labels, cached, acts["backbone.features.3"]):
        assert tensor.device.type == "cpu"
    tensor_acts, _ = tl.activations(model, ["backbone.features.3"], torch.randn(2, 3, 32, 32), progress=False)
    assert tensor_acts["backbone.features.3"].device.type == "cpu"
    scores = tl.probe_by_depth(model, ["backbone.features.3"], data, data, progress=False)
    assert set(scores) == {"backbone.features.3"}


def test_text_features_follow_the_encoder(device):
    model, tokenizer = tl.build_text_classifier("minilm", 2)
    pinned(model.to(device))
    texts = tl.TextDataset(["good", "bad", "fine", "awful"], [1, 0, 1, 0], ["neg", "pos"],
                           tl.DatasetInfo("toy", "", "", ""))
    feats, _ = tl.extract_features(model.backbone, texts, tokenizer=tokenizer, progress=False)
    assert feats.shape == (4, 384) and feats.device.type == "cpu"
    assert tl.evaluate(model, tl.text_loader(texts, tokenizer)).accuracy >= 0


def test_the_training_panel_trains_where_the_model_is(device):
    model = tiny(device)
    panel = tl.TrainPanel(model, loader(), loader(), epochs=1, threaded=False)
    panel.start()
    assert panel.runs and "failed" not in panel.status.value


def test_a_device_that_is_not_there_is_named():
    with pytest.raises(ValueError, match="'tpu'"):
        tl.pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda:3"):
            tl.pick_device("cuda:3")


def test_every_submodule_keeps_its_own_mode():
    """A pretrained encoder in eval mode inside a new wrapper in train mode (build_text_classifier's
    model): after evaluate, extract_features, activations and lr_find it is still in eval mode, so a
    forward pass written by hand afterwards has no dropout. (model.train(was_training) switched it.)"""
    model, tokenizer = tl.build_text_classifier("minilm", 2)
    texts = tl.TextDataset(["good", "bad", "fine", "awful"], [1, 0, 1, 0], ["neg", "pos"],
                           tl.DatasetInfo("toy", "", "", ""))
    loader = tl.text_loader(texts, tokenizer, 2)
    modes = {name: m.training for name, m in model.named_modules()}
    assert modes[""] and not modes["backbone.bert"]          # mixed, as built
    tl.evaluate(model, loader)
    tl.extract_features(model.backbone, loader, progress=False)
    tl.activations(model, ["backbone.bert.encoder.layer.0"], loader, progress=False)
    tl.lr_find(model, loader, num_steps=3, progress=False)
    assert {name: m.training for name, m in model.named_modules()} == modes
    with tl.devices.mode(model, training=False):
        assert not any(m.training for m in model.modules())
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_peak_memory_measures_what_a_block_holds():
    tl.devices.release_memory()
    with tl.PeakMemory() as peak:
        held = torch.ones(256 * 2**20 // 4)   # 256 MB: above glibc's mmap threshold, so fresh pages
        del held
    assert 200 <= peak.mb < 1024, peak.mb
    with tl.PeakMemory() as idle:
        pass
    assert idle.mb < 32


def test_image_batches_come_channels_last_on_the_cpu_with_the_same_numbers():
    images = torch.randn(6, 3, 8, 8)
    data = tl.make_loader(torch.utils.data.TensorDataset(images, torch.zeros(6, dtype=torch.long)), 3)
    got = [x for x, _ in tl.devices.batches(data, torch.device("cpu"), progress=False)]
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in got)
    assert torch.equal(torch.cat(got), images)                      # a layout, not a change of values
    conv = nn.Conv2d(3, 4, 3).eval()                                  # the model keeps its own layout
    torch.testing.assert_close(conv(got[0]), conv(images[:3]), rtol=1e-5, atol=1e-6)
    assert conv.weight.is_contiguous()
    flat = tl.make_loader(torch.utils.data.TensorDataset(torch.randn(4, 5), torch.zeros(4)), 2)
    assert all(x.is_contiguous() for x, _ in tl.devices.batches(flat, progress=False))   # not images: as given
