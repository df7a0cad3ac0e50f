"""Probing: what a network computes at each depth, how similar two representations are, and
linear probes (a logistic regression on frozen features) with ``C`` chosen on validation.

    >>> acts, labels = activations(model, ["features.3", "features.10"], images)   # {name: (N, C)}
    >>> linear_cka(acts["features.3"], acts["features.10"])
    >>> probe = fit_probe((train_x, train_y), val=(val_x, val_y))          # C chosen on validation
    >>> by_depth = probe_by_depth(model, ["features.3", "features.10"], train_set, val_set, test_set)

Spatial maps (N, C, H, W) are averaged over H and W, token sequences (N, T, C) over T,
so every layer gives one vector per input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .datasets import make_loader, role_of
from .devices import batches, device_of, mode
from .features import Features

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = ["activations", "linear_cka", "logistic_probe", "Probe", "fit_probe", "probe_by_depth", "DepthProbe",
           "PROBE_CS"]

PROBE_CS = (0.01, 0.1, 1.0, 10.0)  # every probe in the course gets the same small grid of C


def _pool(out: Any) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "last_hidden_state", out)
    if out.dim() == 4:
        return out.mean(dim=(2, 3))
    if out.dim() == 3:
        return out.mean(dim=1)
    return out.flatten(1)


def activations(model: nn.Module, layers: list[str], data: torch.Tensor | Dataset | DataLoader,
                pool: bool = True, batch_size: int = 16,
                progress: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Outputs of the named submodules (forward hooks), in eval mode without gradients, on the model's
    device; the activations come back on the CPU.

    ``data`` is a batch tensor, a Dataset or a DataLoader of ``(x, y)``. Returns the
    activations by layer name and the labels (``None`` for a bare tensor). With
    ``pool=False`` full maps are kept: mind the memory. Batches of 16, as in
    :func:`~transferlib.features.extract_features`, keep 224 px inputs to a few hundred MB.

    >>> acts, labels = activations(model.backbone, ["features.3", "features.18"], val_set)
    >>> acts["features.18"].shape                       # (items, 1280): pooled over height and width
    """
    missing = [name for name in layers if name not in dict(model.named_modules())]
    if missing:
        raise ValueError(f"{type(model).__name__} has no module {missing[0]!r}. Names look like: "
                         f"{', '.join(n for n, _ in list(model.named_modules())[1:6])}...")
    device = device_of(model)
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda m, i, o, name=name: store[name].append((_pool(o) if pool else o).float().cpu()))
        for name in layers]
    labels = []
    try:
        with mode(model, training=False), torch.inference_mode():
            if torch.is_tensor(data):
                model(data.to(device))
            else:
                loader = data if isinstance(data, DataLoader) else make_loader(data, batch_size)
                for x, y in batches(loader, device, "activations", progress):
                    model(x)
                    labels.append(torch.as_tensor(y))
    finally:
        for h in hooks:
            h.remove()
    return {name: torch.cat(parts) for name, parts in store.items()}, (torch.cat(labels) if labels else None)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) between two sets of activations of the same inputs.

    ``CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` on column-centred matrices;
    1 means the same representation up to rotation and scale, 0 means unrelated. Activations
    that are the same for every input give ``nan``, with a note saying why. Full maps (``pool=False``)
    are flattened; wider than there are inputs, the same CKA comes from ``<Xc Xc^T, Yc Yc^T>`` (n x n).

    >>> linear_cka(before["features.18"], after["features.18"])     # e.g. 0.85
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA compares the same inputs: got {x.shape[0]} and {y.shape[0]} rows.")
    if x.shape[0] < 2:
        raise ValueError(f"CKA compares how inputs sit relative to each other, so it needs at least 2 rows (inputs); "
                         f"got {x.shape[0]}. A few hundred give a stable value.")
    x, y = x.double().flatten(1), y.double().flatten(1)
    if not (x.isfinite().all() and y.isfinite().all()):
        raise ValueError("The activations hold NaN or inf (a diverged run?): CKA cannot compare them. Check the "
                         "model's weights first.")
    x, y = x - x.mean(0), y - y.mean(0)
    constant = [name for name, a in (("first", x), ("second", y)) if not a.abs().max() > 0]
    if constant:
        print(f"linear_cka: the {' and '.join(constant)} activations are constant (collapsed): CKA is nan.")
        return math.nan
    if x.shape[1] + y.shape[1] > 2 * x.shape[0]:   # p x p would be the larger: 16,384 features, 500 inputs
        x, y = x @ x.T, y @ y.T                     # ||Yc^T Xc||^2 = <XcXc^T, YcYc^T>, ||Xc^T Xc|| = ||XcXc^T||
        return float((x * y).sum() / (x.norm() * y.norm()))
    return float((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm()))


def _check_pair(pair: Any, name: str, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(features, labels)`` as arrays: features items x dimensions, one label per item, ``classes`` or more."""
    if not isinstance(pair, (tuple, list, Features)) or len(pair) != 2:
        raise TypeError(f"{name} must be a pair (features, labels), e.g. extract_features(backbone, data); "
                        f"got a {type(pair).__name__}.")
    x, y = np.asarray(pair[0]), np.asarray(pair[1])
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{name} features must be items x dimensions with one label per item: got features of "
                         f"shape {x.shape} and labels of shape {y.shape}. For one feature per item, use "
                         "features.reshape(-1, 1).")
    if len(np.unique(y)) < classes:
        needs = "examples of at least 2 classes to learn to tell them apart" if classes > 1 else "an item to score"
        raise ValueError(f"The {name} labels hold {'no item' if not len(y) else f'one class only ({y[0]})'}: a "
                         f"probe needs {needs}.")
    return x, y


def one_blas_thread() -> Any:
    """One BLAS thread for the solver: after a forward pass PyTorch's threads fight BLAS's for the cores
    (bench/probe_threads.py: 4.5-14x faster on 2 cores, the same C). ``with one_blas_thread(): lr.fit(x, y)``"""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


def logistic_probe(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                   test_labels: torch.Tensor, C: float = 1.0, max_iter: int = 2000) -> tuple[float, Any]:
    """Standardise, then scikit-learn's multinomial logistic regression at a fixed ``C``. Returns
    (test accuracy, pipeline). To choose ``C``, use :func:`fit_probe` on a validation split.

    >>> acc, probe = logistic_probe(train_x, train_y, test_x, test_y, C=1.0)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _check_pair((train_features, train_labels), "train")
    tx, ty = _check_pair((test_features, test_labels), "test", classes=1)
    with one_blas_thread():
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter)).fit(x, y)
    return float(probe.score(tx, ty)), probe


@dataclass(frozen=True, eq=False)
class Probe:
    """What :func:`fit_probe` returns: the fitted scikit-learn ``pipeline`` (standardise, then the
    logistic regression), the ``C`` it chose and ``val_scores``, the validation accuracy of every
    ``C`` tried (or its mean over the folds).

    It predicts and scores as the pipeline does, and ``probe[0]``, ``probe[-1]`` are its steps; hand
    ``probe.pipeline`` to scikit-learn functions that take an estimator.

    >>> probe = fit_probe((train_x, train_y), val=(val_x, val_y))
    >>> probe.C, probe.val_scores[probe.C], probe[-1].coef_.shape
    (0.1, 0.875, (6, 1280))
    >>> correct = probe.predict(test_x) == test_y
    """

    pipeline: Pipeline
    C: float
    val_scores: dict[float, float]

    def predict(self, x: Any) -> np.ndarray:
        return self.pipeline.predict(x)

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.pipeline.predict_proba(x)

    def decision_function(self, x: Any) -> np.ndarray:
        return self.pipeline.decision_function(x)

    def score(self, x: Any, y: Any) -> float:
        return self.pipeline.score(x, y)

    def __getitem__(self, step: int | str | slice) -> Any:
        return self.pipeline[step]


def fit_probe(train: tuple[Any, Any], val: tuple[Any, Any] | None = None, Cs: Sequence[float] = PROBE_CS,
              max_iter: int = 5000, groups: Any = None) -> Probe:
    """A standardised logistic regression on ``train = (features, labels)`` with its ``C`` chosen on
    ``val``: scikit-learn's ``LogisticRegressionCV`` over a ``PredefinedSplit`` fits the whole path of
    ``C`` values on the training pair (each fit warm-started from the last) and scores each on the
    validation pair; with ``refit=False`` the model it keeps is the training pair's fit at the best ``C``.
    The features are standardised with the training pair's statistics only.

    ``val=None``: no labels outside ``train``. ``C`` is chosen by stratified cross-validation inside
    the training labels (as many folds as the rarest class allows, at most 5), then the probe is
    refitted on all of them. ``LogisticRegressionCV`` fits each fold's path of ``C`` values
    warm-started (10.7 s against a grid search's 15.6 s on 1,000 silhouettes x 1,280 features); the
    standardisation uses the training features' statistics, which involve no label. This is the few-shot way: "k labels
    per class" then counts every label the probe saw, the ones used for choosing too. ``groups`` (one
    per training item: copies and near twins share one) keeps each group in one inner fold, so that
    no ``C`` is scored on a copy of what it trained on.

    Returns a :class:`Probe`: the pipeline, ``.C`` and ``.val_scores`` ({C: validation accuracy, or the
    mean over folds}). A test split is refused as ``val`` (see :func:`transferlib.stats.choose`).

    >>> probe = fit_probe((train_x, train_y), val=(val_x, val_y)); probe.C, probe.predict(test_x)
    >>> probe = fit_probe((train_x, train_y))          # C by cross-validation inside the k labels
    """
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import PredefinedSplit, StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    tx, ty = _check_pair(train, "train")
    if groups is not None and (val is not None or np.shape(groups) != ty.shape):
        raise ValueError(f"groups= is one group per training item ({len(ty)} here), for choosing C inside the "
                         f"training labels (val=None); got shape {np.shape(groups)}"
                         f"{' and a val pair' if val is not None else ''}.")
    if val is None:
        labels, groups = np.unique(ty), None if groups is None else np.asarray(groups)
        per_class = [int((ty == c).sum()) if groups is None else len(set(groups[ty == c])) for c in labels]
        folds = min(5, min(per_class))
        if folds < 2:
            few = ", ".join(f"{c} has {n}" for c, n in zip(labels, per_class) if n < 2)
            raise ValueError("fit_probe(val=None) chooses C by cross-validation inside the training labels and "
                             f"needs at least 2 of every class{' in separate groups' * (groups is not None)} "
                             f"(class {few}): add items of that class, or pass val=(features, labels).")
        scaler = StandardScaler().fit(tx)
        inner = StratifiedKFold(folds, shuffle=True, random_state=0) if groups is None else \
            list(StratifiedGroupKFold(folds, shuffle=True, random_state=0).split(tx, ty, groups))
        search = LogisticRegressionCV(Cs=list(Cs), l1_ratios=(0.0,), cv=inner,
                                      scoring="accuracy", max_iter=max_iter, use_legacy_attributes=False)
        with one_blas_thread():
            search.fit(scaler.transform(tx), ty)      # refit=True: the best C, refitted on every training label
        pipeline = Pipeline([("standardscaler", scaler), ("logisticregression", search)])
        scores = {float(c): float(v) for c, v in zip(Cs, search.scores_.mean(axis=0)[0])}  # the folds' mean
        return Probe(pipeline, float(search.C_), scores)
    if role_of(val) == "test":
        raise ValueError("fit_probe() was given test features as val: C would be chosen on the test set. Extract "
                         "features of a validation split (split_per_class of the training data) instead.")
    vx, vy = np.asarray(val[0]), np.asarray(val[1])  # read as val[0], val[1]: not _check_pair's tuple test,
    if vx.ndim != 2 or vx.shape[1] != tx.shape[1] or vy.shape != (len(vx),):  # so any indexable pair works
        raise ValueError(f"val must be (features, labels) like train's: features of shape (items, {tx.shape[1]}) "
                         f"and one label per item; got {vx.shape} and {vy.shape}.")
    scaler = StandardScaler().fit(tx)
    folds = PredefinedSplit(np.r_[np.full(len(ty), -1), np.zeros(len(vy), int)])  # train on train, score on val
    search = LogisticRegressionCV(Cs=list(Cs), l1_ratios=(0.0,), cv=folds, refit=False, scoring="accuracy",
                                  max_iter=max_iter, use_legacy_attributes=False)
    with one_blas_thread():
        search.fit(scaler.transform(np.concatenate([tx, vx])), np.concatenate([ty, vy]))
    pipeline = Pipeline([("standardscaler", scaler), ("logisticregression", search)])
    scores = {float(c): float(v) for c, v in zip(Cs, search.scores_.ravel())}  # one fold, one l1 ratio
    return Probe(pipeline, float(search.C_), scores)


@dataclass
class DepthProbe:
    """One layer's probe: its ``C`` and validation accuracy, and its per-item correctness on the test data."""

    layer: str
    C: float
    val_accuracy: float
    test_correct: np.ndarray | None

    @property
    def test_accuracy(self) -> float | None:
        return None if self.test_correct is None else float(self.test_correct.mean())


def probe_by_depth(model: nn.Module, layers: list[str], train: Dataset | DataLoader, val: Dataset | DataLoader,
                   test: Dataset | DataLoader | None = None, Cs: Sequence[float] = PROBE_CS,
                   progress: bool = True) -> dict[str, DepthProbe]:
    """A logistic-regression probe on each layer's pooled activations, ``C`` chosen on ``val`` per layer
    (:func:`fit_probe`), scored on ``test`` if given. Pick the layer on validation; read the test once.

    >>> by_depth = probe_by_depth(model, blocks, train_set, val_set, test_set)
    >>> best = max(by_depth.values(), key=lambda p: p.val_accuracy)
    """
    if role_of(val) == "test":  # before any activation is extracted
        raise ValueError("probe_by_depth() was given a test split as val. Hold out a validation split "
                         "(split_per_class of the training data) to choose C and the layer on.")
    parts = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    acts = {part: activations(model, layers, data, progress=progress) for part, data in parts.items()}
    out = {}
    for name in layers:
        val_pair = acts["val"][0][name], acts["val"][1]
        probe = fit_probe((acts["train"][0][name], acts["train"][1]), val_pair, Cs)
        correct = None
        if test is not None:
            correct = probe.predict(np.asarray(acts["test"][0][name])) == np.asarray(acts["test"][1])
        out[name] = DepthProbe(name, probe.C, probe.val_scores[probe.C], correct)
    return out
