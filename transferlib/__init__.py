"""transferlib: the small PyTorch helper library of the transfer-learning course.

    >>> import transferlib as tl
    >>> model, weights = tl.load_model("mobilenet_v2")
    >>> cats = tl.load_dataset("tuxpaint_photos", transform=weights.transforms())

One concept per module: ``models`` (pretrained networks by name), ``datasets``
(the course's offline data and your own folders or CSVs), ``assets`` (where
files live, checksums, offline detection).
"""

from .assets import ChecksumError, OfflineError, is_offline
from .datasets import (ArrayImageDataset, DatasetInfo, TextDataset, list_datasets, load_dataset,
                       load_image_folder)
from .models import Weights, list_models, load_model, load_text_model

__version__ = "0.1.0"

__all__ = [
    "ArrayImageDataset", "ChecksumError", "DatasetInfo", "OfflineError", "TextDataset", "Weights",
    "is_offline", "list_datasets", "list_models", "load_dataset", "load_image_folder", "load_model",
    "load_text_model",
]
