"""The trained classifier as plain arrays: load, save and predict without scikit-learn.

A :class:`Model` holds the TF-IDF vocabularies and the logistic-regression weights
for the office (with its calibration), the function and, optionally, a mixed-task
detector. Its predictions never contradict the policy: the function shown is the
most likely function *of the office shown*.

The office probability is a two-part mixture. The detector says how likely the
text is a task the policy calls mixed (talking to the customer *and* processing,
"handle customer refunds"), and such a task is front-office half the time:
``P(front) = 0.5 * P(mixed) + (1 - P(mixed)) * P(front | clear)``. So mixed wording
comes out near 0.5 and is flagged for review, while clear wording keeps the office
model's calibrated probability.

Example:
    >>> from bpo_classify import load_model
    >>> model = load_model()                       # the default model shipped with the package
    >>> p = model.predict(["process invoices"])[0]
    >>> p.office, p.function
    ('back-office', 'finance_accounting')
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ModelFileError
from .features import TfidfBlock
from .modelfile import dumps, loads, read_model_file, write_model_file
from .policy import BACK, FRONT, FUNCTION_OFFICE
from .scoring import LinearScorer

#: Used when a model file does not name its own review threshold.
DEFAULT_THRESHOLD = 0.75
DEFAULT_MODEL_NAME = "default_model.bpoc"
_SCORER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Prediction:
    """One answer: office and function with their probabilities, and whether a person should check it.

    Empty or missing text gives ``None`` labels and ``needs_review=True``.
    """

    text: str
    office: str | None
    office_confidence: float | None
    function: str | None
    function_confidence: float | None
    needs_review: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Predictions:
    """Column-wise predictions for a batch (what ``label_csv`` writes), cheaper than objects."""

    office: list[str | None]
    office_confidence: np.ndarray
    function: list[str | None]
    function_confidence: np.ndarray
    needs_review: np.ndarray

    @classmethod
    def of(cls, predictions: Sequence[Prediction]) -> "Predictions":
        """The same answers column-wise (``None`` confidences as NaN)."""
        def number(values: list[float | None]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], dtype=float)

        return cls(
            [p.office for p in predictions], number([p.office_confidence for p in predictions]),
            [p.function for p in predictions], number([p.function_confidence for p in predictions]),
            np.array([p.needs_review for p in predictions], dtype=bool),
        )


@dataclass
class Model:
    """A trained office + function classifier. Build one with ``train`` or ``load_model``."""

    blocks: list[TfidfBlock]
    office_coef: np.ndarray  # (1, n_features): positive pushes towards front-office
    office_intercept: np.ndarray  # (1,)
    calibration: tuple[float, float]  # Platt scaling (a, b): P(front) = sigmoid(a * score + b)
    function_classes: tuple[str, ...]
    function_coef: np.ndarray  # (n_functions, n_features)
    function_intercept: np.ndarray  # (n_functions,)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Mixed-task detector (1, n_features) and (1,): positive pushes towards "mixed"; None: no detector.
    mixed_coef: np.ndarray | None = None
    mixed_intercept: np.ndarray | None = None

    @property
    def threshold(self) -> float:
        """The default needs-review threshold on the office probability."""
        return float(self.metadata.get("review_threshold", DEFAULT_THRESHOLD))

    @property
    def office_blocks(self) -> list[str]:
        """The feature blocks the office model reads (a block it ignores has all-zero weights)."""
        return [b.description for b in self.blocks if self.office_coef[0, b.columns].any()]

    # -- probabilities -------------------------------------------------------------
    @property
    def _heads(self) -> int:
        """Score columns before the functions': office, and the detector when there is one."""
        return 1 if self.mixed_coef is None else 2

    def office_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Uncalibrated office decision values (log-odds of front-office for a clear task)."""
        _check_batch(texts)
        return self._scores(texts)[:, 0]

    def mixed_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is a task the policy calls mixed (zeros without a detector)."""
        _check_batch(texts)
        return self._mixed(self._scores(texts))

    def front_office_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is front-office work (calibrated, mixed tasks near 0.5)."""
        _check_batch(texts)
        return self._front(self._scores(texts))

    def function_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each function (columns in ``function_classes`` order)."""
        _check_batch(texts)
        return _softmax(self._scores(texts)[:, self._heads :])

    def _mixed(self, scores: np.ndarray) -> np.ndarray:
        return np.zeros(len(scores)) if self.mixed_coef is None else _sigmoid(scores[:, 1])

    def _front(self, scores: np.ndarray) -> np.ndarray:
        """P(front-office) from the score columns (see :func:`front_office_probability`)."""
        return front_office_probability(scores[:, 0], self.calibration, None if self.mixed_coef is None else self._mixed(scores))

    def _scores(self, texts: Sequence[str]) -> np.ndarray:
        """Office, detector (if any) and function decision values side by side, from one pass.

        The :class:`~bpo_classify.scoring.LinearScorer` is kept on the model: it
        remembers the words it has analysed, so later batches are faster. A text's
        scores do not depend on the batch it comes in.
        """
        scorer = self.__dict__.get("_scorer")
        if scorer is None:
            with _SCORER_LOCK:  # threads sharing a model share one scorer
                scorer = self.__dict__.get("_scorer")
                if scorer is None:
                    heads = [(self.office_coef, self.office_intercept)]
                    if self.mixed_coef is not None:
                        heads.append((self.mixed_coef, self.mixed_intercept))
                    heads.append((self.function_coef, self.function_intercept))
                    coef = np.vstack([c for c, _ in heads])
                    intercept = np.concatenate([i for _, i in heads])
                    scorer = self.__dict__["_scorer"] = LinearScorer(self.blocks, coef, intercept)
        return scorer.scores(texts)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled for parallel workers: each builds its own scorer and word table.
        return {k: v for k, v in self.__dict__.items() if k != "_scorer"}

    # -- labels ------------------------------------------------------------------
    def predict_columns(self, texts: Sequence[str | None], threshold: float | None = None) -> Predictions:
        """Predict a batch column-wise; missing or blank texts get empty labels and review.

        ``None`` and float NaN (a blank pandas cell) count as missing; any other
        non-string item is a ``TypeError``. Any ``str`` is accepted, lone surrogates and
        NUL included: characters the model has never seen simply add no features.
        """
        _check_batch(texts)
        threshold = self.threshold if threshold is None else threshold
        n = len(texts)
        present = [i for i, t in enumerate(texts) if not _missing(t) and t.strip()]  # type: ignore[union-attr]
        office: list[str | None] = [None] * n
        function: list[str | None] = [None] * n
        office_conf = np.full(n, np.nan)
        function_conf = np.full(n, np.nan)
        if present:
            batch = [texts[i] for i in present]  # type: ignore[misc]
            # Score each distinct text once (exports repeat lines a lot), then spread back.
            unique = list(dict.fromkeys(batch))
            scores = self._scores(unique)
            front = self._front(scores)
            fprob = _softmax(scores[:, self._heads :])
            is_front = front >= 0.5
            # Restrict the function to the office shown, then report the joint
            # probability P(office) * P(function | office) so it never overstates.
            in_front = np.array([FUNCTION_OFFICE[c] == FRONT for c in self.function_classes])
            mask = np.where(is_front[:, None], in_front[None, :], ~in_front[None, :])
            masked = np.where(mask, fprob, 0.0)
            best = masked.argmax(axis=1)
            share = masked[np.arange(len(unique)), best] / np.maximum(masked.sum(axis=1), 1e-300)
            p_office = np.where(is_front, front, 1.0 - front)
            if len(unique) < len(batch):
                where = {t: k for k, t in enumerate(unique)}
                back = np.fromiter(map(where.__getitem__, batch), dtype=np.intp, count=len(batch))
                is_front, best, share, p_office = is_front[back], best[back], share[back], p_office[back]
            idx = np.asarray(present)
            office_conf[idx] = p_office
            function_conf[idx] = p_office * share
            names = self.function_classes
            for i, front_j, best_j in zip(present, is_front.tolist(), best.tolist()):
                office[i] = FRONT if front_j else BACK
                function[i] = names[best_j]
        review = ~(office_conf >= threshold)  # NaN (no text) compares False -> review
        return Predictions(office, office_conf, function, function_conf, review)

    def predict(self, texts: Sequence[str | None], threshold: float | None = None) -> list[Prediction]:
        """One :class:`Prediction` per text, in order."""
        cols = self.predict_columns(texts, threshold)
        return [
            Prediction(
                text="" if _missing(texts[i]) else str(texts[i]),
                office=cols.office[i],
                office_confidence=_opt(cols.office_confidence[i]),
                function=cols.function[i],
                function_confidence=_opt(cols.function_confidence[i]),
                needs_review=bool(cols.needs_review[i]),
            )
            for i in range(len(texts))
        ]


