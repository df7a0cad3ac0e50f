"""Bad input: each case raises one clear error that says what to do (or, for odd images, works).

Nothing is lost: a failed call leaves the model and the History as they were.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

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


# --------------------------------------------------------------------------- image folders as they come

def _png(path, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 8)).save(path, format="PNG")


def test_hidden_and_macosx_folders_are_skipped_with_a_note(tmp_path, capsys):
    make_folder(tmp_path)
    (tmp_path / "__MACOSX" / "cat").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "cat" / "._RGB.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "cat" / "._RGB.png").write_bytes(b"\x00\x05\x16\x07")
    photos = tl.load_image_folder(tmp_path)
    assert photos.classes == ["cat", "dog"] and len(photos) == 2
    note = capsys.readouterr().out
    assert "skipped 2 folders that are not classes (.ipynb_checkpoints, __MACOSX), 2 hidden files" in note
    (tmp_path / "cat" / "RGB.png").unlink()  # a class left with only junk: named, not "holds no images" for all
    with pytest.raises(FileNotFoundError, match="the class folder cat holds no images PIL can read"):
        tl.load_image_folder(tmp_path)


def test_split_folders_are_not_read_as_classes(tmp_path):
    for split in ("train", "val"):
        make_folder(tmp_path / split)
    with pytest.raises(ValueError, match=r"holds split folders \(train, val\), not classes.*load_image_folder\("):
        tl.load_image_folder(tmp_path)
    assert tl.load_image_folder(tmp_path / "train").classes == ["cat", "dog"]


def test_readable_images_outside_torchvisions_extensions_count(tmp_path, capsys):
    make_folder(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "phone.JFIF", format="JPEG")
    Image.new("P", (8, 8)).save(tmp_path / "dog" / "anim.gif")
    (tmp_path / "dog" / "notes.txt").write_text("not a photo")
    (tmp_path / "dog" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    photos = tl.load_image_folder(tmp_path)
    assert len(photos) == 4 and sorted(Path(p).name for p, _ in photos.samples)[:2] == ["RGB.png", "RGB.png"]
    note = capsys.readouterr().out
    assert "1 .txt files" in note and "1 .heic files" in note and "convert .heic photos to JPEG" in note


def test_a_symlink_loop_reads_each_image_once(tmp_path, capsys):
    make_folder(tmp_path)
    (tmp_path / "cat" / "again").symlink_to(tmp_path / "cat", target_is_directory=True)
    (tmp_path / "dog" / "same.png").symlink_to(tmp_path / "dog" / "RGB.png")
    photos = tl.load_image_folder(tmp_path)
    assert len(photos) == 2
    note = capsys.readouterr().out
    assert "1 links to a folder already read" in note and "1 second links to the same image" in note


def test_a_zip_file_or_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "photos.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(FileNotFoundError, match="photos.zip is a file, not a folder.*unzip it first"):
        tl.load_image_folder(tmp_path / "photos.zip")


# --------------------------------------------------------------------------- CSV files as spreadsheets write them

def _csv(tmp_path, data: bytes):
    path = tmp_path / "sheet.csv"
    path.write_bytes(data)
    return path


def test_excel_bom_and_semicolons_are_detected(tmp_path):
    path = _csv(tmp_path, "\ufefftext;label\nsuper, vraiment;pos\nnul;neg\n".encode())
    data = tl.load_text_csv(path)
    assert data.texts == ["super, vraiment", "nul"] and data.classes == ["neg", "pos"]
    tabs = _csv(tmp_path, b"text\tlabel\na\tx\nb\ty\n")
    assert tl.load_text_csv(tabs).classes == ["x", "y"]


def test_latin1_bytes_are_read_with_a_note(tmp_path, capsys):
    path = _csv(tmp_path, "text,label\ncafé crème,pos\nbof,neg\n".encode("latin-1"))
    assert tl.load_text_csv(path).texts[0] == "café crème"
    assert "sheet.csv is not UTF-8 (line 2 has the byte 0xe9); read it as cp1252" in capsys.readouterr().out


def test_empty_files_and_rows_without_a_label(tmp_path):
    with pytest.raises(ValueError, match="sheet.csv is empty. Export the sheet again with a header row"):
        tl.load_text_csv(_csv(tmp_path, b"\xef\xbb\xbf\r\n"))
    with pytest.raises(ValueError, match="has a header but no rows"):
        tl.load_text_csv(_csv(tmp_path, b"text,label\n,,\n"))
    path = _csv(tmp_path, b"text,label\ngood,pos\nmissing,\nblank, \nnan,NaN\nshort\nbad,neg\n")
    with pytest.raises(ValueError, match=r"sheet.csv, line 3, 4, 5, 6: no label \(blank, NaN or NA\)"):
        tl.load_text_csv(path)


def test_padded_labels_are_one_class_and_numbers_sort_as_numbers(tmp_path):
    data = tl.load_text_csv(_csv(tmp_path, b"text,label\na, pos\nb,pos \nc,neg\n"))
    assert data.classes == ["neg", "pos"] and data.targets == [1, 1, 0]
    stars = tl.load_text_csv(_csv(tmp_path, b"text,label\na,10\nb,2\nc,1\n"))
    assert stars.classes == ["1", "2", "10"] and stars.targets == [2, 1, 0]


def test_a_one_class_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="every row has the label 'pos'. A classifier needs at least two"):
        tl.load_text_csv(_csv(tmp_path, b"text,label\na,pos\nb,pos\n"))


# --------------------------------------------------------------------------- fit and its inputs

class Dicts(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"x": torch.zeros(16), "label": i % 3}


class Items(torch.utils.data.Dataset):
    def __init__(self, label):
        self.label = label

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.randn(16)
        return x if self.label is None else (x, self.label(i))


class Maps(nn.Module):  # logits of the wrong shape: (N, 3, 4) instead of (N, 3)
    def __init__(self):
        super().__init__()
        self.fc, self.num_classes = nn.Linear(16, 12), 3

    def forward(self, x):
        return self.fc(x).view(-1, 3, 4)


def unchanged(model, before):
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("loader, error, message", [
    (blobs(), TypeError, "The training data is a Dataset, not a loader of batches. Wrap it: make_loader"),
    (tl.make_loader(blobs(n=0), 8), ValueError, r"The training loader has no batches \(its dataset holds 0 items\)"),
    (tl.make_loader(Dicts(), 4), TypeError, r"Each batch must be \(inputs, labels\); this loader gives a dict "
                                            r"\(keys x, label\)"),
    (tl.make_loader(Items(None), 4), TypeError, r"gives one tensor of shape \(4, 16\), with no labels"),
    (tl.make_loader(Items(lambda i: float(i % 3)), 4), TypeError, "The training labels are torch.float64 "
                                                                  r"\(0, 1, 2...\).*integer class indices"),
    (tl.make_loader(Items(lambda i: "cat"), 4), TypeError, "The training labels are strings \\('cat'"),
], ids=["dataset", "empty", "dicts", "no labels", "float labels", "string labels"])
def test_fit_refuses_what_is_not_a_loader_of_labelled_batches(loader, error, message):
    model = TinyNet()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(error, match=message):
        tl.fit(model, loader, epochs=1, progress=False)
    assert unchanged(model, before) and model.training


def test_logits_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"logits of shape \(8, 3, 4\) for a training batch of 8 labels"):
        tl.fit(Maps(), tl.make_loader(blobs(n=16), 8), epochs=1, progress=False)


def test_an_optimizer_of_another_model_is_refused():
    model, other = TinyNet(), TinyNet()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="none of them a trainable parameter of this TinyNet.*make_optimizer"):
        tl.fit(model, tl.make_loader(blobs()), epochs=1, optimizer=tl.make_optimizer(other), progress=False)
    assert unchanged(model, before)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be a whole number >= 1"), ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"patience": 0}, "patience=0 would stop right after an improvement"), ({"lr": -1e-3}, "lr must be positive"),
])
def test_fit_refuses_numbers_that_cannot_mean_anything(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("lr must be positive", "lr must be a positive number")):
        tl.fit(TinyNet(), tl.make_loader(blobs()), **{"epochs": 1, **kwargs}, progress=False)


class Blows(TinyNet):  # its logits become NaN from its `after`-th training batch on
    def __init__(self, after):
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, x):
        out = super().forward(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                out = out * float("nan")
        return out


def test_a_divergent_loss_stops_and_keeps_the_last_finite_best(capsys):
    torch.manual_seed(0)
    train, val = tl.make_loader(blobs(), 40, shuffle=True), tl.make_loader(blobs(60, seed=1), 60)
    model, kept = Blows(after=3), {}  # 3 batches per epoch: epoch 2 is NaN
    history = tl.fit(model, train, val, epochs=4, progress=False,
                     on_epoch=lambda h: kept.update(copy.deepcopy(model.state_dict())))
    assert history.diverged == 2 and history.epoch == [1] and history.best_epoch == 1
    assert unchanged(model, kept) and all(torch.isfinite(v).all() for v in model.state_dict().values())
    out = capsys.readouterr().out
    assert "Epoch 2: the training loss became nan at learning rate 0.001; training stopped and the model is back " \
           "to the best weights (epoch 1)" in out and "10 times lower" in out
    start = Blows(after=0)
    before = copy.deepcopy(start.state_dict())
    history = tl.fit(start, train, epochs=2, progress=False)  # no validation: NaN is never "the best"
    assert history.diverged == 1 and not history.epoch and unchanged(start, {**before, **{
        k: v for k, v in start.state_dict().items() if "num_batches_tracked" in k}})
    assert "back to its starting weights" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_device_that_is_not_there():
    with pytest.raises(ValueError, match="DEVICE = 'cuda', but .*Use 'cpu', or 'auto'"):
        tl.pick_device("cuda")


# --------------------------------------------------------------------------- checkpoints

def test_damaged_renamed_and_folder_checkpoints(tmp_path):
    import pickle

    model = TinyNet()
    good = tl.save_checkpoint(tmp_path / "run.pt", model)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="cut.pt is not a transferlib checkpoint, or it is damaged"):
        tl.load_checkpoint(tmp_path / "cut.pt", model)
    (tmp_path / "code.safetensors").write_bytes(pickle.dumps(Path("anything")))  # a pickle, renamed
    with pytest.raises(ValueError, match="code.safetensors is not a transferlib checkpoint, or it is damaged"):
        tl.load_checkpoint(tmp_path / "code.safetensors", model)
    with pytest.raises(IsADirectoryError, match="is a folder, not a checkpoint file"):
        tl.load_checkpoint(tmp_path, model)
    renamed = tl.save_checkpoint(tmp_path / "run.safetensors", model)  # our own file under that name still loads
    tl.load_checkpoint(renamed, TinyNet())


def test_resume_under_another_freeze_state(tmp_path):
    train = tl.make_loader(blobs(), 40)
    path = tmp_path / "run.pt"
    tl.fit(TinyNet(), train, epochs=1, checkpoint=path, progress=False)
    model = tl.freeze(TinyNet(), "body")
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="saved while other parameters were trainable.*Freeze and unfreeze the same"):
        tl.fit(model, train, epochs=2, checkpoint=path, resume=True, progress=False)
    assert unchanged(model, before)


# --------------------------------------------------------------------------- state after a failure

def test_evaluate_and_extract_features_restore_the_mode_when_they_raise():
    model = TinyNet().train()
    data = blobs()
    data.targets = data.tensors[1].tolist()
    bad = tl.make_loader(torch.utils.data.TensorDataset(data.tensors[0], data.tensors[1] + 7), 40)
    with pytest.raises(ValueError, match="label 7"):
        tl.evaluate(model, bad)
    assert model.training
    with pytest.raises(TypeError, match="Each batch must be"):
        tl.extract_features(model, tl.make_loader(Dicts(), 4), progress=False)
    assert model.training


def test_freeze_helpers_validate_before_touching_anything():
    model = tl.freeze_all_but_last(TinyNet(), 1)
    grads = [p.requires_grad for p in model.parameters()]
    for k in (2.5, "2", -1, True):
        with pytest.raises(ValueError, match=f"k must be between 0 and .*not {k!r}"):
            tl.freeze_all_but_last(model, k)
        assert [p.requires_grad for p in model.parameters()] == grads
    fresh = TinyNet()
    for names in ("", [""], []):
        with pytest.raises(ValueError, match="an empty name is the whole model"):
            tl.freeze(fresh, names)
    assert all(p.requires_grad for p in fresh.parameters())


# --------------------------------------------------------------------------- elsewhere

def test_smallcnn_says_which_images_it_was_built_for():
    grey = tl.SmallCNN(1, 3, 28)
    with pytest.raises(ValueError, match=r"built for 1-channel \(grey\) images.*shape \(2, 3, 28, 28\).*in_channels=3"):
        grey(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="built for 28 px images; it got 32x32.*image_transform\\(None, size=28\\)"):
        grey(torch.zeros(2, 1, 32, 32))


def test_strategy_helpers_refuse_no_labels_and_similarities_outside_0_1():
    with pytest.raises(ValueError, match="labels_per_class"):
        tl.recommend_strategy(0, similarity=0.5)
    with pytest.raises(ValueError, match="similarity"):
        tl.recommend_strategy(10, similarity=1.5)


class Bag(nn.Module):  # a text model with its own 100-token vocabulary
    def __init__(self):
        super().__init__()
        self.embed, self.fc = nn.Embedding(100, 8), nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.fc(self.embed(input_ids).mean(1))


def test_a_tokenizer_from_another_model():
    _, tokenizer = tl.load_text_model("minilm")
    texts = tl.TextDataset(["good", "bad"], [0, 1], ["neg", "pos"], tl.DatasetInfo("x", "", "", ""))
    model = Bag()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="tokenizer .* has 30522 tokens but the model's embedding has 100: the "
                                         "tokenizer belongs to another model"):
        tl.fit(model, tl.text_loader(texts, tokenizer), epochs=1, progress=False)
    assert unchanged(model, before)
