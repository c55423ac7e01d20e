"""What a model file may hold: its header's schema, and the arrays (names, types, shapes) the header implies.

A model file's checksum only shows that the bytes were not damaged on the way: anyone can
rewrite a file and its checksum. So loading trusts nothing the file says until it is
checked here: the header's keys, types and ranges (:func:`check_header`), then the arrays
it implies (:func:`expected_arrays`), which ``modelfile.loads`` compares with each array's
declared type, shape and size *before* reading it, reading no other member of the file.
Every limit is far above what training makes (the shipped model has 174,410 features and
15 functions) and bounds what a crafted file can make the loader allocate.

Example:
    >>> header = {"format": "bpo-classify-model", "format_version": 3, "calibration": [1.5, 0.0],
    ...           "blocks": [{"analyzer": "word", "ngram_range": [1, 1], "n_terms": 2}],
    ...           "function_classes": ["payroll"], "metadata": {"review_threshold": 0.8}}
    >>> check_header(header)
    >>> expected_arrays(header)["function_coef"]
    ArraySpec(dtype='<f8', shape=(1, 2), required=True, exact=True)
    >>> check_header({**header, "metadata": {"review_threshold": "high"}})
    Traceback (most recent call last):
    ...
    bpo_classify.modelschema.SchemaError: metadata.review_threshold is 'high', not a number between 0 and 1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .policy import FUNCTION_OFFICE

#: Limits of a model file: a file past any of them is refused before its arrays are read.
MAX_BLOCKS = 16
MAX_TERMS = 5_000_000  # per block
MAX_FEATURES = 5_000_000  # all blocks and the embedding together
MAX_NGRAM = 8
MAX_HEAD_WORDS = 64
MAX_ENCODER_DIM = 4096
#: A term's average UTF-8 bytes (terms are joined by newlines in one byte array; the shipped model's: 10).
MAX_TERM_BYTES = 256
#: The largest magnitude of a weight, an IDF or a calibration parameter (trained ones stay under 20).
MAX_WEIGHT = 1e4
#: All arrays of one file together, as declared (the shipped model's: 44 MB); also checked while reading.
MAX_ARRAY_BYTES = 2**30

_TOP_KEYS = {"format", "format_version", "blocks", "calibration", "function_classes", "metadata", "encoder"}
_BLOCK_KEYS = {"analyzer", "ngram_range", "n_terms", "head_words"}
_ANALYZERS = ("word", "char_wb", "head")
_DETECTORS = ("mixed", "not_a_task")


class SchemaError(ValueError):
    """A model file's header or arrays are not of the shape a model file has."""


@dataclass(frozen=True)
class ArraySpec:
    """One array a header implies: its NumPy dtype, its shape, whether the file must have it, and
    whether the shape is exact (else a 1-D array of at most ``shape[0]`` items)."""

    dtype: str
    shape: tuple[int, ...]
    required: bool = True
    exact: bool = True

    def fits(self, dtype: Any, shape: tuple[int, ...]) -> bool:
        """Whether an array of ``dtype`` and ``shape`` is this one."""
        if dtype != self.dtype:  # a NumPy dtype compares equal to its string ('<f8'), and only then
            return False
        if self.exact:
            return tuple(shape) == self.shape
        return len(shape) == 1 and shape[0] <= self.shape[0]

    @property
    def nbytes(self) -> int:
        """The array's size in bytes."""
        return math.prod(self.shape) * int(self.dtype[-1])


