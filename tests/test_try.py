"""``tl.try_strategies`` and ``python -m transferlib try``: small folders of the course's photos in; a
model, a report, a model card and prediction sets out; and the refusals, each before any model loads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import transferlib as tl
from transferlib import audit, demo, nested, tryphotos
from transferlib.__main__ import main
from transferlib.transforms import open_rgb

from helpers import ROOT

PHOTOS = ROOT / "datasets" / "tuxpaint_photos"


def photos_of(c: str, n: int = 6) -> list:
    return sorted((PHOTOS / c).glob("*.png"))[:n]


def make_folder(root, classes, n=6):
    root.mkdir(exist_ok=True)
    for c in classes:
        (root / c).mkdir()
        for path in photos_of(c, n):
            shutil.copy(path, root / c / path.name)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes of 6 photos; one bird photo also filed under fruit; an empty 'photo' under flower."""
    root = make_folder(tmp_path_factory.mktemp("my_photos"), ("bird", "flower", "fruit"))
    shutil.copy(photos_of("bird")[0], root / "fruit" / "copy_of_a_bird.png")
    (root / "flower" / "IMG_0002.jpg").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def report(folder, tmp_path_factory):
    return tl.try_strategies(folder, minutes=3, out=tmp_path_factory.mktemp("out"))


def test_the_summary_reads_every_number_with_its_interval(report):
    text = str(report)
    assert "19 photos in 3 classes" in text and "unreadable: flower/IMG_0002.jpg" in text
    assert "identical files: 2 photos in 1 group, 1 across classes" in text    # the bird filed under fruit
    rows = re.findall(r"^  (\S.*?probe)\s+(0\.\d{3}|1\.000) \[(\d\.\d{3}), (\d\.\d{3})\]", text, re.M)
    assert {name for name, *_ in rows} == set(tryphotos.STRATEGIES), text
    assert all(float(low) <= float(v) <= float(high) for _, v, low, high in rows)
    assert re.search(r"^Pick: (MobileNetV2|EfficientNet-Lite0), frozen \+ probe", text, re.M)
    assert "over 5 splits into folds (seeds 0 to 4)" in text and text.count("split by split: ") == 2
    assert all(arm.correct.shape == (5, 19) and arm.inner.shape == (5, len(set(report.fold))) for arm in report.arms)
    assert re.search(r"90% prediction sets: coverage \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", text)
    assert max(len(line) for line in text.splitlines() if not line.startswith("Wrote ")) <= 88


def test_twins_share_a_fold_and_the_copy_in_two_classes_is_flagged(report):
    samples = [p.split("/")[-2:] for p, _ in report.data.samples]
    original, copy = samples.index(["bird", photos_of("bird")[0].name]), samples.index(["fruit", "copy_of_a_bird.png"])
    assert report.fold[original] == report.fold[copy], "a photo and its copy were tested in different folds"
    assert copy in report.doubtful[:3], "the bird photo labelled fruit should be among the least likely labels"


def test_the_files_load_offline_and_the_model_predicts(report, folder):
    out = report.files["model"].parent
    predictor = tl.load_predictor(out / "model.safetensors")
    assert predictor.classes == ["bird", "flower", "fruit"]
    assert predictor.predict(photos_of("flower")[0]).label in predictor.classes
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 4          # cost, confusion, reliability, suspects
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page), "the report must open offline"
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    lead = re.search(r"## Accuracy\n- (\d\.\d{3}), 95% interval \[(\d\.\d{3}), (\d\.\d{3})\], for the whole", card)
    assert lead, card      # the card leads with the procedure's accuracy, the choice of strategy nested too
    c = report.chosen_inside
    assert lead.groups() == (f"{c.value:.3f}", f"{c.low:.3f}", f"{c.high:.3f}")
    a = report.pick.accuracy
    assert f"This strategy's own accuracy, measured the same way: {a.value:.3f} [{a.low:.3f}, {a.high:.3f}]" in card
    assert "Expected calibration error on held-out photos" in card
    sets = json.loads((out / "prediction_sets.json").read_text())
    assert sets["coverage"] == 0.9 and 0 < sets["threshold"] <= 1 and sets["items"] == 19 and sets["unit"] == "photo"


