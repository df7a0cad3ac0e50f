"""transferlib: the small PyTorch helper library of the transfer-learning course.

    >>> import transferlib as tl
    >>> model, weights = tl.build_classifier("mobilenet_v2", num_classes=6)
    >>> tl.freeze_all_but_last(model, 1); print(tl.summary(model))
    >>> model.to(tl.pick_device(DEVICE))                  # you place the model; data follows it
    >>> train = tl.load_dataset("tuxpaint_photos", transform=tl.image_transform(weights))
    >>> history = tl.fit(model, tl.make_loader(train, shuffle=True), epochs=3)

One concept per module, read in this order (README.md's table, and ``__all__`` below):

- ``assets``      where files live, checksums, offline detection
- ``devices``     choosing a device; data follows the model, results come back on the CPU; freeing memory
- ``progress``    progress bars that leave their final line of text in a stored notebook
- ``models``      pretrained networks by name, with their preprocessing: one registry entry per name
- ``smallcnn``    ``SmallCNN``, a small CNN to train from scratch: the baseline for small images
- ``datasets``    containers and views (a transform, some classes, tensors in memory), their roles, loaders
- ``splits``      k-shot budgets, stratified splits, hold-outs, each a ``LabelledSubset`` that knows its role
- ``catalogue``   the course's datasets by name, with source and license
- ``yourdata``    your own image folders and CSV files
- ``transforms``  preprocessing from the weights, for any image
- ``text``        tokenizer batches for BERT-family models
- ``freezing``    blocks, freeze / unfreeze, the BatchNorm policy, AdaBN, ``summary``
- ``heads``       a new classifier on a pretrained backbone
- ``records``     ``History``, ``Evaluation`` and ``Prediction``
- ``checkpoints`` checkpoint files and the best-weights copy
- ``checks``      what ``fit`` and ``evaluate`` are given, checked before anything trains
- ``training``    ``fit`` and ``evaluate``
- ``recipes``     ``lr_find``, gradual unfreezing, LP-FT
- ``features``    extract once, cache, train heads and probes on the cache
- ``probing``     activations by layer, linear CKA, probes by depth
- ``choosing``    choices made on validation only (``tl.stats.choose``; ``choose_on_grid`` extends a grid
                  once past an edge that wins), and a validation split taken out of a few-shot budget
                  (``split_budget``)
- ``intervals``   an accuracy with its interval over seeds and items, the bootstrap, the difference a test
                  on n items can detect and the items a difference needs
- ``stats``       paired verdicts, equivalence, Holm; it hands on ``intervals``' names too, so that lessons
                  call ``tl.stats.accuracy`` beside ``tl.stats.compare`` (the namespace says what they are)
- ``calibration`` reliability diagrams, the expected calibration error with its interval, temperature scaling,
                  split-conformal prediction sets
- ``inference``   a trained classifier as one safetensors file; predictions on a path, a PIL image or a folder
- ``textmodel``   a text classifier as one file (a frozen encoder's probes, or TF-IDF), and its predictor
- ``plots``       curves, confusion matrices, image grids, filters, feature maps
- ``widgets``     a freeze panel and a training panel for notebooks (imported when first used)
- ``strategy``    how ImageNet-like your data is, and the measured grid's recommendation
- ``audit``       data checked before it is trusted: unreadable files, identical items, near twins
- ``nested``      strategies by nested cross-validation over splits into folds, an honest pick, calibration and
                  prediction sets measured out of fold: the engine of ``try_strategies``
- ``tryphotos``   a folder of photos through that engine: frozen ImageNet networks and probes
- ``trytexts``    a CSV of texts through it: TF-IDF with logistic regression, and MiniLM with a probe
- ``tryout``      ``try_strategies``: your own photos or texts end to end
- ``modelcard``   the model card, and the words the report says its numbers in
- ``handover``    what ``try_strategies`` found, written out: the model, a report, a model card, an app
- ``demo``        that app: a local web page (Gradio) with the top classes and the prediction set
- ``__main__``    ``python -m transferlib try PATH``
"""