def front_office_probability(
    office_scores: np.ndarray, calibration: tuple[float, float], p_mixed: np.ndarray | None = None
) -> np.ndarray:
    """P(front-office): the Platt-calibrated office scores, and, with a detector's P(mixed),
    ``0.5 * P(mixed) + (1 - P(mixed)) * P(front | clear)`` (a mixed task is front half the time).

    Example:
        >>> front_office_probability(np.array([0.0, 10.0]), (1.0, 0.0), np.array([0.0, 1.0])).tolist()
        [0.5, 0.5]
    """
    a, b = calibration
    clear = _sigmoid(a * np.asarray(office_scores, dtype=float) + b)
    return clear if p_mixed is None else 0.5 * p_mixed + (1.0 - p_mixed) * clear


def _missing(text: object) -> bool:
    return text is None or (isinstance(text, float) and math.isnan(text))


def _check_batch(texts: object) -> None:
    # A bare string is a sequence of characters: predicting it would answer once per character.
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"texts must be a sequence of strings, not a single {type(texts).__name__}; wrap it in a list")
    for i, text in enumerate(texts):  # type: ignore[attr-defined]
        if not isinstance(text, str) and not _missing(text):
            raise TypeError(f"texts[{i}] has type {type(text).__name__}, not str (None or NaN mean no text)")


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Same formula as scipy.special.expit, without importing SciPy.
    return 1.0 / (1.0 + np.exp(-x))


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


