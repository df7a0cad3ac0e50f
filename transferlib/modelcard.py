"""The model card a :class:`~transferlib.tryout.TryReport` hands over (``MODEL_CARD.md``), and the ways
the report says things: a cost, a group of copies, the splits, recall class by class. Every number in
the card was measured by ``try_strategies`` on the data it was given; nothing is typed in.

    >>> print(model_card(report))        # what handover.write saves as MODEL_CARD.md
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

from . import stats

if TYPE_CHECKING:
    from .nested import TryReport

__all__ = ["model_card", "per_class", "say_cost", "say_groups", "say_splits", "short", "wrap"]


def short(name: str) -> str:
    """A strategy's short name: ``short("MobileNetV2, frozen + probe") == "MobileNetV2"``."""
    return name.split(",")[0]


def say_cost(x: float) -> str:
    """A cost with the digits that matter: ``21`` (ms), ``0.60`` (GFLOPs), ``0.18`` (ms), ``3.1e-06`` (GFLOPs)."""
    return f"{x:.0f}" if x >= 10 else f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"


def say_groups(report: TryReport, groups: list[list[int]], unit: str = "group") -> str:
    """Groups of copies in words: ``"4 photos in 2 groups, 1 across classes"``."""
    if not groups:
        return "none"
    across = sum(len({report.data.targets[i] for i in g}) > 1 for g in groups)
    return (f"{sum(map(len, groups))} {report.unit}s in {len(groups)} {unit}{'s' * (len(groups) > 1)}, {across} "
            "across classes")


def say_splits(report: TryReport) -> str:
    """``", over 5 splits into folds (seeds 0 to 4)"``, or nothing for one split."""
    n = len(report.best.correct)
    return f", over {n} splits into folds (seeds {report.seed} to {report.seed + n - 1})" if n > 1 else ""


def wrap(text: str, indent: str) -> list[str]:
    """Lines of 88 characters at most, the later ones indented two more spaces."""
    return textwrap.wrap(text, 88, initial_indent=indent, subsequent_indent=indent + "  ")


def per_class(report: TryReport) -> list[list[str]]:
    """Rows of a table: each class, its items, and the pick's recall on it with its 95% interval."""
    y = np.array(report.data.targets)
    rows = [["class", f"{report.unit}s", "recall (out of fold) [95% interval]"]]
    for i, c in enumerate(report.data.classes):
        r = stats.accuracy(report.pick.correct[:, y == i])
        rows.append([c, str(int((y == i).sum())), f"{r.value:.3f} [{r.low:.3f}, {r.high:.3f}]"])
    return rows


def model_card(report: TryReport) -> str:
    """MODEL_CARD.md, from the measured numbers only.

    >>> Path("my_model/MODEL_CARD.md").write_text(model_card(report))
    """
    a, pick, n, c, u = report.pick.accuracy, report.pick, len(report.data), report.chosen_inside, report.unit
    recall = "; ".join(f"{row[0]} {row[2]}" for row in per_class(report)[1:])
    probe = "model" if pick.arch == "tfidf" else "probe"
    how = (f"its logits are the average of those of the {len(pick.heads)} logistic-regression models" if probe ==
           "model" else f"its head is the average of the {len(pick.heads)} logistic-regression probes")
    tried = ", frozen features and a probe; fine-tuning, earlier blocks and augmentation" if u == "photo" else \
        "; fine-tuning and LoRA"
    lines = [
        f"# Model card: {pick.name}", "",
        "## Model", f"- {pick.arch}, {pick.about}; {how} of the nested cross-validation (each trained on about "
        f"{1 - 1 / len(pick.heads):.0%} of the {n} {u}s, C chosen inside it: "
        f"{', '.join(f'{C:g}' for C in pick.Cs)}), each with " + ("its own vocabulary and idf weights, learned "
                                                                  "from its training texts." if probe == "model" else
                                                                  "its standardisation folded into one linear layer."),
        f"- The logits are divided by a temperature of {report.temperature:.2f} before the softmax. Size "
        f"{pick.megabytes:.1f} MB (float32); {say_cost(pick.gflops)} GFLOPs and {say_cost(pick.ms_per_image)} ms "
        f"per {u} (batch 16) on the machine that made this card.", "",
        "## Intended use", f"- Sorting {u}s like these into: {', '.join(report.data.classes)}. Every {u} "
        f"gets one of these labels, also a {u} of none of them.", "",
        "## Data", f"- {n} {'readable ' * (u == 'photo')}{u}s: " + ", ".join(f"{k} {v}" for k, v in
                                                                            report.counts.items()) +
        (f"; {len(report.unreadable)} unreadable file{'s' * (len(report.unreadable) != 1)} left out."
         if u == "photo" else "."),
        f"- Identical {u}s: {say_groups(report, report.duplicates)} (a copy across classes carries a "
        f"wrong label into training); near-twin pairs: {len(report.near)}; labels "
        f"cleanlab's filter flags for a look: {len(report.flagged)} (candidates, not checked by a person: a hard "
        f"{u} can be flagged and a wrong label missed).", "",
        "## Accuracy", f"- {c.value:.3f}, 95% interval [{c.low:.3f}, {c.high:.3f}], for the whole procedure: nested "
        f"{len(set(report.fold))}-fold cross-validation{say_splits(report)}, each {u} tested once per split by a "
        f"model that saw none of its duplicates the audit found, and chosen from the {len(report.arms)} strategies "
        f"tried ({', '.join(short(a.name) for a in report.arms)}{tried} were not tried) by the folds that did "
        f"not test it. Expect this on {u}s like these.",
        f"- This strategy's own accuracy, measured the same way: {a.value:.3f} [{a.low:.3f}, {a.high:.3f}]. "
        f"It was picked on these same {u}s, so this one leans optimistic.",
        f"- Recall by class (out of fold): {recall}.", "",
        "## Calibration", f"- Expected calibration error on held-out {u}s: {report.calibration}.",
        f"- {report.coverage:.0%} prediction sets: measured coverage {report.covered.value:.3f} "
        f"[{report.covered.low:.3f}, {report.covered.high:.3f}], mean size {report.set_size:.2f}; an average over "
        f"{u}s like these, not a promise for each class.", "",
        "## Not tested on", f"- The average as a whole: each {u} above was scored by the one {probe} that "
        f"did not train on it, and the temperature and threshold were measured that way; new {u}s get the "
        f"average of all the {probe}s, which no {u} here could test.",
        ("- Photos from other cameras, places, seasons or sources than these; " if u == "photo" else
         "- Texts from other writers, places, times or sources than these; ") + "classes not listed above; "
        "anything changed on purpose to fool the model.", "",
        "## Limits of the evidence", f"- {n} {u}s: the intervals above are that wide for that reason.",
        f"- The {u}s were treated as independent: " + ("photos of one scene or one animal" if u == "photo" else
                                                     "texts by one writer or on one event") +
        " would widen the intervals. " + (f"They cover {len(pick.correct)} splits into folds; other splits could "
                                          "still move them." if len(pick.correct) > 1 else
                                          "They come from one split into folds; another split would widen them."), ""]
    return "\n".join("\n".join(textwrap.wrap(line, 88, subsequent_indent="  ", break_on_hyphens=False))
                     if line.startswith("- ") else line for line in lines)