def test_the_app_shows_the_saved_models_probabilities_and_its_prediction_set(report):
    """app.py's page (transferlib.demo) without a browser; tests/browser/test_app.py serves and opens it."""
    out = report.files["app"].parent
    assert report.files["app"].read_text(encoding="utf-8") == demo.APP
    predictor = tl.load_predictor(out / "model.safetensors")
    sets = json.loads((out / "prediction_sets.json").read_text())
    image = open_rgb(photos_of("flower")[-1])
    probs, said = demo.classify(predictor, sets, image)
    assert probs == pytest.approx(predictor.predict(image).probabilities)     # the temperature applied once
    members = [c for c, p in probs.items() if 1 - p <= sets["threshold"]]
    assert said.startswith(f"**Prediction set:** {', '.join(members) or 'empty'}")
    assert "**Prediction set:** bird, flower, fruit." in demo.classify(predictor, {**sets, "threshold": 1.0}, image)[1]
    assert "empty" in demo.classify(predictor, {**sets, "threshold": -0.5}, image)[1]
    assert demo.classify(predictor, sets, None) == ({}, "Upload a photo first.")
    (out / "notes.txt").write_text("not a photo")
    with pytest.raises(ValueError, match="could not be read as a photo"):
        demo.classify(predictor, sets, out / "notes.txt")
    with pytest.raises(FileNotFoundError, match="prediction_sets.json.*--out"):
        demo.build(out / "model.safetensors")


def test_the_app_serves_this_computer_only(report, monkeypatch):
    """What app.py passes to Gradio: 127.0.0.1, no share link (Colab would turn one on), no analytics."""
    import gradio as gr

    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.update(kw, blocks=self))
    demo.serve(report.files["app"].parent, ["--port", "7999"])
    assert launched["server_name"] == "127.0.0.1" and launched["share"] is False and launched["server_port"] == 7999
    assert launched["ssr_mode"] is False and launched["mcp_server"] is False
    assert launched["blocks"].analytics_enabled is False


def _check_the_saved_model(result, folder):
    """The pick's out-of-fold logits are fold 1's probe, refitted here with scikit-learn, on its test photos;
    the saved model's probabilities are the average of the fold probes' logits, at the saved temperature."""
    predictor = tl.load_predictor(result.files["model"])
    model, weights = tl.build_classifier(predictor.config["arch"], len(predictor.classes))
    data = audit.readable(tl.load_image_folder(folder, transform=tl.image_transform(weights)))[0]
    x, y = (t.numpy() for t in tl.extract_features(model.backbone, data, progress=False))
    test, groups = result.fold == 0, audit.twins([p for p, _ in data.samples])[2]
    d = tl.fit_probe((x[~test], y[~test]), groups=groups[~test]).decision_function(x[test])
    refitted = np.stack([np.zeros_like(d), d], 1) if d.ndim == 1 else d
    assert np.allclose(result.pick.logits[test], refitted, atol=1e-3), "the folded probe is not the probe"
    mean = np.mean([x @ w.T + b for w, b in result.pick.heads], 0)
    expected = torch.softmax(torch.from_numpy(mean) / predictor.temperature, 1)
    assert torch.allclose(predictor.probabilities([p for p, _ in data.samples])[1].double(), expected, atol=1e-4)
    for s in range(1, len(result.pick.correct)):     # each other split: the nested CV on folds of seed + s
        folds = nested.outer_folds(y, groups, len(set(result.fold)), result.seed + s)
        logits = nested.nested_cv(x, y, folds, predictor.classes, groups)[0]
        assert np.array_equal(result.pick.correct[s], logits.argmax(1) == y), f"split {s} is not seed {s}'s folds"


def test_the_saved_model_is_the_fold_probes_averaged(report, folder):
    _check_the_saved_model(report, folder)


