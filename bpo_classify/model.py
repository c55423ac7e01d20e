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

import functools
import math
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ModelFileError
from .features import TfidfBlock, tokens
from .modelfile import SEMANTIC_FORMAT_VERSION, dumps, invalid, loads, read_model_file, write_model_file
from .modelschema import expected_arrays
from .policy import BACK, FRONT, FUNCTION_OFFICE
from .scoring import LinearScorer

#: Used when a model file does not name its own review threshold.
DEFAULT_THRESHOLD = 0.75
#: Why a row needs review, most telling first: a row with several reasons shows the first.
#: ``empty``: no text; ``truncated``: longer than :data:`MAX_TEXT_CHARS`, so labelled from its
#: start only (whatever else applies was judged on that part); ``unfamiliar_text``: the model knows too few of its words (another
#: language or script, gibberish, only digits or symbols); ``not_a_task``: a posting line that
#: is not work (a requirement, perk, schedule, heading); ``mixed_task``: worded as a task the
#: policy calls mixed; ``low_confidence``: the office probability is below the threshold.
REVIEW_REASONS = ("empty", "truncated", "unfamiliar_text", "not_a_task", "mixed_task", "low_confidence")
#: The most characters of one text that are read: a longer text is labelled from its first
#: MAX_TEXT_CHARS characters and flagged ``truncated``. Task descriptions are sentences (the
#: corpus: at most 200 characters; O*NET task statements: at most 332), so this only cuts
#: what is not one task (a pasted document, a field that swallowed a file); it bounds the
#: memory and time one field costs (a 51 MB field needed 15.6 GB uncut, issue 21).
MAX_TEXT_CHARS = 10_000
#: A text is unfamiliar when fewer than this share of its words are words the model was trained on.
DEFAULT_FAMILIAR_SHARE = 0.5
#: A text is not a task when the not-a-task detector's probability reaches this (when the model file names none).
DEFAULT_NOT_A_TASK = 0.5
DEFAULT_MODEL_NAME = "default_model.bpoc"
#: ``load_model("semantic")`` / ``--model semantic``: the shipped semantic model (semantic.py).
SEMANTIC_NAME = "semantic"
_SCORER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Prediction:
    """One answer: office and function with their probabilities, and whether a person should check it.

    Empty or missing text gives ``None`` labels and ``needs_review=True``. ``review_reason``
    says why a row needs review (one of :data:`REVIEW_REASONS`), ``None`` when it does not.
    """

    text: str
    office: str | None
    office_confidence: float | None
    function: str | None
    function_confidence: float | None
    needs_review: bool
    review_reason: str | None = None
    #: With ``top_functions`` K > 1: the next K - 1 functions of the office shown and their probabilities (on
    #: the scale of ``function_confidence``, never above it), likeliest first; fewer when the office has fewer.
    runners_up: tuple[tuple[str, float], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (runners-up as ``{"function", "confidence"}`` objects)."""
        # By hand, not dataclasses.asdict (which deep-copies every field): the server calls this per text.
        return {
            "text": self.text, "office": self.office, "office_confidence": self.office_confidence,
            "function": self.function, "function_confidence": self.function_confidence,
            "needs_review": self.needs_review, "review_reason": self.review_reason,
            "runners_up": [{"function": f, "confidence": c} for f, c in self.runners_up],
        }


@dataclass(frozen=True)
class Predictions:
    """Column-wise predictions for a batch (what ``label_csv`` writes), cheaper than objects."""

    office: list[str | None]
    office_confidence: np.ndarray
    function: list[str | None]
    function_confidence: np.ndarray
    needs_review: np.ndarray
    review_reason: list[str | None]
    #: One (functions, probabilities) pair per runner-up rank, second likeliest first (see ``predict_columns``).
    runners_up: list[tuple[list[str | None], np.ndarray]] = field(default_factory=list)

    @classmethod
    def of(cls, predictions: Sequence[Prediction], top_functions: int | None = None) -> "Predictions":
        """The same answers column-wise (``None`` confidences as NaN), with ``top_functions`` - 1
        runner-up ranks (default: as many as the longest ``runners_up``)."""
        ranks = max((len(p.runners_up) for p in predictions), default=0) if top_functions is None else max(top_functions - 1, 0)

        def number(values: list[float | None]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], dtype=float)

        return cls(
            [p.office for p in predictions], number([p.office_confidence for p in predictions]),
            [p.function for p in predictions], number([p.function_confidence for p in predictions]),
            np.array([p.needs_review for p in predictions], dtype=bool),
            [p.review_reason for p in predictions],
            [([p.runners_up[k][0] if len(p.runners_up) > k else None for p in predictions],
              number([p.runners_up[k][1] if len(p.runners_up) > k else None for p in predictions]))
             for k in range(ranks)],
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
    #: Not-a-task detector (1, n_features) and (1,): positive pushes towards "not a task"; None: no detector.
    not_a_task_coef: np.ndarray | None = None
    not_a_task_intercept: np.ndarray | None = None

    @property
    def threshold(self) -> float:
        """The default needs-review threshold on the office probability."""
        return float(self.metadata.get("review_threshold", DEFAULT_THRESHOLD))

    @property
    def review_settings(self) -> dict[str, float]:
        """The thresholds of the review reasons other than the office threshold (see :data:`REVIEW_REASONS`)."""
        saved = self.metadata.get("review") or {}
        return {
            "familiar_share": float(saved.get("familiar_share", DEFAULT_FAMILIAR_SHARE)),
            "not_a_task": float(saved.get("not_a_task", DEFAULT_NOT_A_TASK)),
        }

    @property
    def office_blocks(self) -> list[str]:
        """The feature blocks the office model reads (a block it ignores has all-zero weights)."""
        return [b.description for b in self.blocks if self.office_coef[0, b.columns].any()]

    # -- probabilities -------------------------------------------------------------
    def _heads(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """The linear parts scored side by side, in score-column order: office, the detectors the
        model has, then one column per function."""
        heads = [("office", self.office_coef, self.office_intercept)]
        if self.mixed_coef is not None:
            heads.append(("mixed", self.mixed_coef, self.mixed_intercept))
        if self.not_a_task_coef is not None:
            heads.append(("not_a_task", self.not_a_task_coef, self.not_a_task_intercept))
        heads.append(("function", self.function_coef, self.function_intercept))
        return heads  # type: ignore[return-value]

    def _column(self, name: str) -> int | None:
        """The score column of a head (``office``, ``mixed``, ``not_a_task``, or ``function``: the first function's)."""
        # From the detectors present, as _heads orders them (called several times per batch: no lists built).
        mixed, not_a_task = self.mixed_coef is not None, self.not_a_task_coef is not None
        if name == "office":
            return 0
        if name == "mixed":
            return 1 if mixed else None
        if name == "not_a_task":
            return 1 + mixed if not_a_task else None
        return 1 + mixed + not_a_task if name == "function" else None

    def office_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Uncalibrated office decision values (log-odds of front-office for a clear task)."""
        _check_batch(texts)
        return self._scores(texts)[:, 0]

    def mixed_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is a task the policy calls mixed (zeros without a detector)."""
        _check_batch(texts)
        return self._mixed(self._scores(texts))

    def not_a_task_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is a posting line that is not a task (zeros without a detector)."""
        _check_batch(texts)
        return self._not_a_task(self._scores(texts))

    def front_office_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is front-office work (calibrated, mixed tasks near 0.5)."""
        _check_batch(texts)
        return self._front(self._scores(texts))

    def function_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of each function (columns in ``function_classes`` order)."""
        _check_batch(texts)
        return _softmax(self._scores(texts)[:, self._column("function") :])

    def familiar_share(self, texts: Sequence[str]) -> np.ndarray:
        """Share of each text's words that the model was trained on (0 for no word at all).

        Words count by the square root of their length, so a long run of unknown letters (a
        word of another language, a hash) outweighs a short known one ("de", "en"); words of
        digits only are left out. A word is known when the word block's vocabulary has it,
        or has it without a final "s". Text in a language or script the model does not know
        scores near 0. (:func:`~bpo_classify.features.familiar_share` is the readable
        reference; this comes from the scorer's word tables.)

        Example:
            >>> from bpo_classify import load_model
            >>> load_model().familiar_share(["process invoices", "procesar facturas", "12345"]).tolist()
            [1.0, 0.0, 0.0]
        """
        _check_batch(texts)
        return self._scores_and_familiar(texts)[1]

    def _word_vocabulary(self) -> dict[str, int] | set[str]:
        for block in self.blocks:
            if block.analyzer == "word" and block.ngram_range[0] == 1:
                return block.vocabulary
        # No single-word block: every word of every block's vocabulary.
        return {w for b in self.blocks if b.analyzer in ("word", "head") for term in b.vocabulary for w in term.split(" ")}

    def _mixed(self, scores: np.ndarray) -> np.ndarray:
        column = self._column("mixed")
        return np.zeros(len(scores)) if column is None else _sigmoid(scores[:, column])

    def _not_a_task(self, scores: np.ndarray) -> np.ndarray:
        column = self._column("not_a_task")
        return np.zeros(len(scores)) if column is None else _sigmoid(scores[:, column])

    def _front(self, scores: np.ndarray) -> np.ndarray:
        """P(front-office) from the score columns (see :func:`front_office_probability`)."""
        return front_office_probability(scores[:, 0], self.calibration, None if self.mixed_coef is None else self._mixed(scores))

    def _scores(self, texts: Sequence[str]) -> np.ndarray:
        """Office, detector (if any) and function decision values side by side, from one pass."""
        return self._scores_and_familiar(texts)[0]

    def _scores_and_familiar(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The decision values (see :meth:`_scores`) and each text's familiar share, from one pass.

        The :class:`~bpo_classify.scoring.LinearScorer` is kept on the model: it
        remembers the words it has analysed, so later batches are faster. A text's
        scores do not depend on the batch it comes in.
        """
        return self._linear_scorer(self.office_coef.shape[1]).scores_and_familiar(texts)

    def _linear_scorer(self, width: int) -> LinearScorer:
        """The model's scorer over the first ``width`` feature columns (built once; threads share it)."""
        scorer = self.__dict__.get("_scorer")
        if scorer is None:
            with _SCORER_LOCK:
                scorer = self.__dict__.get("_scorer")
                if scorer is None:
                    heads = self._heads()
                    coef = np.vstack([c for _, c, _ in heads])[:, :width]
                    intercept = np.concatenate([i for _, _, i in heads])
                    scorer = self.__dict__["_scorer"] = LinearScorer(self.blocks, coef, intercept, known=self._word_vocabulary())
        return scorer

    def __getstate__(self) -> dict[str, Any]:
        # Pickled for parallel workers: each builds its own scorer and word table.
        return {k: v for k, v in self.__dict__.items() if k != "_scorer"}

    # -- labels ------------------------------------------------------------------
    def predict_columns(
        self, texts: Sequence[str | None], threshold: float | None = None, top_functions: int = 1
    ) -> Predictions:
        """Predict a batch column-wise; missing or blank texts get empty labels and review.

        ``None`` and float NaN (a blank pandas cell) count as missing; any other
        non-string item is a ``TypeError``. Any ``str`` is accepted, lone surrogates and
        NUL included: characters the model has never seen simply add no features. A text
        longer than :data:`MAX_TEXT_CHARS` is labelled from its start and flagged ``truncated``.
        ``top_functions`` K > 1 also fills ``runners_up`` with the next K - 1 functions of the office
        shown, likeliest first (``None`` and NaN past the office's last function).
        """
        _check_batch(texts)
        threshold = self.threshold if threshold is None else threshold
        settings = self.review_settings
        n = len(texts)
        # A text that is not a str here is missing (_check_batch has refused any other type).
        present = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
        cut = [i for i in present if len(texts[i]) > MAX_TEXT_CHARS]  # type: ignore[arg-type]
        office: list[str | None] = [None] * n
        function: list[str | None] = [None] * n
        reason: list[str | None] = ["empty"] * n
        office_conf = np.full(n, np.nan)
        function_conf = np.full(n, np.nan)
        runners_up = [([None] * n, np.full(n, np.nan)) for _ in range(max(0, min(top_functions, len(self.function_classes)) - 1))]
        if present:
            batch = [texts[i] for i in present]  # type: ignore[misc]
            if cut:  # only the first MAX_TEXT_CHARS characters are ever featurised
                batch = [t[:MAX_TEXT_CHARS] for t in batch]  # type: ignore[index]
            # Score each distinct text once (exports repeat lines a lot), then spread back.
            unique = list(dict.fromkeys(batch))
            scores, familiar = self._scores_and_familiar(unique)
            front = self._front(scores)
            is_front = front >= 0.5
            p_office = np.where(is_front, front, 1.0 - front)
            ranked, joint = self._ranked_functions(scores, is_front, front, len(runners_up) + 1)
            why = self._review_reasons(familiar, scores, p_office, threshold, settings)
            back = np.arange(len(unique))
            if len(unique) < len(batch):
                where = {t: k for k, t in enumerate(unique)}
                back = np.fromiter(map(where.__getitem__, batch), dtype=np.intp, count=len(batch))
            idx = np.asarray(present)
            office_conf[idx] = p_office[back]
            function_conf[idx] = joint[back, 0]
            names = self.function_classes
            # Per distinct text first (plain lists, no NumPy scalars), then spread to the rows.
            offices = [FRONT if f else BACK for f in is_front.tolist()]
            ranked_names = [[names[j] if j >= 0 else None for j in column] for column in ranked.T.tolist()]  # -1: no runner-up
            back_list = back.tolist()
            for i, k in zip(present, back_list):
                office[i] = offices[k]
                reason[i] = why[k]
            shown = ranked_names[0]
            for i, k in zip(present, back_list):
                function[i] = shown[k]
            for rank, (fn_names, fn_conf) in enumerate(runners_up, 1):
                fn_conf[idx] = joint[back, rank]
                column = ranked_names[rank]
                for i, k in zip(present, back_list):
                    fn_names[i] = column[k]
            for i in cut:
                reason[i] = "truncated"
        review = np.array([r is not None for r in reason], dtype=bool)
        return Predictions(office, office_conf, function, function_conf, review, reason, runners_up)

    def _ranked_functions(
        self, scores: np.ndarray, is_front: np.ndarray, front: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` likeliest functions of the office shown (indices, -1 past the office's last), and their
        joint probabilities (NaN past the last).

        One scale for every function: :func:`joint_function_probability`, P(office) x P(function |
        office). Only the office shown's functions are ranked, so the answer never pairs an office
        with a function the policy gives the other, and no runner-up is likelier than the function
        shown (the other office's functions share 1 - P(office) between them).
        """
        joint = joint_function_probability(_softmax(scores[:, self._column("function") :]), self.function_classes, front)
        in_front = _front_functions(tuple(self.function_classes))
        shown = in_front[None, :] == is_front[:, None]
        ranked = np.where(shown, joint, -1.0)
        order = np.argsort(-ranked, axis=1, kind="stable")[:, :k] if k > 1 else np.argmax(ranked, axis=1)[:, None]
        inside = np.take_along_axis(shown, order, axis=1)
        return np.where(inside, order, -1), np.where(inside, np.take_along_axis(joint, order, axis=1), np.nan)

    def _review_reasons(
        self, familiar: np.ndarray, scores: np.ndarray, p_office: np.ndarray, threshold: float, settings: dict[str, float]
    ) -> list[str | None]:
        """Why each (non-blank) text needs review (see :func:`review_reasons`); ``familiar``: their familiar shares."""
        return review_reasons(
            familiar, self._not_a_task(scores) if self.not_a_task_coef is not None else None,
            self._mixed(scores), p_office, threshold, settings,
        )

    def predict(
        self, texts: Sequence[str | None], threshold: float | None = None, top_functions: int = 1
    ) -> list[Prediction]:
        """One :class:`Prediction` per text, in order (``top_functions``: see :meth:`predict_columns`)."""
        return [Prediction(*row) for row in _rows(texts, self.predict_columns(texts, threshold, top_functions))]

    def predict_dicts(
        self, texts: Sequence[str | None], threshold: float | None = None, top_functions: int = 1
    ) -> list[dict[str, Any]]:
        """:meth:`predict`'s answers as :meth:`Prediction.as_dict` gives them, without the objects (the server's answer).

        Example:
            >>> from bpo_classify import load_model
            >>> m = load_model()
            >>> m.predict_dicts(["process invoices"], top_functions=2) == [p.as_dict() for p in m.predict(["process invoices"], top_functions=2)]
            True
        """
        return [
            {"text": text, "office": office, "office_confidence": oc, "function": function, "function_confidence": fc,
             "needs_review": review, "review_reason": reason, "runners_up": [{"function": f, "confidence": c} for f, c in runners_up]}
            for text, office, oc, function, fc, review, reason, runners_up in _rows(texts, self.predict_columns(texts, threshold, top_functions))
        ]


def _rows(texts: Sequence[str | None], cols: Predictions) -> list[tuple[Any, ...]]:
    """:class:`Prediction`'s fields, row by row, from the columns (``None`` for NaN confidences)."""
    # Each column as a plain list first: indexing NumPy arrays per row costs more than scoring a short text.
    office_conf = [None if c != c else c for c in cols.office_confidence.tolist()]  # NaN (no text): None
    function_conf = [None if c != c else c for c in cols.function_confidence.tolist()]
    ranks = [(names, conf.tolist()) for names, conf in cols.runners_up]
    return [
        (text if type(text) is str else "" if _missing(text) else str(text), office, oc, function, fc, review, reason,
         tuple((names[i], conf[i]) for names, conf in ranks if names[i] is not None))
        for i, (text, office, oc, function, fc, review, reason) in enumerate(zip(
            texts, cols.office, office_conf, cols.function, function_conf, cols.needs_review.tolist(), cols.review_reason,
        ))
    ]


def review_reasons(
    familiar: np.ndarray, not_a_task: np.ndarray | None, mixed: np.ndarray, confidence: np.ndarray,
    threshold: float, settings: dict[str, float],
) -> list[str | None]:
    """Why each text needs review: the first of :data:`REVIEW_REASONS` that applies, or None.

    ``familiar``: share of known words; ``not_a_task``: P(not a task) (None: no detector);
    ``mixed``: P(mixed); ``confidence``: the office probability shown.

    Example:
        >>> review_reasons(np.array([1.0, 0.2, 1.0, 1.0]), None, np.array([0.0, 0.0, 0.9, 0.1]),
        ...                np.array([0.99, 0.99, 0.55, 0.6]), 0.8, {"familiar_share": 0.5, "not_a_task": 0.5})
        [None, 'unfamiliar_text', 'mixed_task', 'low_confidence']
    """
    unfamiliar = (np.asarray(familiar) < settings["familiar_share"]).tolist()
    not_task = (np.asarray(not_a_task) >= settings["not_a_task"]).tolist() if not_a_task is not None else [False] * len(unfamiliar)
    unsure = (~(np.asarray(confidence) >= threshold)).tolist()
    is_mixed = (np.asarray(mixed) >= 0.5).tolist()
    return [
        "unfamiliar_text" if u else "not_a_task" if t else ("mixed_task" if m else "low_confidence") if low else None
        for u, t, low, m in zip(unfamiliar, not_task, unsure, is_mixed)
    ]


def joint_function_probability(function_proba: np.ndarray, classes: Sequence[str], front: np.ndarray) -> np.ndarray:
    """P(office) x P(function | office) for every function: the one scale of ``function_confidence``
    and of every runner-up (``predict``, ``label``, ``explain``, the review page).

    ``function_proba`` is the function model's probabilities (rows of texts, columns in
    ``classes`` order), ``front`` P(front-office) of each text. Each office's functions are
    renormalised among themselves and share that office's probability, so a row adds up to 1.

    Example:
        >>> joint_function_probability(np.array([[0.6, 0.3, 0.1]]), ["payroll", "sales", "reception"],
        ...                            np.array([0.8])).round(3).tolist()
        [[0.2, 0.6, 0.2]]
    """
    in_front = _front_functions(tuple(classes))
    front_total = np.maximum((function_proba * in_front).sum(axis=1, keepdims=True), 1e-300)
    back_total = np.maximum((function_proba * ~in_front).sum(axis=1, keepdims=True), 1e-300)
    front = np.asarray(front, dtype=float)[:, None]
    return np.where(in_front, function_proba / front_total * front, function_proba / back_total * (1.0 - front))


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


@functools.lru_cache(maxsize=16)
def _front_functions(classes: tuple[str, ...]) -> np.ndarray:
    """Which of ``classes`` are front-office functions (built once per set of classes: every batch asks)."""
    mask = np.array([FUNCTION_OFFICE[c] == FRONT for c in classes], dtype=bool)
    mask.flags.writeable = False  # shared between calls
    return mask


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
    # Same formula as scipy.special.expit, without importing SciPy; exp(-x) overflowing to inf
    # for a very negative x gives exactly 0.0, the right limit, so the warning is not wanted.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


# -- persistence ---------------------------------------------------------------------
def default_model_path() -> Path:
    """Where the model shipped inside the package lives."""
    return Path(str(resources.files("bpo_classify") / "data" / DEFAULT_MODEL_NAME))


def save_model(model: Model, path: Path | str) -> None:
    """Write ``model`` to ``path`` atomically (see ``modelfile.py`` for the format)."""
    write_model_file(Path(path), *_file_parts(model))


def load_model(path: Path | str | None = None) -> Model:
    """Load a model file; with no path, the default model shipped with the package, and with
    ``"semantic"`` (when no such file exists) the semantic model shipped with it."""
    if path is not None and str(path) == SEMANTIC_NAME and not Path(path).exists():
        path = Path(str(resources.files("bpo_classify") / "data" / f"{SEMANTIC_NAME}_model.bpoc"))
    path = default_model_path() if path is None else Path(path)
    return _from_file_parts(*read_model_file(path, expected_arrays), str(path))


def model_to_bytes(model: Model) -> bytes:
    """The bytes :func:`save_model` would write.

    Example:
        >>> model_from_bytes(model_to_bytes(load_model())).threshold == load_model().threshold
        True
    """
    return dumps(*_file_parts(model))


def model_from_bytes(data: bytes, source: str = "model bytes") -> Model:
    """The model in the bytes of a model file (checked as :func:`load_model` checks a file)."""
    return _from_file_parts(*loads(data, source, expected_arrays), source)


def _file_parts(model: Model) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of ``model``'s file."""
    arrays: dict[str, np.ndarray] = {
        "office_coef": model.office_coef,
        "office_intercept": model.office_intercept,
        "function_coef": model.function_coef,
        "function_intercept": model.function_intercept,
    }
    for part in ("mixed", "not_a_task"):
        if getattr(model, f"{part}_coef") is not None:
            arrays[f"{part}_coef"] = getattr(model, f"{part}_coef")
            arrays[f"{part}_intercept"] = getattr(model, f"{part}_intercept")
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
    header: dict[str, Any] = {
        "blocks": blocks,
        "calibration": list(model.calibration),
        "function_classes": list(model.function_classes),
        "metadata": model.metadata,
    }
    encoder = getattr(model, "encoder", None)
    if encoder:
        # A semantic model (semantic.py): names its encoder; its weights are not in the file.
        header["encoder"] = encoder
        header["format_version"] = SEMANTIC_FORMAT_VERSION
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
            if len(vocabulary) != len(terms):
                raise ValueError(f"block {i} lists a term twice")
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
            # Format 1 files have no detector, format 2 no not-a-task detector.
            mixed_coef=arrays.get("mixed_coef"),
            mixed_intercept=arrays.get("mixed_intercept"),
            not_a_task_coef=arrays.get("not_a_task_coef"),
            not_a_task_intercept=arrays.get("not_a_task_intercept"),
        )
        encoder = header.get("encoder")
        if encoder is not None:
            # The embedding's columns come after the TF-IDF blocks'.
            offset += int(encoder["dim"])
        if model.office_coef.shape != (1, offset) or model.function_coef.shape != (len(model.function_classes), offset):
            raise ValueError("weights do not match the vocabulary")
        for part, what in (("mixed", "mixed-task detector"), ("not_a_task", "not-a-task detector")):
            coef, intercept = getattr(model, f"{part}_coef"), getattr(model, f"{part}_intercept")
            if (coef is None) != (intercept is None) or (
                coef is not None and (coef.shape != (1, offset) or intercept.shape != (1,))
            ):
                raise ValueError(f"{what} does not match the vocabulary")
        if not set(model.function_classes) <= set(FUNCTION_OFFICE):
            raise ValueError("unknown function labels")
    except (KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise invalid(source, str(exc)) from None
    if encoder is not None:
        from .semantic import as_semantic  # only for a semantic model: the default path imports nothing new

        return as_semantic(model, encoder)
    return model
