"""The freeze and training panels, driven at the Python level: toggles, slider, clicks."""

from __future__ import annotations

import html
import re

import matplotlib
import pytest
import torch

import transferlib as tl
from helpers import LabelledTensors
from transferlib.freezing import bn_is_frozen
from transferlib.widgets import FreezePanel, TrainPanel

matplotlib.use("Agg")


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def shown(panel: FreezePanel) -> int:
    return int(re.search(r"Trainable: ([\d,]+)", panel.totals.value).group(1).replace(",", ""))


@pytest.fixture
def model():
    model, _ = tl.build_classifier("mobilenet_v2", 3, pretrained=False)
    return tl.freeze_all_but_last(model, 1)


def test_panel_mirrors_the_model(model):
    panel = FreezePanel(model)
    assert len(panel.toggles) == 20 and panel.slider.value == 1
    assert [t.value for t in panel.toggles] == [False] * 19 + [True]
    assert shown(panel) == trainable(model) == 1280 * 3 + 3
    assert panel.counts[-1].value == "<code>3,843 / 3,843</code>"


@pytest.mark.parametrize("name", ["efficientnet_lite0", "minilm"])
def test_panel_works_for_every_supported_backbone(name):
    if name == "minilm":
        model, _ = tl.build_text_classifier("minilm", 2)
    else:
        model, _ = tl.build_classifier(name, 3, pretrained=False)
    panel = FreezePanel(model)
    assert [t.description for t in panel.toggles] == [b.name for b in tl.blocks(model)]
    panel.slider.value = 3
    assert shown(panel) == trainable(model) == tl.summary(model).trainable
    panel.slider.value = 0
    assert shown(panel) == trainable(model) == 0


def test_toggle_applies_to_the_model_and_the_counts(model):
    panel = FreezePanel(model)
    panel.toggles[-2].value = True  # features.18 trains
    assert model.backbone.features[18][0].weight.requires_grad
    assert shown(panel) == trainable(model) == 3843 + sum(p.numel() for p in model.backbone.features[18].parameters())
    assert panel.slider.value == 2
    panel.toggles[-1].value = False  # freeze the head: the slider counts from the top, so 0
    assert not model.head[1].weight.requires_grad and panel.slider.value == 0
    assert shown(panel) == trainable(model)


def test_slider_unfreezes_the_last_k_blocks(model):
    panel = FreezePanel(model)
    panel.slider.value = 4
    assert panel.state() == ["backbone.features.16", "backbone.features.17", "backbone.features.18", "head"]
    assert [t.value for t in panel.toggles][-5:] == [False, True, True, True, True]
    assert shown(panel) == trainable(model) == tl.summary(model).trainable
    panel.slider.value = 20
    assert shown(panel) == trainable(model) == sum(p.numel() for p in model.parameters())


def test_batchnorm_toggle_switches_the_policy(model):
    panel = FreezePanel(model)
    bn = model.backbone.features[0][1]
    assert bn_is_frozen(bn)
    panel.train_bn.value = True
    assert not bn_is_frozen(bn)
    model.train()
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    assert not torch.equal(before, bn.running_mean)
    panel.train_bn.value = False
    assert bn_is_frozen(bn)


def test_text_fallback_and_widget_bundle(model):
    panel = FreezePanel(model)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "Trainable params:" in bundle["text/plain"] == str(panel)
    # the static fallback for a website or GitHub: the same summary, escaped, in HTML
    assert "Run the notebook for its controls" in bundle["text/html"]
    assert html.escape(str(panel)) in bundle["text/html"]
    assert "<pre>" in TrainPanel(model, data())._repr_mimebundle_()["text/html"]


def data(n=24, size=32):
    x = torch.randn(n, 3, size, size)
    y = torch.arange(n) % 3
    return tl.make_loader(LabelledTensors(x, y, 3), 8, shuffle=True)


def test_train_click_trains_and_records_a_run(model):
    freeze = FreezePanel(model)
    freeze.slider.value = 2
    panel = TrainPanel(model, data(), data(), freeze_panel=freeze, epochs=2, threaded=False)
    head_before = model.head[1].weight.clone()
    panel.train_button.click()
    assert len(panel.runs) == 1
    run = panel.runs[0]
    assert run["trainable blocks"] == 2 and run["trainable params"] == freeze.trainable and run["epochs"] == 2
    assert run["lr"] == pytest.approx(1e-3)
    assert not torch.equal(head_before, model.head[1].weight)
    assert "<td>" in panel.table.value and "run 1" in panel.status.value
    assert not panel.train_button.disabled and panel.stop_button.disabled
    assert not freeze.slider.disabled
    assert len(panel.plot.outputs) == 1  # the live plot of the last epoch


def test_threaded_training_disables_the_button_and_stop_keeps_the_best(model):
    freeze = FreezePanel(model)
    panel = TrainPanel(model, data(n=96), data(), freeze_panel=freeze, epochs=50, threaded=True)
    panel.train_button.click()
    assert panel.train_button.disabled and freeze.slider.disabled
    panel.train_button.click()  # a second click while training does nothing
    while panel.history is None and not panel.runs and panel._thread.is_alive() and not panel.plot.outputs:
        panel._thread.join(0.05)
    panel.stop_button.click()
    panel.wait(60)
    assert len(panel.runs) == 1 and panel.runs[0]["stopped"] and panel.runs[0]["epochs"] < 50
    assert "best weights kept" in panel.status.value
    assert not panel.train_button.disabled


def test_errors_show_in_the_panel(model):
    tl.freeze(model)  # nothing left to train
    panel = TrainPanel(model, data(), threaded=False)
    panel.train_button.click()
    assert "Training failed" in panel.status.value and "nothing to train" in panel.status.value
    assert not panel.train_button.disabled and panel.runs == []
    assert "No runs yet" in str(panel) and "nothing trainable" in str(panel)


def test_the_snapshot_says_what_train_would_do_and_lists_the_runs(model):
    freeze = FreezePanel(model)
    freeze.slider.value = 2
    panel = TrainPanel(model, data(), data(n=12), freeze_panel=freeze, lr=3e-4, epochs=1, threaded=False,
                       schedule="onecycle")
    before = str(panel)
    assert f"2 of {len(tl.blocks(model))} blocks" in before and f"{freeze.trainable:,} trainable" in before
    assert "3e-04 (onecycle), 1 epochs" in before and "24 training items, scored on 12 validation" in before
    assert "No runs yet" in before and "run 1" not in before
    panel.train_button.click()
    after = str(panel)
    assert "No runs yet" not in after and "run 1: 2 blocks, " in after
    assert f"{freeze.trainable:,} params, lr 3e-04, 1 epochs" in after
    assert max(len(line) for line in before.splitlines() + after.splitlines()) <= 88


def test_panel_without_validation_and_stop_in_the_first_epoch(model):
    panel = TrainPanel(model, data(), None, epochs=1, threaded=False)
    panel.train_button.click()
    assert panel.runs[0]["best accuracy"] == pytest.approx(panel.history.train_acc[0], abs=1e-3)
    assert "best accuracy" in panel.status.value and "nan" not in panel.status.value

    stopping = TrainPanel(model, data(), None, epochs=3, threaded=False)
    stopping._stop.is_set = lambda: True  # Stop already pressed: the first batch ends the run
    stopping.start()
    assert stopping.runs == [] and "before the first epoch ended" in stopping.status.value
    assert not stopping.train_button.disabled
