"""The recommender reads the measured grid; it does not hold rules of its own."""

from __future__ import annotations

import json

import pytest

import transferlib as tl
from helpers import load_script
from transferlib.strategy import STRATEGIES, StrategyGrid


ITEMS = 200


def correct(acc, seed):
    """`acc` of ITEMS test items right: the first ones, shifted by the seed (so seeds differ)."""
    right = round(acc * ITEMS)
    return "".join("1" if (i + 7 * seed) % ITEMS < right else "0" for i in range(ITEMS))


def write_grid(path, accuracies, seconds, similarity=None):
    """A grid with two targets and two budgets; accuracies[target][k][strategy] = list over seeds."""
    similarity = similarity or {"near": 0.6, "far": 0.1}
    runs = []
    for target, by_k in accuracies.items():
        for k, by_strategy in by_k.items():
            for strategy, accs in by_strategy.items():
                for seed, acc in enumerate(accs):
                    runs.append({"target": target, "labels_per_class": k, "strategy": strategy, "seed": seed,
                                 "accuracy": acc, "correct": correct(acc, seed), "seconds": seconds[strategy],
                                 "tuned": []})
    path.write_text(json.dumps({"provenance": {"seeds": [0, 1, 2]},
                                "targets": {t: {"similarity": s} for t, s in similarity.items()}, "runs": runs}))
    return StrategyGrid.load(path)


SECONDS = {"from scratch": 10.0, "features, last block": 2.0, "full fine-tune": 40.0}


@pytest.fixture
def grid(tmp_path):
    return write_grid(tmp_path / "grid.json", {
        "near": {10: {"from scratch": [.5, .52, .48], "features, last block": [.9, .91, .89],
                      "full fine-tune": [.85, .84, .86]},
                 100: {"from scratch": [.7, .7, .7], "features, last block": [.9, .9, .9],
                       "full fine-tune": [.95, .96, .94]}},
        "far": {10: {"from scratch": [.80, .82, .78], "features, last block": [.6, .6, .6],
                     "full fine-tune": [.79, .83, .81]},
                100: {"from scratch": [.9, .9, .9], "features, last block": [.7, .7, .7],
                      "full fine-tune": [.97, .97, .97]}},
    }, SECONDS)


def test_the_answer_comes_from_the_nearest_measured_cell(grid):
    rec = tl.recommend_strategy(12, similarity=0.55, grid=grid)
    assert (rec.cell.target, rec.cell.labels_per_class, rec.strategy) == ("near", 10, "features, last block")
    rec = tl.recommend_strategy(80, similarity=0.5, grid=grid)
    assert rec.strategy == "full fine-tune" and rec.cell.labels_per_class == 100
    assert "0.95" in str(rec) and "near" in str(rec)


def test_a_cheaper_strategy_shown_within_the_margin_of_the_best_is_recommended(tmp_path):
    same = [.80, .80, .80]  # the same items right at every seed: the interval is narrow, within 0.03
    grid = write_grid(tmp_path / "g.json", {"far": {10: {"from scratch": same, "full fine-tune": [.81, .81, .81],
                                                         "features, last block": [.6, .6, .6]}}}, SECONDS,
                      similarity={"far": 0.1})
    rec = tl.recommend_strategy(10, similarity=0.1, grid=grid)
    assert grid.compare(grid.cell("far", 10, "from scratch"), grid.cell("far", 10, "full fine-tune"),
                        margin=tl.strategy.MARGIN).noninferior
    assert rec.strategy == "from scratch"
    assert "within 0.03" in rec.reason and "cheapest" in rec.reason


def test_a_strategy_the_test_merely_cannot_tell_apart_is_not_recommended(grid):
    rec = tl.recommend_strategy(10, similarity=0.1, grid=grid)  # far, 10: fine-tune .81 vs scratch .80, noisy
    result = grid.compare(grid.cell("far", 10, "from scratch"), grid.cell("far", 10, "full fine-tune"),
                          margin=tl.strategy.MARGIN)
    assert result.verdict == "can't tell at this size" and not result.noninferior
    assert rec.strategy == "full fine-tune"       # low power is not equivalence: the best stands
    assert "not shown as good either" in rec.reason and "from scratch" in rec.reason


def test_a_clear_winner_is_recommended_even_when_it_costs_more(grid):
    rec = tl.recommend_strategy(100, similarity=0.1, grid=grid)  # far, 100: fine-tune .97 vs scratch .90
    assert rec.strategy == "full fine-tune" and "no other strategy was shown within" in rec.reason


def test_bad_inputs_are_named(grid):
    with pytest.raises(ValueError, match="labels_per_class must be positive"):
        tl.recommend_strategy(0, similarity=0.5, grid=grid)
    with pytest.raises(ValueError, match="similarity must be between 0 and 1"):
        tl.recommend_strategy(10, similarity=1.5, grid=grid)


def test_a_cells_interval_is_a_method_at_any_confidence(grid):
    cell = grid.cell("near", 10, "full fine-tune")
    assert cell.estimate() == tl.stats.accuracy(cell.correct) and cell.estimate().seeds == 3
    assert cell.estimate(0.99).high - cell.estimate(0.99).low > cell.estimate().high - cell.estimate().low
    with pytest.raises(ValueError, match="budget_seconds must be a number >= 0"):
        tl.recommend_strategy(10, similarity=0.5, budget_seconds=-1, grid=grid)


