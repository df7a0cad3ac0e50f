"""fit, evaluate, checkpoints and resume, Ctrl-C, optimizers, fine-tuning tools."""

from __future__ import annotations

import copy
import itertools

import matplotlib
import pytest
import torch

import transferlib as tl
from helpers import TinyNet, blobs

matplotlib.use("Agg")


def loaders(n=120, seed=0, noise=1.0):
    train, val = blobs(n, seed=seed, noise=noise), blobs(60, seed=seed + 1, noise=noise)
    return tl.make_loader(train, 16, shuffle=True, seed=seed), tl.make_loader(val, 64)


def test_fit_learns_and_records_history():
    torch.manual_seed(0)
    model = TinyNet()
    train, val = loaders()
    history = tl.fit(model, train, val, epochs=5, lr=1e-2, progress=False)
    assert history.epoch == [1, 2, 3, 4, 5]
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.best_val_acc > 0.9
    result = tl.evaluate(model, val)
    assert result.accuracy == pytest.approx(history.best_val_acc)  # the best weights are the ones kept
    assert result.confusion.sum() == 60 and result.confusion.shape == (3, 3)
    assert set(result.per_class) == {"c0", "c1", "c2"}
    assert "accuracy" in str(result)


def test_early_stopping_restores_the_best_weights():
    torch.manual_seed(0)
    model = TinyNet()
    train, _ = loaders(noise=3.0)
    val = tl.make_loader(blobs(60, seed=7, noise=6.0), 64)  # hard validation set: accuracy wanders
    history = tl.fit(model, train, val, epochs=30, lr=5e-2, patience=2, progress=False)
    assert history.stopped_early and len(history) < 30
    assert history.best_epoch == history.epoch[history.val_acc.index(max(history.val_acc))]
    assert tl.evaluate(model, val).accuracy == pytest.approx(history.best_val_acc)


class InterruptAt:
    """A loader that raises KeyboardInterrupt when epoch ``epoch`` starts, like Ctrl-C."""

    def __init__(self, loader, epoch):
        self.loader, self.epoch, self.started = loader, epoch, 0
        self.dataset, self.generator = loader.dataset, loader.generator

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.started += 1
        if self.started == self.epoch:
            raise KeyboardInterrupt
        return iter(self.loader)


@pytest.mark.parametrize("schedule", [None, "onecycle"])
def test_interrupt_then_resume_is_bit_identical(tmp_path, schedule, capsys):
    def fresh(seed):
        torch.manual_seed(seed)
        return TinyNet()

    train, val = loaders()
    kwargs = dict(epochs=4, lr=1e-2, schedule=schedule, weight_decay=0.01, seed=3, progress=False)
    full = tl.fit(fresh(0), train, val, checkpoint=tmp_path / "a.safetensors", **kwargs)

    part_model = fresh(0)
    part = tl.fit(part_model, InterruptAt(train, 3), val, checkpoint=tmp_path / "b.safetensors", **kwargs)
    assert part.interrupted and len(part) == 2
    assert "Interrupted after 2 epochs" in capsys.readouterr().out
    best = tl.evaluate(part_model, val).accuracy
    assert best == pytest.approx(part.best_val_acc)  # Ctrl-C kept the best weights

    resumed = tl.fit(fresh(99), train, val, checkpoint=tmp_path / "b.safetensors", resume=True, **kwargs)
    assert resumed.epoch == [1, 2, 3, 4]
    assert resumed.train_loss == full.train_loss  # exactly, not approximately
    assert resumed.val_acc == full.val_acc


def test_frozen_weights_do_not_move_with_weight_decay_and_momentum():
    torch.manual_seed(0)
    model = TinyNet()
    tl.freeze(model, ["body"])
    frozen = copy.deepcopy(model.body.state_dict())  # weights and BatchNorm statistics
    optimizer = tl.make_optimizer(model, lr=0.1, weight_decay=0.5, kind="sgd")
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in model.fc.parameters()}
    train, _ = loaders()
    tl.fit(model, train, epochs=2, optimizer=optimizer, progress=False)
    for key, value in model.body.state_dict().items():
        assert torch.equal(value.cpu(), frozen[key].cpu()), key  # fit may have moved it to a GPU


def test_everything_frozen_is_refused():
    model = tl.freeze(TinyNet())
    with pytest.raises(ValueError, match="nothing to train"):
        tl.make_optimizer(model)


