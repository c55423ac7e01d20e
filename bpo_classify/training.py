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
from .corrections import Addition, combine, load_additions
from .corpus import AMBIGUOUS_NAME, NOT_TASKS_NAME, DataProblem, LabelledData, bundled_path, check_labelled, distinct_rows, load_labelled, load_text_column, refuse
from .errors import CorpusError
from .features import TOKEN_PATTERN, TfidfBlock, head_terms
from .model import DEFAULT_THRESHOLD, Model, front_office_probability, save_model
from .policy import FRONT

#: The model kinds ``train`` builds: TF-IDF only, or TF-IDF plus a sentence encoder (``semantic.py``).
KINDS = ("default", "semantic")
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
    # The not-a-task detector (fitted when there are not-task lines, datasets/not_tasks.csv):
    # posting lines that are not work (requirements, perks, schedules, headings) against
    # the corpus's tasks and the mixed tasks, on the blocks named here, without class weights
    # (so that it stays sure before it flags a task). Its threshold is the highest at which
    # this share of the not-task lines, scored out of fold, is flagged.
    "not_a_task_detector": True,
    "not_a_task_blocks": ("word", "word_pairs", "char_wb", "head"),
    "not_a_task_C": 10.0,
    "not_a_task_recall": 0.9,
    # A text is unfamiliar when fewer than this share of its words (digits aside) are words
    # the model was trained on (see Model.familiar_share).
    "familiar_share": 0.5,
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
    if p.get("_embedding_table") is not None:
        # The semantic kind (semantic.py): the sentence embedding, last, so the TF-IDF columns keep their offsets.
        from .semantic import EmbeddingFeatures

        blocks.append(("embedding", EmbeddingFeatures(p["_embedding_table"])))
        weights = {**(weights or {}), "embedding": p["embedding_weight"]}
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
    #: The not-a-task detector and the feature columns it reads; None without not-task lines.
    not_a_task: LogisticRegression | None = None
    not_a_task_columns: np.ndarray | None = None
    #: Out-of-fold P(not a task) of the training rows and of the not-task lines (None without the detector).
    oof_not_a_task: tuple[np.ndarray, np.ndarray] | None = None

    def front_office_proba(self, texts: Sequence[str]) -> np.ndarray:
        X = self.features.transform(texts)[:, self.office_columns]
        p_mixed = None if self.mixed is None else self.mixed.predict_proba(X)[:, 1]
        return front_office_probability(self.office.decision_function(X), self.calibration, p_mixed)

    def function_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.function.predict_proba(self.features.transform(texts))

    def to_model(self, metadata: dict[str, Any]) -> Model:
        blocks, scale, offset = [], [], 0
        block_weights = self.features.transformer_weights or {}
        embedding = None
        for name, vec in self.features.transformer_list:
            if name == "embedding":
                embedding = vec
            elif name == "head":
                block = TfidfBlock("head", (1, 1), dict(vec.vocabulary_), vec.idf_.copy(), offset, vec.analyzer.keywords["words"])
            else:
                block = TfidfBlock(vec.analyzer, tuple(vec.ngram_range), dict(vec.vocabulary_), vec.idf_.copy(), offset)
            if name != "embedding":
                blocks.append(block)
            scale.append(np.full(len(vec.vocabulary_), float(block_weights.get(name, 1.0))))
            offset += len(vec.vocabulary_)
        # A block weight multiplied the block's features before fitting; the model folds it
        # into the coefficients, so prediction reads the plain TF-IDF values.
        column_scale = np.concatenate(scale)
        # Columns the office model does not read weigh zero for it.
        office_coef = np.zeros((1, offset))
        office_coef[:, self.office_columns] = self.office.coef_ * column_scale[self.office_columns]
        mixed_coef, mixed_intercept = _detector_weights(self.mixed, self.office_columns, column_scale, offset)
        not_a_task_coef, not_a_task_intercept = _detector_weights(self.not_a_task, self.not_a_task_columns, column_scale, offset)
        model = Model(
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
            not_a_task_coef=not_a_task_coef,
            not_a_task_intercept=not_a_task_intercept,
        )
        if embedding is None:
            return model
        from .semantic import as_semantic, encoder_spec

        semantic = as_semantic(model, encoder_spec())
        semantic.__dict__["_table"] = embedding.table  # the training texts' embeddings, in memory only
        return semantic


