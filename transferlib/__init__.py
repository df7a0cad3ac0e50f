"""transferlib: the small PyTorch helper library of the transfer-learning course.

    >>> import transferlib as tl
    >>> model, weights = tl.build_classifier("mobilenet_v2", num_classes=6)
    >>> tl.freeze_all_but_last(model, 1); print(tl.summary(model))
    >>> train = tl.load_dataset("tuxpaint_photos", transform=tl.image_transform(weights))
    >>> history = tl.fit(model, tl.make_loader(train, shuffle=True), epochs=3)

One concept per module, read in this order:

- ``assets``    where files live, checksums, offline detection
- ``models``    pretrained networks by name, with their preprocessing; a small CNN for baselines
- ``datasets``  the course's data, your own folders and CSVs, transforms, k-shot, loaders
- ``freezing``  blocks, freeze / unfreeze, the BatchNorm policy, ``summary``
- ``heads``     a new classifier on a pretrained backbone
- ``training``  ``fit``, ``evaluate``, checkpoints, ``lr_find``, gradual unfreezing, LP-FT
- ``features``  extract once, cache, train heads and probes on the cache
- ``probing``   activations by layer, linear CKA, probes by depth
- ``plots``     curves, confusion matrices, image grids, filters, feature maps
- ``widgets``   a freeze panel and a training panel for notebooks
- ``strategy``  how ImageNet-like your data is, and the measured grid's recommendation
"""

from .assets import ChecksumError, OfflineError, is_offline
from .datasets import (ArrayImageDataset, DatasetInfo, TextDataset, image_transform, in_memory, k_shot,
                       list_datasets, load_dataset, load_image_folder, load_text_csv, make_loader,
                       select_classes, split_per_class, stratified_split, subset, text_loader, with_transform)
from .features import cached_features, extract_features, logistic_probe, train_head
from .freezing import blocks, freeze, freeze_all_but_last, summary, unfreeze
from .heads import Classifier, build_classifier, build_text_classifier, make_head, replace_head
from .models import SmallCNN, Weights, list_models, load_model, load_text_model
from .plots import image_grid, plot_confusion, plot_feature_maps, plot_filters, plot_history
from .probing import activations, linear_cka, probe_by_depth
from .training import (Evaluation, History, evaluate, fit, gradual_unfreeze, load_checkpoint, lp_ft, lr_find,
                       make_optimizer, param_groups, pick_device, save_checkpoint)
from .strategy import StrategyGrid, recommend_strategy, source_similarity
from .widgets import FreezePanel, TrainPanel

__version__ = "0.1.0"

__all__ = [
    "ArrayImageDataset", "ChecksumError", "Classifier", "DatasetInfo", "Evaluation", "FreezePanel", "History",
    "StrategyGrid", "recommend_strategy", "source_similarity",
    "OfflineError", "SmallCNN", "TextDataset", "TrainPanel", "Weights", "activations", "blocks",
    "build_classifier", "build_text_classifier", "cached_features", "evaluate", "extract_features", "fit",
    "freeze", "freeze_all_but_last", "gradual_unfreeze", "image_grid", "image_transform", "in_memory", "is_offline",
    "k_shot", "linear_cka", "list_datasets", "list_models", "load_checkpoint", "load_dataset",
    "load_image_folder", "load_model", "load_text_csv", "load_text_model", "logistic_probe", "lp_ft", "lr_find",
    "make_head", "make_loader", "make_optimizer", "param_groups", "pick_device", "plot_confusion",
    "plot_feature_maps", "plot_filters", "plot_history", "probe_by_depth", "replace_head", "save_checkpoint",
    "select_classes", "split_per_class", "stratified_split", "subset", "summary", "text_loader", "train_head",
    "unfreeze", "with_transform",
]
