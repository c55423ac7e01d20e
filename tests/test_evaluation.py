"""Evaluation report: schema pinned, numbers consistent with the predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bpo_classify.cli import cli
from bpo_classify.evaluation import SCHEMA
from bpo_classify.evaluation import _per_class, bootstrap_interval, calibration, resampled_scores, score, threshold_tradeoff
from bpo_classify.model import REVIEW_REASONS
from conftest import EXTERNAL, write_csv


def _keys(d):
    return sorted(d)


def test_json_schema_is_stable(runner, tmp_path):
    """The JSON report keeps its documented keys (changing them is a schema version bump)."""
    path = write_csv(tmp_path / "held.csv", [
        ["text", "office", "function"],
        ["process invoices", "back-office", "finance_accounting"],
        ["answer live chat inquiries", "front-office", "customer_service"],
        ["greet hotel guests", "front-office", "none"],
    ])
    result = runner.invoke(cli, ["evaluate", "--data", str(path), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["schema"] == SCHEMA == "bpo-classify/evaluation/1"
    assert _keys(report) == ["evaluations", "model", "schema"]
    ev = report["evaluations"][0]
    assert _keys(ev) == ["function", "kind", "name", "office", "review", "source"]
    assert _keys(ev["review"]) == ["accuracy_unflagged", "by_reason", "flagged", "function_accuracy_unflagged", "rows"]
    assert sorted(ev["review"]["by_reason"]) == sorted(REVIEW_REASONS)
    assert _keys(ev["office"]) == ["accuracy", "at_threshold", "brier", "calibration", "confusion", "interval", "macro_f1", "per_class", "rows", "threshold_tradeoff"]
    assert _keys(ev["function"]) == ["accuracy", "confusion", "interval", "macro_f1", "per_class", "rows"]
    assert _keys(ev["office"]["interval"]) == ["accuracy", "level", "macro_f1", "resamples"]
    assert _keys(ev["office"]["per_class"]["back-office"]) == ["f1", "precision", "recall", "support"]
    assert _keys(ev["office"]["threshold_tradeoff"][0]) == ["accuracy_unflagged", "flagged", "threshold"]
    assert ev["office"]["rows"] == 3 and ev["function"]["rows"] == 2
    assert ev["office"]["accuracy"] == 1.0


def test_files_with_kind_and_lang_columns_are_also_scored_by_group(model, tmp_path):
    """`kind` and `lang` columns (as in the external files) add per-value figures; other extra columns are ignored."""
    from bpo_classify.evaluation import evaluate

    path = write_csv(tmp_path / "held.tsv", [
        ["id", "text", "office", "function", "kind", "lang", "source"],
        ["1", "process invoices", "back-office", "finance_accounting", "service", "en", "x"],
        ["2", "answer live chat inquiries", "front-office", "customer_service", "posting", "en", "y"],
        ["3", "procesar facturas de proveedores", "back-office", "finance_accounting", "other_lang", "es", "z"],
    ], delimiter="\t")
    ev = evaluate(model, [path])["evaluations"][0]
    assert sorted(ev["groups"]) == ["kind", "lang"]
    en, es = ev["groups"]["lang"]["en"], ev["groups"]["lang"]["es"]
    assert (en["rows"], es["rows"]) == (2, 1)
    assert en["office"]["accuracy"] == 1.0 and en["review"]["flagged"] == 0.0
    assert es["review"]["by_reason"]["unfamiliar_text"] == 1.0
    assert sorted(ev["groups"]["kind"]) == ["other_lang", "posting", "service"]


@pytest.mark.slow
def test_cross_validation_reports_held_out_mixed_tasks(small_corpus, small_mixed):
    """With mixed tasks, cross-validation adds a `mixed` block whose shares agree with the scores."""
    from bpo_classify.evaluation import cross_validated

    result, oof = cross_validated(small_corpus, cv=3, seed=0, threshold=0.9, ambiguous=small_mixed)
    mixed = result["mixed"]
    assert _keys(mixed) == ["flagged", "median_distance", "near_half", "rows"]
    p = oof["mixed_front_proba"]
    assert mixed["rows"] == 60
    assert mixed["flagged"] == pytest.approx(np.mean(np.maximum(p, 1 - p) < 0.9))
    assert mixed["median_distance"] == pytest.approx(np.median(np.abs(p - 0.5)))


def test_metrics_match_sklearn():
    """Accuracy, macro-F1 and Brier agree with scikit-learn on a mixed example."""
    from sklearn.metrics import accuracy_score, brier_score_loss, f1_score

    rng = np.random.default_rng(0)
    truth = rng.choice(["back-office", "front-office"], 200)
    proba = np.clip((truth == "front-office") * 0.6 + rng.uniform(0, 0.5, 200), 0, 1)
    r = score(list(truth), proba, ["payroll"] * 200, ["payroll"] * 200)
    pred = np.where(proba >= 0.5, "front-office", "back-office")
    assert r["office"]["accuracy"] == pytest.approx(accuracy_score(truth, pred))
    assert r["office"]["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro"))
    assert r["office"]["brier"] == pytest.approx(brier_score_loss(truth == "front-office", proba))


def test_calibration_and_tradeoff_arithmetic():
    """ECE of a perfectly calibrated bin is 0; the trade-off counts flagged rows correctly."""
    correct = np.array([1, 1, 1, 0] * 25, dtype=bool)
    conf = np.full(100, 0.75)
    assert calibration(correct, conf)["ece"] == pytest.approx(0.0)
    rows = threshold_tradeoff(correct, np.r_[np.full(50, 0.6), np.full(50, 0.9)], (0.5, 0.8))
    assert rows[0]["flagged"] == 0.0 and rows[1]["flagged"] == 0.5


@pytest.mark.skipif(not EXTERNAL.exists(), reason="external validation file not present")
def test_external_file_scores(model):
    """The external file (tab-separated, with 'none' functions) loads and is scored."""
    from bpo_classify.evaluation import evaluate

    report = evaluate(model, [EXTERNAL])
    ev = report["evaluations"][0]
    assert ev["office"]["rows"] == 615 and 0 < ev["function"]["rows"] < 615
    assert ev["office"]["macro_f1"] > 0.5


def test_report_says_where_the_models_threshold_lands():
    """Text and Markdown reports state the share flagged and the accuracy at the model's own threshold."""
    from bpo_classify.evaluation import score
    from bpo_classify.reporting import format_report

    truth = ["front-office", "back-office", "back-office", "front-office"]
    ev = {"name": "demo", **score(truth, [0.95, 0.1, 0.7, 0.4], ["sales", "payroll", "payroll", "sales"], ["sales", "payroll", "sales", "payroll"], threshold=0.8)}
    for fmt in ("text", "markdown"):
        assert "at the model's review threshold, 0.80: 50.0% flagged, 100.0% right on the rest" in format_report({"evaluations": [ev]}, fmt)