def test_discriminative_learning_rates_divide_by_the_factor():
    model, _ = tl.build_classifier("mobilenet_v2", 3, pretrained=False)
    tl.freeze_all_but_last(model, 3)
    groups = tl.param_groups(model, 1e-3, factor=2.6)
    assert [g["name"] for g in groups] == ["backbone.features.17", "backbone.features.18", "head"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 / 2.6 ** 2, 1e-3 / 2.6, 1e-3])


def test_failed_fit_leaves_model_and_history_as_they_were():
    torch.manual_seed(0)
    model = TinyNet()
    train, val = loaders()
    history = tl.fit(model, train, val, epochs=1, lr=1e-2, progress=False)
    before = copy.deepcopy(model.state_dict())

    bad = blobs(32)
    bad.tensors[1][-1] = 7  # a label the 3-output model cannot produce
    del bad.targets  # so only the batch check can see it, mid-training
    with pytest.raises(ValueError, match="label 7, outside 0..2"):
        tl.fit(model, tl.make_loader(bad, 8), val, epochs=2, history=history, progress=False)
    assert len(history) == 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_an_error_after_the_first_epoch_keeps_the_best_weights_and_the_finished_epochs():
    torch.manual_seed(0)
    model = TinyNet()
    train, val = loaders()

    def fail_at_epoch_3(history):
        if len(history) == 3:
            raise RuntimeError("boom")

    history = tl.History()
    with pytest.raises(RuntimeError, match="boom"):
        tl.fit(model, train, val, epochs=5, lr=1e-2, history=history, progress=False, on_epoch=fail_at_epoch_3)
    assert history.epoch == [1, 2, 3]
    assert tl.evaluate(model, val).accuracy == pytest.approx(history.best_val_acc)


def test_fit_never_holds_two_copies_of_the_weights(monkeypatch):
    import weakref

    from transferlib import checkpoints

    class Weights(dict):  # a dict that a weak reference can follow
        pass

    copies: list[weakref.ref] = []
    real_copy = checkpoints.copy_weights

    def tracked(model):
        result = Weights(real_copy(model))
        copies.append(weakref.ref(result))
        return result

    monkeypatch.setattr(checkpoints, "copy_weights", tracked)
    alive = []
    torch.manual_seed(0)
    model = TinyNet()
    train, val = loaders()
    noisy = tl.make_loader(blobs(60, seed=5, noise=3.0), 64)  # so the best epoch is not always the last
    tl.fit(model, train, noisy, epochs=4, lr=1e-2, progress=False,
           on_epoch=lambda h: alive.append(sum(r() is not None for r in copies)))
    assert len(copies) >= 2, "fit copies the starting weights and the best ones"
    assert alive == [1, 1, 1, 1]


def test_big_weights_are_copied_through_a_file_and_restore_exactly(monkeypatch, tmp_path):
    from transferlib import checkpoints

    monkeypatch.setattr(checkpoints, "SPILL_BYTES", 0)  # treat TinyNet as big
    monkeypatch.setattr(checkpoints.tempfile, "tempdir", str(tmp_path))
    torch.manual_seed(0)
    model = TinyNet()
    saved = checkpoints.copy_weights(model)
    assert list(tmp_path.iterdir()) == [], "the temporary file is gone; only its mapping remains"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.fc.weight.add_(1.0)
    model.load_state_dict(saved)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())

    train, val = loaders(noise=3.0)  # noisy, so the best epoch is not always the last
    history = tl.fit(model, train, val, epochs=4, lr=1e-2, progress=False)
    assert tl.evaluate(model, val).accuracy == pytest.approx(history.best_val_acc)


def test_lr_find_suggests_a_rate_and_restores_the_model():
    torch.manual_seed(0)
    model = TinyNet()
    before = copy.deepcopy(model.state_dict())
    train, _ = loaders(n=480)
    finder = tl.lr_find(model, train, num_steps=60, progress=False)
    assert 1e-5 < finder.suggestion < 1.0
    assert len(finder.lrs) == len(finder.losses) <= 60
    for key, value in model.state_dict().items():
        assert torch.equal(value.cpu(), before[key].cpu())
    assert finder.plot() is not None


