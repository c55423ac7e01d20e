"""Domain exceptions. The library raises these; the CLI turns each into a one-line error.

Example:
    >>> from bpo_classify.errors import MissingColumnError
    >>> str(MissingColumnError("column 'duty' not found; available: a, b; use --text-column"))
    "column 'duty' not found; available: a, b; use --text-column"
"""

from __future__ import annotations


class BpoClassifyError(Exception):
    """Base class: a problem the user can fix; its message says how."""


class InputFileError(BpoClassifyError):
    """An input file is missing, unreadable, not UTF-8 or not a usable CSV."""


class MissingColumnError(BpoClassifyError):
    """A named column is not in the input, or the text column cannot be chosen."""


class ColumnConflictError(BpoClassifyError):
    """A column the labeller would add already exists in the input."""


class CorpusError(BpoClassifyError):
    """Training data is empty, has one class, or holds labels outside the policy."""


class ModelFileError(BpoClassifyError):
    """A model file is missing, not a model, corrupt, or from a newer format."""


class OutputFileError(BpoClassifyError):
    """The output cannot be written where it was asked for."""


class WorkerError(BpoClassifyError):
    """A parallel labelling worker process stopped unexpectedly."""


class MissingExtraError(BpoClassifyError):
    """A feature needs an optional extra that is not installed (see ``extras.py``)."""