def _number(value: Any, where: str, low: float = -MAX_WEIGHT, high: float = MAX_WEIGHT) -> float:
    """``value`` if it is a real (not bool) finite number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise SchemaError(f"{where} is {value!r:.40}, not a number between {low:g} and {high:g}")
    return float(value)


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high):
        raise SchemaError(f"{where} is {value!r:.40}, not a whole number from {low:,} to {high:,}")
    return value


def _kind(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise SchemaError(f"{where} is a {type(value).__name__}, not a {kind.__name__}")
    return value


def _strings(value: Any, where: str, limit: int = 1000) -> list[str]:
    _kind(value, list, where)
    if len(value) > limit or not all(isinstance(item, str) and len(item) <= 1000 for item in value):
        raise SchemaError(f"{where} is not a list of short strings")
    return value


def check_header(header: Any) -> None:
    """Raise :class:`SchemaError` unless ``header`` has the keys, types and ranges of a model file's header."""
    _kind(header, dict, "the header")
    unknown = sorted(set(header) - _TOP_KEYS)
    if unknown:
        raise SchemaError(f"unknown header entries: {', '.join(map(repr, unknown))[:200]}")
    for key in ("blocks", "calibration", "function_classes"):
        if key not in header:
            raise SchemaError(f"the header has no {key!r}")
    blocks = _kind(header["blocks"], list, "blocks")
    if not 1 <= len(blocks) <= MAX_BLOCKS:
        raise SchemaError(f"{len(blocks)} feature blocks; a model has 1 to {MAX_BLOCKS}")
    for i, spec in enumerate(blocks):
        where = f"blocks[{i}]"
        _kind(spec, dict, where)
        if set(spec) - _BLOCK_KEYS or not {"analyzer", "ngram_range", "n_terms"} <= set(spec):
            raise SchemaError(f"{where} has entries {sorted(map(str, spec))}; expected analyzer, ngram_range, n_terms (and head_words)")
        if spec["analyzer"] not in _ANALYZERS:
            raise SchemaError(f"{where}.analyzer is {spec['analyzer']!r:.40}, not one of {', '.join(_ANALYZERS)}")
        ngrams = _kind(spec["ngram_range"], list, f"{where}.ngram_range")
        if len(ngrams) != 2:
            raise SchemaError(f"{where}.ngram_range has {len(ngrams)} numbers, not 2")
        low = _integer(ngrams[0], f"{where}.ngram_range[0]", 1, MAX_NGRAM)
        _integer(ngrams[1], f"{where}.ngram_range[1]", low, MAX_NGRAM)
        _integer(spec["n_terms"], f"{where}.n_terms", 0, MAX_TERMS)
        if spec["analyzer"] == "head":
            _integer(spec.get("head_words"), f"{where}.head_words", 1, MAX_HEAD_WORDS)
    calibration = _kind(header["calibration"], list, "calibration")
    if len(calibration) != 2:
        raise SchemaError(f"calibration has {len(calibration)} numbers, not 2")
    for i, value in enumerate(calibration):
        _number(value, f"calibration[{i}]", -1e3, 1e3)
    classes = _strings(header["function_classes"], "function_classes", 100)
    if not classes or len(set(classes)) != len(classes) or not set(classes) <= set(FUNCTION_OFFICE):
        raise SchemaError("function_classes must be distinct function labels of the policy, at least one")
    if "encoder" in header:
        encoder = _kind(header["encoder"], dict, "encoder")
        _integer(encoder.get("dim"), "encoder.dim", 1, MAX_ENCODER_DIM)
        for key in ("package", "version", "name"):
            if not isinstance(encoder.get(key), str):
                raise SchemaError(f"encoder.{key} is not a string")
    _check_metadata(header.get("metadata", {}))
    if _features(header) > MAX_FEATURES:
        raise SchemaError(f"{_features(header):,} features; at most {MAX_FEATURES:,}")
    total = sum(spec.nbytes for spec in expected_arrays(header).values() if spec.exact)
    if total > MAX_ARRAY_BYTES:
        raise SchemaError(f"its arrays would take {total:,} bytes; at most {MAX_ARRAY_BYTES:,}")


def _check_metadata(metadata: Any) -> None:
    """The metadata entries that the program reads have their types; others are kept as they are."""
    _kind(metadata, dict, "metadata")
    if "review_threshold" in metadata:
        _number(metadata["review_threshold"], "metadata.review_threshold", 0.0, 1.0)
    review = _kind(metadata.get("review", {}), dict, "metadata.review")
    for key in ("familiar_share", "not_a_task"):
        if key in review:
            _number(review[key], f"metadata.review.{key}", 0.0, 1.0)
    for key in ("training_data", "metrics", "params"):
        _kind(metadata.get(key, {}), dict, f"metadata.{key}")
    cv = metadata.get("metrics", {}).get("cross_validation")
    if cv is not None:
        _kind(cv, dict, "metadata.metrics.cross_validation")
        _integer(cv.get("folds", 2), "metadata.metrics.cross_validation.folds", 0, 10**6)
        for key in ("office", "function"):
            scores = _kind(cv.get(key, {}), dict, f"metadata.metrics.cross_validation.{key}")
            for name in ("accuracy", "macro_f1"):
                if name in scores:
                    _number(scores[name], f"metadata.metrics.cross_validation.{key}.{name}", 0.0, 1.0)
    for key in ("offices", "functions"):
        if key in metadata:
            _strings(metadata[key], f"metadata.{key}")
    for key in ("package_version", "sklearn_version", "created_at", "python_version", "numpy_version"):
        if key in metadata and not isinstance(metadata[key], str):
            raise SchemaError(f"metadata.{key} is not a string")


def _features(header: Mapping[str, Any]) -> int:
    """The number of feature columns: every block's terms, then the embedding's."""
    return sum(spec["n_terms"] for spec in header["blocks"]) + (header["encoder"]["dim"] if "encoder" in header else 0)


def expected_arrays(header: Mapping[str, Any]) -> dict[str, ArraySpec]:
    """The arrays a checked header implies (see :func:`check_header`), by name; nothing else in the file is read.

    A ``terms_N`` array's length is the UTF-8 bytes of its block's terms joined by newlines:
    it is not known in advance, so its shape holds its upper bound.
    """
    features, classes = _features(header), len(header["function_classes"])
    version = header.get("format_version", 1)
    arrays = {
        "office_coef": ArraySpec("<f8", (1, features)),
        "office_intercept": ArraySpec("<f8", (1,)),
        "function_coef": ArraySpec("<f8", (classes, features)),
        "function_intercept": ArraySpec("<f8", (classes,)),
    }
    for detector, since in zip(_DETECTORS, (2, 3)):  # format 2 added the mixed-task detector, 3 the not-a-task one
        arrays[f"{detector}_coef"] = ArraySpec("<f8", (1, features), required=False)
        arrays[f"{detector}_intercept"] = ArraySpec("<f8", (1,), required=False)
        if version < since:
            del arrays[f"{detector}_coef"], arrays[f"{detector}_intercept"]
    for i, spec in enumerate(header["blocks"]):
        arrays[f"terms_{i}"] = ArraySpec("|u1", (spec["n_terms"] * MAX_TERM_BYTES,), exact=False)
        arrays[f"idf_{i}"] = ArraySpec("<f8", (spec["n_terms"],))
    return arrays