def test_gradual_unfreezing_and_lp_ft():
    torch.manual_seed(0)
    model, _ = tl.build_classifier("mobilenet_v2", 3, pretrained=False)
    x = torch.randn(24, 3, 32, 32)
    y = torch.arange(24) % 3
    from helpers import LabelledTensors

    data = tl.make_loader(LabelledTensors(x, y, 3), 8, shuffle=True)
    history = tl.gradual_unfreeze(model, data, None, stages=3, epochs_per_stage=1, progress=False)
    assert len(history) == 3
    assert [r[0] for r in tl.summary(model).rows if r[3]] == ["backbone.features.17", "backbone.features.18", "head"]

    history = tl.lp_ft(model, data, None, probe_epochs=1, finetune_epochs=1, progress=False)
    assert len(history) == 2
    assert tl.summary(model).non_trainable == 0


def test_fit_on_a_text_model():
    model, tokenizer = tl.build_text_classifier("minilm", 2)
    tl.freeze_all_but_last(model, 1)
    texts = tl.TextDataset(["I loved it", "great fun", "awful", "terrible film"] * 4, [1, 1, 0, 0] * 4,
                           ["negative", "positive"], tl.DatasetInfo("toy", "", "", ""))
    loader = tl.text_loader(texts, tokenizer, batch_size=8, shuffle=True)
    history = tl.fit(model, loader, loader, epochs=2, lr=1e-2, progress=False)
    assert len(history) == 2 and history.val_acc[-1] >= 0.5


def test_history_and_confusion_plots():
    torch.manual_seed(0)
    model = TinyNet()
    train, val = loaders()
    history = tl.fit(model, train, val, epochs=2, progress=False)
    loss, acc = history.plot().axes
    assert [ax.get_ylabel() for ax in (loss, acc)] == ["loss", "accuracy"]
    assert list(acc.lines[0].get_ydata()) == history.train_acc and list(acc.lines[1].get_ydata()) == history.val_acc
    assert acc.lines[2].get_xdata()[0] == history.best_epoch      # the kept epoch, marked
    evaluation = tl.evaluate(model, val)
    (ax,) = evaluation.plot().axes
    assert ax.get_title() == f"accuracy {evaluation.accuracy:.3f}"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(evaluation.classes)
    assert len(ax.texts) == len(evaluation.classes) ** 2               # one count per cell


def test_pick_device_checks_that_the_device_exists():
    assert tl.pick_device().type == "cpu"  # the lessons' default: stored outputs reproduce everywhere
    assert tl.pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="not a device name"):
        tl.pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="DEVICE = 'cuda'.*Use 'cpu', or 'auto'"):
            tl.pick_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="DEVICE = 'mps'.*MPS backend is not available"):
            tl.pick_device("mps")


# Regression tests from a review of fit's edge paths ------------------------------------

def test_stop_during_the_first_epoch_leaves_the_model_unchanged(capsys):
    torch.manual_seed(0)
    model = TinyNet()
    before = copy.deepcopy(model.state_dict())
    train, val = loaders()
    calls = iter(range(100))
    history = tl.fit(model, train, val, epochs=3, should_stop=lambda: next(calls) >= 2, progress=False)
    assert history.interrupted and len(history) == 0 and history.best_acc is None
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert "the model is as it was" in capsys.readouterr().out


