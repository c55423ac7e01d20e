"""Scores that can be rerun: cross-validation on the corpus, or a model scored on labelled files.

Every number in the README and the model card comes from :func:`evaluate`.
The JSON it returns has a fixed schema (``SCHEMA``), pinned by a test, so it can be
tracked over time. A cross-validation evaluation of a model trained with mixed tasks
also has a ``mixed`` block (see :func:`mixed_scores`).

Example:
    >>> from bpo_classify.evaluation import score
    >>> r = score(["back-office", "front-office"], [0.1, 0.8], ["payroll", "sales"], ["payroll", "sales"])
    >>> r["office"]["accuracy"], r["function"]["macro_f1"]
    (1.0, 1.0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .corpus import LabelledData, load_ambiguous, load_labelled, load_not_tasks
from .model import REVIEW_REASONS, Model, Predictions, review_reasons
from .policy import BACK, FRONT, FUNCTIONS, OFFICES

SCHEMA = "bpo-classify/evaluation/1"
#: Needs-review thresholds shown in the coverage/accuracy trade-off.
THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
CALIBRATION_BINS = 10
#: Bootstrap intervals: resamples, coverage and a fixed seed, so that a rerun prints the same interval.
RESAMPLES = 1000
INTERVAL_LEVEL = 0.95
INTERVAL_SEED = 0


def _confusions(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], samples: np.ndarray) -> np.ndarray:
    """Confusion counts of each resample, shape (resamples, k, k + 1): true label by predicted.

    ``samples`` holds one resample per row: row indices into ``y_true``/``y_pred``. A
    prediction outside ``labels`` (no function) goes to column k: wrong, and no class's
    prediction. All resamples are counted in one ``bincount``.
    """
    k = len(labels)
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index[t] for t in y_true], dtype=np.int64)
    pred = np.array([index.get(p, k) for p in y_pred], dtype=np.int64)
    cells = k * (k + 1)
    codes = (truth * (k + 1) + pred)[samples] + cells * np.arange(len(samples))[:, None]
    return np.bincount(codes.ravel(), minlength=cells * len(samples)).reshape(len(samples), k, k + 1)


def _class_f1(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from confusion counts (..., k, k + 1); 0 where undefined."""
    k = counts.shape[-2]
    tp = counts[..., np.arange(k), np.arange(k)].astype(float)
    support, predicted = counts.sum(axis=-1), counts.sum(axis=-2)[..., :k]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1, support


def _per_class(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    counts = _confusions(y_true, y_pred, labels, np.arange(len(y_true))[None, :])[0]
    precision, recall, f1, support = _class_f1(counts)
    per = {
        label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, label in enumerate(labels)
    }
    return {
        "rows": len(y_true),
        "accuracy": float(np.trace(counts) / len(y_true)) if len(y_true) else 0.0,
        # Macro-F1 over the classes present in the truth, as scikit-learn does with labels=present.
        "macro_f1": float(np.mean(f1[support > 0])) if support.any() else 0.0,
        "per_class": per,
        "confusion": {"labels": list(labels), "matrix": counts[:, : len(labels)].tolist()},
    }


def resampled_scores(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], samples: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro-F1 of each resample of the rows, as :func:`_per_class` computes them.

    ``samples`` holds one resample per row: row indices into ``y_true``/``y_pred``.

    Example:
        >>> acc, f1 = resampled_scores(["a", "b"], ["a", "a"], ["a", "b"], np.array([[0, 0], [0, 1]]))
        >>> acc.tolist(), f1.round(3).tolist()
        ([1.0, 0.5], [1.0, 0.333])
    """
    counts = _confusions(y_true, y_pred, labels, samples)
    _, _, f1, support = _class_f1(counts)
    present = support > 0  # macro-F1 over the classes present in the resample's truth
    accuracy = np.trace(counts, axis1=1, axis2=2) / samples.shape[1]
    return accuracy, (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def bootstrap_interval(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], *,
    resamples: int = RESAMPLES, level: float = INTERVAL_LEVEL, seed: int = INTERVAL_SEED,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of accuracy and macro-F1 over the rows scored.

    They say how much the figures would move on another sample of rows like these (a
    615-row file measures macro-F1 to a few hundredths), not how much they depend on
    the training data.

    Example:
        >>> bootstrap_interval(["a", "b"] * 50, ["a", "b"] * 50, ["a", "b"])["macro_f1"]
        [1.0, 1.0]
    """
    n = len(y_true)
    if not n:
        return {"level": level, "resamples": resamples, "accuracy": [0.0, 0.0], "macro_f1": [0.0, 0.0]}
    rng = np.random.default_rng(seed)
    accuracy, macro_f1 = [], []
    # Resamples in chunks of about two million row indices (16 MB), whatever the file's size.
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        samples = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        a, f = resampled_scores(y_true, y_pred, labels, samples)
        accuracy.append(a)
        macro_f1.append(f)
    tails = [(1 - level) / 2, (1 + level) / 2]
    return {
        "level": level,
        "resamples": resamples,
        "accuracy": [float(x) for x in np.quantile(np.concatenate(accuracy), tails)],
        "macro_f1": [float(x) for x in np.quantile(np.concatenate(macro_f1), tails)],
    }


def calibration(correct: np.ndarray, confidence: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Expected calibration error and the reliability table of the predicted office's confidence."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        if not sel.any():
            continue
        acc, conf = float(correct[sel].mean()), float(confidence[sel].mean())
        ece += sel.mean() * abs(acc - conf)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "rows": int(sel.sum()), "confidence": conf, "accuracy": acc})
    return {"ece": float(ece), "bins": table}


