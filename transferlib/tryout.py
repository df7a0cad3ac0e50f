"""Your own photos or texts, end to end: audit them, try the strategies that fit a time budget under the
course's protocol, pick honestly, and hand over the pick. A folder of photos goes through
:mod:`tryphotos`, a CSV of texts through :mod:`trytexts`; both run :mod:`nested`'s engine, and
:mod:`handover` writes the files.

    >>> report = try_strategies("my_photos", minutes=5, out="my_model")
    >>> print(report)         # the audit, each strategy's accuracy with its interval, the pick
    $ python -m transferlib try my_photos --minutes 5 --out my_model
    $ python -m transferlib try reviews.csv --out review_model      # columns text and label
"""

from __future__ import annotations

import time
from pathlib import Path

from .nested import TryReport

__all__ = ["try_strategies"]


def try_strategies(path: str | Path, minutes: float = 5.0, out: str | Path | None = None, device: str = "cpu",
                   margin: float = 0.03, coverage: float = 0.9, seed: int = 0, splits: int = 5) -> TryReport:
    """Audit a folder of photos (one sub-folder per class) or a CSV of texts (columns ``text`` and
    ``label``), try each strategy that fits in ``minutes``, pick, and (with ``out``) write
    ``model.safetensors``, ``report.html``, ``MODEL_CARD.md``, ``prediction_sets.json`` and ``app.py``.

    ``margin``: how much accuracy you would give up for a cheaper model, declared before the run.
    ``coverage``: the prediction sets' target (0.9: the true class is in the set 9 times in 10).
    ``splits``: how many splits into folds (seeds ``seed``, ``seed + 1``...) test every item, as
    time allows; the intervals and verdicts cover the photos and the splits.

    >>> report = try_strategies("my_photos", minutes=5, out="my_model"); report.pick.name
    >>> report = try_strategies("reviews.csv", minutes=5, out="review_model")
    """
    start = time.perf_counter()
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
        raise ValueError(f"minutes={minutes!r}: give the time you can wait, a positive number (5 is the default).")
    if not 0 < margin < 1 or not 0 < coverage < 1:
        raise ValueError(f"margin={margin!r} and coverage={coverage!r} are fractions: 0.03 is 3 points, 0.9 is 90%.")
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits={splits!r}: give how many splits into folds to test on, a whole number >= 1 (5).")
    if Path(path).suffix.lower() in {".csv", ".tsv", ".txt"}:
        from .trytexts import try_texts
        return try_texts(path, minutes, out, device, margin, coverage, seed, splits, start)
    from .tryphotos import try_photos
    return try_photos(path, minutes, out, device, margin, coverage, seed, splits, start)