def test_a_refused_resume_leaves_the_model_unchanged(tmp_path):
    torch.manual_seed(0)
    frozen = tl.freeze(TinyNet(), ["body"])
    train, val = loaders()
    tl.fit(frozen, train, val, epochs=1, checkpoint=tmp_path / "c.safetensors", progress=False)
    model = TinyNet()  # nothing frozen: its optimizer has other parameter groups
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError):
        tl.fit(model, train, val, epochs=2, checkpoint=tmp_path / "c.safetensors", resume=True, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_resuming_an_early_stopped_run_trains_no_more(tmp_path, capsys):
    torch.manual_seed(0)
    train, _ = loaders(noise=3.0)
    val = tl.make_loader(blobs(60, seed=7, noise=6.0), 64)
    kwargs = dict(epochs=30, lr=5e-2, patience=2, checkpoint=tmp_path / "e.safetensors", resume=True, progress=False)
    first = tl.fit(TinyNet(), train, val, **kwargs)
    assert first.stopped_early
    again = tl.fit(TinyNet(), train, val, **kwargs)
    assert again.epoch == first.epoch and "nothing to resume" in capsys.readouterr().out


def test_one_cycle_resume_with_other_epochs_is_refused_clearly(tmp_path):
    torch.manual_seed(0)
    train, val = loaders()
    path = tmp_path / "o.safetensors"
    tl.fit(TinyNet(), train, val, epochs=2, schedule="onecycle", checkpoint=path, progress=False)
    model = TinyNet()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="one-cycle schedule of 16 steps; resume with the same epochs"):
        tl.fit(model, train, val, epochs=4, schedule="onecycle", checkpoint=path, resume=True, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_mixed_precision_loss_scale_is_checkpointed(tmp_path):
    model = TinyNet()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale(torch.ones(()))  # the scale exists once it has been used
    scaler.update(512.0)
    path = tl.save_checkpoint(tmp_path / "s.safetensors", model, scaler=scaler)
    restored = torch.amp.GradScaler("cpu")
    tl.load_checkpoint(path, TinyNet(), scaler=restored)
    assert restored.get_scale() == scaler.get_scale() == 512.0


def test_without_validation_the_last_epoch_is_kept_not_the_best_training_accuracy():
    torch.manual_seed(0)
    train, _ = loaders()
    model = TinyNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    states = []

    def after_epoch(history):       # a rate far too high from epoch 2: training accuracy falls
        states.append(copy.deepcopy(model.state_dict()))
        optimizer.param_groups[0]["lr"] = 50.0

    history = tl.fit(model, train, epochs=2, optimizer=optimizer, on_epoch=after_epoch, progress=False)
    assert history.train_acc[1] < history.train_acc[0], "the set-up must make the last epoch worse on training data"
    assert history.best_epoch == 2 and history.best_val_acc is None
    assert history.best_acc == history.train_acc[1]
    assert all(torch.equal(v, states[1][k]) for k, v in model.state_dict().items())   # the last epoch's weights


def test_patience_without_validation_is_refused():
    train, _ = loaders()
    with pytest.raises(ValueError, match="pass val="):
        tl.fit(TinyNet(), train, epochs=2, patience=1, progress=False)


def test_fit_releases_the_gradients_it_made():
    torch.manual_seed(0)
    model = TinyNet()
    train, val = loaders()
    tl.fit(model, train, val, epochs=2, progress=False)
    assert all(p.grad is None for p in model.parameters())


def test_release_memory_collects_cycles_and_runs_without_glibc(monkeypatch):
    import ctypes
    import gc
    import weakref

    class Cycle:
        pass

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a              # only the garbage collector frees a cycle
    alive = weakref.ref(a)
    gc.disable()
    try:
        del a, b
        tl.release_memory()
        assert alive() is None, "release_memory left a reference cycle uncollected"

        def no_libc(name):
            raise OSError(f"{name}: not here (macOS, Windows, musl)")

        monkeypatch.setattr(ctypes, "CDLL", no_libc)
        tl.release_memory()              # no malloc_trim: collects, and does not raise
    finally:
        gc.enable()


def test_epochs_is_the_length_of_the_run():
    torch.manual_seed(0)
    train, val = loaders()
    model = TinyNet()
    history = tl.fit(model, train, val, epochs=2, progress=False)
    history = tl.fit(model, train, val, epochs=3, history=history, progress=False)  # one more, to 3 in all
    assert history.epoch == [1, 2, 3] and history.steps == 3 * len(train) and history.examples == [120] * 3


def test_a_new_run_never_overwrites_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    train, val = loaders()
    path = tmp_path / "run.pt"
    tl.fit(TinyNet(), train, val, epochs=1, checkpoint=path, progress=False)
    saved = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"run.pt already holds a run \(1 epochs, best epoch 1\). Pass "
                                              "resume=True to continue it, overwrite=True to replace it"):
        tl.fit(TinyNet(), train, val, epochs=1, checkpoint=path, progress=False)
    assert path.read_bytes() == saved
    tl.fit(TinyNet(), train, val, epochs=2, checkpoint=path, overwrite=True, progress=False)  # said so: replaced
    assert len(tl.load_checkpoint(path, TinyNet())[0]) == 2