def threshold_tradeoff(correct: np.ndarray, confidence: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, float]]:
    """For each threshold: share of rows flagged for review, and accuracy on the rows not flagged."""
    out = []
    for t in thresholds:
        keep = confidence >= t
        out.append({
            "threshold": float(t),
            "flagged": float(1 - keep.mean()) if len(keep) else 0.0,
            "accuracy_unflagged": float(correct[keep].mean()) if keep.any() else None,
        })
    return out


def mixed_scores(front_proba: Sequence[float], threshold: float) -> dict[str, Any]:
    """How unsure the model is on mixed tasks (no true office): the policy wants them near 0.5 and flagged.

    ``flagged``: share whose confidence is below ``threshold``; ``median_distance``: median
    of |P(front-office) - 0.5|; ``near_half``: share with P(front-office) within 0.3-0.7.

    Example:
        >>> mixed_scores([0.5, 0.6, 0.99], threshold=0.9)["flagged"]
        0.6666666666666666
    """
    p = np.asarray(front_proba, dtype=float)
    if not len(p):
        return {"rows": 0, "flagged": 0.0, "median_distance": 0.0, "near_half": 0.0}
    distance = np.abs(p - 0.5)
    return {
        "rows": len(p),
        "flagged": float(np.mean(np.maximum(p, 1 - p) < threshold)),
        "median_distance": float(np.median(distance)),
        "near_half": float(np.mean(distance <= 0.2)),
    }


def score(
    offices: Sequence[str], front_proba: Sequence[float], functions: Sequence[str | None],
    predicted_functions: Sequence[str | None], threshold: float | None = None,
) -> dict[str, Any]:
    """All metrics from true labels and predictions (rows without a true function are skipped for function)."""
    front_proba = np.asarray(front_proba, dtype=float)
    predicted = np.where(front_proba >= 0.5, FRONT, BACK)
    confidence = np.where(front_proba >= 0.5, front_proba, 1 - front_proba)
    correct = predicted == np.asarray(offices, dtype=object)
    office = _per_class(offices, predicted, OFFICES)
    office["interval"] = bootstrap_interval(offices, predicted, OFFICES)
    office["brier"] = float(np.mean((front_proba - (np.asarray(offices, dtype=object) == FRONT)) ** 2))
    office["calibration"] = calibration(correct, confidence)
    office["threshold_tradeoff"] = threshold_tradeoff(correct, confidence)
    if threshold is not None:
        office["at_threshold"] = threshold_tradeoff(correct, confidence, (threshold,))[0]
    pairs = [(t, p) for t, p in zip(functions, predicted_functions) if t]
    present = sorted({t for t, _ in pairs}) or list(FUNCTIONS)
    truth, guess = [t for t, _ in pairs], [p or "" for _, p in pairs]
    function = _per_class(truth, guess, present)
    function["interval"] = bootstrap_interval(truth, guess, present)
    return {"office": office, "function": function}


