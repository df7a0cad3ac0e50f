"""transferlib.datasets: every default dataset loads offline, checked, with source and license."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image

import transferlib as tl
from transferlib.assets import datasets_dir, sha256

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {  # name: (train, test, number of classes), after duplicates are removed
    "tuxpaint_photos": (136, 34, 6),
    "animal_mnist": (7772, 1944, 10),
    "fashion_mnist": (60000, 10000, 10),
    "mnist5k": (4000, 1000, 10),
    "digits": (1437, 360, 10),
    "sms_spam": (3626, 907, 2),
    "tweet_sentiment": (17783, 4446, 2),
    "tweet_sentiment_3class": (29075, 7269, 3),
}


def test_catalogue_is_complete():
    assert set(tl.list_datasets()) == set(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_dataset_loads_with_source_and_license(name):
    n_train, n_test, n_classes = EXPECTED[name]
    train = tl.load_dataset(name, split="train")
    test = tl.load_dataset(name, split="test")
    assert (len(train), len(test)) == (n_train, n_test)
    assert len(train.classes) == n_classes == len(set(train.targets))
    assert train.info.source and train.info.license
    x, y = train[0]
    assert 0 <= y < n_classes
    if name.startswith(("sms", "tweet")):
        assert isinstance(x, str) and x
    else:
        assert isinstance(x, Image.Image)
    # stratified: every class keeps (about) the same share in both splits
    share_train = np.bincount(train.targets) / len(train)
    share_test = np.bincount(test.targets) / len(test)
    assert np.abs(share_train - share_test).max() < 0.02


def test_splits_are_disjoint_and_complete():
    texts = lambda split: tl.load_dataset("sms_spam", split=split).texts  # noqa: E731
    train, test, everything = texts("train"), texts("test"), texts("all")
    assert len(train) + len(test) == len(everything)
    assert sorted(train + test) == sorted(everything)


def test_class_names_match_the_sources():
    assert tl.load_dataset("animal_mnist").classes[:3] == ["bear", "bird", "cat"]
    assert tl.load_dataset("fashion_mnist", split="test").classes[9] == "Ankle boot"
    assert tl.load_dataset("tuxpaint_photos").classes == ["bird", "fish", "flower", "fruit", "insect", "mammal"]
    assert tl.load_dataset("sms_spam").classes == ["ham", "spam"]


def test_transform_is_applied():
    _, weights = tl.load_model("mobilenet_v2", pretrained=False)
    x, _ = tl.load_dataset("tuxpaint_photos", split="test", transform=weights.transforms())[0]
    assert tuple(x.shape) == (3, 224, 224)


def test_transparent_photos_become_rgb_on_white():
    image, _ = tl.load_dataset("tuxpaint_photos", split="all")[0]
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)  # the cut-out's transparent corner


def test_bad_split_and_unknown_name():
    with pytest.raises(ValueError, match="split must be one of"):
        tl.load_dataset("digits", split="validation")
    with pytest.raises(ValueError, match="Known datasets: tuxpaint_photos"):
        tl.load_dataset("cifar10")
    assert len(tl.load_dataset("fashion_mnist", split="all")) == 70_000  # official train + test


def test_every_shipped_file_matches_its_checksum():
    root = datasets_dir()
    listed = dict(line.split("  ")[::-1] for line in (root / "SHA256SUMS").read_text().splitlines())
    shipped = {p.relative_to(root).as_posix() for p in root.rglob("*")
               if p.is_file() and p.suffix in {".gz", ".npz", ".png", ".tsv"}}
    assert shipped == set(listed)
    for name, digest in listed.items():
        assert sha256(root / name) == digest, name


def test_datasets_readme_credits_every_folder():
    readme = (ROOT / "datasets" / "README.md").read_text()
    for folder in ("tuxpaint_photos", "animal_mnist", "fashion_mnist", "sms_spam"):
        assert f"`{folder}/`" in readme
        assert any((ROOT / "datasets" / folder / f).exists() for f in ("LICENSE", "COPYING"))


@pytest.fixture
def datasets_copy(tmp_path, monkeypatch):
    copy = tmp_path / "datasets"
    shutil.copytree(datasets_dir(), copy)
    monkeypatch.setenv("TRANSFERLIB_DATASETS", str(copy))
    return copy


@pytest.mark.parametrize("name, file", [
    ("animal_mnist", "animal_mnist/animal_mnist.npz"),
    ("fashion_mnist", "fashion_mnist/t10k-labels-idx1-ubyte.gz"),
    ("sms_spam", "sms_spam/sms_spam.tsv"),
    ("tuxpaint_photos", "tuxpaint_photos/fish/bluegroper.png"),
])
def test_corrupted_file_gives_an_error_naming_it(datasets_copy, name, file):
    path = datasets_copy / file
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    with pytest.raises(tl.ChecksumError, match=Path(file).name):
        tl.load_dataset(name, split="test")


def test_missing_datasets_folder_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLIB_DATASETS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="TRANSFERLIB_DATASETS"):
        tl.load_dataset("animal_mnist")


def test_own_image_folder_any_image_mode(tmp_path):
    for cls, mode in [("a", "RGBA"), ("a", "L"), ("b", "CMYK"), ("b", "P")]:
        (tmp_path / cls).mkdir(exist_ok=True)
        Image.new(mode, (40, 30)).save(tmp_path / cls / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
    photos = tl.load_image_folder(tmp_path)
    assert photos.classes == ["a", "b"] and len(photos) == 4
    assert all(photos[i][0].mode == "RGB" for i in range(len(photos)))


def test_own_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        tl.load_image_folder(tmp_path / "missing")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="the class folder empty_class holds no images PIL can read"):
        tl.load_image_folder(tmp_path)


def test_image_transform_makes_any_image_a_normalised_rgb_tensor():
    _, weights = tl.load_model("efficientnet_lite0", pretrained=False)
    t = tl.image_transform(weights, size=64)
    for mode in ("L", "RGBA", "CMYK", "RGB"):
        x = t(Image.new(mode, (50, 40)))
        assert x.shape == (3, 64, 64) and -1.0 <= float(x.min()) <= float(x.max()) <= 1.0
    grey, _ = tl.load_dataset("animal_mnist", "test", transform=t)[0]
    assert grey.shape == (3, 64, 64)
    assert "ToRGB(exif)" in repr(t) and "0x" not in repr(t), "a stable repr keeps feature-cache keys stable"


def test_augmentation_is_random_but_seeded():
    import torch

    _, weights = tl.load_model("mobilenet_v2", pretrained=False)
    aug = tl.image_transform(weights, augment=True, size=64)
    image = tl.load_dataset("tuxpaint_photos", "test")[0][0]
    torch.manual_seed(0)
    a = aug(image)
    b = aug(image)
    torch.manual_seed(0)
    assert torch.equal(aug(image), a) and not torch.equal(a, b)


def test_k_shot_is_stratified_and_seeded():
    train = tl.load_dataset("animal_mnist", "train")
    few = tl.k_shot(train, 5, seed=1)
    assert len(few) == 50 and np.bincount(few.targets).tolist() == [5] * 10
    assert few.classes == train.classes
    assert [few[i][1] for i in range(len(few))] == few.targets
    assert tl.k_shot(train, 5, seed=1).indices == few.indices != tl.k_shot(train, 5, seed=2).indices
    with pytest.raises(ValueError, match="class 'insect' has only 7"):
        tl.k_shot(tl.load_dataset("tuxpaint_photos", "train"), 10)


def test_budgets_are_nested_and_hold_outs_disjoint():
    train = tl.load_dataset("animal_mnist", "train")
    val, pool = tl.split_per_class(train, 20, seed=3)
    assert np.bincount(val.targets).tolist() == [20] * 10 and len(val) + len(pool) == len(train)
    assert not set(val.indices) & set(pool.indices)
    assert [pool[i][1] for i in range(0, len(pool), 500)] == pool.targets[::500]
    small, large = tl.k_shot(pool, 10, seed=3), tl.k_shot(pool, 25, seed=3)
    assert set(small.indices) < set(large.indices)            # more labels add, never swap
    inner = tl.k_shot(large, 10, seed=3)                       # a subset of a subset: positions in `large`
    assert np.bincount(inner.targets).tolist() == [10] * 10 and max(inner.indices) < len(large)


def test_stratified_split_and_subset_of_a_folder():
    photos = tl.load_image_folder(datasets_dir() / "tuxpaint_photos")
    train, test = tl.stratified_split(photos, test_size=0.2, seed=0)
    assert (len(train), len(test)) == (136, 34) and not set(train.indices) & set(test.indices)
    assert train.targets == tl.load_dataset("tuxpaint_photos", "train").targets   # the course's own split
    part = tl.subset(photos, [0, 50, 169])
    assert part.targets == [photos.targets[i] for i in (0, 50, 169)] and part.classes == photos.classes
    with pytest.raises(ValueError, match="at least 2 examples of every class"):
        tl.stratified_split(tl.subset(photos, [0, 1, 169]))


def test_with_transform_gives_one_split_two_preprocessings():
    _, weights = tl.load_model("mobilenet_v2", pretrained=False)
    few = tl.k_shot(tl.load_dataset("animal_mnist", "train"), 2)
    for_cnn = tl.with_transform(few, tl.image_transform(None, augment=True, size=28))
    for_net = tl.with_transform(few, tl.image_transform(weights, size=64))
    assert for_cnn.targets == for_net.targets == few.targets and for_cnn.classes == few.classes
    assert for_cnn[0][0].shape == (1, 28, 28) and for_net[0][0].shape == (3, 64, 64)
    plain = tl.image_transform(None, size=32)(few[0][0])
    assert plain.shape == (1, 32, 32) and -1.0 <= float(plain.min()) < float(plain.max()) <= 1.0
    with pytest.raises(ValueError, match="needs a size"):
        tl.image_transform(None)


def test_select_classes_relabels_in_the_order_given():
    fashion = tl.load_dataset("fashion_mnist", "test")
    tops = tl.select_classes(fashion, ["Shirt", "T-shirt/top", 2])
    assert tops.classes == ["Shirt", "T-shirt/top", "Pullover"] and len(tops) == 3000
    assert np.bincount(tops.targets).tolist() == [1000] * 3
    image, label = tops[0]
    assert fashion.classes[fashion.targets[tops.indices[0]]] == tops.classes[label]
    assert np.bincount(tl.k_shot(tops, 5).targets).tolist() == [5] * 3      # works with every helper
    with pytest.raises(ValueError, match="at least two"):
        tl.select_classes(fashion, ["Shirt", "Sock"])
    kept = tl.in_memory(tl.with_transform(tl.k_shot(tops, 4), tl.image_transform(None, size=28)))
    assert kept.tensors[0].shape == (12, 1, 28, 28) and kept.targets == tl.k_shot(tops, 4).targets
    fifth = tops[tl.k_shot(tops, 4).indices[5]][0]
    assert kept.classes == tops.classes and torch.equal(kept[5][0], tl.image_transform(None, size=28)(fifth))


def test_loaders_are_seeded():
    from helpers import blobs

    train = blobs(200)
    order = lambda seed: [y.tolist() for _, y in tl.make_loader(train, 64, shuffle=True, seed=seed)][:3]  # noqa: E731
    assert order(0) == order(0) != order(1)


def test_text_csv_and_loader(tmp_path):
    from transformers import AutoTokenizer  # noqa: F401  (the tokenizer comes from load_text_model)

    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\nloved it,good\nhated it,bad\n\"fine, really\",good\n", encoding="utf-8")
    data = tl.load_text_csv(path, text_column="review", label_column="stars")
    assert data.classes == ["bad", "good"] and data.targets == [1, 0, 1] and data.texts[2] == "fine, really"
    _, tokenizer = tl.load_text_model("minilm")
    batch, labels = next(iter(tl.text_loader(data, tokenizer, batch_size=3)))
    assert batch["input_ids"].shape[0] == 3 and labels.tolist() == [1, 0, 1]


def test_high_bit_depth_and_palette_transparency_convert_correctly():
    from transferlib.transforms import ToRGB

    deep = Image.fromarray(np.array([[0, 20000], [40000, 65535]], dtype=np.uint16))
    rgb = np.asarray(ToRGB()(deep))
    assert rgb[0, 0, 0] == 0 and rgb[1, 1, 0] == 255 and 0 < rgb[0, 1, 0] < rgb[1, 0, 0] < 255  # scaled, not clipped
    pa = Image.new("PA", (2, 2))
    pa.putpalette([0, 0, 0] * 256)
    assert ToRGB()(pa).getpixel((0, 0)) == (255, 255, 255)  # fully transparent: white, like the RGBA cut-outs


@pytest.mark.parametrize("name", ["animal_mnist", "sms_spam", "tweet_sentiment_3class", "digits"])
def test_no_example_is_in_both_splits(name):
    import re

    def key(x):
        if isinstance(x, str):
            return re.sub(r"^RT @\w+:\s*", "", x).strip().lower()
        return x.tobytes()

    train, test = tl.load_dataset(name, "train"), tl.load_dataset(name, "test")
    items = lambda d: d.texts if hasattr(d, "texts") else list(d.data)  # noqa: E731
    assert not {key(x) for x in items(train)} & {key(x) for x in items(test)}


def test_a_missing_or_extra_photo_is_caught(datasets_copy):
    (datasets_copy / "tuxpaint_photos" / "fish" / "bluegroper.png").unlink()
    with pytest.raises(tl.ChecksumError, match="bluegroper.png missing"):
        tl.load_dataset("tuxpaint_photos")


def test_split_budget_takes_validation_out_of_the_budget():
    data = tl.ArrayImageDataset(np.zeros((60, 4, 4), np.uint8), np.repeat([0, 1, 2], 20), ["a", "b", "c"],
                                  tl.DatasetInfo("x", "", "", ""))
    few = tl.k_shot(data, 10, seed=1)
    train, val = tl.split_budget(few, seed=2)
    assert sorted(train.indices + val.indices) == list(range(len(few)))      # every label of the budget, once
    assert np.bincount(val.targets).tolist() == [2, 2, 2]                      # 20% of 10, per class
    assert tl.role_of(val) == "validation"
    big_train, big_val = tl.split_budget(tl.k_shot(data, 20))
    assert len(big_val) == 12 and len(big_train) == 48
    with pytest.raises(ValueError, match="rarest class has 2.*cross-validation"):
        tl.split_budget(tl.k_shot(data, 2))


def test_splits_are_labelled_subsets_that_declare_their_role():
    from torch.utils.data import Subset

    train, test = tl.load_dataset("digits", "train"), tl.load_dataset("digits", "test")
    val, pool = tl.split_per_class(train, 5, seed=1)
    fit_part, held = tl.stratified_split(pool, 0.25, seed=2)
    parts = {"val": val, "pool": pool, "fit": fit_part, "held": held, "k of fit": tl.k_shot(fit_part, 3),
             "k of held": tl.k_shot(held, 3), "k of val": tl.k_shot(val, 2), "k of test": tl.k_shot(test, 4),
             "val of test": tl.split_per_class(test, 3)[0], "subset of test": tl.subset(test, [0, 1, 2]),
             "budget val": tl.split_budget(tl.k_shot(pool, 10))[1]}
    for name, part in parts.items():
        assert type(part) is tl.LabelledSubset, name
        assert vars(part).keys() >= {"targets", "classes", "role"}, name     # its own attributes, not looked up
        assert part.targets == [tl.datasets.targets_of(part.dataset)[i] for i in part.indices], name
        assert part.classes == train.classes, name
    assert {name: part.role for name, part in parts.items()} == {
        "val": "validation", "pool": "train", "fit": "train", "held": "test", "k of fit": "train",
        "k of held": "test", "k of val": "validation", "k of test": "test", "val of test": "test",
        "subset of test": "test", "budget val": "validation"}
    # the role is carried, not found again: the parent's is not read after the split is made
    kept = tl.k_shot(held, 2)
    held.role = "train"
    assert kept.role == "test" and tl.role_of(kept) == "test"
    # wrappers that declare nothing are looked through; every wrapper here passes the role on
    for wrapped in (tl.make_loader(parts["k of test"]), Subset(parts["k of test"], [0]),
                    tl.with_transform(parts["k of test"], str), tl.select_classes(parts["k of test"], [0, 1]),
                    tl.make_loader(tl.with_transform(Subset(test, [3]), str))):
        assert tl.role_of(wrapped) == "test", wrapped
    assert tl.with_transform(test, str).role == tl.select_classes(test, [0, 1]).role == "test"
    assert tl.role_of(Subset(torch.utils.data.TensorDataset(torch.zeros(2)), [0])) is None
    assert tl.role_of((1, 2)) is None and tl.role_of(None) is None
    explicit = tl.LabelledSubset(test, np.array([4, 2]), role="validation")
    assert (explicit.indices, explicit.targets, explicit.role) == ([4, 2], [test.targets[4], test.targets[2]],
                                                                    "validation")