def test_two_classes_and_a_short_budget(tmp_path):
    """Two classes (one logit row is zero), and a budget that leaves room for the first strategy only."""
    folder = make_folder(tmp_path / "two", ("bird", "flower"))
    result = tl.try_strategies(folder, minutes=0.01, out=tmp_path / "out")
    assert [a.name for a in result.arms] == [next(iter(tryphotos.STRATEGIES))]
    (name, why), = result.skipped.items()
    assert "needs about" in why and "left" in why and f"not run: {name}" in str(result)
    assert len(result.arms[0].correct) == 1 and "1 of the 5 splits into folds asked for" in str(result)
    _check_the_saved_model(result, folder)


def test_random_labels_score_chance(tmp_path):
    """30 photos of all kinds, dealt into 3 classes at random: an honest nested CV scores about 1 in 3."""
    everything = sorted(PHOTOS.glob("*/*.png"))
    chosen = np.random.default_rng(0).choice(len(everything), 30, replace=False)
    for k, i in enumerate(chosen):
        (tmp_path / f"c{k % 3}").mkdir(exist_ok=True)
        shutil.copy(everything[i], tmp_path / f"c{k % 3}" / everything[i].name)
    accuracy = tl.try_strategies(tmp_path, minutes=0.01).arms[0].accuracy
    assert accuracy.low <= 1 / 3 <= accuracy.high, accuracy


def test_the_command_line_runs_and_refuses_with_exit_code_2(folder, tmp_path, capsys):
    done = subprocess.run([sys.executable, "-m", "transferlib", "try", str(folder), "--minutes", "0.01", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Pick: MobileNetV2" in done.stdout and (tmp_path / "out" / "report.html").exists()
    (tmp_path / "texts.csv").write_text("text\nno labels here\n")
    assert main(["try", str(tmp_path / "texts.csv")]) == 2
    assert "has no column 'label'" in capsys.readouterr().err
    assert main(["try", str(folder), "--minutes", "0"]) == 2
    assert "minutes=0.0" in capsys.readouterr().err


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: None, "no images in class sub-folders"),
    (lambda root: make_folder(root, ["bird"]), "one class only"),
    (lambda root: [make_folder(root, ["bird", "fish"]), [p.unlink() for p in list((root / "fish").iterdir())[1:]]],
     "'fish' has 1 readable photo"),
    (lambda root: [make_folder(root, ["bird", "fish"], 3), (root / "fish" / "x.jpg").write_bytes(b""),
                   (root / "fish" / sorted(os.listdir(root / "fish"))[0]).unlink()],
     "'fish' has 2 readable photos"),
    (lambda root: [make_folder(root, ["bird", "fish"], 3),         # a copy over the second fish: 2 distinct
                   shutil.copy(photos_of("fish")[0], root / "fish" / photos_of("fish")[1].name)],
     "'fish' has 2 distinct photos once identical photos"),
])
def test_bad_folders_are_refused_with_what_to_do(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(message)):
        tl.try_strategies(tmp_path)


@pytest.mark.parametrize("splits", [0, 1.5, True, "3"])
def test_splits_must_be_a_whole_number_from_one(folder, splits):
    with pytest.raises(ValueError, match="splits="):
        tl.try_strategies(folder, splits=splits)


def arm(name, correct, gflops):
    return nested.Arm(name, "x", np.asarray(correct), np.zeros((len(correct), 2)), np.zeros(1), [1.0], [], gflops,
                      1.0, 1.0, 1.0)


def test_the_pick_is_the_cheapest_shown_non_inferior():
    base = np.random.default_rng(0).random(2000)
    big, small = base < 0.90, base < 0.895                   # 0.5 points apart on 2,000 photos
    best, pick, _ = nested.choose([arm("big", big, 4.0), arm("small", small, 0.6)], 0.03)
    assert (best.name, pick.name) == ("big", "small")
    worse = (base < 0.85)[:60]                                  # a few points behind, on 60 photos
    best, pick, comparisons = nested.choose([arm("big", big[:60], 4.0), arm("small", worse, 0.6)], 0.03)
    assert pick.name == "big" and comparisons["small"].verdict.startswith("can't")   # 60 photos: not shown
    best, pick, _ = nested.choose([arm("b", big, 2.0), arm("a", big.copy(), 1.0)], 0.03)
    assert best.name == pick.name == "a"                      # a tie goes to the cheaper


