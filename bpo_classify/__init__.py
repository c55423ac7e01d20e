"""bpo-classify: front-office or back-office, and which business function, for a task description.

Example:
    >>> from bpo_classify import load_model
    >>> load_model().predict(["answer live chat inquiries"])[0].office
    'front-office'
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("bpo-classify")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Model", "Prediction", "load_model", "save_model", "label_csv", "train", "cross_validate",
    "load_labelled", "check_labelled", "__version__",
]

# Imported lazily so that `import bpo_classify` (and the CLI's predict path) never
# pulls in scikit-learn, which only training needs.
_LAZY = {
    "Model": "model", "Prediction": "model", "load_model": "model", "save_model": "model",
    "label_csv": "labeling", "train": "training", "cross_validate": "training",
    "load_labelled": "corpus", "check_labelled": "corpus",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'bpo_classify' has no attribute {name!r}")
