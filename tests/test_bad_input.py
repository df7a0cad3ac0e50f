"""Bad input: each case raises one clear error that says what to do (or, for odd images, works).

Nothing is lost: a failed call leaves the model and the History as they were.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import transferlib as tl
from helpers import TinyNet, blobs, no_network


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
    assert out.count("longer than 512 tokens (the model's limit)") == 1
    assert "1 of the 2 texts in this batch is longer" in out and "and is truncated" in out
    list(tl.text_loader(texts, tokenizer, batch_size=2))  # another loader, same limit: not said again
    assert "longer than" not in capsys.readouterr().out
    list(tl.text_loader(texts, tokenizer, batch_size=2, max_length=64))  # a limit the learner chose
    assert "longer than 64 tokens (max_length)" in capsys.readouterr().out


def test_9_unknown_model_name():
    with pytest.raises(ValueError, match="Unknown model 'resnet51'. Did you mean 'resnet50'"):
        tl.build_classifier("resnet51", 3)


def test_10_online_only_model_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    attempts = no_network(monkeypatch)
    with pytest.raises(tl.OfflineError, match="offline model instead: mobilenet_v2"):
        tl.build_classifier("resnet18", 3)
    assert len(attempts) <= 1, f"it tried the network {len(attempts)} times before failing: {attempts}"


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


def test_one_skipped_folder_is_said_in_the_singular(tmp_path, capsys):
    make_folder(tmp_path)
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    tl.load_image_folder(tmp_path)
    assert "skipped 1 folder that is not a class (__MACOSX), 1 hidden file." in capsys.readouterr().out


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
    assert "1 .txt file" in note and "1 .heic file" in note and "convert .heic photos to JPEG" in note
    assert "1 .txt files" not in note and "1 .heic files" not in note       # one file, singular


def test_a_symlink_loop_reads_each_image_once(tmp_path, capsys):
    make_folder(tmp_path)
    (tmp_path / "cat" / "again").symlink_to(tmp_path / "cat", target_is_directory=True)
    (tmp_path / "dog" / "same.png").symlink_to(tmp_path / "dog" / "RGB.png")
    photos = tl.load_image_folder(tmp_path)
    assert len(photos) == 2
    note = capsys.readouterr().out
    assert "1 link to a folder already read" in note and "1 second link to the same image" in note


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


# --------------------------------------------------------------------------- round 2 (issue #29), by category

def _upright_and_phone(root, orientation):
    """A course photo saved upright, and as a phone saves it: the pixels turned, an EXIF tag saying so."""
    from transferlib.transforms import ORIENTATION

    photo = tl.load_dataset("tuxpaint_photos")[12][0]  # "king penguin" at 0.998 upright, to MobileNetV2
    (root / "bird").mkdir(parents=True)
    photo.save(root / "bird" / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    stored = photo.transpose(Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270)
    stored.save(root / "bird" / "phone.jpg", quality=95, exif=exif)
    (root / "other").mkdir()
    stored.save(root / "other" / "sideways.jpg", quality=95)  # the pixels without the tag: what was read before
    return photo


@pytest.mark.parametrize("orientation", [6, 8])
def test_1_phone_photos_are_predicted_as_their_upright_versions(tmp_path, orientation):
    from transferlib.transforms import open_rgb

    photo = _upright_and_phone(tmp_path, orientation)
    net, weights = tl.load_model("mobilenet_v2")
    preprocess = tl.image_transform(weights)

    def probs(image):
        with torch.inference_mode():
            return net.eval()(preprocess(image)[None]).softmax(-1)[0]

    upright = probs(open_rgb(tmp_path / "bird" / "upright.jpg"))
    sideways = probs(open_rgb(tmp_path / "other" / "sideways.jpg"))
    assert upright.max() > 0.9 and sideways.argmax() != upright.argmax()  # the test can tell the two apart
    assert open_rgb(tmp_path / "bird" / "phone.jpg").size == photo.size                  # predict(path), training
    folder = tl.load_image_folder(tmp_path, transform=preprocess)                       # load_image_folder
    with Image.open(tmp_path / "bird" / "phone.jpg") as opened:                         # predict(Image.open(...))
        phone_pil = probs(opened)
    in_folder = folder[[Path(p).name for p, _ in folder.samples].index("phone.jpg")][0]
    with torch.inference_mode():
        from_folder = net(in_folder[None]).softmax(-1)[0]
    for phone in (probs(open_rgb(tmp_path / "bird" / "phone.jpg")), phone_pil, from_folder):
        assert phone.argmax() == upright.argmax() and (phone - upright).abs().max() < 0.01


def test_1_a_damaged_exif_block_keeps_the_photo_as_stored(tmp_path):
    from transferlib.transforms import open_rgb

    photo = Image.new("RGB", (40, 30), (200, 10, 10))
    photo.save(tmp_path / "edited.jpg", exif=b"Exif\x00\x00not a TIFF header")
    assert open_rgb(tmp_path / "edited.jpg").size == (40, 30)
    with Image.open(tmp_path / "edited.jpg") as opened:
        assert tl.image_transform(None, size=8)(opened).shape == (3, 8, 8)


def test_2_evaluate_and_the_feature_functions_check_their_loader_as_fit_does():
    data = blobs(n=120)
    data.targets, data.classes = data.tensors[1].tolist(), ["a", "b", "c"]
    model = TinyNet().train()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(TypeError, match="The evaluation data is a Dataset, not a loader of batches. Wrap it"):
        tl.evaluate(model, data)
    with pytest.raises(ValueError, match="The model has 4 outputs but the evaluation data has 3 classes"):
        tl.evaluate(TinyNet(num_classes=4), tl.make_loader(data, 40))
    with pytest.raises(ValueError, match=r"The evaluation loader has no batches \(its dataset holds 0 items\)"):
        tl.evaluate(model, tl.make_loader(blobs(n=0), 8))
    with pytest.raises(ValueError, match="2 class names for a model with 3 outputs"):
        tl.evaluate(model, tl.make_loader(data, 40), classes=["a", "b"])
    with pytest.raises(ValueError, match=r"The data loader has no batches \(its dataset holds 0 items\)"):
        tl.extract_features(model, blobs(n=0), progress=False)
    with pytest.raises(TypeError, match="The training data is a Dataset, not a loader"):
        tl.lr_find(model, data, progress=False)
    floats = tl.make_loader(torch.utils.data.TensorDataset(data.tensors[0], data.tensors[1].float()), 40)
    with pytest.raises(TypeError, match="The training labels are torch.float32"):
        tl.lr_find(model, floats, progress=False)
    sevens = tl.make_loader(torch.utils.data.TensorDataset(data.tensors[0], data.tensors[1] + 7), 40)
    with pytest.raises(ValueError, match="The training data has label 7, outside 0..2"):
        tl.lr_find(model, sevens, progress=False)
    assert unchanged(model, before) and model.training
    _, tokenizer = tl.load_text_model("minilm")
    texts = tl.TextDataset(["good", "bad"], [0, 1], ["neg", "pos"], tl.DatasetInfo("x", "", "", ""))
    with pytest.raises(ValueError, match="tokenizer .* has 30522 tokens but the model's embedding has 100"):
        tl.evaluate(Bag(), tl.text_loader(texts, tokenizer))


def test_2_source_similarity_names_what_it_was_given():
    raw = tl.load_dataset("tuxpaint_photos")
    with pytest.raises(ValueError, match="source_similarity\\(\\) was given an empty dataset"):
        tl.source_similarity(tl.subset(raw, []))
    with pytest.raises(TypeError, match="needs raw images; this dataset's items are Tensors .* transform=None"):
        tl.source_similarity(tl.with_transform(raw, tl.image_transform(None, size=28)))
    with pytest.raises(TypeError, match="not a DataLoader"):
        tl.source_similarity(tl.make_loader(raw, 8))


def test_3_spreadsheets_with_a_comma_a_long_cell_or_a_nan(tmp_path):
    with pytest.raises(ValueError, match=r"line 3: more fields than the header's 2 \(text, label\).*in quotes"):
        tl.load_text_csv(_csv(tmp_path, b"text,label\ngood,pos\nbad, really bad,neg\nok,pos\n"))
    import csv

    limit = csv.field_size_limit()
    long = tl.load_text_csv(_csv(tmp_path, b'text,label\n"' + b"x" * 140_000 + b'",pos\nok,neg,\n'))
    assert len(long.texts[0]) == 140_000 and long.classes == ["neg", "pos"]  # a trailing empty field is harmless
    assert csv.field_size_limit() == limit  # the limit is lifted for the file only
    with pytest.raises(TypeError, match=r"texts\[1\] is nan \(a float\), not a text \(1 of 2 are not strings\)"):
        tl.TextDataset(["fine", float("nan")], [0, 1], ["n", "p"], tl.DatasetInfo("x", "", "", ""))


LOGITS = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(50) % 3
PROBS = LOGITS.softmax(-1)
NAN_ROW = PROBS.clone()
NAN_ROW[4] = math.nan


@pytest.mark.parametrize("call, message", [
    (lambda: tl.fit_temperature(torch.full((50, 3), math.nan), LABELS), "Row 0 of logits is not finite"),
    (lambda: tl.fit_temperature(torch.full((50, 3), math.inf), LABELS), "Row 0 of logits is not finite"),
    (lambda: tl.fit_temperature(torch.zeros(0, 3), torch.zeros(0)), "logits and labels are empty"),
    (lambda: tl.fit_temperature(PROBS, LABELS), "these are probabilities. Pass the logits"),
    (lambda: tl.fit_temperature(LOGITS, LABELS + 1), r"labels\[2\] is 3, outside 0..2 for 3 classes"),
    (lambda: tl.ece(PROBS, LABELS - 1), r"labels\[0\] is -1, outside 0..2"),
    (lambda: tl.reliability(PROBS, LABELS * 0 + 7), r"labels\[0\] is 7, outside 0..2"),
    (lambda: tl.compare_ece(PROBS, PROBS, LABELS + 3), r"labels\[0\] is 3, outside 0..2"),
    (lambda: tl.compare_ece(PROBS, NAN_ROW, LABELS), "Row 4 of b_probs is not finite"),
    (lambda: tl.ece(PROBS[:, 0], LABELS), r"Pass torch.softmax\(logits, -1\), not the predicted labels"),
    (lambda: tl.fit_temperature(LOGITS[:, 0], LABELS), "Pass the logits, the model's outputs before the softmax"),
    (lambda: tl.linear_cka(torch.full((5, 2), math.nan), torch.ones(5, 2)), "hold NaN or inf"),
    (lambda: tl.ece(NAN_ROW, LABELS), "Row 4 of probs is not finite"),
    (lambda: tl.ece(torch.zeros(0, 3), torch.zeros(0)), "probs and labels are empty"),
    (lambda: tl.ece(PROBS, LABELS + 0.5), "labels must be whole class indices 0..2, not float32 values"),
    (lambda: tl.ece(PROBS, LABELS, confidence=95), r"confidence is a probability.*not 95"),
    (lambda: tl.ece(PROBS, LABELS, bins=0), "bins must be a whole number >= 1, not 0"),
    (lambda: tl.ece(PROBS, LABELS, resamples=0), "resamples must be a whole number >= 1, not 0"),
    (lambda: tl.stats.compare([1, 0, 1], [0, 0, 1], resamples=0), "resamples must be a whole number >= 1"),
    (lambda: tl.stats.accuracy(["True", "False"]), "Correctness must be 0/1 or True/False per item, not <U5"),
    (lambda: tl.compare_ece(PROBS, PROBS, LABELS, names="AB"), "names needs one name per arm, two in all"),
    (lambda: tl.stats.compare([1, 0, 1], [0, 0, 1], margin="2"), "margin is a difference in accuracy.*not '2'"),
    (lambda: tl.stats.compare([1, 0, 1], [0, 0, 1], seed=None), "seed must be a whole number >= 0, not None"),
    (lambda: tl.stats.detectable_difference(0.1, 600, power=80), r"power is a probability.*not 80"),
    (lambda: tl.stats.detectable_difference(1.5, 600), "disagreement_rate must be a number between 0 and 1"),
    (lambda: tl.stats.detectable_difference(0.1, 1), "n must be a whole number >= 2, not 1"),
    (lambda: tl.stats.items_needed(0.2, 0.1), "difference must be non-zero and at most disagreement_rate"),
    (lambda: tl.stats.items_needed(0, 0.1), "difference must be non-zero"),
], ids=["nan logits", "inf logits", "empty", "probabilities as logits", "label 3", "label -1", "label 7",
        "compare_ece label", "b_probs", "probs of one class", "logits of one class", "cka of nan",
        "nan row", "empty probs", "float labels", "confidence 95", "bins 0", "resamples 0",
        "compare resamples 0", "strings", "compare_ece names", "margin string", "seed None", "power 80",
        "disagreement 1.5", "one item", "difference above disagreement", "difference 0"])
def test_4_calibration_and_statistics_name_the_bad_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_4_whole_valued_float_labels_still_count():
    assert tl.ece(PROBS, LABELS.float(), resamples=100).value == tl.ece(PROBS, LABELS, resamples=100).value


def test_5_checkpoint_and_file_paths_are_refused_before_anything_trains(tmp_path, monkeypatch):
    model, train = TinyNet(), tl.make_loader(blobs(), 40)
    history = tl.fit(model, train, epochs=1, progress=False)
    before, epochs = copy.deepcopy(model.state_dict()), list(history.epoch)
    (tmp_path / "runs").mkdir()
    (tmp_path / "afile").write_text("x")
    for path, error, message in [
        (tmp_path / "runs", IsADirectoryError, "runs is a folder. Give a file name, e.g. .*runs/run.pt"),
        (tmp_path / "afile" / "run.pt", NotADirectoryError, "afile is a file, so .*run.pt cannot be written"),
        (tmp_path / ("x" * 300 + ".pt"), ValueError, "is 307 bytes long .*this system allows 255"),
        (tmp_path / ("x" * 250 + ".pt"), ValueError, r"is 257 bytes long \(with .tmp, as it is first written\)"),
        (str(tmp_path / "new") + "/", IsADirectoryError, "new/ names a folder. Give a file name"),
    ]:
        with pytest.raises(error, match=message):
            tl.fit(model, train, epochs=3, history=history, checkpoint=path, progress=False)
        with pytest.raises(error, match=message):
            tl.save_checkpoint(path, model)
        assert unchanged(model, before) and history.epoch == epochs
    longest = tmp_path / ("x" * 248 + ".pt")  # 255 bytes with .tmp: allowed
    assert tl.fit(model, train, epochs=2, history=history, checkpoint=longest, progress=False).epoch == [1, 2]
    longest.unlink()
    good = tl.save_checkpoint(tmp_path / "good.pt", model)
    kept = good.read_bytes()

    def disk_full(state, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        tl.save_checkpoint(good, model)
    assert good.read_bytes() == kept and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "good.pt", "runs"]


def test_5_saved_models_refuse_missing_weights_and_edited_metadata(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    model, weights = tl.build_classifier("mobilenet_v2", num_classes=3, pretrained=False)
    with pytest.raises(ValueError, match="weights=None is not a set of pretrained weights"):
        tl.save_for_inference(tmp_path / "m.safetensors", model, list("abc"), None)
    assert not list(tmp_path.iterdir())
    path = tl.save_for_inference(tmp_path / "m.safetensors", model, list("abc"), weights, size=64)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    for change in ({"arch": "efficientnet_lite0"}, {"classes": list("abcd")}, {"temperature": -1.0}):
        config = {**json.loads(meta["transferlib"]), **change}  # the metadata edited, the weights not
        save_file(state, str(tmp_path / "edited.safetensors"), {**meta, "transferlib": json.dumps(config)})
        with pytest.raises(ValueError, match="edited.safetensors has transferlib's metadata, but the model it "
                                             "describes cannot be rebuilt"):
            tl.load_predictor(tmp_path / "edited.safetensors")
    assert tl.save_for_inference(path, model, list("abc"), weights, temperature=np.float32(1.5)) == path


def test_6_datasets_splits_and_probes_name_what_is_wrong(tmp_path, monkeypatch, capsys):
    data = blobs(n=120)
    data.targets, data.classes = data.tensors[1].tolist(), ["a", "b", "c"]
    grey = tl.ArrayImageDataset(torch.zeros(4, 8, 8, dtype=torch.uint8).numpy(), [0, 1, 0, 1], ["a", "b"],
                                tl.DatasetInfo("x", "", "", ""))
    with pytest.raises(TypeError, match="in_memory\\(\\) keeps tensors, and this dataset's inputs are Images"):
        tl.in_memory(grey)
    with pytest.raises(ValueError, match="k must be a whole number between 1 and 40 .*not 2.5"):
        tl.k_shot(data, 2.5)
    with pytest.raises(ValueError, match="test_size=0.01 splits 120 items into 118 to train on and 2 to test on"):
        tl.stratified_split(data, test_size=0.01)
    with pytest.raises(ValueError, match=r"The training loader has no batches \(its dataset holds 0 items\)"):
        tl.fit(TinyNet(), tl.make_loader(blobs(n=0), 8, shuffle=True), epochs=1, progress=False)
    x = torch.randn(20, 4)
    with pytest.raises(ValueError, match=r"The train labels hold one class only \(0\)"):
        tl.fit_probe((x, torch.zeros(20, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"features of shape \(20,\).*features.reshape\(-1, 1\)"):
        tl.logistic_probe(x[:, 0], torch.arange(20) % 2, x[:5, 0], torch.arange(5) % 2)
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path))
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(16, 5))
    first = tl.cached_features(backbone, data, key="damaged", progress=False)
    (cached,) = (tmp_path / "features").iterdir()
    cached.write_bytes(cached.read_bytes()[:100])  # cut short, as a full disk or a killed kernel leaves it
    again = tl.cached_features(backbone, data, key="damaged", progress=False)
    assert "are damaged" in capsys.readouterr().out and torch.equal(again[0], first[0])


class OneParameter(nn.Module):  # no sub-modules, so no blocks
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3, 16))

    def forward(self, x):
        return x @ self.weight.T


def test_7_numbers_that_used_to_be_silent(capsys):
    assert math.isnan(tl.linear_cka(torch.ones(10, 4), torch.randn(10, 4)))
    assert capsys.readouterr().out == "linear_cka: the first activations are constant (collapsed): CKA is nan.\n"
    with pytest.raises(ValueError, match="needs at least 2 rows"):
        tl.linear_cka(torch.randn(1, 4), torch.randn(1, 4))
    model, train = TinyNet(), tl.make_loader(blobs(), 40)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="num_steps must be a whole number >= 3, not 1"):
        tl.lr_find(model, train, num_steps=1, progress=False)
    with pytest.raises(ValueError, match="The loss blew up .* after [12] steps .*Start lower"):
        tl.lr_find(model, train, start_lr=1e3, end_lr=1e9, progress=False)
    assert unchanged(model, before)
    with pytest.raises(ValueError, match="48 trainable parameters of this OneParameter are in no block"):
        tl.make_optimizer(OneParameter(), 1e-3, discriminative=2.6)
    with pytest.raises(ValueError, match="This OneParameter has no blocks to show"):
        tl.FreezePanel(OneParameter())


@pytest.mark.parametrize("val", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_8_fit_gives_the_model_back_in_the_mode_it_came_in(val, training):
    model = TinyNet().train(training)
    model.body[1].eval()  # a submodule in its own mode (a pretrained encoder inside a new wrapper)
    loader = tl.make_loader(blobs(), 40)
    tl.fit(model, loader, loader if val else None, epochs=1, progress=False)
    assert model.training == training and not model.body[1].training