def _detector_weights(
    clf: LogisticRegression | None, columns: np.ndarray | None, column_scale: np.ndarray, width: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A detector's coefficients over the whole feature space (zero where it reads nothing) and its intercept."""
    if clf is None or columns is None:
        return None, None
    coef = np.zeros((1, width))
    coef[:, columns] = clf.coef_ * column_scale[columns]
    return coef, clf.intercept_.copy()


def fit_pipeline(
    texts: Sequence[str], offices: Sequence[str], functions: Sequence[str], *, seed: int = 0,
    params: dict[str, Any] | None = None, calibration_folds: int = 5, ambiguous: Sequence[str] = (),
    not_tasks: Sequence[str] = (), jobs: int | None = 1, weights: Sequence[float] | None = None,
) -> FittedPipeline:
    """Fit features, the classifiers, the detectors and the office calibration on the given rows only.

    ``ambiguous`` texts (tasks the policy calls genuinely mixed) train the office
    model as half front-office, half back-office, and train the mixed-task detector
    against the corpus rows, so that such wording scores near 0.5 instead of being
    labelled with confidence; they do not train the function. ``not_tasks`` (posting lines
    that are not work) train the not-a-task detector against every task. ``jobs``
    processes fit the calibration folds (``None``: one per core); the result is the same
    for any number. ``weights`` (one per text, default 1) weigh the rows in the office and
    function models (``train --add-weight``).
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    w = None if weights is None else np.asarray(weights, dtype=float)
    y_front = np.array([o == FRONT for o in offices], dtype=int)
    fitted = _fit_main(texts, offices, functions, seed, p, ambiguous, not_tasks, w)
    held_out = _held_out_scores(texts, y_front, seed, p, calibration_folds, ambiguous, not_tasks, jobs, w)
    return _calibrated(fitted, held_out, y_front)


def _fit_main(
    texts: Sequence[str], offices: Sequence[str], functions: Sequence[str], seed: int, p: dict[str, Any],
    ambiguous: Sequence[str], not_tasks: Sequence[str], w: np.ndarray | None,
) -> FittedPipeline:
    """The features, the classifiers and the detectors of :func:`fit_pipeline`, not yet calibrated."""
    y_front = np.array([o == FRONT for o in offices], dtype=int)
    features = build_features(p)
    X = features.fit_transform(list(texts) + list(ambiguous) + list(not_tasks))
    tasks = X[: len(texts) + len(ambiguous)]
    office, columns = _fit_office(features, tasks, y_front, len(ambiguous), p, seed, w)
    mixed = _fit_mixed(tasks[:, columns], len(ambiguous), p, seed)
    not_a_task, not_a_task_columns = _fit_not_a_task(features, X, len(not_tasks), p, seed)
    function = build_classifier(p["function_C"], seed).fit(X[: len(texts)], list(functions), sample_weight=w)
    return FittedPipeline(features, office, function, (1.0, 0.0), columns, mixed, None, not_a_task, not_a_task_columns)


def _calibrated(fitted: FittedPipeline, held_out: Any, y_front: np.ndarray) -> FittedPipeline:
    """``fitted`` with the Platt calibration and the out-of-fold scores of ``held_out`` (see :func:`_held_out_scores`)."""
    if held_out is not None:
        scores, p_mixed, oof_not_a_task = held_out
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(scores[:, None], y_front)
        fitted.calibration = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        fitted.oof_front_proba = front_office_probability(scores, fitted.calibration, p_mixed)
        fitted.oof_not_a_task = oof_not_a_task
    return fitted


def _fit_mixed(X: Any, n_ambiguous: int, p: dict[str, Any], seed: int) -> LogisticRegression | None:
    """The mixed-task detector: the last ``n_ambiguous`` rows of X (mixed) against the others.

    None without mixed rows, or when ``p["mixed_detector"]`` is off.
    """
    if not n_ambiguous or not p["mixed_detector"]:
        return None
    y = np.r_[np.zeros(X.shape[0] - n_ambiguous, dtype=int), np.ones(n_ambiguous, dtype=int)]
    return build_classifier(p["mixed_C"], seed).fit(X, y)


def _fit_not_a_task(
    features: FeatureUnion, X: Any, n_not_tasks: int, p: dict[str, Any], seed: int
) -> tuple[LogisticRegression | None, np.ndarray | None]:
    """The not-a-task detector: the last ``n_not_tasks`` rows of X against all the others (tasks),
    on the columns of ``p["not_a_task_blocks"]``; (None, None) without such rows or when switched off."""
    if not n_not_tasks or not p["not_a_task_detector"]:
        return None, None
    columns = office_columns(features, p["not_a_task_blocks"])
    y = np.r_[np.zeros(X.shape[0] - n_not_tasks, dtype=int), np.ones(n_not_tasks, dtype=int)]
    return build_classifier(p["not_a_task_C"], seed).fit(X[:, columns], y), columns


def _fit_office(
    features: FeatureUnion, X: Any, y_front: np.ndarray, n_ambiguous: int, p: dict[str, Any], seed: int,
    row_weights: np.ndarray | None = None,
) -> tuple[LogisticRegression, np.ndarray]:
    """Office classifier on the columns of ``p["office_blocks"]``, and those columns.

    The first rows of X (one per label in ``y_front``) weigh ``row_weights`` (default 1); the
    last ``n_ambiguous`` rows enter once per label at weight 0.5.
    """
    from scipy.sparse import vstack

    columns = office_columns(features, p["office_blocks"])
    X = X[:, columns]
    n = len(y_front)
    if not n_ambiguous:
        return build_classifier(p["office_C"], seed).fit(X, y_front, sample_weight=row_weights), columns
    mixed = X[n:]
    X_all = vstack([X[:n], mixed, mixed]).tocsr()
    y_all = np.r_[y_front, np.ones(n_ambiguous, dtype=int), np.zeros(n_ambiguous, dtype=int)]
    weights = np.r_[np.ones(n) if row_weights is None else row_weights, np.full(2 * n_ambiguous, 0.5)]
    return build_classifier(p["office_C"], seed).fit(X_all, y_all, sample_weight=weights), columns


def _held_out_scores(
    texts: Sequence[str], y: np.ndarray, seed: int, p: dict[str, Any], folds: int, ambiguous: Sequence[str],
    not_tasks: Sequence[str], jobs: int | None, weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None] | None:
    """Out-of-fold office scores, P(mixed) and P(not a task) of the training rows, each from a
    model fitted without them: what the calibration and the review thresholds are fitted on.

    The not-task lines are split into the same number of folds, so each is scored out of fold too.
    Only the blocks the office and the detectors read are built (the function's are not needed).
    None when a class has fewer rows than two folds.
    """
    plan = _held_out_plan(texts, y, seed, p, folds, ambiguous, not_tasks, weights)
    if plan is None:
        return None
    return _held_out_combined(plan, parallel(_held_out_fold, plan.arguments, jobs), p, ambiguous)


@dataclass
class _HeldOutPlan:
    """The calibration folds of one pipeline: each fold's arguments of :func:`_held_out_fold`, and its rows."""

    arguments: list[tuple[Any, ...]]
    splits: list[tuple[np.ndarray, np.ndarray]]
    nt_splits: list[tuple[np.ndarray, np.ndarray]]
    n_texts: int
    n_not_tasks: int


def _held_out_plan(
    texts: Sequence[str], y: np.ndarray, seed: int, p: dict[str, Any], folds: int, ambiguous: Sequence[str],
    not_tasks: Sequence[str], weights: np.ndarray | None,
) -> _HeldOutPlan | None:
    """What :func:`_held_out_scores` runs (None when a class has fewer rows than two folds)."""
    folds = min(folds, int(np.bincount(y, minlength=2).min()))
    if folds < 2:
        return None
    texts = np.asarray(texts, dtype=object)
    not_tasks = np.asarray(list(not_tasks), dtype=object)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, y))
    nt_splits = _side_folds(len(not_tasks), folds, seed)
    needed = set(p["office_blocks"]) | (set(p["not_a_task_blocks"]) if len(not_tasks) else set())
    fold_params = {**p, **_only_blocks(needed)}
    arguments = [
        (texts[tr], y[tr], texts[te], ambiguous, not_tasks[nt_tr], not_tasks[nt_te], fold_params, seed,
         None if weights is None else weights[tr])
        for (tr, te), (nt_tr, nt_te) in zip(splits, nt_splits)
    ]
    return _HeldOutPlan(arguments, splits, nt_splits, len(texts), len(not_tasks))


