"""Training: TF-IDF features + logistic regression for office and function, with calibration.

This is the only module (with ``evaluation.py``) that imports scikit-learn. It
fits scikit-learn estimators and converts them into the array-only
:class:`~bpo_classify.model.Model` that prediction uses.

Example (``train()`` with no data trains on the bundled corpus, in a minute or two):
    >>> from bpo_classify import train
    >>> from bpo_classify.corpus import LabelledData
    >>> data = LabelledData(
    ...     ["process invoices", "reconcile the bank account", "answer live chat inquiries", "call prospects to book demos"],
    ...     ["back-office", "back-office", "front-office", "front-office"],
    ...     ["finance_accounting", "finance_accounting", "customer_service", "sales"])
    >>> result = train(data, seed=0, cv=0)
    >>> result.model.predict(["answer chat inquiries from customers"])[0].office
    'front-office'
"""

from __future__ import annotations

import functools
import itertools
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import FeatureUnion

from . import __version__
from .atomic import require_directory
from .corpus import DataProblem, LabelledData, check_labelled, load_ambiguous, load_labelled, refuse
from .errors import CorpusError
from .features import TOKEN_PATTERN, TfidfBlock, head_terms
from .model import DEFAULT_THRESHOLD, Model, front_office_probability, save_model
from .policy import FRONT

#: Feature and regularisation settings of the shipped model, chosen on cross-validation
#: and on the external validation file (README, "Evaluation").
DEFAULT_PARAMS: dict[str, Any] = {
    # Single words and word pairs (2-grams up to the upper bound) are separate blocks.
    "word_ngrams": (1, 2),
    "char_ngrams": (2, 5),
    "char_min_df": 2,
    # The first words of the main clause, as a block of their own: the policy labels a
    # compound task by its first verb and object (rule 9), so the same word counts for
    # more there than in a "such as" list or a purpose clause. Weighted by head_weight
    # (the block's L2-normalised values are multiplied by it before fitting).
    "head_words": 4,
    "head_weight": 0.5,
    # The office is decided from single words and the main clause's first words. Word pairs
    # and character n-grams fit the corpus's own phrasing better but carry over worse to
    # other people's wording (README "Evaluation"); the function uses every block.
    "office_blocks": ("word", "head"),
    "office_C": 10.0,
    "function_C": 10.0,
    # The mixed-task detector (fitted when there are mixed tasks): mixed texts against the
    # corpus, on the office model's columns, without class weights, so that its probability
    # keeps the corpus's low share of mixed tasks and clear wording is left alone.
    "mixed_detector": True,
    "mixed_C": 10.0,
    # The needs-review threshold is the lowest that reaches this accuracy on the
    # unflagged out-of-fold rows (see choose_threshold). The goal for users is 97% on
    # rows nobody reviews; text unlike the corpus loses about a point and a half at the
    # same threshold (README "Evaluation"), so the target keeps that margin.
    "review_target_accuracy": 0.985,
}


def build_features(params: dict[str, Any] | None = None) -> FeatureUnion:
    """The TF-IDF feature union: blocks ``word`` (single words), ``word_pairs`` (word 2-grams),
    ``char_wb`` (character 2-5-grams inside words) and ``head`` (the first words of the main
    clause, see ``features.head_terms``), each L2-normalised on its own.

    Every option is one that ``features.py`` replays exactly without scikit-learn.

    Example:
        >>> [name for name, _ in build_features().transformer_list]
        ['word', 'word_pairs', 'char_wb', 'head']
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    common = dict(lowercase=True, sublinear_tf=True, smooth_idf=True, norm="l2", dtype=np.float64)
    low, high = p["word_ngrams"]
    blocks = [("word", TfidfVectorizer(analyzer="word", token_pattern=TOKEN_PATTERN, ngram_range=(low, low), **common))]
    if high > low:
        blocks.append(("word_pairs", TfidfVectorizer(analyzer="word", token_pattern=TOKEN_PATTERN, ngram_range=(low + 1, high), **common)))
    if p["char_ngrams"]:
        blocks.append(("char_wb", TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(p["char_ngrams"]), min_df=p["char_min_df"], **common)))
    weights = None
    if p["head_words"]:
        blocks.append(("head", TfidfVectorizer(analyzer=functools.partial(head_terms, words=p["head_words"]), **common)))
        weights = {"head": p["head_weight"]}
    return FeatureUnion(blocks, transformer_weights=weights)


def office_columns(features: FeatureUnion, blocks: Sequence[str]) -> np.ndarray:
    """Column indices, in the fitted union's output, of the named blocks (those the office model reads)."""
    columns, offset = [], 0
    for name, vec in features.transformer_list:
        width = len(vec.vocabulary_)
        if name in blocks:
            columns.append(np.arange(offset, offset + width))
        offset += width
    if not columns:
        raise ValueError(f"office_blocks {list(blocks)} names none of the blocks {[n for n, _ in features.transformer_list]}")
    return np.concatenate(columns)


