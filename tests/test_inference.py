"""save_for_inference / load_predictor / predict: one file, the same predictions, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import transferlib as tl


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model, weights = tl.build_classifier("mobilenet_v2", num_classes=3, hidden=8, dropout=0.3, pretrained=False)
    model.eval()
    path = tl.save_for_inference(tmp_path_factory.mktemp("m") / "tiny.safetensors", model, ["a", "b", "c"],
                                 weights, size=64, temperature=2.0)
    return model, weights, path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / f"img{i}.png")
    (root / "sub").mkdir()
    Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8)).save(root / "sub" / "grey.jpg")  # grey, nested
    (root / "notes.txt").write_text("not an image")
    return root


def test_reloaded_predictions_equal_the_originals(saved, folder):
    model, weights, path = saved
    predictor = tl.load_predictor(path)
    assert predictor.classes == ["a", "b", "c"] and predictor.temperature == 2.0
    img = Image.open(folder / "img0.png")
    x = tl.image_transform(weights, size=64)(img)[None]
    with torch.inference_mode():
        expected = torch.softmax(model(x) / 2.0, -1)[0]
    one = predictor.predict(img)
    assert isinstance(one, tl.Prediction) and one.source == "<PIL image>"
    assert torch.allclose(torch.tensor(list(one.probabilities.values())), expected, atol=1e-6)
    assert one.label == "abc"[int(expected.argmax())] and one.probability == pytest.approx(float(expected.max()))
    assert predictor.predict(folder / "img0.png").probabilities == pytest.approx(one.probabilities, abs=1e-6)


def test_a_pil_image_is_read_as_its_file_is(saved, tmp_path):
    """Transparency onto white and the EXIF turn, as open_rgb reads files: dropping the alpha channel
    instead would show the network the colours hidden under the transparent pixels."""
    predictor = tl.load_predictor(saved[2])
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[10:30, 10:40] = (200, 30, 30, 255)                  # a red patch on a transparent black canvas
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut_out.png")
    from_file = predictor.predict(tmp_path / "cut_out.png").probabilities
    assert predictor.predict(Image.open(tmp_path / "cut_out.png")).probabilities == pytest.approx(from_file, abs=1e-6)
    seen, original = [], predictor.transform     # what the network is shown: white around the patch, not black
    predictor.transform = lambda img: seen.append(np.asarray(img)[0, 0]) or original(img)
    predictor.predict(Image.open(tmp_path / "cut_out.png"))
    assert seen[0].tolist() == [255, 255, 255]
    image = Image.new("RGB", (50, 40), (90, 140, 200))
    image.paste((250, 250, 20), (0, 0, 25, 40))               # two colours: a turn shows
    exif = image.getexif()
    exif[0x0112] = 6                                          # stored sideways: viewers turn it 90 degrees
    image.save(tmp_path / "portrait.jpg", exif=exif)
    seen.clear()
    predictor.transform = lambda img: seen.append(img.size) or original(img)
    turned = predictor.predict(tmp_path / "portrait.jpg").probabilities
    assert predictor.predict(Image.open(tmp_path / "portrait.jpg")).probabilities == pytest.approx(turned, abs=1e-6)
    assert seen == [(40, 50), (40, 50)], "the file and the PIL image are both turned upright"


def test_the_saved_file_is_readable_as_any_file_the_user_writes(saved):
    """safetensors creates its files 0600; one handed over (a web server, a shared folder) must be readable."""
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(saved[2]).st_mode) == 0o666 & ~umask


def test_a_folder_and_a_list_give_one_prediction_per_image(saved, folder):
    predictor = tl.load_predictor(saved[2])
    found = predictor.predict(folder)
    assert [p.source.split("/")[-1] for p in found] == ["img0.png", "img1.png", "img2.png", "grey.jpg"]
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-5 for p in found)
    both = tl.predict(saved[2], [folder / "img1.png", Image.open(folder / "img2.png")])
    assert [p.probability for p in both] == pytest.approx([found[1].probability, found[2].probability], abs=1e-6)


def test_the_file_is_safetensors_with_its_metadata(saved):
    from safetensors import safe_open

    with safe_open(str(saved[2]), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == tl.inference.INFERENCE_FORMAT
    assert '"arch": "mobilenet_v2"' in meta["transferlib"] and '"hidden": 8' in meta["transferlib"]


def test_predict_neither_moves_the_model_nor_changes_its_mode(saved, folder):
    predictor = tl.load_predictor(saved[2])
    predictor.model.train()
    predictor.predict(folder / "img0.png")
    assert predictor.model.training, "predict() restores the mode it found"
    assert tl.device_of(predictor.model).type == "cpu"


@pytest.mark.parametrize("bad, error, words", [
    ("nowhere.png", FileNotFoundError, "No image at"),
    (np.zeros((8, 8, 3)), TypeError, "PIL.Image.fromarray"),
    ([], ValueError, "empty list"),
])
def test_bad_inputs_are_named(saved, bad, error, words):
    with pytest.raises(error, match=words):
        tl.load_predictor(saved[2]).predict(bad)


def test_an_empty_folder_and_a_broken_image_are_named(saved, tmp_path):
    predictor = tl.load_predictor(saved[2])
    with pytest.raises(FileNotFoundError, match="holds no images"):
        predictor.predict(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(OSError, match="broken.jpg"):
        predictor.predict(tmp_path / "broken.jpg")


def test_save_and_load_refuse_what_they_cannot_use(saved, tmp_path):
    model, weights, path = saved
    with pytest.raises(ValueError, match="2 class names for a model with 3 outputs"):
        tl.save_for_inference(tmp_path / "x.safetensors", model, ["a", "b"], weights)
    with pytest.raises(TypeError, match="Classifier"):
        tl.save_for_inference(tmp_path / "x.safetensors", torch.nn.Linear(2, 2), ["a", "b"], weights)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="without transferlib's inference metadata"):
        tl.load_predictor(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a safetensors file"):
        tl.load_predictor(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match="No saved model"):
        tl.load_predictor(tmp_path / "missing.safetensors")


def test_files_pil_cannot_decode_are_skipped_and_said(saved, tmp_path):
    predictor = tl.load_predictor(saved[2])
    (tmp_path / "results.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / "clip.mpg").write_bytes(b"\x00\x00\x01\xba")
    (tmp_path / "IMG_0001.heic").write_bytes(b"....ftypheic")
    with pytest.raises(FileNotFoundError, match=r"\.heic files.*convert \.heic"):
        predictor.predict(tmp_path)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "photo.png")
    assert [p.source.split("/")[-1] for p in predictor.predict(tmp_path)] == ["photo.png"]


def test_a_model_load_predictor_could_not_rebuild_is_refused(saved, tmp_path):
    model, weights, _ = saved
    with pytest.raises(ValueError, match="not an image model"):
        tl.save_for_inference(tmp_path / "x.safetensors", model, list("abc"), weights, arch="minilm")
    odd = tl.Classifier(model.backbone, torch.nn.Sequential(torch.nn.Linear(1280, 8), torch.nn.Linear(8, 8),
                                                            torch.nn.Linear(8, 3)), 1280, arch="mobilenet_v2")
    with pytest.raises(ValueError, match="could not rebuild"):
        tl.save_for_inference(tmp_path / "x.safetensors", odd, list("abc"), weights)
    with pytest.raises(ValueError, match="positive number"):
        tl.save_for_inference(tmp_path / "x.safetensors", model, list("abc"), weights, temperature=float("inf"))
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "x.safetensors").exists()
