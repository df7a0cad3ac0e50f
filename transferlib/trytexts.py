"""Your own texts, end to end: :func:`try_texts` is what :func:`~transferlib.tryout.try_strategies` runs
for a CSV of texts and labels (columns ``text`` and ``label``, read by ``load_text_csv``). It audits the
texts (identical ones, and retypings of one text), then tries two strategies under the same engine as
photos (nested cross-validation, splits, the pick, calibration and sets):

- **TF-IDF + logistic regression**: words and word pairs, weighted as lesson 4 does. The vectorizer is
  refitted on each training fold (and inside it, on each inner fold while ``C`` is chosen): no word
  count of a tested text reaches the model that tests it.
- **MiniLM, frozen + probe**: the sentence encoder's mean-pooled vectors and a probe whose ``C`` is
  chosen inside each training fold, as for photos.

    >>> report = try_texts("reviews.csv", minutes=5, out="review_model")   # as try_strategies("reviews.csv")

Fine-tuning and LoRA (lessons 4 and 6) are not tried here: each needs minutes per fold on a CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .audit import enough, text_twins
from .devices import pick_device
from .probing import one_blas_thread
from .textmodel import TFIDF, TextModel, embed
from .nested import Arm, TryReport, conclude, logit_rows, more_splits, nested_cv, outer_folds
from .yourdata import load_text_csv

__all__ = ["try_texts", "TEXT_STRATEGIES", "TFIDF_CS"]

TEXT_STRATEGIES = {"TF-IDF + logistic regression": "tfidf", "MiniLM, frozen + probe": "minilm"}
TFIDF_CS = (0.1, 1.0, 10.0, 100.0)        # lesson 4's grid for TF-IDF's C
ABOUT = {"tfidf": "no pretrained network: TF-IDF of words and word pairs, learned from the training texts",
         "minilm": "the sentence encoder all-MiniLM-L6-v2, pretrained, frozen, its token vectors averaged"}


def _tfidf_cv(texts: list[str], y: np.ndarray, folds: list, classes: list[str], groups: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, list, list]:
    """As ``nested.nested_cv`` for TF-IDF + logistic regression: out-of-fold logits, each outer fold's
    inner score, C and model (its vocabulary, idf weights and linear layer)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline

    logits, inner, Cs, models = np.zeros((len(y), len(classes))), [], [], []
    for n, (train, test) in enumerate(folds, start=1):
        distinct = [len(set(groups[train][y[train] == i])) for i in range(len(classes))]
        if min(distinct) < 2:
            few = ", ".join(c for c, k in zip(classes, distinct) if k < 2)
            raise ValueError(f"Outer fold {n}'s training texts hold fewer than 2 of {few} once copies and twins "
                             "are kept together: add texts of that class.")
        inside = StratifiedGroupKFold(min(5, min(distinct)), shuffle=True, random_state=0)
        search = GridSearchCV(make_pipeline(TfidfVectorizer(**TFIDF), LogisticRegression(max_iter=2000)),
                              {"logisticregression__C": list(TFIDF_CS)}, cv=inside)
        with one_blas_thread():
            search.fit([texts[i] for i in train], y[train], groups=groups[train])
        vectorizer, lr = search.best_estimator_[0], search.best_estimator_[-1]
        w, b = logit_rows(lr.coef_, lr.intercept_, len(classes))
        logits[test] = np.asarray(vectorizer.transform([texts[i] for i in test]) @ w.T) + b
        inner.append(search.best_score_)
        Cs.append(float(search.best_params_["logisticregression__C"]))
        models.append((vectorizer.get_feature_names_out().tolist(), vectorizer.idf_, w, b))
    return logits, np.array(inner), Cs, models


def _tfidf_cost(models: list, texts: list[str], classes: int) -> tuple[float, float, float]:
    """GFLOPs per text (two per stored weight a text's words meet, every fold model), milliseconds per
    text (16 texts through every fold model), and the megabytes of the models' numbers (float32)."""
    from .textmodel import tfidf

    vectorizers, sample = [tfidf(v, idf) for v, idf, *_ in models], texts[:16]
    start = time.perf_counter()
    nonzero = sum(v.transform(sample).nnz for v in vectorizers)     # the matrix product below is nnz x classes
    [np.asarray(v.transform(sample) @ w.T) + b for v, (*_, w, b) in zip(vectorizers, models)]
    ms = 1000 * (time.perf_counter() - start) / len(sample)
    megabytes = sum((w.size + idf.size) * 4 for _, idf, w, _ in models) / 2**20
    return 2 * nonzero * classes / len(sample) / 1e9, ms, megabytes