# -- persistence ---------------------------------------------------------------------
def default_model_path() -> Path:
    """Where the model shipped inside the package lives."""
    return Path(str(resources.files("bpo_classify") / "data" / DEFAULT_MODEL_NAME))


def save_model(model: Model, path: Path | str) -> None:
    """Write ``model`` to ``path`` atomically (see ``modelfile.py`` for the format)."""
    write_model_file(Path(path), *_file_parts(model))


def load_model(path: Path | str | None = None) -> Model:
    """Load a model file; with no path, the default model shipped with the package."""
    path = default_model_path() if path is None else Path(path)
    return _from_file_parts(*read_model_file(path), str(path))


def model_to_bytes(model: Model) -> bytes:
    """The bytes :func:`save_model` would write.

    Example:
        >>> model_from_bytes(model_to_bytes(load_model())).threshold == load_model().threshold
        True
    """
    return dumps(*_file_parts(model))


def model_from_bytes(data: bytes, source: str = "model bytes") -> Model:
    """The model in the bytes of a model file (checked as :func:`load_model` checks a file)."""
    return _from_file_parts(*loads(data, source), source)


def _file_parts(model: Model) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of ``model``'s file."""
    arrays: dict[str, np.ndarray] = {
        "office_coef": model.office_coef,
        "office_intercept": model.office_intercept,
        "function_coef": model.function_coef,
        "function_intercept": model.function_intercept,
    }
    if model.mixed_coef is not None:
        arrays["mixed_coef"] = model.mixed_coef
        arrays["mixed_intercept"] = model.mixed_intercept
    blocks = []
    for i, block in enumerate(model.blocks):
        terms = sorted(block.vocabulary, key=block.vocabulary.__getitem__)
        # Terms never contain a newline (they are split on white space), so one
        # joined UTF-8 buffer is a compact, pickle-free way to store them.
        arrays[f"terms_{i}"] = np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)
        arrays[f"idf_{i}"] = block.idf
        spec = {"analyzer": block.analyzer, "ngram_range": list(block.ngram_range), "n_terms": len(terms)}
        if block.analyzer == "head":
            spec["head_words"] = block.head_words
        blocks.append(spec)
    header = {
        "blocks": blocks,
        "calibration": list(model.calibration),
        "function_classes": list(model.function_classes),
        "metadata": model.metadata,
    }
    return header, arrays


def _from_file_parts(header: dict[str, Any], arrays: dict[str, np.ndarray], source: str) -> Model:
    """The model a file's header and arrays describe; :class:`ModelFileError` if they do not fit together."""
    try:
        blocks, offset = [], 0
        for i, spec in enumerate(header["blocks"]):
            raw = arrays[f"terms_{i}"].tobytes().decode("utf-8")
            terms = raw.split("\n") if raw else []
            if len(terms) != spec["n_terms"] or spec["analyzer"] not in ("word", "char_wb", "head"):
                raise ValueError("vocabulary does not match its header")
            head_words = int(spec["head_words"]) if spec["analyzer"] == "head" else 0
            vocabulary = dict(zip(terms, range(len(terms))))
            blocks.append(
                TfidfBlock(spec["analyzer"], tuple(spec["ngram_range"]), vocabulary, arrays[f"idf_{i}"], offset, head_words)
            )
            offset += len(terms)
        model = Model(
            blocks=blocks,
            office_coef=arrays["office_coef"],
            office_intercept=arrays["office_intercept"],
            calibration=(float(header["calibration"][0]), float(header["calibration"][1])),
            function_classes=tuple(header["function_classes"]),
            function_coef=arrays["function_coef"],
            function_intercept=arrays["function_intercept"],
            metadata=header.get("metadata", {}),
            # Format 1 files have no detector.
            mixed_coef=arrays.get("mixed_coef"),
            mixed_intercept=arrays.get("mixed_intercept"),
        )
        if model.office_coef.shape != (1, offset) or model.function_coef.shape != (len(model.function_classes), offset):
            raise ValueError("weights do not match the vocabulary")
        if (model.mixed_coef is None) != (model.mixed_intercept is None) or (
            model.mixed_coef is not None and (model.mixed_coef.shape != (1, offset) or model.mixed_intercept.shape != (1,))
        ):
            raise ValueError("mixed-task detector does not match the vocabulary")
        if not set(model.function_classes) <= set(FUNCTION_OFFICE):
            raise ValueError("unknown function labels")
    except (KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"model file is corrupt ({exc}): {source}") from None
    return model
