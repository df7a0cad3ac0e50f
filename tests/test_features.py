"""Feature extraction and its cache, heads and probes on features, probing by depth, plots."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

import transferlib as tl

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def setup():
    model, weights = tl.build_classifier("mobilenet_v2", 6)
    transform = tl.image_transform(weights, size=96)
    train = tl.load_dataset("tuxpaint_photos", "train", transform=transform)
    test = tl.load_dataset("tuxpaint_photos", "test", transform=transform)
    return model, weights, train, test


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path))


def test_extraction_is_eval_mode_without_gradients(setup):
    model, _, _, test = setup
    model.train()
    feats, labels = tl.extract_features(model.backbone, test, progress=False)
    assert model.training, "the caller's mode is restored"
    assert feats.shape == (34, 1280) and not feats.requires_grad
    assert labels.tolist() == test.targets
    x = torch.stack([test[i][0] for i in range(4)])
    device = next(model.parameters()).device  # extraction may have moved it to a GPU
    with torch.no_grad():
        expected = model.backbone.eval()(x.to(device)).cpu()
    model.train()
    relative_error = float((feats[:4] - expected).norm() / expected.norm())
    assert relative_error < (1e-5 if device.type == "cpu" else 3e-2)  # GPUs convolve in TF32


def test_cache_is_reused_and_never_stale(setup, tmp_path):
    model, weights, train, test = setup
    first = tl.cached_features(model.backbone, test, progress=False)
    files = list((tmp_path / "features").glob("*.safetensors"))
    assert len(files) == 1
    again = tl.cached_features(model.backbone, test, progress=False)
    assert torch.equal(first[0], again[0]) and len(list((tmp_path / "features").iterdir())) == 1

    other_transform = tl.load_dataset("tuxpaint_photos", "test", transform=tl.image_transform(weights, size=64))
    tl.cached_features(model.backbone, other_transform, progress=False)
    tl.cached_features(model.backbone, tl.k_shot(train, 2), progress=False)
    changed = tl.build_classifier("mobilenet_v2", 6, pretrained=False)[0].backbone
    tl.cached_features(changed, test, progress=False)
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 4

    raw = tl.load_dataset("tuxpaint_photos", "test")                 # the same photos through with_transform
    tl.cached_features(model.backbone, tl.with_transform(raw, tl.image_transform(weights, size=64)), progress=False)
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 5
    tl.cached_features(model.backbone, tl.with_transform(raw, tl.image_transform(weights, size=96)), progress=False)
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 6


def test_features_computed_another_way_are_not_reused(setup, tmp_path, monkeypatch):
    model, _, _, test = setup
    tl.cached_features(model.backbone, test, progress=False)
    monkeypatch.setattr(tl.features, "EXTRACTION", "a later way of computing features")
    tl.cached_features(model.backbone, test, progress=False)
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 2


def test_heads_and_probe_on_cached_features(setup):
    model, _, train, test = setup
    f, y = tl.cached_features(model.backbone, train, progress=False)
    ft, yt = tl.cached_features(model.backbone, test, progress=False)
    head, history = tl.train_head(f, y, 6, epochs=40, lr=1e-3, val=(ft, yt), progress=False)
    assert history.best_val_acc > 0.6  # 6 classes, majority 0.38
    mlp, _ = tl.train_head(f, y, 6, hidden=64, dropout=0.2, epochs=10, progress=False)
    assert sum(p.numel() for p in mlp.parameters()) == 1280 * 64 + 64 + 64 * 6 + 6
    acc, probe = tl.logistic_probe(f, y, ft, yt)
    assert acc > 0.6 and probe.predict(ft.numpy()).shape == (34,)


def test_text_features():
    encoder, tokenizer = tl.build_text_classifier("minilm", 2)
    texts = tl.load_dataset("sms_spam", "test")
    few = torch.utils.data.Subset(texts, range(8))
    feats, labels = tl.extract_features(encoder.backbone, few, tokenizer=tokenizer, progress=False)
    assert feats.shape == (8, 384) and labels.tolist() == texts.targets[:8]


def test_activations_cka_and_probe_by_depth(setup, monkeypatch):
    model, _, train, test = setup
    layers = ["features.2", "features.9", "features.18"]
    acts, labels = tl.activations(model.backbone, layers, test, progress=False)
    assert [acts[name].shape for name in layers] == [(34, 24), (34, 64), (34, 1280)]
    assert labels.tolist() == test.targets
    full, _ = tl.activations(model.backbone, ["features.2"], torch.randn(2, 3, 64, 64), pool=False)
    assert full["features.2"].shape == (2, 24, 16, 16)
    with pytest.raises(ValueError, match="no module 'features.99'"):
        tl.activations(model.backbone, ["features.99"], test)

    val, fit_set = tl.split_per_class(train, 3)
    scores = tl.probe_by_depth(model.backbone, layers, fit_set, val, test, progress=False)
    assert set(scores) == set(layers) and all(0 <= p.val_accuracy <= 1 for p in scores.values())
    assert all(p.C in tl.probing.PROBE_CS and len(p.test_correct) == 34 for p in scores.values())
    assert scores["features.18"].test_accuracy > scores["features.2"].test_accuracy  # depth helps on photos
    monkeypatch.setattr(tl.probing, "activations", lambda *a, **k: pytest.fail("extracted before refusing"))
    with pytest.raises(ValueError, match="test split as val"):   # refused before any extraction
        tl.probe_by_depth(model.backbone, layers, train, test, progress=False)


def test_a_probe_chooses_C_on_validation_and_refits_on_training_only(setup):
    model, _, train, test = setup
    val, fit_set = tl.split_per_class(train, 3)
    tr, va, te = (tl.cached_features(model.backbone, d, progress=False) for d in (fit_set, val, test))
    assert [tr.role, va.role, te.role] == ["train", "validation", "test"]
    probe = tl.fit_probe(tr, va, Cs=(0.001, 1.0))
    by_hand = {C: tl.logistic_probe(*tr, *va, C=C)[0] for C in (0.001, 1.0)}
    assert probe.val_scores == pytest.approx(by_hand) and probe.C == max(by_hand, key=by_hand.get)
    assert probe.score(te[0].numpy(), te[1].numpy()) == pytest.approx(tl.logistic_probe(*tr, *te, C=probe.C)[0])
    with pytest.raises(ValueError, match="test features as val"):
        tl.fit_probe(tr, te)


def test_linear_cka_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 20, generator=g)
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g))
    assert tl.linear_cka(x, x) == pytest.approx(1.0)
    assert tl.linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)  # rotation and scale invariant
    assert tl.linear_cka(x, torch.randn(200, 30, generator=g)) < 0.2
    with pytest.raises(ValueError, match="same inputs"):
        tl.linear_cka(x, x[:10])


def test_linear_cka_of_full_maps_wider_than_the_inputs_is_the_same_number():
    """Full maps (8 x 6 x 6 = 288 numbers for 40 inputs) take the n x n route; the feature-space
    formula, written out here, must give the same value, for related and unrelated maps."""
    g = torch.Generator().manual_seed(1)
    before = torch.randn(40, 8, 6, 6, generator=g)
    for after in (before + 0.5 * torch.randn(40, 8, 6, 6, generator=g), torch.randn(40, 3, 10, 10, generator=g)):
        x, y = (a.double().flatten(1) for a in (before, after))
        x, y = x - x.mean(0), y - y.mean(0)
        by_features = float((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm()))
        assert tl.linear_cka(before, after) == pytest.approx(by_features, rel=1e-9)
    assert 0.5 < tl.linear_cka(before, before + 0.5 * torch.randn(40, 8, 6, 6, generator=g)) < 1
    assert tl.linear_cka(before, 2.0 * before) == pytest.approx(1.0)


def test_plots_return_figures(setup):
    model, weights, _, test = setup
    first = model.backbone.features[0][0].weight                      # 32 filters
    assert sum(bool(ax.images) for ax in tl.plot_filters(first).axes) == 32
    acts, _ = tl.activations(model.backbone, ["features.1"], test[0][0].unsqueeze(0), pool=False)
    assert sum(bool(ax.images) for ax in tl.plot_feature_maps(acts).axes) == 6    # 6 channels of one layer
    images = [tl.load_dataset("tuxpaint_photos", "test")[i][0] for i in range(4)]
    grid = tl.image_grid(images, [0, 1, 2, 3], [0, 1, 0, 3], test.classes, cols=2)
    shown = [ax for ax in grid.axes if ax.images]
    assert len(shown) == 4 and all(test.classes[i] in ax.get_title() for ax, i in zip(shown, [0, 1, 2, 3]))
    assert [ax.title.get_color() for ax in shown] == ["black", "black", "red", "black"]   # the wrong one in red
    assert sum(bool(ax.images) for ax in tl.image_grid([test[0][0]], [0]).axes) == 1
    with pytest.raises(ValueError, match="conv weight"):
        tl.plot_filters(torch.zeros(3, 3))


def test_cache_refuses_transforms_it_cannot_pin_down(setup, tmp_path):
    from torchvision import transforms as T

    model, weights, _, _ = setup
    lam = tl.load_dataset("tuxpaint_photos", "test",
                          transform=T.Compose([T.Lambda(lambda im: im), tl.image_transform(weights, size=32)]))
    with pytest.raises(TypeError, match="Pass key="):
        tl.cached_features(model.backbone, lam, progress=False)
    feats, _ = tl.cached_features(model.backbone, lam, key="tux-test-lambda", progress=False)
    assert feats.shape == (34, 1280)


def test_fingerprint_of_a_bfloat16_model():
    from transferlib.features import fingerprint

    net = torch.nn.Linear(3, 2).to(torch.bfloat16)
    assert len(fingerprint(net)) == 64


def test_a_few_shot_probe_chooses_C_inside_its_own_labels():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [3, 10, 10])                 # the rarest class has 3: 3 folds, not 5
    x = rng.normal(size=(23, 8))
    x[:, 0] += 2 * y                                      # one informative feature
    probe = tl.fit_probe((x, y), Cs=(0.001, 1.0))
    scores = {}
    z = (x - x.mean(0)) / x.std(0)                        # standardised with the training features (no labels)
    for C in (0.001, 1.0):                                # 3 stratified folds by hand
        right = []
        for fold in range(3):
            held = np.concatenate([np.flatnonzero(y == c)[fold::3] for c in range(3)])
            held = np.isin(np.arange(23), held)
            lr = LogisticRegression(C=C, max_iter=5000).fit(z[~held], y[~held])
            right.append(lr.score(z[held], y[held]))
        scores[C] = np.mean(right)
    assert set(probe.val_scores) == {0.001, 1.0} and len(probe[-1].coef_) == 3
    assert probe.C == 1.0 and scores[1.0] > scores[0.001]  # the informative feature needs weak regularisation
    refit = LogisticRegression(C=probe.C, max_iter=5000).fit(z, y)
    assert np.allclose(probe[0].mean_, x.mean(0))
    assert np.allclose(probe[-1].coef_, refit.coef_, atol=2e-3)    # the same optimum, up to solver tolerance
    with pytest.raises(ValueError, match="at least 2 of every class"):
        tl.fit_probe((x[:4], np.array([0, 1, 2, 2])))


def test_every_probe_fits_with_one_blas_thread(monkeypatch):
    """Both ways of choosing C, and a fixed C, fit under one BLAS thread (bench/probe_threads.py: after a
    forward pass PyTorch's threads and BLAS's fight for the cores); outside the fits BLAS is left alone."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []

    def recording(fit):
        def wrapper(self, *args, **kwargs):
            seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
            return fit(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(LogisticRegressionCV, "fit", recording(LogisticRegressionCV.fit))
    monkeypatch.setattr(LogisticRegression, "fit", recording(LogisticRegression.fit))
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    x = rng.normal(size=(20, 4)) + y[:, None]
    with threadpool_limits(2, "blas"):                 # as if BLAS had both cores
        tl.fit_probe((x, y), Cs=(0.1, 1.0))
        tl.fit_probe((x[::2], y[::2]), (x[1::2], y[1::2]), Cs=(0.1, 1.0))
        tl.logistic_probe(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x), torch.from_numpy(y))
        after = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
    assert len(seen) >= 3 and all(threads == {1} for threads in seen), seen
    assert after == {2} or not after, after            # the limit ends with the fit