def build_classifier(C: float, seed: int) -> LogisticRegression:
    """Logistic regression with a fixed ``random_state`` (lbfgs is deterministic anyway)."""
    return LogisticRegression(C=C, max_iter=5000, random_state=seed)


@dataclass
class FittedPipeline:
    """The scikit-learn objects behind a :class:`Model`: the reference the light path must match."""

    features: FeatureUnion
    office: LogisticRegression
    function: LogisticRegression
    calibration: tuple[float, float]
    #: The feature columns the office model (and the mixed-task detector) read (see ``office_blocks``).
    office_columns: np.ndarray
    #: The mixed-task detector: P(the policy calls the text mixed); None without mixed tasks.
    mixed: LogisticRegression | None = None
    #: Out-of-fold P(front-office) of the training rows (None without calibration).
    oof_front_proba: np.ndarray | None = None

    def front_office_proba(self, texts: Sequence[str]) -> np.ndarray:
        X = self.features.transform(texts)[:, self.office_columns]
        p_mixed = None if self.mixed is None else self.mixed.predict_proba(X)[:, 1]
        return front_office_probability(self.office.decision_function(X), self.calibration, p_mixed)

    def function_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.function.predict_proba(self.features.transform(texts))

    def to_model(self, metadata: dict[str, Any]) -> Model:
        blocks, scale, offset = [], [], 0
        block_weights = self.features.transformer_weights or {}
        for name, vec in self.features.transformer_list:
            if name == "head":
                block = TfidfBlock("head", (1, 1), dict(vec.vocabulary_), vec.idf_.copy(), offset, vec.analyzer.keywords["words"])
            else:
                block = TfidfBlock(vec.analyzer, tuple(vec.ngram_range), dict(vec.vocabulary_), vec.idf_.copy(), offset)
            blocks.append(block)
            scale.append(np.full(len(vec.vocabulary_), float(block_weights.get(name, 1.0))))
            offset += len(vec.vocabulary_)
        # A block weight multiplied the block's features before fitting; the model folds it
        # into the coefficients, so prediction reads the plain TF-IDF values.
        column_scale = np.concatenate(scale)
        # Columns the office model does not read weigh zero for it.
        office_coef = np.zeros((1, offset))
        office_coef[:, self.office_columns] = self.office.coef_ * column_scale[self.office_columns]
        mixed_coef = mixed_intercept = None
        if self.mixed is not None:
            mixed_coef = np.zeros((1, offset))
            mixed_coef[:, self.office_columns] = self.mixed.coef_ * column_scale[self.office_columns]
            mixed_intercept = self.mixed.intercept_.copy()
        return Model(
            blocks=blocks,
            office_coef=office_coef,
            office_intercept=self.office.intercept_.copy(),
            calibration=self.calibration,
            function_classes=tuple(str(c) for c in self.function.classes_),
            function_coef=self.function.coef_ * column_scale,
            function_intercept=self.function.intercept_.copy(),
            metadata=metadata,
            mixed_coef=mixed_coef,
            mixed_intercept=mixed_intercept,
        )