def test_the_time_budget_removes_what_does_not_fit(grid):
    assert tl.recommend_strategy(100, similarity=0.1, grid=grid).strategy == "full fine-tune"
    rec = tl.recommend_strategy(100, similarity=0.1, budget_seconds=15, grid=grid)
    assert rec.strategy == "from scratch" and "full fine-tune" in rec.reason
    rec = tl.recommend_strategy(100, similarity=0.1, budget_seconds=1, grid=grid)
    assert rec.strategy == "features, last block" and "nothing measured fits" in rec.reason


def test_a_missing_grid_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench/strategy_grid.py"):
        StrategyGrid.load(tmp_path / "none.json")


def test_unknown_target_is_refused_before_any_work():
    with pytest.raises(ValueError, match="silhouettes"):
        load_grid_script().measure("cats", 10)


def test_the_stored_grid_measured_every_strategy_on_every_target_at_every_budget():
    grid, script = StrategyGrid.load(), load_grid_script()
    assert set(grid.targets) == set(script.TARGETS)
    for target in grid.targets:
        for budget in grid.budgets(target):
            measured = {c.strategy for c in grid.cells if (c.target, c.labels_per_class) == (target, budget)}
            assert measured == set(STRATEGIES), f"{target} at {budget}/class: missing {set(STRATEGIES) - measured}"


def test_photos_look_more_like_imagenet_than_silhouettes():
    photos = tl.source_similarity(tl.load_dataset("tuxpaint_photos"), n=32)
    silhouettes = tl.source_similarity(tl.load_dataset("animal_mnist"), n=32)
    assert 0.001 <= silhouettes < photos <= 1.0


def load_grid_script():
    return load_script("bench/strategy_grid.py")


def test_the_grid_check_passes_a_reproduction_and_names_a_cell_that_moved():
    script = load_grid_script()
    saved = [{"target": "far", "labels_per_class": 10, "strategy": s, "seed": seed, "accuracy": acc,
              "correct": correct(acc, seed)}
             for s, accs in {"from scratch": [.80, .82, .78], "full fine-tune": [.70, .70, .70]}.items()
             for seed, acc in enumerate(accs)]
    assert script.check(saved, saved, log=lambda s: None) == []
    within = [dict(r, correct=correct(r["accuracy"] + .02, r["seed"])) for r in saved]  # inside the interval
    assert script.check(saved, within, log=lambda s: None) == []
    moved = [dict(r, correct=correct(r["accuracy"] + (.1 if r["strategy"] == "full fine-tune" else 0), r["seed"]))
             for r in saved]
    failures = script.check(saved, moved, log=lambda s: None)
    assert len(failures) == 1 and "full fine-tune" in failures[0] and "DISAGREES" in failures[0]
    one_seed = [r for r in saved if r["seed"] == 1]  # compared with seed 1 only, not the 3-seed mean
    lines = []
    assert script.check(saved, one_seed, log=lines.append) == []
    assert "saved 0.820" in lines[0] and "now 0.820" in lines[0] and "2 of 2 runs identical" in lines[-1]
    assert "not all in the saved grid" in script.check(saved, [dict(saved[0], seed=7)], log=lambda s: None)[0]


def test_the_grid_script_check_fails_when_a_similarity_moves(tmp_path, monkeypatch):
    """main(--check) end to end, with measuring replaced by the saved runs of seed 0."""
    script = load_grid_script()
    saved = json.loads(script.GRID_FILE.read_text())
    monkeypatch.setattr(script.tl, "load_dataset", lambda name, split: name)
    monkeypatch.setattr(script, "measure", lambda name, k, seed, strategies, tuned, log: [  # photos: k 6 or "all"
        r for r in saved["runs"]
        if (r["target"], r["seed"]) == (name, seed) and (r["labels_per_class"] == 6) == (k == 6)])
    args = ["--seeds", "1", "--targets", "photos", "--out", str(tmp_path / "grid.json"), "--check"]
    monkeypatch.setattr(script, "source_similarity", lambda dataset: saved["targets"]["photos"]["similarity"])
    assert script.main(args) == 0
    assert len(json.loads((tmp_path / "grid.json").read_text())["runs"]) == 10
    monkeypatch.setattr(script, "source_similarity", lambda dataset: 0.5)
    assert script.main(args) == 1


def test_the_grid_script_merge_replaces_only_the_strategies_it_measured(tmp_path, monkeypatch):
    script = load_grid_script()
    saved = json.loads(script.GRID_FILE.read_text())
    out = tmp_path / "grid.json"
    out.write_text(json.dumps(saved))
    monkeypatch.setattr(script.tl, "load_dataset", lambda name, split: name)
    monkeypatch.setattr(script, "source_similarity", lambda dataset: 0.5)
    monkeypatch.setattr(script, "measure", lambda name, k, seed, strategies, tuned, log: [
        dict(r, accuracy=-1.0) for r in saved["runs"]
        if (r["target"], r["seed"], r["strategy"]) == (name, seed, strategies[0])
        and (r["labels_per_class"] == 6) == (k == 6)])
    args = ["--seeds", "1", "--targets", "photos", "--strategies", "features, last block", "--out", str(out), "--merge"]
    assert script.main(args) == 0
    merged = json.loads(out.read_text())
    changed = [r for r in merged["runs"] if r["accuracy"] == -1.0]
    assert len(merged["runs"]) == len(saved["runs"]) and len(changed) == 2
    assert {(r["target"], r["strategy"], r["seed"]) for r in changed} == {("photos", "features, last block", 0)}
    assert merged["provenance"]["remeasured"][-1]["strategies"] == ["features, last block"]
    assert merged["targets"] == saved["targets"]          # the similarities measured with the grid are kept