def review_scores(offices: Sequence[str], predicted: Sequence[str | None], functions: Sequence[str | None],
                  predicted_functions: Sequence[str | None], reasons: Sequence[str | None]) -> dict[str, Any]:
    """What the review flags do: the share of rows flagged (by every reason, and by each), and
    how often the rows not flagged are right (office, and function where the truth has one).

    Example:
        >>> r = review_scores(["back-office", "front-office"], ["back-office", "back-office"],
        ...                   ["payroll", None], ["payroll", "payroll"], [None, "low_confidence"])
        >>> r["flagged"], r["accuracy_unflagged"], r["by_reason"]["low_confidence"]
        (0.5, 1.0, 0.5)
    """
    n = len(offices)
    keep = np.array([r is None for r in reasons], dtype=bool)
    right = np.array([t == p for t, p in zip(offices, predicted)], dtype=bool)
    has_fn = np.array([bool(f) for f in functions], dtype=bool)
    fn_right = np.array([t == p for t, p in zip(functions, predicted_functions)], dtype=bool)
    counts = {reason: sum(r == reason for r in reasons) for reason in REVIEW_REASONS}
    return {
        "rows": n,
        "flagged": float(1 - keep.mean()) if n else 0.0,
        "accuracy_unflagged": float(right[keep].mean()) if keep.any() else None,
        "function_accuracy_unflagged": float(fn_right[keep & has_fn].mean()) if (keep & has_fn).any() else None,
        "by_reason": {reason: (c / n if n else 0.0) for reason, c in counts.items()},
    }


def group_scores(data: LabelledData, cols: Predictions, front: np.ndarray) -> dict[str, dict[str, Any]]:
    """Headline figures for each value of the file's ``kind`` and ``lang`` columns (when it has them)."""
    out: dict[str, dict[str, Any]] = {}
    for column, values in data.groups.items():
        out[column] = {}
        for value in sorted(set(values)):
            idx = [i for i, v in enumerate(values) if v == value]
            pick = lambda seq: [seq[i] for i in idx]  # noqa: E731
            scored = score(pick(data.offices), front[idx], pick(data.functions), pick(cols.function))
            review = review_scores(pick(data.offices), pick(cols.office), pick(data.functions), pick(cols.function), pick(cols.review_reason))
            out[column][value] = {
                "rows": len(idx),
                "office": {k: scored["office"][k] for k in ("accuracy", "macro_f1", "interval")},
                "function": {k: scored["function"][k] for k in ("rows", "accuracy", "macro_f1", "interval")},
                "review": review,
            }
    return out


def score_model(model: Model, data: LabelledData, threshold: float | None = None) -> dict[str, Any]:
    """Score ``model`` on labelled ``data`` it was not trained on (with ``groups`` by kind and language when the file has them)."""
    threshold = model.threshold if threshold is None else threshold
    cols = model.predict_columns(data.texts, threshold)
    front = np.where(np.asarray(cols.office, dtype=object) == FRONT, cols.office_confidence, 1 - cols.office_confidence)
    result = score(data.offices, front, data.functions, cols.function, threshold)
    result["review"] = review_scores(data.offices, cols.office, data.functions, cols.function, cols.review_reason)
    if data.groups:
        result["groups"] = group_scores(data, cols, front)
    return result


def oof_review(data: LabelledData, oof: dict[str, Any], threshold: float, review: dict[str, float]) -> dict[str, Any]:
    """What the review flags would do to rows scored out of fold (``training.cross_validate``'s
    ``oof``), at ``threshold`` and a model's ``review`` settings: the ``review`` block and, when
    not-task lines were held out too, the ``not_a_task`` block (tasks and lines flagged)."""
    settings = {"familiar_share": 0.5, "not_a_task": 0.5, **review}
    front = oof["front_proba"]
    predicted = np.where(front >= 0.5, FRONT, BACK)
    has_detector = len(oof["not_task_lines"]) > 0
    reasons = review_reasons(
        oof["familiar_share"], oof["not_a_task"] if has_detector else None, oof["mixed_proba"],
        np.maximum(front, 1 - front), threshold, settings,
    )
    out: dict[str, Any] = {"review": review_scores(data.offices, list(predicted), data.functions, list(oof["function"]), reasons)}
    if has_detector:
        out["not_a_task"] = {
            "threshold": settings["not_a_task"],
            "tasks_flagged": float(np.mean(oof["not_a_task"] >= settings["not_a_task"])),
            "lines": len(oof["not_task_lines"]),
            "lines_flagged": float(np.mean(oof["not_task_lines"] >= settings["not_a_task"])),
        }
    return out