from __future__ import annotations

from typing import Any

from .assets import ChecksumError, OfflineError, is_offline
from .devices import PeakMemory, device_of, pick_device, release_memory
from .models import Weights, list_models, load_model, load_text_model
from .smallcnn import SmallCNN
from .datasets import (ArrayImageDataset, DatasetInfo, TextDataset, in_memory, make_loader, role_of, select_classes,
                       with_transform)
from .splits import LabelledSubset, k_shot, split_per_class, stratified_split, subset
from .catalogue import list_datasets, load_dataset
from .yourdata import ImageFiles, list_images, load_image_folder, load_text_csv
from .transforms import image_transform, preprocessing
from .text import text_loader
from .freezing import adapt_batchnorm, blocks, freeze, freeze_all_but_last, summary, unfreeze
from .heads import Classifier, build_classifier, build_text_classifier, make_head, replace_head
from .records import Evaluation, History, Prediction
from .checkpoints import load_checkpoint, save_checkpoint
from .training import evaluate, fit, make_optimizer, param_groups
from .recipes import gradual_unfreeze, lp_ft, lr_find
from .features import Features, cached_features, extract_features, train_head
from .probing import Probe, activations, fit_probe, linear_cka, logistic_probe, probe_by_depth
from .choosing import split_budget
from . import intervals, stats
from .calibration import (ECEComparison, Reliability, compare_ece, conformal_threshold, ece, fit_temperature,
                          prediction_sets, reliability)
from .inference import Predictor, load_predictor, predict, save_for_inference
from .plots import image_grid, plot_confusion, plot_feature_maps, plot_filters, plot_history, plot_reliability
from .strategy import StrategyGrid, recommend_strategy, source_similarity
from .nested import TryReport
from .tryout import try_strategies

__version__ = "0.1.0"

_WIDGETS = ("FreezePanel", "TrainPanel")  # ipywidgets is imported when a panel is first asked for


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'transferlib' has no attribute {name!r}")


__all__ = [
    # assets, devices
    "ChecksumError", "OfflineError", "is_offline",
    "PeakMemory", "device_of", "pick_device", "release_memory",
    # models, smallcnn
    "Weights", "list_models", "load_model", "load_text_model",
    "SmallCNN",
    # datasets, splits, catalogue, yourdata, transforms, text
    "ArrayImageDataset", "DatasetInfo", "TextDataset", "in_memory", "make_loader", "role_of", "select_classes",
    "with_transform",
    "LabelledSubset", "k_shot", "split_per_class", "stratified_split", "subset",
    "list_datasets", "load_dataset",
    "ImageFiles", "list_images", "load_image_folder", "load_text_csv",
    "image_transform", "preprocessing",
    "text_loader",
    # freezing, heads
    "blocks", "freeze", "freeze_all_but_last", "summary", "unfreeze", "adapt_batchnorm",
    "Classifier", "build_classifier", "build_text_classifier", "make_head", "replace_head",
    # records, checkpoints, training, recipes
    "Evaluation", "History", "Prediction",
    "load_checkpoint", "save_checkpoint",
    "evaluate", "fit", "make_optimizer", "param_groups",
    "gradual_unfreeze", "lp_ft", "lr_find",
    # features, probing
    "Features", "cached_features", "extract_features", "train_head",
    "Probe", "activations", "fit_probe", "linear_cka", "logistic_probe", "probe_by_depth",
    # choosing, intervals, stats, calibration, inference
    "split_budget",
    "intervals",
    "stats",
    "ECEComparison", "Reliability", "compare_ece", "ece", "fit_temperature",
    "conformal_threshold", "prediction_sets", "reliability",
    "Predictor", "load_predictor", "predict", "save_for_inference",
    # plots, widgets, strategy
    "image_grid", "plot_confusion", "plot_feature_maps", "plot_filters", "plot_history", "plot_reliability",
    "FreezePanel", "TrainPanel",
    "StrategyGrid", "recommend_strategy", "source_similarity",
    # nested, tryout
    "TryReport", "try_strategies",
]
