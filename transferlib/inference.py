"""Inference: a trained image classifier as one file, and predictions on new images.

One ``.safetensors`` file holds the weights and, in its metadata, everything inference needs:
the architecture's name and head, the class names, the preprocessing, and a temperature that
divides the logits before the softmax (1.0 until you calibrate; see ``calibration``). safetensors
stores tensors and text only, so loading a file can never run code hidden in it.

    >>> save_for_inference("photos.safetensors", model, classes, weights)
    >>> predictor = load_predictor("photos.safetensors")          # on the CPU; device="cuda" for a GPU
    >>> predictor.predict("my_photo.jpg")                          # a path, a PIL image, a folder or a list
    Prediction(label='bird', probability=0.912, source='my_photo.jpg')
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from .assets import write_safetensors
from .checks import check_writable, reason
from .devices import device_of, mode
from .heads import Classifier, build_classifier, linear_layers
from .models import Weights
from .records import Prediction
from .transforms import flatten_alpha, image_transform, open_rgb, preprocessing, upright

__all__ = ["save_for_inference", "load_predictor", "predict", "Predictor", "Prediction", "INFERENCE_FORMAT"]

INFERENCE_FORMAT = "transferlib-inference-1"


def _head_shape(head: nn.Module) -> dict[str, Any]:
    linears = linear_layers(head)
    dropouts = [m.p for m in head.modules() if isinstance(m, nn.Dropout)]
    return {"hidden": linears[0].out_features if len(linears) == 2 else None,
            "dropout": dropouts[0] if dropouts else 0.0}


def save_for_inference(path: str | Path, model: Classifier, classes: Sequence[str], weights: Any,
                       size: int | None = None, temperature: float = 1.0, arch: str | None = None) -> Path:
    """Write ``model``'s weights and what inference needs into one safetensors file. Returns the path.

    ``weights`` and ``size`` are those the model was trained with (``image_transform(weights, size=...)``);
    ``arch`` defaults to the name ``build_classifier`` was given.

    >>> save_for_inference("photos.safetensors", model, photos.classes, weights, temperature=1.8)
    """
    if not isinstance(model, Classifier):
        raise TypeError(f"save_for_inference() saves a transferlib Classifier (build_classifier), not a "
                        f"{type(model).__name__}. For any other model, use safetensors.torch.save_file(model."
                        "state_dict(), path) and rebuild the model yourself before loading.")
    arch = arch or getattr(model, "arch", None)
    if arch is None:
        raise ValueError("This Classifier does not know its architecture's name: pass arch='mobilenet_v2' (the name "
                         "you built its backbone with).")
    if len(classes) != model.num_classes:
        raise ValueError(f"{len(classes)} class names for a model with {model.num_classes} outputs. Pass the "
                         "training data's classes (dataset.classes), in the order of the labels.")
    if not callable(getattr(weights, "transforms", None)):
        raise ValueError(f"weights={weights!r} is not a set of pretrained weights: pass the ones build_classifier "
                         "returned with the model (model, weights = build_classifier(...)), so that inference "
                         "preprocesses images as training did.")
    if not _positive(temperature):
        raise ValueError(f"temperature must be a positive number, not {temperature}: it divides the logits "
                         "(fit_temperature() on validation logits gives one).")
    config = {"arch": arch, "num_classes": model.num_classes, **_head_shape(model.head),
              "classes": [str(c) for c in classes], "preprocessing": preprocessing(weights, size),
              "temperature": float(temperature)}
    path = check_writable(path, "model.safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _check_rebuilds(config, state)
    return write_safetensors(path, state, {"format": INFERENCE_FORMAT, "transferlib": json.dumps(config)})


def _positive(value: Any) -> bool:
    """A positive finite number (a temperature): Python's, numpy's or a 0-d tensor."""
    try:
        return not isinstance(value, (bool, str)) and math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _rebuild(config: dict[str, Any]) -> Classifier:
    """The architecture ``config`` describes, with random weights."""
    model, _ = build_classifier(config["arch"], config["num_classes"], config["hidden"], config["dropout"],
                                pretrained=False)
    return model


def _check_rebuilds(config: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """Refuse to write a file load_predictor could not load: the rebuilt model must have the same tensors."""
    try:
        rebuilt = _rebuild(config).state_dict()
    except (KeyError, ValueError) as err:  # not an image model of list_models()
        raise ValueError(f"arch={config['arch']!r} is not an image model load_predictor can rebuild "
                         f"({reason(err, 120)}). Use a name from list_models().") from None
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != {k: tuple(v.shape) for k, v in rebuilt.items()}:
        differ = sorted(k for k in set(shapes) ^ set(rebuilt) | {k for k in shapes.keys() & rebuilt.keys()
                                                                if shapes[k] != tuple(rebuilt[k].shape)})
        raise ValueError(f"This model is not build_classifier({config['arch']!r}, {config['num_classes']}, "
                         f"hidden={config['hidden']}) (first differences: {', '.join(differ[:3])}), so "
                         "load_predictor could not rebuild it. Save it with safetensors.torch.save_file and "
                         "rebuild it yourself.")


class Predictor:
    """A loaded model with its classes, preprocessing and temperature. Data follows the model's device.

    >>> predictor = load_predictor("photos.safetensors")
    >>> [p.label for p in predictor.predict("holiday_photos/")]
    """

    unit = "photo"                  # what it classifies (a TextPredictor's is "text")

    def __init__(self, model: Classifier, config: dict[str, Any]) -> None:
        self.model, self.config = model, config
        self.classes: list[str] = list(config["classes"])
        p = config["preprocessing"]  # the training preprocessing, through the same image_transform
        self.transform = image_transform(Weights(config["arch"], tuple(p["mean"]), tuple(p["std"]),
                                                 p["resize_size"], p["crop_size"], p["interpolation"]))

    @property
    def temperature(self) -> float:
        """What the logits are divided by before the softmax (saved with the model)."""
        return float(self.config["temperature"])

    def probabilities(self, images: Any, batch_size: int = 32) -> tuple[list[str], torch.Tensor]:
        """(sources, an N x classes tensor of probabilities, on the CPU) for ``images``."""
        items = _gather(images)
        device, probs = device_of(self.model), []
        with mode(self.model, training=False), torch.inference_mode():
            for start in range(0, len(items), batch_size):
                x = torch.stack([self.transform(flatten_alpha(upright(img)) if isinstance(img, Image.Image)
                                                else open_rgb(img))    # a PIL image read as a file is read
                                 for _, img in items[start:start + batch_size]])  # read a batch at a time
                logits = self.model(x.to(device))
                probs.append(torch.softmax(logits.float() / self.temperature, -1).cpu())
        return [source for source, _ in items], torch.cat(probs)

    def predict(self, images: Any, batch_size: int = 32) -> Prediction | list[Prediction]:
        """A :class:`Prediction` for one image (a path or a PIL image); a list for a folder or a list."""
        sources, probs = self.probabilities(images, batch_size)
        found = Prediction.each(self.classes, sources, probs)
        return found[0] if _is_one(images) else found

    def __repr__(self) -> str:
        return f"Predictor({self.config['arch']}: {', '.join(self.classes)}; temperature {self.temperature:.3g})"


def load_predictor(path: str | Path, device: torch.device | str = "cpu") -> Predictor:
    """A :class:`Predictor` from a :func:`save_for_inference` file, its model on ``device`` in eval mode
    (a text model's file gives a :class:`~transferlib.textmodel.TextPredictor`).

    >>> load_predictor("photos.safetensors").predict(Image.open("cat.jpg")).label
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No saved model at {path}{' (a folder)' if path.is_dir() else ''}. Pass the file "
                                "save_for_inference() wrote, e.g. 'photos.safetensors'.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # not safetensors at all, or truncated
        raise ValueError(f"{path} is not a safetensors file ({str(err)[:120]}). Save models for inference with "
                         "save_for_inference().") from None
    if meta.get("format") == "transferlib-text-1":     # a text model (transferlib.textmodel)
        from .textmodel import load_text_predictor
        return load_text_predictor(path, meta, device)
    if meta.get("format") != INFERENCE_FORMAT:
        raise ValueError(f"{path} is a safetensors file without transferlib's inference metadata (format "
                         f"{meta.get('format')!r}). Save it with save_for_inference(), or load the weights with "
                         "safetensors.torch.load_file() into a model you build yourself.")
    try:
        config = json.loads(meta["transferlib"])
        if len(config["classes"]) != config["num_classes"] or not _positive(config["temperature"]):
            raise ValueError(f"{len(config['classes'])} class names for {config['num_classes']} outputs, "
                             f"temperature {config['temperature']!r}")
        model = _rebuild(config)
        model.load_state_dict(load_file(str(path)))
        predictor = Predictor(model.eval(), config)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # edited or damaged metadata (JSONDecodeError
        # is a ValueError): the file does not describe its own weights
        raise ValueError(f"{path} has transferlib's metadata, but the model it describes cannot be rebuilt from "
                         f"it ({type(err).__name__}: {reason(err)}). The file was changed after save_for_inference() "
                         "wrote it: save the model again.") from None
    predictor.model.to(device)
    return predictor


def predict(saved: str | Path | Predictor, images: Any) -> Prediction | list[Prediction]:
    """:func:`load_predictor` then :meth:`Predictor.predict`, for one-off use.

    >>> predict("photos.safetensors", "my_photo.jpg")
    """
    predictor = saved if isinstance(saved, Predictor) else load_predictor(saved)
    return predictor.predict(images)


# --------------------------------------------------------------------------- what "images" may be

def _is_one(images: Any) -> bool:
    return isinstance(images, Image.Image) or (isinstance(images, (str, Path)) and not Path(images).is_dir())


def _gather(images: Any) -> list[tuple[str, Image.Image | str]]:
    """(source, PIL image or file) for a path, a PIL image, a folder (its images, sub-folders too) or a list."""
    from .yourdata import list_images

    if isinstance(images, Image.Image):
        return [("<PIL image>", images)]
    if isinstance(images, (str, Path)):
        path = Path(images)
        if path.is_dir():
            skipped: Counter = Counter()
            files = list_images(path, skipped)
            if not files:
                found = f" (it has {', '.join(f'{n} {kind}' for kind, n in skipped.most_common())})" if skipped else ""
                raise FileNotFoundError(f"{path} holds no images PIL can read (.jpg, .png, .webp...){found}. Put the "
                                        "images to classify in it (convert .heic photos to JPEG), or pass the "
                                        "image files themselves.")
            return [(f, f) for f in files]
        if not path.exists():
            raise FileNotFoundError(f"No image at {path}. Check the name (relative paths start from "
                                    f"{Path.cwd()}).")
        return [(str(path), str(path))]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("predict() was given an empty list: pass at least one image, path or folder.")
        return [item for one in images for item in _gather(one)]
    raise TypeError(f"predict() takes a path, a PIL image, a folder or a list of these, not a "
                    f"{type(images).__name__}. For an array, use PIL.Image.fromarray(array) first.")
