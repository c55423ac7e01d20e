"""Explanations, top terms, the model card and plots: what users read to trust a label."""

from __future__ import annotations

import json
import math

import pytest

from bpo_classify.cli import cli
from bpo_classify.explain import explain, top_terms


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.mark.parametrize("text", ["process invoices", "answer live chat inquiries", "update customer addresses in the CRM", "KYC refresh - high risk accts", "handle customer refunds"])
def test_contributions_add_up_to_the_probability(model, text):
    """Each part's intercept plus contributions is the log-odds the model itself computes for that part
    (the fast scorer's), and the parts combine into the probability shown."""
    e = explain(model, text)
    a, b = model.calibration
    assert e.intercept + sum(c.contribution for c in e.terms) == pytest.approx(a * model.office_scores([text])[0] + b, abs=1e-9)
    assert e.mixed_intercept + sum(c.contribution for c in e.mixed_terms) == pytest.approx(_logit(model.mixed_proba([text])[0]), abs=1e-6)
    assert 0.5 * e.mixed_probability + (1 - e.mixed_probability) * e.clear_front_probability == pytest.approx(e.front_probability, abs=1e-9)
    assert e.front_probability == pytest.approx(model.front_office_proba([text])[0], abs=1e-12)
    assert e.runner_up_function not in (None, e.function)


@pytest.mark.slow
def test_without_a_detector_the_terms_add_up_to_the_probability(small_corpus):
    """A model trained without mixed tasks has no detector; its office terms alone give the probability."""
    from bpo_classify.training import train

    model = train(small_corpus, seed=0, cv=0).model
    assert model.mixed_coef is None
    e = explain(model, "reconcile vendor statements")
    assert e.mixed_probability is None and e.mixed_terms == []
    assert e.intercept + sum(c.contribution for c in e.terms) == pytest.approx(_logit(1 - e.office_confidence), abs=1e-6)


def test_mixed_task_is_near_half_and_flagged(model, runner):
    """The policy's own mixed example (not in the mixed-task set) comes out unsure and needs review."""
    from bpo_classify.corpus import load_ambiguous

    assert "handle customer refunds" not in {t.lower() for t in load_ambiguous()}
    p = model.predict(["handle customer refunds"])[0]
    assert p.needs_review and p.office_confidence < 0.7
    out = runner.invoke(cli, ["explain", "handle customer refunds", "--top", "3"], catch_exceptions=False)
    assert out.exit_code == 0
    assert "P(mixed) = " in out.output and "P(front-office) = 0.5 x " in out.output


def test_explain_cli_text_and_json(runner):
    """Text output names the labels and the strongest words; JSON carries every term."""
    out = runner.invoke(cli, ["explain", "answer live chat inquiries", "--top", "3"], catch_exceptions=False)
    assert out.exit_code == 0
    assert out.output.startswith("front-office (")
    assert "runner-up function:" in out.output and "(intercept)" in out.output
    data = json.loads(runner.invoke(cli, ["explain", "process invoices", "--format", "json"]).output)
    assert data["office"] == "back-office" and data["terms"]
    assert {"term", "kind", "contribution"} == set(data["terms"][0])
    assert "invoices" in {t["term"] for t in data["terms"]}


def test_top_terms(model, runner):
    """Strongest terms: front-office terms have positive weights, back-office negative; every function listed."""
    terms = top_terms(model, 5)
    assert all(w > 0 for _, w in terms["office"]["front-office"])
    assert all(w < 0 for _, w in terms["office"]["back-office"])
    assert set(terms["function"]) == set(model.function_classes)
    assert all(w > 0 for _, w in terms["mixed"]["mixed"])
    assert any(t == "payroll" for t, _ in terms["function"]["payroll"])
    out = runner.invoke(cli, ["info", "--top-terms", "3"], catch_exceptions=False)
    assert "strongest terms by office" in out.output and "payroll" in out.output
    assert "strongest terms by mixed-task detector" in out.output


@pytest.mark.slow
def test_model_card_and_plots(small_training, tmp_path):
    """The card is generated from a report, with metrics, probes and failures; plots are PNG files."""
    from bpo_classify.evaluation import score_model
    from bpo_classify.modelcard import model_card
    from bpo_classify.corpus import load_labelled
    from bpo_classify.plots import write_plots

    data = load_labelled()
    ev = {"name": "held out", "kind": "held_out", **score_model(small_training.model, data)}
    card = model_card(small_training.model, {"evaluations": [ev]}, [{"text": "x", "true": "back-office", "predicted": "front-office", "confidence": "0.99"}])
    assert "## Intended use" in card and "### held out" in card and "| x | back-office | front-office | 0.99 |" in card
    assert "handle customer refunds" in card
    paths = write_plots({"evaluations": [ev]}, tmp_path / "plots")
    assert [p.read_bytes()[:8] for p in paths] == [b"\x89PNG\r\n\x1a\n"] * 3


def test_plots_without_matplotlib_is_a_clear_error(runner, monkeypatch, tmp_path):
    """--plots with matplotlib missing says how to install it, before any work."""
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = runner.invoke(cli, ["evaluate", "--data", "x.csv", "--plots", str(tmp_path)])
    assert result.exit_code == 1
    assert "pip install 'bpo-classify[plots]'" in result.output
