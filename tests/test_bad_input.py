"""Bad input: each case raises one clear error that says what to do (or, for odd images, works).

Nothing is lost: a failed call leaves the model and the History as they were.
"""

from __future__ import annotations

import copy
import time

import pytest
import torch
from PIL import Image

import transferlib as tl
from helpers import TinyNet, blobs


def make_folder(root, classes=("cat", "dog"), modes=("RGB",)):
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for mode in modes:
            Image.new(mode, (32, 32)).save(root / cls / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
    return root


def test_1_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no images in class sub-folders"):
        tl.load_image_folder(tmp_path)


def test_2_folder_with_one_class(tmp_path):
    with pytest.raises(ValueError, match="one class only \\('cat'\\).*add a sub-folder per class"):
        tl.load_image_folder(make_folder(tmp_path, classes=("cat",)))


def test_3_corrupt_image_is_named(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "dog" / "zz_broken.png").write_bytes(b"\x89PNG not really")
    photos = tl.load_image_folder(tmp_path)
    with pytest.raises(OSError, match="zz_broken.png.*Delete or replace"):
        photos[len(photos) - 1]


def test_4_grey_rgba_and_cmyk_images_work(tmp_path):
    _, weights = tl.load_model("mobilenet_v2", pretrained=False)
    photos = tl.load_image_folder(make_folder(tmp_path, modes=("L", "RGBA", "CMYK")),
                                  transform=tl.image_transform(weights, size=32))
    assert len(photos) == 6
    assert all(photos[i][0].shape == (3, 32, 32) for i in range(6))


def test_5_head_size_differs_from_the_data():
    model = TinyNet(num_classes=4)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="4 outputs but the training data has 3 classes.*num_classes=3"):
        tl.fit(model, tl.make_loader(blobs()), epochs=1, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_6_labels_out_of_range():
    data = blobs()
    data.targets[0] = 5
    with pytest.raises(ValueError, match="label 5, outside 0..2.*class indices"):
        tl.fit(TinyNet(), tl.make_loader(data), epochs=1, progress=False)


def test_7_empty_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine,1\n   ,0\n")
    with pytest.raises(ValueError, match="line 3: the text is empty"):
        tl.load_text_csv(path)
    _, tokenizer = tl.load_text_model("minilm")
    texts = tl.TextDataset(["ok", ""], [0, 1], ["a", "b"], tl.DatasetInfo("x", "", "", ""))
    with pytest.raises(ValueError, match="empty text"):
        next(iter(tl.text_loader(texts, tokenizer)))


def test_8_long_text_is_truncated_and_said_once(capsys):
    from transferlib import text

    text._TRUNCATION_SAID.clear()
    _, tokenizer = tl.load_text_model("minilm")
    long = "word " * 700
    texts = tl.TextDataset([long, "short", long, long], [0, 1, 0, 1], ["a", "b"], tl.DatasetInfo("x", "", "", ""))
    batches = list(tl.text_loader(texts, tokenizer, batch_size=2))
    assert all(b["input_ids"].shape[1] <= 512 for b, _ in batches)
    out = capsys.readouterr().out
    assert out.count("longer than 512 tokens (the model's limit)") == 1 and "1 of the 2 texts in this batch" in out
    list(tl.text_loader(texts, tokenizer, batch_size=2))  # another loader, same limit: not said again
    assert "longer than" not in capsys.readouterr().out
    list(tl.text_loader(texts, tokenizer, batch_size=2, max_length=64))  # a limit the learner chose
    assert "longer than 64 tokens (max_length)" in capsys.readouterr().out


def test_9_unknown_model_name():
    with pytest.raises(ValueError, match="Unknown model 'resnet51'. Did you mean 'resnet50'"):
        tl.build_classifier("resnet51", 3)


def test_10_online_only_model_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(tl.OfflineError, match="offline model instead: mobilenet_v2"):
        tl.build_classifier("resnet18", 3)
    assert time.perf_counter() - start < 1.0


def test_11_csv_with_a_missing_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("sentence,label\nfine,1\n")
    with pytest.raises(ValueError, match="no column 'text'. Its columns are: sentence, label. Pass text_column="):
        tl.load_text_csv(path)


def test_12_checkpoint_from_another_architecture(tmp_path):
    path = tl.save_checkpoint(tmp_path / "tiny.safetensors", TinyNet(num_classes=3))
    other = TinyNet(num_classes=5)
    before = copy.deepcopy(other.state_dict())
    with pytest.raises(ValueError, match="different architecture.*fc.bias.*Build the same model"):
        tl.load_checkpoint(path, other)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())
    (tmp_path / "plain.safetensors").write_bytes(b"")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not a transferlib checkpoint"):
        tl.load_checkpoint(tmp_path / "plain.safetensors", other)


def test_failed_fit_keeps_history():
    model = TinyNet()
    history = tl.fit(model, tl.make_loader(blobs()), epochs=1, progress=False)
    snapshot = copy.deepcopy(history)
    with pytest.raises(ValueError):
        tl.fit(TinyNet(num_classes=5), tl.make_loader(blobs()), epochs=1, history=history, progress=False)
    assert history == snapshot