def _held_out_combined(
    plan: _HeldOutPlan, results: list[Any], p: dict[str, Any], ambiguous: Sequence[str]
) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    """The out-of-fold scores of :func:`_held_out_scores` from its folds' results."""
    splits, nt_splits = plan.splits, plan.nt_splits
    not_tasks = range(plan.n_not_tasks)
    texts = range(plan.n_texts)
    scores = np.zeros(len(texts))
    p_mixed = np.zeros(len(texts)) if len(ambiguous) and p["mixed_detector"] else None
    nt_tasks = np.zeros(len(texts)) if len(not_tasks) and p["not_a_task_detector"] else None
    nt_lines = np.zeros(len(not_tasks))
    for ((_, te), (_, nt_te)), (s, m, t, lines) in zip(zip(splits, nt_splits), results):
        scores[te] = s
        if p_mixed is not None:
            p_mixed[te] = m
        if nt_tasks is not None:
            nt_tasks[te], nt_lines[nt_te] = t, lines
    return scores, p_mixed, None if nt_tasks is None else (nt_tasks, nt_lines)


def _held_out_fold(
    train_texts: np.ndarray, y: np.ndarray, test_texts: np.ndarray, ambiguous: Sequence[str],
    not_tasks: np.ndarray, test_not_tasks: np.ndarray, p: dict[str, Any], seed: int, weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """One calibration fold: the office scores, P(mixed) and P(not a task) of the held-out rows,
    and P(not a task) of the held-out not-task lines."""
    feats = build_features(p)
    X = feats.fit_transform(list(train_texts) + list(ambiguous) + list(not_tasks))
    tasks = X[: len(train_texts) + len(ambiguous)]
    clf, columns = _fit_office(feats, tasks, y, len(ambiguous), p, seed, weights)
    X_te = feats.transform(list(test_texts))
    mixed = _fit_mixed(tasks[:, columns], len(ambiguous), p, seed)
    detector, nt_columns = _fit_not_a_task(feats, X, len(not_tasks), p, seed)
    p_mixed = None if mixed is None else mixed.predict_proba(X_te[:, columns])[:, 1]
    if detector is None:
        return clf.decision_function(X_te[:, columns]), p_mixed, None, None
    lines = detector.predict_proba(feats.transform(list(test_not_tasks))[:, nt_columns])[:, 1] if len(test_not_tasks) else np.zeros(0)
    return clf.decision_function(X_te[:, columns]), p_mixed, detector.predict_proba(X_te[:, nt_columns])[:, 1], lines


def _only_blocks(names: set[str]) -> dict[str, Any]:
    """Parameters that build only the named feature blocks (each block's values do not depend on the others)."""
    off: dict[str, Any] = {}
    if "word_pairs" not in names:
        off["word_ngrams"] = (DEFAULT_PARAMS["word_ngrams"][0],) * 2
    if "char_wb" not in names:
        off["char_ngrams"] = None
    if "head" not in names:
        off["head_words"] = 0
    return off


def _side_folds(n: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds for a side set (mixed tasks, not-task lines): KFold when it has enough rows, else
    every fold trains on all of it and scores none."""
    if n >= folds:
        return list(KFold(folds, shuffle=True, random_state=seed).split(np.arange(n)))
    return [(np.arange(n), np.arange(0))] * folds


def parallel(function: Any, arguments: Sequence[tuple[Any, ...]], jobs: int | None) -> list[Any]:
    """``[function(*args) for args in arguments]``, in ``jobs`` processes (``None``: one per core).

    joblib (scikit-learn's own dependency) runs them: the results, in order, do not depend on ``jobs``.
    """
    from joblib import Parallel, delayed

    from .labeling import available_cores

    jobs = min(len(arguments), available_cores() if jobs is None else max(1, jobs))
    if jobs <= 1:
        return [function(*args) for args in arguments]
    return Parallel(n_jobs=jobs)(delayed(function)(*args) for args in arguments)


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
    data: LabelledData, *, cv: int = 5, seed: int = 0, params: dict[str, Any] | None = None,
    ambiguous: Sequence[str] = (), not_tasks: Sequence[str] = (), jobs: int | None = None,
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Stratified K-fold scores: each fold's model is fitted without that fold's rows.

    Returns accuracy and macro-F1 for office and function, and the out-of-fold
    predictions (``oof``) for calibration and threshold analysis. The ``ambiguous``
    (mixed) texts and the ``not_tasks`` lines are split into folds too:
    ``oof["mixed_front_proba"]`` holds each mixed text's P(front-office) and
    ``oof["not_task_lines"]`` each not-task line's P(not a task), from models that trained
    on the other folds only. The folds run in ``jobs`` processes (``None``: one per core);
    the result is the same for any number.
    """
    plan = _cv_plan(data, cv, seed, params, ambiguous, not_tasks, weights)
    return _cv_scores(data, plan, parallel(_cross_validation_fold, plan.arguments, jobs))


@dataclass
class _CvPlan:
    """The cross-validation folds: each fold's arguments of :func:`_cross_validation_fold`, and its rows."""

    folds: int
    seed: int
    arguments: list[tuple[Any, ...]]
    splits: list[tuple[np.ndarray, np.ndarray]]
    mixed_splits: list[tuple[np.ndarray, np.ndarray]]
    line_splits: list[tuple[np.ndarray, np.ndarray]]
    n_mixed: int
    n_lines: int


def _cv_plan(
    data: LabelledData, cv: int, seed: int, params: dict[str, Any] | None, ambiguous: Sequence[str],
    not_tasks: Sequence[str], weights: Sequence[float] | None,
) -> _CvPlan:
    """What :func:`cross_validate` runs."""
    texts = np.asarray(data.texts, dtype=object)
    functions = np.asarray(data.functions, dtype=object)
    offices = np.asarray(data.offices, dtype=object)
    mixed = np.asarray(list(ambiguous), dtype=object)
    lines = np.asarray(list(not_tasks), dtype=object)
    splits = list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(texts, functions))
    mixed_splits, line_splits = _side_folds(len(mixed), cv, seed), _side_folds(len(lines), cv, seed)
    arguments = [
        (texts[tr], offices[tr], functions[tr], texts[te], mixed[m_tr], mixed[m_te], lines[l_tr], lines[l_te], seed, params,
         None if weights is None else np.asarray(weights, dtype=float)[tr])
        for (tr, te), (m_tr, m_te), (l_tr, l_te) in zip(splits, mixed_splits, line_splits)
    ]
    return _CvPlan(cv, seed, arguments, splits, mixed_splits, line_splits, len(mixed), len(lines))


def _cv_scores(data: LabelledData, plan: _CvPlan, results: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`cross_validate`'s scores from its folds' results (see :func:`_fold_result`)."""
    cv, seed, splits, mixed_splits, line_splits = plan.folds, plan.seed, plan.splits, plan.mixed_splits, plan.line_splits
    texts = data.texts
    offices, functions = np.asarray(data.offices, dtype=object), np.asarray(data.functions, dtype=object)
    mixed, lines = range(plan.n_mixed), range(plan.n_lines)
    oof: dict[str, np.ndarray] = {
        "front_proba": np.zeros(len(texts)), "function": np.empty(len(texts), dtype=object),
        "fold": np.zeros(len(texts), dtype=int), "mixed_proba": np.zeros(len(texts)),
        "not_a_task": np.zeros(len(texts)), "familiar_share": np.zeros(len(texts)),
        "mixed_front_proba": np.full(len(mixed), np.nan), "not_task_lines": np.full(len(lines), np.nan),
    }
    for k, ((_, te), (_, m_te), (_, l_te), result) in enumerate(zip(splits, mixed_splits, line_splits, results)):
        for key in ("front_proba", "function", "mixed_proba", "not_a_task", "familiar_share"):
            oof[key][te] = result[key]
        oof["fold"][te] = k
        oof["mixed_front_proba"][m_te] = result["mixed_front_proba"]
        oof["not_task_lines"][l_te] = result["not_task_lines"]
    oof["mixed_front_proba"] = oof["mixed_front_proba"][~np.isnan(oof["mixed_front_proba"])]
    oof["not_task_lines"] = oof["not_task_lines"][~np.isnan(oof["not_task_lines"])]
    office_pred = np.where(oof["front_proba"] >= 0.5, FRONT, "back-office")
    return {
        "folds": cv,
        "seed": seed,
        "rows": len(texts),
        "office": {
            "accuracy": float(accuracy_score(offices, office_pred)),
            "macro_f1": float(f1_score(offices, office_pred, average="macro")),
        },
        "function": {
            "accuracy": float(accuracy_score(functions, oof["function"].astype(str))),
            "macro_f1": float(f1_score(functions, oof["function"].astype(str), average="macro")),
        },
        "oof": oof,
    }


def _cross_validation_fold(
    texts: np.ndarray, offices: np.ndarray, functions: np.ndarray, test: np.ndarray, mixed: np.ndarray,
    test_mixed: np.ndarray, lines: np.ndarray, test_lines: np.ndarray, seed: int, params: dict[str, Any] | None,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """One fold: a model fitted on the fold's training rows, and what it says of the held-out ones."""
    fitted = fit_pipeline(texts, offices, functions, seed=seed, params=params, ambiguous=mixed, not_tasks=lines, jobs=1, weights=weights)
    return _fold_result(fitted, test, test_mixed, test_lines)


def _fold_result(fitted: FittedPipeline, test: np.ndarray, test_mixed: np.ndarray, test_lines: np.ndarray) -> dict[str, Any]:
    """What a fold's fitted pipeline says of the fold's held-out rows, mixed tasks and not-task lines."""
    model = fitted.to_model({})
    held_out = list(test)
    return {
        "front_proba": model.front_office_proba(held_out),
        "function": model.predict_columns(held_out, threshold=0.5).function,
        "mixed_proba": model.mixed_proba(held_out),
        "not_a_task": model.not_a_task_proba(held_out),
        "familiar_share": model.familiar_share(held_out),
        "mixed_front_proba": model.front_office_proba(list(test_mixed)) if len(test_mixed) else np.zeros(0),
        "not_task_lines": model.not_a_task_proba(list(test_lines)) if len(test_lines) else np.zeros(0),
    }


#: Calibration folds of every pipeline (:func:`fit_pipeline`'s default).
CALIBRATION_FOLDS = 5


def _cross_validate_and_fit(
    data: LabelledData, cv: int, seed: int, p: dict[str, Any], mixed: Sequence[str], lines: Sequence[str],
    weights: Sequence[float] | None, jobs: int | None,
) -> tuple[dict[str, Any], FittedPipeline]:
    """``cross_validate(data, ...)`` and ``fit_pipeline(data, ...)`` as one set of tasks, so that no core waits.

    Each of the ``cv`` fold pipelines and the final one is one fit (features, classifiers,
    detectors) and :data:`CALIBRATION_FOLDS` calibration fits. Run fold by fold, the last
    folds and the final fit leave cores idle; here every fit is a task of its own, the
    largest first, in ``jobs`` worker processes, while this process fits the final model (as
    :func:`fit_pipeline` would, with its own threads). The results are put together as the
    two functions do, so the scores and the model are the same as theirs, for any ``jobs``.
    """
    plan = _cv_plan(data, cv, seed, p, mixed, lines, weights)
    w = None if weights is None else np.asarray(weights, dtype=float)
    y_final = np.array([o == FRONT for o in data.offices], dtype=int)
    pipelines = []  # (y_front, held-out plan) per fold, then the final one
    mains: list[tuple[Any, ...]] = []
    for texts, offices, functions, _test, m_tr, _m_te, l_tr, _l_te, fold_seed, params, fold_w in plan.arguments:
        fold_p = {**DEFAULT_PARAMS, **(params or {})}
        y = np.array([o == FRONT for o in offices], dtype=int)
        mains.append((texts, offices, functions, fold_seed, fold_p, m_tr, l_tr, fold_w))
        pipelines.append((y, _held_out_plan(texts, y, fold_seed, fold_p, CALIBRATION_FOLDS, m_tr, l_tr, fold_w)))
    pipelines.append((y_final, _held_out_plan(data.texts, y_final, seed, p, CALIBRATION_FOLDS, mixed, lines, w)))
    tasks = [(_fit_main, args) for args in mains]
    tasks += [(_held_out_fold, args) for _, held in pipelines if held is not None for args in held.arguments]
    final_main = functools.partial(_fit_main, data.texts, data.offices, data.functions, seed, p, mixed, lines, w)
    results, final = parallel_alongside(tasks, jobs, final_main)
    fold_mains, held_results = results[: len(mains)], iter(results[len(mains) :])
    fitted_pipelines = []
    for main, (y, held) in zip([*fold_mains, final], pipelines):
        combined = None if held is None else _held_out_combined(held, [next(held_results) for _ in held.arguments], p, mixed)
        fitted_pipelines.append(_calibrated(main, combined, y))
    fold_results = [
        _fold_result(fitted, test, m_te, l_te)
        for fitted, (_, _, _, test, _, m_te, _, l_te, _, _, _) in zip(fitted_pipelines, plan.arguments)
    ]
    return _cv_scores(data, plan, fold_results), fitted_pipelines[-1]


def parallel_alongside(tasks: Sequence[tuple[Any, tuple[Any, ...]]], jobs: int | None, alongside: Any) -> tuple[list[Any], Any]:
    """``[f(*args) for f, args in tasks]`` in ``jobs`` worker processes, in order, and ``alongside()`` in this process meanwhile."""
    from joblib import Parallel, delayed

    from .labeling import available_cores

    jobs = min(len(tasks), available_cores() if jobs is None else max(1, jobs))
    if jobs <= 1:
        here = alongside()
        return [f(*args) for f, args in tasks], here
    # All tasks are queued at once, in order (the large fits first); the workers start on them
    # while this process computes ``alongside``.
    running = Parallel(n_jobs=jobs, return_as="generator", pre_dispatch="all")(delayed(f)(*args) for f, args in tasks)
    here = alongside()
    return list(running), here


def choose_not_a_task_threshold(line_proba: np.ndarray, recall: float) -> float:
    """The highest not-a-task threshold at which at least ``recall`` of the not-task lines are flagged.

    ``line_proba`` is P(not a task) of not-task lines, out of fold. The higher the
    threshold, the fewer real tasks are flagged with them.

    Example:
        >>> choose_not_a_task_threshold(np.array([0.2, 0.5, 0.6, 0.9]), 0.75)
        0.5
    """
    for t in np.round(np.arange(0.95, 0.04, -0.01), 2):
        if len(line_proba) and np.mean(line_proba >= t) >= recall:
            return float(t)
    return 0.05


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
    not_tasks: str | Path | Sequence[str] | None = None,
    jobs: int | None = None,
    out: str | Path | None = None,
    on_checked: Callable[[list[DataProblem]], None] | None = None,
    add: Sequence[Addition | str | Path] = (),
    add_weight: float = 1.0,
    kind: str = "default",
) -> TrainResult:
    """Train on a labelled CSV (default: the bundled corpus) and return the model and metrics.

    ``ambiguous``: texts the policy calls genuinely mixed (a CSV with a ``text`` column,
    or a list); ``not_tasks``: posting lines that are not tasks (the same); by default the
    bundled ``datasets/ambiguous_tasks.csv`` and ``datasets/not_tasks.csv`` when training on
    the bundled corpus, none otherwise. With ``cv`` >= 2, also cross-validates and
    stores the scores in the model's metadata. ``jobs`` processes fit the folds (``None``:
    one per core; the model is the same for any number). With ``out``, also saves the model
    there (its directory is checked first, before minutes of training). A file is read and
    checked once; ``on_checked``, if given, is called with every problem found (warnings
    included) before training starts, and the result's ``problems`` holds the warnings.
    ``add``: corrections files (paths, read and checked by ``corrections.load_additions`` at
    ``add_weight``, or :class:`~bpo_classify.corrections.Addition` s) trained on as well; a data row with the same text as a correction is replaced by it, and the bundled
    mixed tasks and not-task lines are kept (unless ``ambiguous`` or ``not_tasks`` is given),
    so the model keeps both detectors. The metadata records each file's rows and SHA-256.
    ``kind`` ``"semantic"`` adds the sentence-embedding block (``semantic.py``; needs the
    ``semantic`` extra). Raises :class:`CorpusError` when the data cannot train a model.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "semantic":
        from .semantic import require

        require("train --kind semantic")
    if out is not None:
        require_directory(Path(out))
    add = [a if isinstance(a, Addition) else load_additions([a], add_weight, encoding)[0] for a in add]  # checked before the corpus
    bundled = data is None or bool(add)
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
    weights, added = None, None
    if add:
        data, weights, replaced = combine(data, add)
        added = {"files": [a.describe() for a in add], "replaced_rows": replaced}
    # Each repeated (text, labels) row once, its count as its weight: memory and time follow the
    # distinct texts (issue 21), and the folds below never split a text's copies between
    # training and test. A file with no repeated row trains exactly as before.
    rows = len(data)
    data, weights = distinct_rows(data, weights)
    mixed = _side_set(ambiguous, bundled, AMBIGUOUS_NAME)
    lines = _side_set(not_tasks, bundled, NOT_TASKS_NAME)
    smallest = min(np.unique(np.asarray(data.functions, dtype=str), return_counts=True)[1])
    if cv and smallest < cv:
        raise CorpusError(
            f"a function has only {smallest} rows, too few for {cv}-fold cross-validation; "
            "add rows or pass a smaller --cv (0 skips it)"
        )
    p = {**DEFAULT_PARAMS, **(params or {})}
    if kind == "semantic":
        from .semantic import semantic_params

        p = semantic_params(p, list(data.texts) + mixed + lines)
    metrics: dict[str, Any] = {}
    if cv:
        scores, fitted = _cross_validate_and_fit(data, cv, seed, p, mixed, lines, weights, jobs)
    else:
        scores = None
        fitted = fit_pipeline(data.texts, data.offices, data.functions, seed=seed, params=p, ambiguous=mixed, not_tasks=lines, jobs=jobs, weights=weights)
    threshold = DEFAULT_THRESHOLD
    review = {"familiar_share": float(p["familiar_share"])}
    if fitted.oof_front_proba is not None:
        y = np.array([o == FRONT for o in data.offices], dtype=int)
        threshold = choose_threshold(fitted.oof_front_proba, y, p["review_target_accuracy"])
    if fitted.oof_not_a_task is not None:
        review["not_a_task"] = choose_not_a_task_threshold(fitted.oof_not_a_task[1], p["not_a_task_recall"])
    if scores is not None:
        from .evaluation import oof_review

        # Where the review flags land on rows the fold models did not see, at this model's thresholds.
        metrics = {"cross_validation": {
            **{k: v for k, v in scores.items() if k != "oof"}, **oof_review(data, scores["oof"], threshold, review),
        }}
    metadata = _metadata(data, seed, p, metrics, threshold, mixed, lines, review)
    if added is not None:
        metadata["training_data"]["added"] = added
    if len(data) < rows:
        metadata["training_data"].update(rows=rows, distinct_rows=len(data))
    result = TrainResult(fitted.to_model(metadata), metrics, fitted, problems)
    if out is not None:
        save_model(result.model, out)
    return result


def _side_set(given: str | Path | Sequence[str] | None, bundled: bool, name: str) -> list[str]:
    """Mixed tasks or not-task lines: a file's ``text`` column, a list, or (None) the bundled set with the bundled corpus."""
    if given is None:
        return load_text_column(bundled_path(name)) if bundled else []
    if isinstance(given, (str, Path)):
        return load_text_column(given)
    return list(given)


def _metadata(
    data: LabelledData, seed: int, params: dict[str, Any], metrics: dict[str, Any], threshold: float,
    ambiguous: Sequence[str], not_tasks: Sequence[str], review: dict[str, float],
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
        "training_data": {"source": Path(data.source).name, "sha256": data.sha256, "rows": len(data), "ambiguous_rows": len(ambiguous), "not_task_rows": len(not_tasks)},
        "offices": sorted(set(data.offices)),
        "functions": sorted(set(f for f in data.functions if f)),
        "seed": seed,
        # Keys starting with "_" are working data (the semantic kind's embeddings), not settings.
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items() if not k.startswith("_")},
        "review_threshold": threshold,
        "review": review,
        "metrics": metrics,
    }