def test_groups_keep_copies_in_one_inner_fold():
    """Noise features, one label per group of 4 near-copies: without groups the inner folds score a
    C on copies of what it trained on and see far above chance; with them, about chance."""
    rng = np.random.default_rng(0)
    base, y_base = rng.normal(size=(30, 20)), np.arange(30) % 2
    x = np.repeat(base, 4, 0) + 0.01 * rng.normal(size=(120, 20))
    y, groups = np.repeat(y_base, 4), np.repeat(np.arange(30), 4)
    leaky, grouped = tl.fit_probe((x, y), Cs=(0.1, 10.0)), tl.fit_probe((x, y), Cs=(0.1, 10.0), groups=groups)
    assert max(leaky.val_scores.values()) > 0.9, leaky.val_scores
    assert max(grouped.val_scores.values()) < 0.75, grouped.val_scores
    with pytest.raises(ValueError, match="one group per training item"):
        tl.fit_probe((x, y), groups=groups[:10])
    with pytest.raises(ValueError, match="in separate groups"):
        tl.fit_probe((x, y), groups=y)              # one group per class: no fold can hold a class out


def test_fit_probe_returns_a_probe_that_declares_C_and_its_scores_and_predicts_like_its_pipeline():
    import pickle

    rng = np.random.default_rng(1)
    y, vy, ty = (np.repeat([0, 1, 2], n) for n in (12, 5, 8))
    x, vx, tx = (rng.normal(size=(len(labels), 5)) + labels[:, None] * [1.5, 0, 0, 0, 0] for labels in (y, vy, ty))
    for probe in (tl.fit_probe((x, y), (vx, vy), Cs=(0.01, 1.0)), tl.fit_probe((x, y), Cs=(0.01, 1.0))):
        assert type(probe) is tl.Probe and vars(probe).keys() == {"pipeline", "C", "val_scores"}
        assert probe.C in (0.01, 1.0) and set(probe.val_scores) == {0.01, 1.0}
        assert probe.val_scores[probe.C] == max(probe.val_scores.values())
        pipeline = probe.pipeline
        assert [name for name, _ in pipeline.steps] == ["standardscaler", "logisticregression"]
        assert probe[-1] is pipeline[-1] and probe[0] is pipeline[0] and probe["standardscaler"] is pipeline[0]
        assert np.array_equal(probe.predict(tx), pipeline.predict(tx))
        assert np.array_equal(probe.predict_proba(tx), pipeline.predict_proba(tx))
        assert np.array_equal(probe.decision_function(tx), pipeline.decision_function(tx))
        assert probe.score(tx, ty) == pipeline.score(tx, ty) > 0.5
        assert probe[-1].coef_.shape == (3, 5)
        again = pickle.loads(pickle.dumps(probe))
        assert again.C == probe.C and np.array_equal(again.predict(tx), probe.predict(tx))


def test_features_declare_their_role_and_unpack_as_a_pair():
    from transferlib.features import Features

    f = Features(torch.ones(3, 2), torch.tensor([0, 1, 0]), "validation")
    x, y = f
    assert x is f.features and y is f.labels and f[0] is x and f[-1] is y and f[:] == (x, y)
    assert len(f) == 2 and list(f) == [x, y] and tl.role_of(f) == "validation"
    assert Features(x, y).role is None
    assert tl.fit_probe(Features(torch.randn(6, 2), torch.tensor([0, 1] * 3))).C in tl.probing.PROBE_CS
    with pytest.raises(AttributeError):
        f.extra = 1                                    # frozen: what it carries is what it declares
    with pytest.raises(ValueError, match="test features as val"):
        tl.fit_probe((torch.randn(6, 2), torch.tensor([0, 1] * 3)), Features(x, y, "test"))