def test_resume_goes_on_from_the_saved_best_weights_optimizer_and_schedule(tmp_path):
    """fit's set-up (_setup, resume_run) loads everything a run needs: interrupted after 3 of 6 epochs,
    the resumed run ends with the same weights and History as the unbroken one, its best epoch (1)
    coming from before the interruption. A resume that started its best weights afresh would keep
    epoch 4 or later; one that rebuilt the optimizer or the schedule would train other weights."""
    def run(model, train, **kwargs):
        val = tl.make_loader(blobs(60, seed=7, noise=6.0), 64)
        return tl.fit(model, train, val, epochs=6, lr=0.1, seed=1, schedule="onecycle", progress=False, **kwargs)

    def fresh(seed=0):
        torch.manual_seed(seed)
        return TinyNet()

    train = tl.make_loader(blobs(120, seed=0, noise=3.0), 16, shuffle=True, seed=0)
    full_model = fresh()
    full = run(full_model, train)
    assert full.best_epoch == 1, "the set-up needs a best epoch before the interruption"
    part = run(fresh(), InterruptAt(train, 4), checkpoint=tmp_path / "run.pt")
    assert part.interrupted and part.epoch == [1, 2, 3]
    model = fresh(99)
    resumed = run(model, train, checkpoint=tmp_path / "run.pt", resume=True)
    same = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "steps_per_epoch", "examples")
    assert all(getattr(resumed, k) == getattr(full, k) for k in same)
    assert resumed.best_epoch == 1 and not resumed.interrupted
    assert all(torch.equal(v, full_model.state_dict()[k]) for k, v in model.state_dict().items())

    again = fresh()   # resume=True without a file is a new run, the same as without resume
    run(again, train, checkpoint=tmp_path / "new.pt", resume=True)
    assert all(torch.equal(v, full_model.state_dict()[k]) for k, v in again.state_dict().items())


@pytest.mark.parametrize("val", [False, True])
@pytest.mark.parametrize("ending", ["done", "stopped", "diverged", "error"])
def test_fit_trains_in_train_mode_validates_in_eval_mode_and_gives_every_mode_back(val, ending):
    """The mode rule: every submodule trains in train mode and is validated in eval mode; between
    epochs (on_epoch) the model is in train mode, with or without val; however fit ends, each
    submodule comes back in the mode it came in with (here: the model in eval mode, its
    BatchNorm in train mode)."""
    torch.manual_seed(0)
    model = TinyNet().eval()
    model.body[1].train()
    came_in = {name: m.training for name, m in model.named_modules()}
    train, val_loader = loaders()
    seen = {"train": set(), "validate": set(), "on_epoch": set()}

    def record(module, inputs):
        seen["validate" if torch.is_inference_mode_enabled() else "train"].add(
            tuple(m.training for m in model.modules()))

    def on_epoch(history):
        seen["on_epoch"].add(tuple(m.training for m in model.modules()))
        if ending == "diverged":
            model.fc.bias.data.fill_(float("nan"))
        if ending == "error" and history.epoch[-1] == 2:
            raise RuntimeError("a failing callback")

    calls = itertools.count()
    model.register_forward_pre_hook(record)
    stop = (lambda: next(calls) >= 10) if ending == "stopped" else None
    try:
        tl.fit(model, train, val_loader if val else None, epochs=3, on_epoch=on_epoch, should_stop=stop,
               progress=False)
    except RuntimeError:
        assert ending == "error"
    n = len(list(model.modules()))
    assert seen["train"] == {(True,) * n}
    assert seen["validate"] == ({(False,) * n} if val else set())
    assert seen["on_epoch"] == {(True,) * n}
    assert {name: m.training for name, m in model.named_modules()} == came_in


def test_lp_ft_re_estimates_the_statistics_fine_tuning_will_update_before_its_probe(monkeypatch):
    torch.manual_seed(0)
    model, _ = tl.build_classifier("mobilenet_v2", 3, pretrained=False)
    from helpers import LabelledTensors

    data = tl.make_loader(LabelledTensors(torch.randn(8, 3, 32, 32), torch.arange(8) % 3, 3), 4)
    seen = []

    def spy(m, loader, **kwargs):
        seen.append((loader, [b.name for b in tl.blocks(m) if b.num_trainable]))
        return adapt_batchnorm(m, loader, **kwargs)

    adapt_batchnorm = tl.recipes.adapt_batchnorm
    monkeypatch.setattr(tl.recipes, "adapt_batchnorm", spy)
    tl.lp_ft(model, data, None, probe_epochs=1, finetune_epochs=1, progress=False,
             unfreeze_blocks=["backbone.features.18", "head"])
    assert len(seen) == 1 and seen[0][0] is data
    assert seen[0][1] == ["backbone.features.18", "head"]    # set up as fine-tuning trains, not more