def test_each_resample_is_scored_like_the_full_report():
    """The vectorised bootstrap gives, resample by resample, the accuracy and macro-F1 of ``_per_class``."""
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c", "d"]
    truth = rng.choice(labels, 60)
    # Mostly right, some wrong, some with no prediction at all (a function the model did not give).
    pred = np.where(rng.random(60) < 0.7, truth, rng.choice(labels + [""], 60))
    samples = rng.integers(0, 60, size=(25, 60))
    accuracy, macro_f1 = resampled_scores(truth, pred, labels, samples)
    for i, rows in enumerate(samples):
        present = sorted(set(truth[rows]))
        expected = _per_class(truth[rows], pred[rows], present)
        assert accuracy[i] == pytest.approx(expected["accuracy"])
        assert macro_f1[i] == pytest.approx(expected["macro_f1"])


def test_bootstrap_interval_brackets_the_figure_and_narrows_with_more_rows():
    """The interval holds the measured figure, is the same on a rerun, and shrinks as rows grow."""
    rng = np.random.default_rng(5)
    truth = rng.choice(["back-office", "front-office"], 400, p=[0.8, 0.2])
    pred = np.where(rng.random(400) < 0.9, truth, np.where(truth == "front-office", "back-office", "front-office"))
    full = _per_class(truth, pred, ["back-office", "front-office"])
    small = bootstrap_interval(truth, pred, ["back-office", "front-office"])
    assert small == bootstrap_interval(truth, pred, ["back-office", "front-office"])
    for key in ("accuracy", "macro_f1"):
        low, high = small[key]
        assert low < full[key] < high
    large = bootstrap_interval(np.tile(truth, 16), np.tile(pred, 16), ["back-office", "front-office"])
    # Sixteen times the rows: about a quarter of the width.
    ratio = (large["macro_f1"][1] - large["macro_f1"][0]) / (small["macro_f1"][1] - small["macro_f1"][0])
    assert 0.15 < ratio < 0.4


def test_report_prints_the_intervals():
    """Text and Markdown reports show the bootstrap intervals under the headline figures."""
    from bpo_classify.reporting import format_report

    truth = ["front-office", "back-office"] * 20
    ev = {"name": "demo", **score(truth, [0.9, 0.1] * 20, ["sales", "payroll"] * 20, ["sales", "payroll"] * 20)}
    for fmt in ("text", "markdown"):
        out = format_report({"evaluations": [ev]}, fmt)
        assert "95% intervals, bootstrap over these rows:" in out
        assert "office:   accuracy 1.000-1.000  macro-F1 1.000-1.000" in out
