"""transferlib: the small PyTorch helper library of the transfer-learning course.

    >>> import transferlib as tl
    >>> model, weights = tl.build_classifier("mobilenet_v2", num_classes=6)
    >>> tl.freeze_all_but_last(model, 1); print(tl.summary(model))
    >>> model.to(tl.pick_device(DEVICE))                  # you place the model; data follows it
    >>> train = tl.load_dataset("tuxpaint_photos", transform=tl.image_transform(weights))
    >>> history = tl.fit(model, tl.make_loader(train, shuffle=True), epochs=3)

One concept per module, read in this order:

- ``assets``      where files live, checksums, offline detection
- ``devices``     choosing a device; data follows the model, results come back on the CPU
- ``models``      pretrained networks by name, with their preprocessing; a small CNN for baselines
- ``datasets``    containers, splits (k-shot, stratified, hold-outs), loaders
- ``catalogue``   the course's datasets by name, with source and license
- ``yourdata``    your own image folders and CSV files
- ``transforms``  preprocessing from the weights, for any image
- ``text``        tokenizer batches for BERT-family models
- ``freezing``    blocks, freeze / unfreeze, the BatchNorm policy, ``summary``
- ``heads``       a new classifier on a pretrained backbone
- ``records``     ``History`` and ``Evaluation``
- ``checkpoints`` checkpoint files and the best-weights copy
- ``checks``      what ``fit`` and ``evaluate`` are given, checked before anything trains
- ``training``    ``fit`` and ``evaluate``
- ``recipes``     ``lr_find``, gradual unfreezing, LP-FT
- ``features``    extract once, cache, train heads and probes on the cache
- ``probing``     activations by layer, linear CKA, probes by depth
- ``plots``       curves, confusion matrices, image grids, filters, feature maps
- ``widgets``     a freeze panel and a training panel for notebooks (imported when first used)
- ``calibration`` reliability diagrams, the expected calibration error with its interval, temperature scaling
- ``inference``   a trained classifier as one safetensors file; predictions on a path, a PIL image or a folder
- ``choosing``    choices made on validation only (``tl.stats.choose``), and a validation split taken
                  out of a few-shot budget (``split_budget``)
- ``stats``       accuracies with intervals over seeds and items, paired verdicts, equivalence, power, Holm
- ``strategy``    how ImageNet-like your data is, and the measured grid's recommendation
"""

from __future__ import annotations

from typing import Any

from .calibration import ECEComparison, Reliability, compare_ece, ece, fit_temperature, reliability
from .assets import ChecksumError, OfflineError, is_offline
from .catalogue import list_datasets, load_dataset
from .choosing import split_budget
from .checkpoints import load_checkpoint, save_checkpoint
from . import stats
from .datasets import (ArrayImageDataset, DatasetInfo, TextDataset, in_memory, k_shot, make_loader, role_of,
                       select_classes, split_per_class, stratified_split, subset, with_transform)
from .devices import PeakMemory, device_of, pick_device
from .features import Features, cached_features, extract_features, train_head
from .freezing import blocks, freeze, freeze_all_but_last, summary, unfreeze
from .heads import Classifier, build_classifier, build_text_classifier, make_head, replace_head
from .inference import Prediction, Predictor, load_predictor, predict, save_for_inference
from .models import SmallCNN, Weights, list_models, load_model, load_text_model
from .plots import image_grid, plot_confusion, plot_feature_maps, plot_filters, plot_history, plot_reliability
from .probing import activations, fit_probe, linear_cka, logistic_probe, probe_by_depth
from .recipes import gradual_unfreeze, lp_ft, lr_find
from .records import Evaluation, History
from .strategy import StrategyGrid, recommend_strategy, source_similarity
from .text import text_loader
from .training import evaluate, fit, make_optimizer, param_groups
from .transforms import image_transform
from .yourdata import ImageFiles, list_images, load_image_folder, load_text_csv

__version__ = "0.1.0"

_WIDGETS = ("FreezePanel", "TrainPanel")  # ipywidgets is imported when a panel is first asked for


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'transferlib' has no attribute {name!r}")


__all__ = [
    "ArrayImageDataset", "ChecksumError", "Classifier", "DatasetInfo", "Evaluation", "Features", "FreezePanel",
    "History", "ImageFiles", "fit_probe", "Prediction", "Predictor", "compare_ece", "ece", "fit_temperature",
    "load_predictor", "plot_reliability", "predict", "reliability", "save_for_inference", "ECEComparison",
    "Reliability", "list_images",
    "OfflineError", "PeakMemory", "SmallCNN", "StrategyGrid", "TextDataset", "TrainPanel", "Weights", "activations",
    "blocks",
    "build_classifier", "build_text_classifier", "cached_features", "device_of", "evaluate", "extract_features",
    "fit", "freeze", "freeze_all_but_last", "gradual_unfreeze", "image_grid", "image_transform", "in_memory",
    "is_offline", "k_shot", "linear_cka", "list_datasets", "list_models", "load_checkpoint", "load_dataset",
    "load_image_folder", "load_model", "load_text_csv", "load_text_model", "logistic_probe", "lp_ft", "lr_find",
    "make_head", "make_loader", "make_optimizer", "param_groups", "pick_device", "plot_confusion",
    "plot_feature_maps", "plot_filters", "plot_history", "probe_by_depth", "recommend_strategy", "replace_head",
    "role_of", "stats",
    "save_checkpoint", "select_classes", "source_similarity", "split_budget", "split_per_class", "stratified_split",
    "subset",
    "summary", "text_loader", "train_head", "unfreeze", "with_transform",
]