def cross_validated(
    data: LabelledData, *, cv: int = 5, seed: int = 0, params: dict[str, Any] | None = None,
    threshold: float | None = None, ambiguous: Sequence[str] = (), not_tasks: Sequence[str] = (),
    review: dict[str, float] | None = None, jobs: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stratified K-fold: each row scored by a model fitted without it (see ``training.cross_validate``).

    Returns the scores and the out-of-fold predictions. ``review`` (a model's
    ``review_settings``) and ``threshold`` say which rows the review flags would catch.
    """
    from .training import cross_validate

    oof = cross_validate(data, cv=cv, seed=seed, params=params, ambiguous=ambiguous, not_tasks=not_tasks, jobs=jobs)["oof"]
    result = score(data.offices, oof["front_proba"], data.functions, list(oof["function"]), threshold)
    if len(oof["mixed_front_proba"]):
        result["mixed"] = mixed_scores(oof["mixed_front_proba"], 0.5 if threshold is None else threshold)
    result.update(oof_review(data, oof, 0.5 if threshold is None else threshold, review or {}))
    return result, oof


def evaluate(
    model: Model, data_paths: Sequence[str | Path] = (), *, cv: int = 5, seed: int | None = None,
    threshold: float | None = None, corpus: str | Path | None = None, with_cv: bool | None = None,
    oof: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The evaluation report: CV on the corpus when no ``data_paths`` (or ``with_cv``), and ``model`` scored on each file.

    Pass a dict as ``oof`` to receive the cross-validation's data and out-of-fold predictions.
    """
    threshold = model.threshold if threshold is None else threshold
    meta = model.metadata
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "model": {
            "package_version": meta.get("package_version"),
            "created_at": meta.get("created_at"),
            "training_data": meta.get("training_data"),
            "review_threshold": threshold,
        },
        "evaluations": [],
    }
    if with_cv or (with_cv is None and not data_paths):
        data = load_labelled(corpus)
        seed = meta.get("seed", 0) if seed is None else seed
        # Refit as the model was trained: with the bundled mixed-task set if it used one.
        trained = meta.get("training_data") or {}
        mixed = load_ambiguous() if corpus is None and trained.get("ambiguous_rows") else []
        lines = load_not_tasks() if corpus is None and trained.get("not_task_rows") else []
        result, predictions = cross_validated(
            data, cv=cv, seed=seed, params=meta.get("params"), threshold=threshold, ambiguous=mixed, not_tasks=lines,
            review=model.review_settings,
        )
        if oof is not None:
            oof.update(predictions, data=data)
        report["evaluations"].append({"name": f"{cv}-fold cross-validation", "source": Path(data.source).name, "kind": "cross_validation", **result})
    for path in data_paths:
        data = load_labelled(path, require_functions=False)
        report["evaluations"].append({"name": Path(path).name, "source": str(path), "kind": "held_out", **score_model(model, data, threshold)})
    return report


COMPARISON_SCHEMA = "bpo-classify/comparison/1"


def compare(
    model: Model, other: Model, data_paths: Sequence[str | Path], *, names: tuple[str, str] = ("model", "other"),
    threshold: float | None = None,
) -> dict[str, Any]:
    """Score two models on the same labelled files (``evaluate --compare``): for each file, each
    model's :func:`score_model` figures, side by side (each model at its own review threshold
    unless ``threshold`` is given).

    Example:
        >>> import pathlib, tempfile
        >>> from bpo_classify import load_model
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "held_out.csv"
        >>> _ = f.write_text("text,office,function\\nprocess invoices,back-office,finance_accounting\\n"
        ...                  "answer live chat inquiries,front-office,customer_service\\n")
        >>> r = compare(load_model(), load_model(), [f])
        >>> r["files"][0]["scores"][0]["office"]["accuracy"] == r["files"][0]["scores"][1]["office"]["accuracy"]
        True
    """
    files = []
    for path in data_paths:
        data = load_labelled(path, require_functions=False)
        files.append({"name": Path(path).name, "source": str(path), "rows": len(data),
                      "scores": [score_model(m, data, threshold) for m in (model, other)]})
    return {
        "schema": COMPARISON_SCHEMA,
        "models": [
            {"name": name, "created_at": m.metadata.get("created_at"), "training_data": m.metadata.get("training_data"),
             "review_threshold": m.threshold if threshold is None else threshold}
            for name, m in zip(names, (model, other))
        ],
        "files": files,
    }
