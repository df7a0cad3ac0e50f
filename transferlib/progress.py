"""Progress bars that still read well once the run is over.

tqdm's notebook bar is a widget: a stored notebook keeps only its first frame ("0%") and a large
widget state, so on a website or in a notebook viewer a finished run looks unfinished. In a
notebook, :func:`progress_bar` draws tqdm's *text* bar into one output that it updates in place
(IPython's ``display(..., display_id=True)``) while the loop runs. When the bar closes, that output
is emptied and, for a bar that stays (``leave=True``), its final line is printed:
``epochs: 100%|██████████| 15/15 [01:03<00:00, 4.2s/it]``. No widget, no widget state; and a
replay that ignores display updates (nbval) sees the same outputs as the stored run. Elsewhere
it is plain tqdm.

    >>> with progress_bar(total=len(loader), desc="epoch 1", leave=False) as bar:
    ...     for batch in loader:
    ...         bar.update()
"""

from __future__ import annotations

import re
import sys
from typing import Any

from tqdm import tqdm

__all__ = ["progress_bar"]

_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"  # a Jupyter kernel, not a terminal IPython


class _DisplayLine:
    """A file for tqdm: what it writes is shown as one notebook output, replaced at every write."""

    encoding = "utf-8"  # so that tqdm draws its bar with block characters, not '#'

    def __init__(self) -> None:
        from IPython.display import display

        self.handle = display({}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = _ESCAPES.sub("", text).replace("\r", "").replace("\n", "")
        if line:  # tqdm also writes bare newlines and cursor moves: nothing to show
            self.handle.update({"text/plain": line} if line.strip() else {}, raw=True)

    def flush(self) -> None:
        pass


class _NotebookBar(tqdm):
    """tqdm drawing into a :class:`_DisplayLine`; on closing, the live line goes and the final one is printed."""

    def close(self) -> None:
        if self.disable:
            return
        final = _ESCAPES.sub("", str(self))
        super().close()
        self.fp.handle.update({}, raw=True)
        if self.leave:
            print(final)


def progress_bar(total: int | None = None, desc: str = "", leave: bool = True, disable: bool = False,
                 iterable: Any = None) -> tqdm:
    """A tqdm bar; in a notebook, a text bar that leaves its final line instead of a widget.

    >>> for epoch in progress_bar(iterable=range(1, 11), desc="epochs"): ...
    """
    if disable or not _in_notebook():
        return tqdm(iterable, total=total, desc=desc, leave=leave, disable=disable)
    return _NotebookBar(iterable, total=total, desc=desc, leave=leave, file=_DisplayLine(), position=0,
                        bar_format="{l_bar}{bar:20}{r_bar}")  # a fixed width: the same line on every machine
