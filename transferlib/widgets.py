"""Widgets: a freeze panel and a training panel for JupyterLab, Colab and VS Code.

    >>> freeze = FreezePanel(model)                  # one toggle per block, a slider, live counts
    >>> freeze                                       # shows the panel (text outside a notebook)
    >>> TrainPanel(model, train_loader, val_loader, freeze_panel=freeze)

Every control acts on the real model at once (``requires_grad`` and the BatchNorm
policy, through :mod:`transferlib.freezing`), and every number shown is recomputed
from the model after each change. Where no widget front end renders (a terminal,
papermill, nbconvert, a website built from the stored notebook, GitHub's viewer), the panels
show as a snapshot instead: the text summary, also as HTML.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as w
from torch import nn
from torch.utils.data import DataLoader

from .freezing import blocks, freeze, freeze_all_but_last, summary, unfreeze
from .records import History
from .training import fit

__all__ = ["FreezePanel", "TrainPanel"]

_BAR_WIDTH = 160  # pixels for the largest block


class FreezePanel:
    """One row per block (trainable toggle, parameter count, bar), a "train the last k
    blocks" slider, a BatchNorm toggle and live totals, all bound to ``model``."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.blocks = blocks(model)
        if not self.blocks:
            raise ValueError(f"This {type(model).__name__} has no blocks to show (no sub-modules with parameters). "
                             "FreezePanel is for networks made of blocks: build_classifier, torchvision or "
                             "timm models, BERT.")
        self._syncing = False
        largest = max(b.num_params for b in self.blocks) or 1
        self.toggles = [w.Checkbox(value=b.num_trainable > 0, description=b.name, indent=False,
                                   layout=w.Layout(width="260px")) for b in self.blocks]
        self.counts = [w.HTML(layout=w.Layout(width="170px")) for _ in self.blocks]
        self._widths = [max(1, round(_BAR_WIDTH * b.num_params / largest)) for b in self.blocks]
        self.bars = [w.HTML() for _ in self.blocks]
        self.slider = w.IntSlider(value=self._trainable_from_top(), min=0, max=len(self.blocks), step=1,
                                  description="train last", style={"description_width": "initial"},
                                  continuous_update=False)
        self.train_bn = w.Checkbox(value=False, indent=False, layout=w.Layout(width="auto"),
                                   description="update BatchNorm statistics in frozen blocks")
        self.totals = w.HTML()
        for toggle in self.toggles:
            toggle.observe(self._on_toggle, names="value")
        self.slider.observe(self._on_slider, names="value")
        self.train_bn.observe(self._on_bn, names="value")
        rows = [w.HBox([t, c, b], layout=w.Layout(min_height="28px", align_items="center"))  # no squeezing
                for t, c, b in zip(self.toggles, self.counts, self.bars)]
        self.widget = w.VBox([w.HBox([self.slider, w.HTML("&nbsp;blocks")]), self.train_bn, self.totals,
                              w.VBox(rows, layout=w.Layout(max_height="360px", overflow="auto"))])
        self.refresh()

    # the model is the truth; widgets only mirror it ------------------------------------
    def _trainable_from_top(self) -> int:
        k = 0
        for b in reversed(self.blocks):
            if b.num_trainable == 0:
                break
            k += 1
        return k

    def refresh(self) -> None:
        """Re-read every count and flag from the model."""
        self._syncing = True
        try:
            for b, toggle, count in zip(self.blocks, self.toggles, self.counts):
                toggle.value = b.num_trainable > 0
                count.value = f"<code>{b.num_trainable:,} / {b.num_params:,}</code>"
            for b, bar, width in zip(self.blocks, self.bars, self._widths):  # green: trains, grey: frozen
                colour = "#2a7" if b.num_trainable else "#bbb"
                bar.value = f'<div style="height:10px;width:{width}px;background:{colour}"></div>'

            self.slider.value = self._trainable_from_top()
            s = summary(self.model)
            self.totals.value = (f"<b>Trainable: {s.trainable:,}</b> of {s.total:,} parameters "
                                 f"({100 * s.trainable / max(s.total, 1):.1f}%); non-trainable {s.non_trainable:,}")
        finally:
            self._syncing = False

    @property
    def trainable(self) -> int:
        return summary(self.model).trainable

    def state(self) -> list[str]:
        """Names of the blocks that train now."""
        return [b.name for b in self.blocks if b.num_trainable > 0]

    def _on_toggle(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        block = self.blocks[self.toggles.index(change["owner"])]
        if change["new"]:
            unfreeze(self.model, [block.name])
        else:
            freeze(self.model, [block.name], train_bn=self.train_bn.value)
        self.refresh()

    def _on_slider(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            freeze_all_but_last(self.model, change["new"], train_bn=self.train_bn.value)
            self.refresh()

    def _on_bn(self, change: dict[str, Any]) -> None:
        frozen = [b.name for b in self.blocks if b.num_trainable == 0]
        if frozen:
            freeze(self.model, frozen, train_bn=change["new"])
        self.refresh()

    def set_enabled(self, enabled: bool) -> None:
        for control in [*self.toggles, self.slider, self.train_bn]:
            control.disabled = not enabled

    # display: a widget where a front end renders it, text everywhere else ---------------
    def __str__(self) -> str:
        return str(summary(self.model))

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return _bundle(self.widget, str(self), **kwargs)


class TrainPanel:
    """Learning rate, epochs, Train and Stop buttons, a live plot and a table of runs.

    Train runs :func:`transferlib.fit` on the model's current freeze state, in a
    background thread so that Stop (which keeps the best weights) can be clicked.
    ``threaded=False`` trains in the foreground (tests, papermill).
    """

    def __init__(self, model: nn.Module, train: DataLoader, val: DataLoader | None = None,
                 freeze_panel: FreezePanel | None = None, lr: float = 1e-3, epochs: int = 3,
                 threaded: bool = True, **fit_kwargs: Any) -> None:
        self.model, self.train_loader, self.val_loader = model, train, val
        self.freeze_panel, self.threaded, self.fit_kwargs = freeze_panel, threaded, fit_kwargs
        self.runs: list[dict[str, Any]] = []
        self.history: History | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lr = w.FloatLogSlider(value=lr, base=10, min=-5, max=-1, step=0.25, description="learning rate",
                                   readout_format=".0e", style={"description_width": "initial"})
        self.epochs = w.BoundedIntText(value=epochs, min=1, max=100, description="epochs",
                                       layout=w.Layout(width="160px"))
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.status = w.HTML()
        self.plot = w.Output()
        self.table = w.HTML()
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self._stop.set())
        self.widget = w.VBox([w.HBox([self.lr, self.epochs, self.train_button, self.stop_button]),
                              self.status, self.plot, self.table])
        self._render_table()

    def start(self) -> None:
        """What the Train button does."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.train_button.disabled, self.stop_button.disabled = True, False
        if self.freeze_panel is not None:
            self.freeze_panel.set_enabled(False)
        self.status.value = "training…"
        if self.threaded:
            self._thread = threading.Thread(target=self._train, daemon=True)
            self._thread.start()
        else:
            self._train()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background run has finished."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _train(self) -> None:
        lr, epochs = float(self.lr.value), int(self.epochs.value)
        trainable = summary(self.model).trainable
        blocks_on = [b.name for b in blocks(self.model) if b.num_trainable]
        tic = time.perf_counter()
        try:
            history = fit(self.model, self.train_loader, self.val_loader, epochs, lr, progress=False,
                          on_epoch=self._on_epoch, should_stop=self._stop.is_set, **self.fit_kwargs)
        except Exception as err:  # show it in the panel, keep the panel alive
            self.status.value = f'<span style="color:#c00">Training failed: {html.escape(str(err))}</span>'
        else:
            self.history = history
            if history.best_acc is None:  # stopped before the first epoch ended
                self.status.value = "stopped before the first epoch ended; the model is unchanged"
                return
            accuracy = history.best_acc
            self.runs.append({"run": len(self.runs) + 1, "trainable blocks": len(blocks_on),
                              "first trainable": blocks_on[0] if blocks_on else "-", "trainable params": trainable,
                              "lr": lr, "epochs": len(history), "seconds": round(time.perf_counter() - tic, 1),
                              "best accuracy": round(accuracy, 3), "stopped": history.interrupted})
            self.status.value = (f"run {len(self.runs)}: best {'validation ' if self.val_loader else ''}accuracy "
                                 f"{accuracy:.3f}{' (stopped, best weights kept)' if history.interrupted else ''}")
            self._render_table()
        finally:
            if self.freeze_panel is not None:
                self.freeze_panel.refresh()  # before enabling, so no click lands mid-refresh
                self.freeze_panel.set_enabled(True)
            self.train_button.disabled, self.stop_button.disabled = False, True

    def _on_epoch(self, history: History) -> None:
        from .plots import plot_history

        fig = plot_history(history, pyplot=False)  # no pyplot state touched from the training thread
        # Set the outputs trait directly: `clear_output` and `with self.plot:` are not
        # safe from the training thread.
        self.plot.outputs = ()
        self.plot.append_display_data(fig)
        self.status.value = (f"epoch {history.epoch[-1]}: loss {history.train_loss[-1]:.3f}, "
                             f"accuracy {history.train_acc[-1]:.3f}, validation {history.val_acc[-1]:.3f}")

    def _render_table(self) -> None:
        if not self.runs:
            self.table.value = "<i>No runs yet. Choose what trains above, then click Train.</i>"
            return
        head = "".join(f"<th>{html.escape(k)}</th>" for k in self.runs[0])
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values()) + "</tr>"
                       for r in self.runs)
        self.table.value = f"<table><tr>{head}</tr>{rows}</table>"

    def __str__(self) -> str:
        """What Train would do now, and the runs so far: the panel as text, for a saved notebook."""
        every = blocks(self.model)
        on = [b for b in every if b.num_trainable]
        what = (f"{len(on)} of {len(every)} blocks, from {on[0].name} up,"
                if on else "nothing trainable,")
        schedule = self.fit_kwargs.get("schedule") or "constant"
        lines = [f"TrainPanel: Train would fit {what}",
                 f"  {summary(self.model).trainable:,} trainable parameters, learning rate "
                 f"{self.lr.value:.0e} ({schedule}), {self.epochs.value} epochs,",
                 f"  on {_count(self.train_loader)} training items, scored on "
                 + (f"{_count(self.val_loader)} validation items." if self.val_loader else "themselves.")]
        if not self.runs:
            lines.append("  No runs yet: each click of Train adds a row here.")
        lines += [f"  run {r['run']}: {r['trainable blocks']} blocks, "
                  f"{r['trainable params']:,} params, lr {r['lr']:.0e}, {r['epochs']} epochs, "
                  f"{r['seconds']} s, best {r['best accuracy']:.3f}{' (stopped)' if r['stopped'] else ''}"
                  for r in self.runs]
        return "\n".join(lines)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return _bundle(self.widget, str(self), **kwargs)


def _bundle(widget: w.Widget, text: str, **kwargs: Any) -> dict[str, Any]:
    """The widget for front ends that render it; a static snapshot (text, and HTML for a website or
    GitHub's viewer) for everything else. Widget front ends rank the widget first."""
    bundle = widget._repr_mimebundle_(**kwargs)
    bundle["text/plain"] = text
    bundle["text/html"] = _snapshot_html(text)
    return bundle


def _snapshot_html(text: str) -> str:
    return ('<div class="transferlib-snapshot"><p><em>A snapshot of the panel when the notebook was saved. '
            f"Run the notebook for its controls.</em></p><pre>{html.escape(text)}</pre></div>")


def _count(loader: DataLoader) -> str:
    try:
        return f"{len(loader.dataset):,}"
    except TypeError:  # an iterable dataset has no length
        return "an unknown number of"


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value < 0.01:
        return f"{value:.0e}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
