"""A text classifier handed over as one file: a frozen sentence encoder with linear probes, or TF-IDF
with logistic regression; and a predictor that reads it. Its logits are the mean of its probes' logits:
the cross-validation's fold models, the ones :func:`~transferlib.tryout.try_strategies` measured.

    >>> save_text_model("texts.safetensors", TextModel(classes, heads, encoder="minilm", temperature=1.3))
    >>> predictor = load_predictor("texts.safetensors")        # tl.load_predictor reads both kinds of file
    >>> predictor.predict("what a lovely day")
    Prediction(label='positive', probability=0.871, source='what a lovely day')

An encoder's file holds only the probes: the encoder is the course's pretrained one, frozen, read from
its installed package by name. A TF-IDF file holds each fold's vocabulary (in its metadata, as text)
and inverse document frequencies. safetensors stores tensors and text only: loading runs no code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .assets import write_safetensors
from .checks import check_writable
from .records import Prediction

__all__ = ["TextModel", "TextPredictor", "save_text_model", "load_text_predictor", "embed", "tfidf",
           "TEXT_FORMAT", "TFIDF"]

TEXT_FORMAT = "transferlib-text-1"
TFIDF = {"ngram_range": (1, 2), "sublinear_tf": True}   # words and word pairs, as lesson 4's TF-IDF


@dataclass
class TextModel:
    """What a text file holds. ``heads``: linear layers ``(W, b)``, logits ``x @ W.T + b``, averaged.
    ``encoder``: a text model's name (its mean-pooled vectors are ``x``); ``None`` for TF-IDF, whose
    ``vocabularies`` and ``idfs`` give each head its own ``x``."""

    classes: list[str]
    heads: list[tuple[np.ndarray, np.ndarray]]
    encoder: str | None = None
    vocabularies: list[list[str]] = field(default_factory=list)
    idfs: list[np.ndarray] = field(default_factory=list)
    temperature: float = 1.0


def tfidf(vocabulary: list[str], idf: np.ndarray) -> Any:
    """A fitted ``TfidfVectorizer`` from a vocabulary (terms in column order) and its idf weights.

    >>> tfidf(["good", "bad"], np.array([1.2, 1.5])).transform(["good day"]).toarray()
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(vocabulary=vocabulary, **TFIDF)
    vectorizer.idf_ = np.asarray(idf, dtype=float)        # scikit-learn's setter for a fitted idf
    return vectorizer


def embed(encoder: torch.nn.Module, tokenizer: Any, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Mean-pooled vectors of a frozen encoder (``MeanPooledEncoder``) for ``texts``; data follows the model.

    >>> x = embed(MeanPooledEncoder(load_text_model("minilm")[0]), tokenizer, ["what a day"])  # (1, 384)
    """
    from .devices import device_of
    from .text import TextCollator

    collate, device, out = TextCollator(tokenizer), device_of(encoder), []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch, _ = collate([(t, 0) for t in texts[start:start + batch_size]])
            out.append(encoder({k: v.to(device) for k, v in batch.items()}).float().cpu())
    return torch.cat(out).numpy()


class TextPredictor:
    """A loaded text model: ``predict`` and ``probabilities`` as :class:`~transferlib.inference.Predictor`'s.

    >>> load_predictor("texts.safetensors").predict(["so good", "so bad"])
    """

    unit = "text"

    def __init__(self, model: TextModel, device: torch.device | str = "cpu") -> None:
        self.model, self.classes = model, list(model.classes)
        self.config = {"arch": model.encoder or "TF-IDF", "classes": self.classes, "temperature": model.temperature}
        if model.encoder:
            from .heads import MeanPooledEncoder
            from .models import load_text_model

            bert, self.tokenizer = load_text_model(model.encoder)
            self.encoder = MeanPooledEncoder(bert).eval().to(device)
        else:
            self.vectorizers = [tfidf(v, idf) for v, idf in zip(model.vocabularies, model.idfs)]

    @property
    def temperature(self) -> float:
        return float(self.model.temperature)

    def logits(self, texts: list[str]) -> np.ndarray:
        """The mean of the heads' logits, before the temperature."""
        if self.model.encoder:
            x = embed(self.encoder, self.tokenizer, texts)
            return np.mean([x @ w.T + b for w, b in self.model.heads], 0)
        return np.mean([np.asarray(v.transform(texts) @ w.T) + b
                        for v, (w, b) in zip(self.vectorizers, self.model.heads)], 0)

    def probabilities(self, texts: str | list[str]) -> tuple[list[str], torch.Tensor]:
        """(the texts, an N x classes tensor of calibrated probabilities)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError("predict() takes a text or a list of texts, none of them empty.")
        z = torch.from_numpy(self.logits(texts)).float()
        return texts, torch.softmax(z / self.temperature, -1)

    def predict(self, texts: str | list[str]) -> Prediction | list[Prediction]:
        """A :class:`~transferlib.inference.Prediction` for one text; a list for a list."""
        sources, probs = self.probabilities(texts)
        found = Prediction.each(self.classes, sources, probs)
        return found[0] if isinstance(texts, str) else found

    def __repr__(self) -> str:
        return f"TextPredictor({self.config['arch']}: {', '.join(self.classes)}; temperature {self.temperature:.3g})"


def save_text_model(path: str | Path, model: TextModel) -> Path:
    """Write ``model`` as one safetensors file; :func:`~transferlib.inference.load_predictor` reads it."""
    if len(model.vocabularies) != (0 if model.encoder else len(model.heads)):
        raise ValueError(f"{len(model.heads)} heads and {len(model.vocabularies)} vocabularies: an encoder's "
                         "model has none, a TF-IDF model one per head.")
    tensors = {f"{name}{n}": torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
               for n, (w, b) in enumerate(model.heads) for name, a in (("weight", w), ("bias", b))}
    tensors |= {f"idf{n}": torch.from_numpy(np.asarray(idf, dtype=np.float32)) for n, idf in enumerate(model.idfs)}
    config = {"classes": list(model.classes), "encoder": model.encoder, "temperature": float(model.temperature),
              "heads": len(model.heads), "vocabularies": model.vocabularies, "tfidf": TFIDF}
    return write_safetensors(check_writable(path, "model.safetensors"), tensors,
                             {"format": TEXT_FORMAT, "transferlib": json.dumps(config)})


def load_text_predictor(path: str | Path, meta: dict[str, str], device: torch.device | str = "cpu"
                        ) -> TextPredictor:
    """The :class:`TextPredictor` of a :func:`save_text_model` file whose metadata ``meta`` has been read."""
    from safetensors.torch import load_file

    try:
        config, tensors = json.loads(meta["transferlib"]), load_file(str(path))
        heads = [(tensors[f"weight{n}"].double().numpy(), tensors[f"bias{n}"].double().numpy())
                 for n in range(config["heads"])]
        idfs = [tensors[f"idf{n}"].double().numpy() for n in range(len(config["vocabularies"]))]
        model = TextModel(config["classes"], heads, config["encoder"], config["vocabularies"], idfs,
                          float(config["temperature"]))
        if any(w.shape[0] != len(model.classes) for w, _ in heads) or not model.temperature > 0:
            raise ValueError(f"heads for {[w.shape[0] for w, _ in heads]} classes, not {len(model.classes)}")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} has transferlib's text metadata, but not the model it describes ({err}). "
                         "The file was changed after it was written: run try again.") from None
    return TextPredictor(model, device)