def fit_pipeline(
    texts: Sequence[str], offices: Sequence[str], functions: Sequence[str], *, seed: int = 0,
    params: dict[str, Any] | None = None, calibration_folds: int = 5, ambiguous: Sequence[str] = (),
) -> FittedPipeline:
    """Fit features, both classifiers and the office calibration on the given rows only.

    ``ambiguous`` texts (tasks the policy calls genuinely mixed) train the office
    model as half front-office, half back-office, and train the mixed-task detector
    against the corpus rows, so that such wording scores near 0.5 instead of being
    labelled with confidence; they do not train the function.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    y_front = np.array([o == FRONT for o in offices], dtype=int)
    features = build_features(p)
    X = features.fit_transform(list(texts) + list(ambiguous))
    office, columns = _fit_office(features, X, y_front, len(ambiguous), p, seed)
    mixed = _fit_mixed(X[:, columns], len(ambiguous), p, seed)
    function = build_classifier(p["function_C"], seed).fit(X[: len(texts)], list(functions))
    calibration, oof = _fit_calibration(texts, y_front, seed, p, calibration_folds, ambiguous)
    fitted = FittedPipeline(features, office, function, calibration, columns, mixed)
    fitted.oof_front_proba = oof
    return fitted


def _fit_mixed(X: Any, n_ambiguous: int, p: dict[str, Any], seed: int) -> LogisticRegression | None:
    """The mixed-task detector: the last ``n_ambiguous`` rows of X (mixed) against the others.

    None without mixed rows, or when ``p["mixed_detector"]`` is off.
    """
    if not n_ambiguous or not p["mixed_detector"]:
        return None
    y = np.r_[np.zeros(X.shape[0] - n_ambiguous, dtype=int), np.ones(n_ambiguous, dtype=int)]
    return build_classifier(p["mixed_C"], seed).fit(X, y)


def _fit_office(
    features: FeatureUnion, X: Any, y_front: np.ndarray, n_ambiguous: int, p: dict[str, Any], seed: int
) -> tuple[LogisticRegression, np.ndarray]:
    """Office classifier on the columns of ``p["office_blocks"]``, and those columns.

    The last ``n_ambiguous`` rows of X enter once per label at weight 0.5.
    """
    from scipy.sparse import vstack

    columns = office_columns(features, p["office_blocks"])
    X = X[:, columns]
    n = len(y_front)
    if not n_ambiguous:
        return build_classifier(p["office_C"], seed).fit(X, y_front), columns
    mixed = X[n:]
    X_all = vstack([X[:n], mixed, mixed]).tocsr()
    y_all = np.r_[y_front, np.ones(n_ambiguous, dtype=int), np.zeros(n_ambiguous, dtype=int)]
    weights = np.r_[np.ones(n), np.full(2 * n_ambiguous, 0.5)]
    return build_classifier(p["office_C"], seed).fit(X_all, y_all, sample_weight=weights), columns


def _fit_calibration(
    texts: Sequence[str], y: np.ndarray, seed: int, p: dict[str, Any], folds: int, ambiguous: Sequence[str] = ()
) -> tuple[tuple[float, float], np.ndarray | None]:
    """Platt scaling fitted on out-of-fold office scores, so it sees scores on unseen rows.

    Also returns the out-of-fold P(front-office) as the model computes it (with the
    mixed-task detector), from which the review threshold is chosen.
    """
    folds = min(folds, int(np.bincount(y, minlength=2).min()))
    if folds < 2:
        return (1.0, 0.0), None
    scores = np.zeros(len(texts))
    p_mixed: np.ndarray | None = None
    texts = np.asarray(texts, dtype=object)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, y):
        feats = build_features(p)
        X = feats.fit_transform(list(texts[tr]) + list(ambiguous))
        clf, columns = _fit_office(feats, X, y[tr], len(ambiguous), p, seed)
        X_te = feats.transform(texts[te])[:, columns]
        scores[te] = clf.decision_function(X_te)
        mixed = _fit_mixed(X[:, columns], len(ambiguous), p, seed)
        if mixed is not None:
            p_mixed = np.zeros(len(texts)) if p_mixed is None else p_mixed
            p_mixed[te] = mixed.predict_proba(X_te)[:, 1]
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(scores[:, None], y)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    return (a, b), front_office_probability(scores, (a, b), p_mixed)


def choose_threshold(front_proba: np.ndarray, y_front: np.ndarray, target: float) -> float:
    """The lowest needs-review threshold whose unflagged rows reach ``target`` accuracy.

    Computed on out-of-fold probabilities, i.e. on rows each model did not see.
    """
    confidence = np.maximum(front_proba, 1 - front_proba)
    correct = (front_proba >= 0.5) == (y_front == 1)
    for t in np.round(np.arange(0.50, 1.0, 0.01), 2):
        keep = confidence >= t
        if keep.any() and correct[keep].mean() >= target:
            return float(t)
    return 0.99


@dataclass
class TrainResult:
    """What ``train`` returns: the model, its cross-validated metrics and the fitted scikit-learn objects."""

    model: Model
    metrics: dict[str, Any] = field(default_factory=dict)
    pipeline: FittedPipeline | None = None
    #: The warnings about the training file (duplicates): what did not stop training.
    problems: list[DataProblem] = field(default_factory=list)


def cross_validate(
    data: LabelledData, *, cv: int = 5, seed: int = 0, params: dict[str, Any] | None = None, ambiguous: Sequence[str] = ()
) -> dict[str, Any]:
    """Stratified K-fold scores: each fold's model is fitted without that fold's rows.

    Returns accuracy and macro-F1 for office and function, and the out-of-fold
    predictions (``oof``) for calibration and threshold analysis. The ``ambiguous``
    (mixed) texts are split into folds too: ``oof["mixed_front_proba"]`` holds each
    one's P(front-office) from a model that trained on the other folds' mixed texts
    only, which measures whether unseen mixed wording comes out unsure.
    """
    texts = np.asarray(data.texts, dtype=object)
    functions = np.asarray(data.functions, dtype=object)
    offices = np.asarray(data.offices, dtype=object)
    mixed = np.asarray(list(ambiguous), dtype=object)
    front = np.zeros(len(texts))
    mixed_front = np.full(len(mixed), np.nan)
    fn_pred = np.empty(len(texts), dtype=object)
    splitter = StratifiedKFold(cv, shuffle=True, random_state=seed)
    # Too few mixed texts to hold any out: every fold trains on all of them, none is scored.
    mixed_folds = KFold(cv, shuffle=True, random_state=seed).split(mixed) if len(mixed) >= cv else itertools.repeat((np.arange(len(mixed)), np.arange(0)))
    fold_of = np.zeros(len(texts), dtype=int)
    for k, ((tr, te), (mixed_tr, mixed_te)) in enumerate(zip(splitter.split(texts, functions), mixed_folds)):
        fitted = fit_pipeline(texts[tr], offices[tr], functions[tr], seed=seed, params=params, ambiguous=mixed[mixed_tr])
        model = fitted.to_model({})
        cols = model.predict_columns(list(texts[te]), threshold=0.5)
        front[te] = model.front_office_proba(list(texts[te]))
        if len(mixed_te):
            mixed_front[mixed_te] = model.front_office_proba(list(mixed[mixed_te]))
        fn_pred[te] = cols.function
        fold_of[te] = k
    office_pred = np.where(front >= 0.5, FRONT, "back-office")
    return {
        "folds": cv,
        "seed": seed,
        "rows": len(texts),
        "office": {
            "accuracy": float(accuracy_score(offices, office_pred)),
            "macro_f1": float(f1_score(offices, office_pred, average="macro")),
        },
        "function": {
            "accuracy": float(accuracy_score(functions, fn_pred.astype(str))),
            "macro_f1": float(f1_score(functions, fn_pred.astype(str), average="macro")),
        },
        "oof": {"front_proba": front, "function": fn_pred, "fold": fold_of, "mixed_front_proba": mixed_front[~np.isnan(mixed_front)]},
    }


def train(
    data: str | Path | LabelledData | None = None,
    *,
    text_column: str = "text",
    office_column: str = "office",
    function_column: str = "function",
    seed: int = 0,
    cv: int = 5,
    params: dict[str, Any] | None = None,
    encoding: str = "utf-8",
    ambiguous: str | Path | Sequence[str] | None = None,
    out: str | Path | None = None,
    on_checked: Callable[[list[DataProblem]], None] | None = None,
) -> TrainResult:
    """Train on a labelled CSV (default: the bundled corpus) and return the model and metrics.

    ``ambiguous``: texts the policy calls genuinely mixed (a CSV with a ``text`` column,
    or a list); by default the bundled ``datasets/ambiguous_tasks.csv`` when training on
    the bundled corpus, none otherwise. With ``cv`` >= 2, also cross-validates and
    stores the scores in the model's metadata. With ``out``, also saves the model there
    (its directory is checked first, before minutes of training). A file is read and
    checked once; ``on_checked``, if given, is called with every problem found (warnings
    included) before training starts, and the result's ``problems`` holds the warnings.
    Raises :class:`CorpusError` when the data cannot train a model.
    """
    if out is not None:
        require_directory(Path(out))
    bundled = data is None
    problems: list[DataProblem] = []
    if not isinstance(data, LabelledData):
        data = load_labelled(
            data, text_column=text_column, office_column=office_column,
            function_column=function_column, encoding=encoding, check=False,
        )
        problems = check_labelled(data, min_per_class=cv)
        if on_checked is not None:
            on_checked(problems)
        refuse(data, problems, listed=on_checked is not None)
    if ambiguous is None:
        mixed = load_ambiguous() if bundled else []
    elif isinstance(ambiguous, (str, Path)):
        mixed = load_ambiguous(ambiguous)
    else:
        mixed = list(ambiguous)
    smallest = min(np.unique(np.asarray(data.functions, dtype=str), return_counts=True)[1])
    if cv and smallest < cv:
        raise CorpusError(
            f"a function has only {smallest} rows, too few for {cv}-fold cross-validation; "
            "add rows or pass a smaller --cv (0 skips it)"
        )
    p = {**DEFAULT_PARAMS, **(params or {})}
    metrics: dict[str, Any] = {}
    if cv:
        scores = cross_validate(data, cv=cv, seed=seed, params=p, ambiguous=mixed)
        metrics = {"cross_validation": {k: v for k, v in scores.items() if k != "oof"}}
    fitted = fit_pipeline(data.texts, data.offices, data.functions, seed=seed, params=p, ambiguous=mixed)
    threshold = DEFAULT_THRESHOLD
    if fitted.oof_front_proba is not None:
        y = np.array([o == FRONT for o in data.offices], dtype=int)
        threshold = choose_threshold(fitted.oof_front_proba, y, p["review_target_accuracy"])
    metadata = _metadata(data, seed, p, metrics, threshold, mixed)
    result = TrainResult(fitted.to_model(metadata), metrics, fitted, problems)
    if out is not None:
        save_model(result.model, out)
    return result


def _metadata(
    data: LabelledData, seed: int, params: dict[str, Any], metrics: dict[str, Any], threshold: float, ambiguous: Sequence[str]
) -> dict[str, Any]:
    import sklearn

    # SOURCE_DATE_EPOCH makes `make model` byte-for-byte reproducible when set.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    created = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return {
        "package_version": __version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "created_at": created.replace(microsecond=0).isoformat(),
        "training_data": {"source": Path(data.source).name, "sha256": data.sha256, "rows": len(data), "ambiguous_rows": len(ambiguous)},
        "offices": sorted(set(data.offices)),
        "functions": sorted(set(f for f in data.functions if f)),
        "seed": seed,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "review_threshold": threshold,
        "metrics": metrics,
    }
