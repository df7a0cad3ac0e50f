"""``tl.try_strategies`` and ``python -m transferlib try`` on a CSV of texts: the course's tweets in,
a model, a report, a model card and prediction sets out; TF-IDF learns no word from a tested text;
the saved model is the fold models averaged; the refusals, each before any model loads."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch

import transferlib as tl
from transferlib import audit, demo, nested, trytexts
from transferlib.__main__ import main
from transferlib.textmodel import TextModel, embed, save_text_model


def write_csv(path, rows, header=("text", "label")):
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture(scope="module")
def tweets():
    data = tl.load_dataset("tweet_sentiment_3class", "train")        # in label order: a sample of it
    return [(data.texts[i], data.classes[data.targets[i]])
            for i in np.random.default_rng(0).choice(len(data), 600, replace=False)]


@pytest.fixture(scope="module")
def csv_path(tweets, tmp_path_factory):
    """15 tweets of each sentiment; an identical copy of the first, and the second retyped in capitals and
    filed under another class."""
    rows = [r for c in ("negative", "neutral", "positive") for r in [x for x in tweets if x[1] == c][:15]]
    rows += [rows[0], (rows[1][0].upper() + "!!", "positive" if rows[1][1] != "positive" else "neutral")]
    return write_csv(tmp_path_factory.mktemp("my_texts") / "tweets.csv", rows)


@pytest.fixture(scope="module")
def report(csv_path, tmp_path_factory):
    return tl.try_strategies(csv_path, minutes=3, out=tmp_path_factory.mktemp("out"), splits=2)


def test_the_summary_reads_every_number_with_its_interval(report):
    text = str(report)
    assert "47 texts in 3 classes, in tweets.csv" in text and "unreadable" not in text
    assert "identical texts: 2 texts in 1 group, 0 across classes" in text
    assert "(the same words once case, punctuation and spacing are ignored): 2 texts in 1 pair, 1 across " \
           "classes" in " ".join(text.split())
    rows = re.findall(r"^  (\S.*?)\s{2,}(0\.\d{3}|1\.000) \[(\d\.\d{3}), (\d\.\d{3})\]", text, re.M)
    assert {name for name, *_ in rows} == set(trytexts.TEXT_STRATEGIES), text
    assert all(float(low) <= float(v) <= float(high) for _, v, low, high in rows)
    assert "over 2 splits into folds (seeds 0 to 1)" in text and "each text tested once per split" in text
    assert all(arm.correct.shape == (2, 47) for arm in report.arms)
    assert "photo" not in text, "a text report that speaks of photos"
    assert max(len(line) for line in text.splitlines() if not line.startswith("Wrote ")) <= 88


def test_twins_share_a_fold(report):
    assert report.fold[0] == report.fold[45] and report.fold[1] == report.fold[46]


def test_text_twins_are_retypings_only():
    texts = ["Great film!", "great   film", "Great film!", "!!!", "???", "a great film"]
    identical, near, group = audit.text_twins(texts)
    assert identical == [[0, 2]] and near == [(0, 1, 0)], (identical, near)
    assert group.tolist() == [0, 0, 0, 3, 4, 5]      # punctuation alone is no twin; other words are other texts


def test_tfidf_learns_no_word_from_the_texts_it_tests(report, csv_path):
    """Each outer fold's vectorizer knows only its training texts' words; its logits are scikit-learn's
    pipeline, C chosen by the same group-aware grid search, refitted here by hand."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline

    data = tl.load_text_csv(csv_path)
    texts, y, groups = data.texts, np.array(data.targets), audit.text_twins(data.texts)[2]
    folds = [(np.flatnonzero(report.fold != n), np.flatnonzero(report.fold == n)) for n in range(5)]
    logits, _, Cs, models = trytexts._tfidf_cv(texts, y, folds, data.classes, groups)
    arm = next(a for a in report.arms if a.arch == "tfidf")
    assert np.allclose(logits, arm.logits) and Cs == arm.Cs
    analyse = TfidfVectorizer(**tl.textmodel.TFIDF).build_analyzer()
    for (train, test), (vocabulary, *_) in zip(folds, models):
        seen = {term for i in train for term in analyse(texts[i])}
        assert set(vocabulary) <= seen, "a vectorizer learned words from the texts it tests"
        assert {term for i in test for term in analyse(texts[i])} - seen, "these folds share every word: no test"
    train, test = folds[0]
    search = GridSearchCV(make_pipeline(TfidfVectorizer(**tl.textmodel.TFIDF), LogisticRegression(max_iter=2000)),
                          {"logisticregression__C": list(trytexts.TFIDF_CS)},
                          cv=StratifiedGroupKFold(5, shuffle=True, random_state=0))
    search.fit([texts[i] for i in train], y[train], groups=groups[train])
    assert np.allclose(search.decision_function([texts[i] for i in test]), logits[test], atol=1e-6)


