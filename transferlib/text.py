"""Text: from ``(text, label)`` pairs to the tokenizer batches a BERT-family model takes.

    >>> encoder, tokenizer = load_text_model("minilm")
    >>> loader = text_loader(tweets, tokenizer, batch_size=16, shuffle=True)
    >>> batch, labels = next(iter(loader))        # batch: input_ids, attention_mask, ...
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from .datasets import TextDataset, make_loader

__all__ = ["TextCollator", "text_loader"]

_TRUNCATION_SAID: set[tuple[str, int]] = set()  # (tokenizer, max_length): the note is said once per session


class TextCollator:
    """Turns a list of ``(text, label)`` into ``(tokenizer batch, labels)``, truncating at ``max_length``
    (by default the model's limit).

    Truncation is reported once per session for each tokenizer and limit, with how many texts of
    that batch were cut: a lesson that builds many loaders over the same tweets says it once.
    """

    def __init__(self, tokenizer: Any, max_length: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length or min(tokenizer.model_max_length, 512)
        self.limit = "max_length" if max_length else "the model's limit"
        self.key = (str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__)), self.max_length)

    def __call__(self, items: list[tuple[str, int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        texts = [t for t, _ in items]
        if any(not isinstance(t, str) for t in texts):
            raise TypeError(f"The tokenizer was given {next(t for t in texts if not isinstance(t, str))!r}, not a "
                            "text. Keep strings only in the dataset (pandas reads an empty cell as nan).")
        if any(not t.strip() for t in texts):
            raise ValueError("An empty text reached the tokenizer. Drop empty texts from the dataset first.")
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt", return_overflowing_tokens=False, return_length=False)
        if self.key not in _TRUNCATION_SAID and batch["input_ids"].shape[1] == self.max_length:
            lengths = self.tokenizer(texts, verbose=False)["input_ids"]  # verbose=False: no length warning
            long = sum(len(ids) > self.max_length for ids in lengths)
            if long:
                verb = "is" if long == 1 else "are"
                print(f"Note: {long} of the {len(texts)} texts in this batch {verb} longer than {self.max_length} "
                      f"tokens ({self.limit})\nand {verb} truncated; later texts are truncated the same way. "
                      "Said once.")
                _TRUNCATION_SAID.add(self.key)
        return dict(batch), torch.tensor([y for _, y in items])


def text_loader(dataset: TextDataset, tokenizer: Any, batch_size: int = 16, shuffle: bool = False,
                seed: int = 0, max_length: int | None = None) -> DataLoader:
    """A DataLoader of tokenized text batches for a :class:`TextDataset`; ``max_length`` truncates
    (a note says so once).

    >>> loader = text_loader(tweets, tokenizer, batch_size=16, shuffle=True, max_length=64)
    """
    return make_loader(dataset, batch_size, shuffle, seed, collate_fn=TextCollator(tokenizer, max_length))