def test_conformal_threshold_is_the_right_order_statistic():
    probs = np.tile([[0.9, 0.1]], (9, 1))
    probs[:, 0] = np.linspace(0.1, 0.9, 9)
    labels = np.zeros(9, int)                                 # scores 1 - p: 0.9, 0.8, ..., 0.1
    assert tl.conformal_threshold(probs, labels, 0.9) == pytest.approx(0.9)     # ceil(10 * 0.9) = 9th
    assert tl.conformal_threshold(probs, labels, 0.5) == pytest.approx(0.5)     # ceil(10 * 0.5) = 5th
    assert tl.conformal_threshold(probs[:3], labels[:3], 0.9) == 1.0            # too few: every class
    assert tl.prediction_sets(np.array([[0.6, 0.4]]), 0.5).tolist() == [[True, False]]


def test_conformal_sets_cover_new_items_as_promised():
    """Exchangeable items: on average a set holds the true class ceil(41 * 0.9) / 41 = 37/41 of the time
    (40 calibration items), at least the 90% promised."""
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(2000):
        labels = rng.integers(0, 4, 60)
        probs = torch.softmax(torch.from_numpy(rng.normal(size=(60, 4)) + 1.5 * np.eye(4)[labels]), 1).numpy()
        q = tl.conformal_threshold(probs[:40], labels[:40], 0.9)
        hits.append(tl.prediction_sets(probs[40:], q)[np.arange(20), labels[40:]].mean())
    assert abs(np.mean(hits) - 37 / 41) < 0.008, np.mean(hits)       # 4 standard errors


def test_identical_files_and_re_saved_copies_share_a_group(tmp_path):
    """A photo, a byte-identical copy, the photo re-saved as a smaller JPEG, and three other photos."""
    from PIL import Image

    first, *others = photos_of("bird", 4)
    image = tl.transforms.open_rgb(first)
    image.resize((image.width // 2, image.height // 2)).save(tmp_path / "small.jpg", quality=70)
    shutil.copy(first, tmp_path / "copy.png")
    files = [str(first), *map(str, others), str(tmp_path / "copy.png"), str(tmp_path / "small.jpg")]
    identical, near, group = audit.twins(files)
    assert identical == [[0, 4]] and [(i, j) for i, j, _ in near] == [(0, 5), (4, 5)], (identical, near)
    assert group.tolist() == [0, 1, 2, 3, 0, 0]
    assert (audit.dhash(Image.new("RGB", (20, 20), "white")) == 0).all()     # flat: no brighter neighbour


def test_a_cant_tell_says_how_many_more_items_a_gap_that_size_needs():
    from types import SimpleNamespace

    from transferlib import handover

    def report(difference):
        best = SimpleNamespace(name="mobilenet_v2, frozen + probe", correct=np.array([True] * 90 + [False] * 10))
        arm = SimpleNamespace(name="other", correct=np.array([True] * 80 + [False] * 20))
        arm.correct[:5] = False        # 15 photos only one of the two got right
        c = SimpleNamespace(difference=difference, low=-0.05, high=0.06, verdict="can't tell at this size",
                            noninferior=False, detectable=0.2)
        return SimpleNamespace(best=best, comparisons={"other": c}, margin=0.03, unit="photo", data=range(100)), arm

    disagree = float((report(0.1)[1].correct != report(0.1)[0].best.correct).mean())
    small = handover.reading(*report(0.004))
    need = tl.stats.items_needed(0.004, disagree)
    assert f"about {need:,} photos in all to show ({need / 100:,.0f} times the 100 you have)" in small, small
    large = handover.reading(*report(0.1))
    assert f"about {tl.stats.items_needed(0.1, disagree):,} photos in all to show (you have 100)" in large, large
    assert "could detect 0.200" in handover.reading(*report(0.0))