def test_both_kinds_of_saved_model_are_their_fold_models_averaged(report, csv_path, tmp_path):
    data = tl.load_text_csv(csv_path)
    folds = [(np.flatnonzero(report.fold != n), np.flatnonzero(report.fold == n)) for n in range(5)]
    groups = audit.text_twins(data.texts)[2]
    models = trytexts._tfidf_cv(data.texts, np.array(data.targets), folds, data.classes, groups)[3]
    tfidf = TextModel(data.classes, [(w, b) for *_, w, b in models], None, [m[0] for m in models],
                      [m[1] for m in models], temperature=1.7)
    predictor = tl.load_predictor(save_text_model(tmp_path / "tfidf.safetensors", tfidf))
    by_hand = np.mean([np.asarray(tl.textmodel.tfidf(v, idf).transform(data.texts) @ w.T) + b
                       for v, idf, w, b in models], 0)
    expected = torch.softmax(torch.from_numpy(by_hand) / 1.7, 1)
    assert torch.allclose(predictor.probabilities(data.texts)[1].double(), expected, atol=1e-4)
    minilm = next(a for a in report.arms if a.arch == "minilm")
    predictor = tl.load_predictor(save_text_model(tmp_path / "minilm.safetensors",
                                                  TextModel(data.classes, minilm.heads, "minilm")))
    x = embed(predictor.encoder, predictor.tokenizer, data.texts)
    assert np.allclose(x[report.fold == 0] @ minilm.heads[0][0].T + minilm.heads[0][1],
                       minilm.logits[report.fold == 0], atol=1e-3), "fold 1's probe is not what it tested"
    expected = torch.softmax(torch.from_numpy(np.mean([x @ w.T + b for w, b in minilm.heads], 0)), 1)
    assert torch.allclose(predictor.probabilities(data.texts)[1].double(), expected, atol=1e-4)
    assert (tmp_path / "minilm.safetensors").stat().st_size < 100_000, "the encoder is read by name, not saved"


def test_the_files_load_and_the_app_shows_the_saved_models_prediction(report):
    out = report.files["model"].parent
    predictor = tl.load_predictor(out / "model.safetensors")
    assert predictor.classes == ["negative", "neutral", "positive"] and predictor.unit == "text"
    assert predictor.predict("I love it").label in predictor.classes and len(predictor.predict(["a", "b"])) == 2
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Data\n- 47 texts: negative 16, neutral 15, positive 16." in card and "photo" not in card
    sets = json.loads((out / "prediction_sets.json").read_text())
    assert sets["items"] == 47 and sets["unit"] == "text"
    probs, said = demo.classify(predictor, sets, "what a lovely day")
    assert probs == pytest.approx(predictor.predict("what a lovely day").probabilities)
    members = [c for c, p in probs.items() if 1 - p <= sets["threshold"]]
    assert said.startswith(f"**Prediction set:** {', '.join(members) or 'empty'}") and "of the 47 texts" in said
    assert demo.classify(predictor, sets, "  ") == ({}, "Type a text first.")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 3 and re.search(r"<td>row \d+: ", page)


def test_the_command_line_runs_on_a_csv_with_a_short_budget(csv_path, tmp_path, capsys):
    """--minutes 0.01: TF-IDF runs (seconds), MiniLM is named as skipped."""
    assert main(["try", str(csv_path), "--minutes", "0.01", "--splits", "1", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "Pick: TF-IDF + logistic regression" in printed and "not run: MiniLM, frozen + probe: needs about" in printed
    assert tl.load_predictor(tmp_path / "out" / "model.safetensors").predict("fine").label


@pytest.mark.parametrize(("rows", "header", "message"), [
    ([("good", "pos")] * 3, ("text", "stars"), "has no column 'label'"),
    ([("good", "pos"), ("fine", "pos"), ("great", "pos"), ("bad", "neg"), ("awful", "neg")], None,
     "'neg' has 2 texts. Testing every text once"),
    ([("good", "pos"), ("fine", "pos"), ("great", "pos"), ("bad", "neg"), ("Bad!", "neg"), ("awful", "neg")], None,
     "'neg' has 2 distinct texts once identical texts and near twins count once"),
])
def test_bad_csvs_are_refused_with_what_to_do(tmp_path, rows, header, message):
    path = write_csv(tmp_path / "texts.csv", rows, header or ("text", "label"))
    with pytest.raises(ValueError, match=re.escape(message)):
        tl.try_strategies(path)
    assert main(["try", str(path)]) == 2


def test_an_arm_whose_C_sits_on_its_grids_edge_is_said(report):
    for arm in report.arms:
        edge = sum(C in (arm.grid[0], arm.grid[-1]) for C in arm.Cs)
        assert (f"{arm.name.split(',')[0]} chose C on the edge" in str(report)) == (2 * edge > len(arm.Cs))
    assert nested.Arm("x", "x", np.ones((1, 2)), np.zeros((2, 2)), np.zeros(1), [1.0], [], 0, 0, 0, 0).grid == \
        tl.probing.PROBE_CS
