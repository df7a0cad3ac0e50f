"""Handing over what :func:`~transferlib.tryout.try_strategies` found: a summary in text, and a folder
with the model, a one-page report, a model card and the prediction sets' threshold.

    >>> print(summary(report))               # what print(report) shows
    >>> write(report, Path("my_model"))      # model.safetensors, report.html, MODEL_CARD.md,
    ...                                      # prediction_sets.json and app.py (a web page, transferlib.demo)

Every number written here was measured by ``try_strategies`` on the data it was given; nothing
is typed in. The report embeds its figures, so it opens offline and travels as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import textwrap
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import torch

from . import stats
from .calibration import reliability
from .demo import APP
from .inference import save_for_inference
from .modelcard import model_card, per_class, say_cost, say_groups, say_splits, short, wrap
from .textmodel import TextModel, save_text_model
from .plots import image_grid, plot_confusion, plot_reliability
from .transforms import open_rgb

if TYPE_CHECKING:
    from .nested import Arm, TryReport

__all__ = ["summary", "write", "model_card", "doubtful", "reading"]


def _folder(report: TryReport) -> str:
    return report.source


def reading(report: TryReport, arm: Arm) -> str:
    """One strategy against the best: the difference, the verdict, and what the test could tell."""
    if arm is report.best:
        return "the highest accuracy measured"
    c = report.comparisons[arm.name]
    line = f"{c.difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}] vs {short(report.best.name)}: {c.verdict}"
    if c.noninferior and "ahead" not in c.verdict:
        line += f"; shown not worse by more than {report.margin:.2f}"
    if c.verdict.startswith("can't"):
        disagree = float((arm.correct != report.best.correct).mean())
        if c.difference:     # the photos a true gap of this size would need, with these disagreements
            need, have = stats.items_needed(abs(c.difference), disagree), len(report.data)
            times = f"{need / have:,.0f} times the {have:,} you have" if need >= 2 * have else f"you have {have:,}"
            line += f"; a gap this size would need about {need:,} {report.unit}s in all to show ({times})"
        else:
            line += f"; this test could detect {c.detectable:.3f} or more"
    return line


def summary(report: TryReport) -> str:
    """The audit, the strategies with their intervals and verdicts, the pick, calibration and sets."""
    counts, u = sorted(report.counts.items(), key=lambda kv: -kv[1]), report.unit
    lines = [f"{len(report.data)} {u}s in {len(counts)} classes, in {_folder(report)}",
             *wrap(", ".join(f"{c} {n}" for c, n in counts)
                    + f" (largest/smallest {counts[0][1] / counts[-1][1]:.1f}x)", "  "),
             "Audit",
             *wrap(f"unreadable: {', '.join(report.unreadable) or 'none'}", "  ") * (u == "photo"),
             *wrap(f"identical {'file' if u == 'photo' else u}s: {say_groups(report, report.duplicates)}", "  "),
             *wrap(f"near twins ({report.near_rule}): {say_groups(report, [list(p[:2]) for p in report.near], 'pair')}",
                    "  "),
             *wrap(f"labels to check by eye: the {len(report.doubtful)} a held-out model believes least are "
                    f"listed in report.html; cleanlab's filter flags {len(report.flagged)} (candidates: a hard {u} "
                    "can be flagged, a wrong label missed)", "  "),
             *wrap(f"Strategies, by nested {len(set(report.fold))}-fold cross-validation{say_splits(report)}: each "
                    f"{u} tested once per split, by a model that saw none of the duplicates the audit found "
                    "of it; C chosen inside each training fold", ""),
             f"  {'strategy':36}{'accuracy [95% interval]':24}{'GFLOPs':>7}{'ms':>6}{'MB':>6}"]
    for arm in report.arms:
        a = arm.accuracy
        lines.append(f"  {arm.name:36}{a.value:.3f} [{a.low:.3f}, {a.high:.3f}]    {say_cost(arm.gflops):>7}"
                     f"{say_cost(arm.ms_per_image):>6}{arm.megabytes:6.1f}")
        if len(arm.correct) > 1:
            lines.append(f"    split by split: {', '.join(f'{row.mean():.3f}' for row in arm.correct)}")
        lines += wrap(reading(report, arm), "    ")
    lines += [line for name, why in report.skipped.items() for line in wrap(f"not run: {name}: {why}", "  ")]
    rule = "the highest accuracy" if report.pick is report.best else \
        f"the cheapest shown non-inferior to the best at a margin of {report.margin:.2f}"
    c = report.chosen_inside
    lines += [f"  (GFLOPs per {u}, counted; ms per {u} at batch 16, this machine; weights in MB)",
              *wrap(f"Pick: {report.pick.name}, {rule} (the margin was declared before the run)", ""),
              *wrap(f"the choice of strategy nested too (each outer fold chose by its inner score): "
                     f"{c.value:.3f} [{c.low:.3f}, {c.high:.3f}]", "  "),
              *wrap(f"C chosen in the {len(report.pick.Cs)} folds: {', '.join(f'{C:g}' for C in report.pick.Cs)}; "
                     "the model handed over averages these probes' logits", "  "),
              f"  temperature {report.temperature:.2f}; ECE on held-out {u}s {report.calibration}",
              f"  {report.coverage:.0%} prediction sets: coverage {report.covered.value:.3f} "
              f"[{report.covered.low:.3f}, {report.covered.high:.3f}], mean size {report.set_size:.2f}",
              f"  (each half of the {u}s measured with the temperature and threshold of the other)",
              *[line for note in report.notes for line in wrap(f"Note: {note}", "")],
              *wrap(f"Took {report.seconds:.0f} s of the {report.budget:.0f} s asked for" + " (features already in "
                     "the cache are read, not computed)" * (u == "photo"), "")]
    if report.files:
        folder = next(iter(report.files.values())).parent.resolve().name
        lines += wrap(f"Wrote {', '.join(p.name for p in report.files.values())} in {folder}/", "")
    return "\n".join(lines)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _thumb(path: str):
    image = open_rgb(path)
    image.thumbnail((128, 128))
    return image


def _figures(report: TryReport) -> dict[str, str]:
    """Caption -> base64 PNG."""
    import matplotlib.pyplot as plt

    y, classes, pick = np.array(report.data.targets), report.data.classes, report.pick
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for arm in report.arms:
        a = arm.accuracy
        ax.errorbar(arm.gflops, a.value, [[a.value - a.low], [a.high - a.value]], fmt="o", capsize=4)
        ax.annotate(short(arm.name), (arm.gflops, a.value), textcoords="offset points", xytext=(6, 4))
    ax.set(xlabel=f"GFLOPs per {report.unit}", ylabel="accuracy (nested CV)")
    figures = {"Accuracy with its 95% interval against cost": _png(fig)}
    pred = pick.logits.argmax(1)
    confusion = np.zeros((len(classes), len(classes)), int)
    np.add.at(confusion, (y, pred), 1)
    evaluation = SimpleNamespace(confusion=confusion, classes=classes, accuracy=float((pred == y).mean()))
    figures[f"{pick.name}: out-of-fold confusion matrix"] = _png(plot_confusion(evaluation))
    raw = torch.softmax(torch.from_numpy(pick.logits), 1).numpy()
    figures["Reliability: out of fold, then with the temperature of the other half"] = _png(plot_reliability(
        {"out of fold": reliability(raw, y), "temperature from the other half": reliability(report.held_probs, y)}))
    shown = report.doubtful if report.unit == "photo" else []        # texts: report.html's table shows them
    if shown:
        figures["The least likely labels: the label given, then the class the model puts first"] = _png(image_grid(
            [_thumb(report.data.samples[i][0]) for i in shown], y[shown], report.held_probs[shown].argmax(1),
            classes, cols=6))
    if report.near and report.unit == "photo":
        pairs = [i for pair in report.near[:8] for i in pair[:2]]
        figures["Near twins, side by side (the first 8 pairs)"] = _png(image_grid(
            [_thumb(report.data.samples[i][0]) for i in pairs], y[pairs], None, classes, cols=4))
    return figures


def _table(rows: list[list[str]]) -> str:
    head, *body = rows
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><tr>{cells}</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in body) + "</table>"


def doubtful(report: TryReport) -> list[list[str]]:
    """The least likely labels as rows: the file (a text: its row and its first 60 characters), the label it
    has, the class the model puts first, the calibrated out-of-fold probability of the label it has, and
    whether cleanlab flags it."""
    rows = [[report.unit, "label given", "model's first class", "p(label given)", "flagged by cleanlab"]]
    for i in report.doubtful:
        item, label = report.data[i] if report.unit == "text" else report.data.samples[i]
        p, snippet = report.held_probs[i], textwrap.shorten(str(item), 60, placeholder="...")
        where = f"row {i + 1}: {snippet}" if report.unit == "text" else str(Path(item).relative_to(report.data.root))
        rows.append([where, report.data.classes[label],
                     report.data.classes[int(p.argmax())], f"{p[label]:.2f}", "yes" if i in report.flagged else "no"])
    return rows


def _html(report: TryReport) -> str:
    strategies = [["strategy", "accuracy [95% interval]", f"GFLOPs per {report.unit}", f"ms per {report.unit}", "MB",
                   "against the best", "seconds"]]
    for arm in report.arms:
        a = arm.accuracy
        strategies.append([arm.name, f"{a.value:.3f} [{a.low:.3f}, {a.high:.3f}]", say_cost(arm.gflops),
                           say_cost(arm.ms_per_image), f"{arm.megabytes:.1f}", reading(report, arm),
                           f"{arm.seconds:.0f}"])
    strategies += [[name, "not run", "", "", "", why, ""] for name, why in report.skipped.items()]
    figures = "".join(f"<figure><img src='data:image/png;base64,{png}' alt='{html.escape(caption)}'>"
                      f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                      for caption, png in _figures(report).items())
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
             "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #999;padding:.25rem .5rem}"
             "pre{background:#f4f4f4;padding:1rem;overflow-x:auto}img{max-width:100%}")
    title = html.escape(f"What works on {_folder(report)}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body><main><h1>{title}</h1>"
            f"<h2>Summary</h2><pre>{html.escape(summary(report))}</pre><h2>Strategies</h2>"
            f"{_table(strategies)}<h2>The pick, class by class</h2>{_table(per_class(report))}"
            f"<h2>Labels to check by eye</h2>{_table(doubtful(report))}"
            f"<h2>Figures</h2>{figures}<h2>Model card</h2><pre>{html.escape(model_card(report))}</pre>"
            "</main></body></html>")


def write(report: TryReport, out: Path) -> dict[str, Path]:
    """model.safetensors, prediction_sets.json, MODEL_CARD.md, report.html and app.py under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model, weights = report.final
    if isinstance(model, TextModel):
        files = {"model": save_text_model(out / "model.safetensors", replace(model, temperature=report.temperature))}
    else:
        files = {"model": save_for_inference(out / "model.safetensors", model, report.data.classes, weights,
                                             temperature=report.temperature)}
    sets = {"coverage": report.coverage, "threshold": report.threshold, "rule": "a class is in the set when "
            "1 - its probability <= threshold", "measured_coverage": [report.covered.value, report.covered.low,
                                                                       report.covered.high],
            "items": len(report.data), "unit": report.unit}
    files["sets"] = out / "prediction_sets.json"
    files["sets"].write_text(json.dumps(sets, indent=2), encoding="utf-8")
    files["card"] = out / "MODEL_CARD.md"
    files["card"].write_text(model_card(report), encoding="utf-8")
    files["report"] = out / "report.html"
    files["report"].write_text(_html(report), encoding="utf-8")
    files["app"] = out / "app.py"                 # python app.py: the model on a web page (transferlib.demo)
    files["app"].write_text(APP, encoding="utf-8")
    return files