def _encoder_cost(encoder, tokenizer, texts: list[str]) -> tuple[float, float]:
    """GFLOPs per text, counted on 16 of the texts (padded as a batch pads them), and milliseconds per text."""
    from torch.utils.flop_counter import FlopCounterMode

    sample = texts[:16]
    with FlopCounterMode(display=False) as counter:
        embed(encoder, tokenizer, sample)                  # also the warm-up
    start = time.perf_counter()
    embed(encoder, tokenizer, sample)
    return counter.get_total_flops() / 1e9 / len(sample), 1000 * (time.perf_counter() - start) / len(sample)


def try_texts(path: str | Path, minutes: float, out: str | Path | None, device: str, margin: float,
              coverage: float, seed: int, splits: int, start: float) -> TryReport:
    """:func:`~transferlib.tryout.try_strategies` for a CSV of texts and labels (arguments checked there;
    ``start``: when its clock started)."""
    from .heads import MeanPooledEncoder
    from .models import load_text_model

    data = load_text_csv(path)
    texts, y, notes = data.texts, np.array(data.targets), []
    identical, near, groups = text_twins(texts)
    per_class = enough(path, y, data.classes, groups, unit="text")
    budget, folds = 60.0 * minutes, [outer_folds(y, groups, min(5, per_class), seed)]
    arms, skipped, models, features, cv_seconds = [], {}, {}, {}, 0.0
    for name, arch in TEXT_STRATEGIES.items():
        arm_start = time.perf_counter()
        if arch == "tfidf":            # first: it runs in seconds, so there is always something to report
            logits, inner, Cs, models[name] = _tfidf_cv(texts, y, folds[0], data.classes, groups)
            heads = [(w, b) for *_, w, b in models[name]]
            gflops, ms, megabytes = _tfidf_cost(models[name], texts, len(data.classes))
            cv_seconds += time.perf_counter() - arm_start
        else:
            bert, tokenizer = load_text_model(arch)
            encoder = MeanPooledEncoder(bert).eval().to(pick_device(device))
            gflops, ms = _encoder_cost(encoder, tokenizer, texts)
            need, left = 1.5 * ms * len(y) / 1000 + 5.0, budget - (time.perf_counter() - start)
            if need > left:
                skipped[name] = f"needs about {need:.0f} s (measured {ms:.0f} ms per text); {max(left, 0):.0f} s left"
                continue
            features[name] = x = embed(encoder, tokenizer, texts)
            cv_start = time.perf_counter()
            logits, inner, Cs, heads = nested_cv(x, y, folds[0], data.classes, groups, unit="text")
            cv_seconds += time.perf_counter() - cv_start
            megabytes = sum(p.numel() for p in encoder.parameters()) * 4 / 2**20
        arms.append(Arm(name, arch, (logits.argmax(1) == y)[None], logits, inner[None], Cs, heads, gflops, ms,
                        megabytes, time.perf_counter() - arm_start, ABOUT[arch], *[TFIDF_CS] * (arch == "tfidf")))

    def cv(arm: Arm, split: list) -> tuple[np.ndarray, np.ndarray]:
        if arm.arch == "tfidf":
            return _tfidf_cv(texts, y, split, data.classes, groups)[:2]
        return nested_cv(features[arm.name], y, split, data.classes, groups, unit="text")[:2]

    def final(pick: Arm) -> tuple[TextModel, None]:
        if pick.arch == "tfidf":
            vocabularies, idfs = [m[0] for m in models[pick.name]], [m[1] for m in models[pick.name]]
            return TextModel(data.classes, pick.heads, None, vocabularies, idfs), None
        return TextModel(data.classes, pick.heads, encoder=pick.arch), None

    more_splits(arms, cv, y, groups, folds, splits, seed, 1.5 * cv_seconds + 1.0,
                budget - (time.perf_counter() - start), notes)
    return conclude(data, arms, folds, groups, margin, coverage, seed, start, budget, notes, out, final,
                    unreadable=[], duplicates=identical, near=near, skipped=skipped, unit="text",
                    source=Path(path).name, near_rule="the same words once case, punctuation and spacing are ignored")
