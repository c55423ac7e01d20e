"""Training: reproducible, policy-consistent, and honest about what it cannot do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bpo_classify.corpus import LabelledData
from bpo_classify.errors import CorpusError
from bpo_classify.model import load_model, save_model
from bpo_classify.policy import FRONT, FUNCTION_OFFICE
from bpo_classify.training import cross_validate, train


@pytest.mark.slow
def test_same_data_and_seed_same_model(small_corpus, small_mixed, small_training, tmp_path, monkeypatch):
    """Training twice with the same data and seed gives identical weights and predictions."""
    again = train(small_corpus, seed=0, cv=0, ambiguous=small_mixed)
    a, b = small_training.model, again.model
    assert np.array_equal(a.office_coef, b.office_coef) and np.array_equal(a.function_coef, b.function_coef)
    assert a.mixed_coef is not None and np.array_equal(a.mixed_coef, b.mixed_coef)
    assert a.calibration == b.calibration
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    save_model(train(small_corpus, seed=0, cv=0, ambiguous=small_mixed).model, tmp_path / "1.bpoc")
    save_model(train(small_corpus, seed=0, cv=0, ambiguous=small_mixed).model, tmp_path / "2.bpoc")
    assert (tmp_path / "1.bpoc").read_bytes() == (tmp_path / "2.bpoc").read_bytes()


@pytest.mark.slow
def test_metadata_records_provenance(small_training, small_corpus):
    """The model carries the versions that made it, the data it saw, its labels, seed, settings and creation time."""
    import datetime
    import sklearn

    from bpo_classify import __version__
    from bpo_classify.training import DEFAULT_PARAMS

    meta = small_training.model.metadata
    assert meta["training_data"] == {"source": "small", "sha256": "", "rows": 375, "ambiguous_rows": 60, "not_task_rows": 0}
    assert meta["functions"] == sorted(set(small_corpus.functions)) and len(meta["functions"]) == 15
    assert meta["offices"] == ["back-office", "front-office"]
    assert (meta["package_version"], meta["sklearn_version"], meta["seed"]) == (__version__, sklearn.__version__, 0)
    assert meta["params"]["head_words"] == DEFAULT_PARAMS["head_words"] and meta["review_threshold"] == small_training.model.threshold
    assert datetime.datetime.fromisoformat(meta["created_at"]).tzinfo is not None


@pytest.mark.slow
def test_cross_validation_never_scores_seen_rows(small_corpus, monkeypatch):
    """Each fold's model is fitted on rows disjoint from the rows it scores, and every row is scored once."""
    import bpo_classify.training as training

    seen: list[tuple[set, set]] = []
    real_fit = training.fit_pipeline

    def spy(texts, offices, functions, **kwargs):
        fitted = real_fit(texts, offices, functions, **kwargs)
        original = fitted.to_model

        def to_model(meta):
            model = original(meta)
            real_predict = model.predict_columns

            def predict_columns(batch, threshold=None, **options):
                seen.append((set(texts), set(batch)))
                return real_predict(batch, threshold, **options)

            model.predict_columns = predict_columns  # type: ignore[method-assign]
            return model

        fitted.to_model = to_model  # type: ignore[method-assign]
        return fitted

    monkeypatch.setattr(training, "fit_pipeline", spy)
    result = cross_validate(small_corpus, cv=3, seed=0, jobs=1)  # in this process, where the spy is
    assert len(seen) == 3
    for trained_on, scored in seen:
        assert not trained_on & scored
    assert set().union(*(s for _, s in seen)) == set(small_corpus.texts)
    assert 0.5 < result["office"]["accuracy"] <= 1.0


@pytest.mark.slow
def test_cross_validation_scores_mixed_texts_with_models_that_did_not_see_them(small_corpus, monkeypatch):
    """Mixed texts are split into folds as well: each is scored once, by a model trained without it."""
    import bpo_classify.training as training
    from bpo_classify.corpus import load_ambiguous

    mixed = load_ambiguous()[:30]
    folds: list[tuple[set, set]] = []
    real_fit = training.fit_pipeline

    def spy(texts, offices, functions, *, ambiguous=(), **kwargs):
        fitted = real_fit(texts, offices, functions, ambiguous=ambiguous, **kwargs)
        original = fitted.to_model

        def to_model(meta):
            model = original(meta)
            real_proba = model.front_office_proba

            def front_office_proba(batch):
                if set(batch) <= set(mixed):
                    folds.append((set(ambiguous), set(batch)))
                return real_proba(batch)

            model.front_office_proba = front_office_proba  # type: ignore[method-assign]
            return model

        fitted.to_model = to_model  # type: ignore[method-assign]
        return fitted

    monkeypatch.setattr(training, "fit_pipeline", spy)
    result = cross_validate(small_corpus, cv=3, seed=0, ambiguous=mixed, jobs=1)  # in this process, where the spy is
    assert len(folds) == 3
    for trained_on, scored in folds:
        assert scored and not trained_on & scored and len(trained_on) == 20
    assert set().union(*(s for _, s in folds)) == set(mixed)
    proba = result["oof"]["mixed_front_proba"]
    assert len(proba) == 30 and np.all((proba > 0) & (proba < 1))


@pytest.mark.slow
def test_mixed_detector_can_be_switched_off(small_corpus, small_mixed):
    """params={"mixed_detector": False} trains the office on the mixed tasks but fits no detector."""
    model = train(small_corpus, seed=0, cv=0, ambiguous=small_mixed, params={"mixed_detector": False}).model
    assert model.mixed_coef is None and model.metadata["training_data"]["ambiguous_rows"] == 60
    assert model.mixed_proba(["handle customer refunds"]).tolist() == [0.0]


def test_too_few_rows_for_cv_is_explained(small_corpus):
    """A function with fewer rows than folds gets an error naming --cv."""
    tiny = LabelledData(small_corpus.texts[:40], small_corpus.offices[:40], small_corpus.functions[:40], list(range(1, 41)))
    with pytest.raises(CorpusError, match="too few for 5-fold cross-validation"):
        train(tiny, cv=5)


def test_shipped_model_metadata_is_current():
    """The shipped model was trained on the corpus in this checkout (make model was rerun after corpus edits)."""
    from bpo_classify.corpus import load_labelled

    assert load_model().metadata["training_data"]["sha256"] == load_labelled().sha256


@pytest.mark.slow
def test_office_reads_only_the_blocks_it_is_given(small_corpus, small_training):
    """The office model reads single words and the main clause's first words (by default): its
    explanations name those, and its probabilities do not move when text changes only in what
    other blocks see."""
    from bpo_classify.explain import explain

    model = small_training.model
    assert model.office_blocks == ["word 1-grams", "first 4 words of the main clause"]
    terms = explain(model, "reconcile the vendor statements, such as bank letters").terms
    assert {c.kind for c in terms} == {"word", "opening"}
    # Rule 9: only the main clause's first words count as opening words.
    assert {c.term for c in terms if c.kind == "opening"} <= {"reconcile", "the", "vendor", "statements"}
    # Same words and opening, other word pairs: the office probability is the same.
    a, b = model.front_office_proba(["process vendor invoices, then file them", "process vendor invoices, file them then"])
    assert a == pytest.approx(b, abs=1e-12)
    wider = train(small_corpus, seed=0, cv=0, params={"office_blocks": ("word", "word_pairs", "char_wb")}).model
    assert wider.office_blocks == ["word 1-grams", "word 2-grams", "char_wb 2-5-grams"]
    with pytest.raises(ValueError, match="names none of the blocks"):
        train(small_corpus, seed=0, cv=0, params={"office_blocks": ("chars",)})


@pytest.mark.slow
def test_cross_validation_and_final_fit_as_one_set_of_tasks_change_nothing(small_corpus, small_mixed, tmp_path, monkeypatch):
    """`train` with cross-validation runs the fold fits, the calibration fits and the final fit as one set of
    parallel tasks: the scores and the model file are those of cross_validate + fit_pipeline run one after the other."""
    from bpo_classify.corpus import load_not_tasks
    from bpo_classify.training import DEFAULT_PARAMS, fit_pipeline

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    lines = load_not_tasks()[:60]
    together = train(small_corpus, seed=0, cv=3, ambiguous=small_mixed, not_tasks=lines, jobs=2)
    scores = cross_validate(small_corpus, cv=3, seed=0, params=dict(DEFAULT_PARAMS), ambiguous=small_mixed, not_tasks=lines, jobs=1)
    fitted = fit_pipeline(small_corpus.texts, small_corpus.offices, small_corpus.functions, seed=0,
                          ambiguous=small_mixed, not_tasks=lines, jobs=1)
    cv = together.metrics["cross_validation"]
    assert cv["office"] == scores["office"] and cv["function"] == scores["function"]
    assert together.pipeline.calibration == fitted.calibration
    np.testing.assert_array_equal(together.pipeline.oof_front_proba, fitted.oof_front_proba)
    assert np.array_equal(together.model.function_coef, fitted.to_model({}).function_coef)
    alone = train(small_corpus, seed=0, cv=3, ambiguous=small_mixed, not_tasks=lines, jobs=1)
    save_model(together.model, tmp_path / "together.bpoc")
    save_model(alone.model, tmp_path / "alone.bpoc")
    assert (tmp_path / "together.bpoc").read_bytes() == (tmp_path / "alone.bpoc").read_bytes()


class _CountingClassifier(LogisticRegression):
    """A LogisticRegression that records how many rows each fit is given."""

    fitted_rows: list[int] = []

    def fit(self, X, y, sample_weight=None):
        _CountingClassifier.fitted_rows.append(X.shape[0])
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.slow
def test_repeated_rows_are_fitted_once_with_their_counts_as_weights(small_corpus, monkeypatch):
    """200,000 rows made of 40 distinct texts: every fit sees at most the 40, the folds never split a
    text's copies, and the model is the one trained on the 40 texts with their counts as weights."""
    import bpo_classify.training as training

    by_function: dict[str, list[int]] = {}
    for i, f in enumerate(small_corpus.functions):
        by_function.setdefault(f, []).append(i)
    fronts = [f for f in sorted(by_function) if FUNCTION_OFFICE[f] == FRONT][:2]
    backs = [f for f in sorted(by_function) if FUNCTION_OFFICE[f] != FRONT][:2]
    picked = [i for f in fronts + backs for i in by_function[f][:10]]
    assert len(picked) == 40
    rng = np.random.default_rng(0)
    counts = rng.multinomial(200_000 - 40, np.full(40, 1 / 40)) + 1
    order = np.r_[np.arange(40), rng.permutation(np.repeat(np.arange(40), counts - 1))]  # each text first in `picked` order
    rows = [picked[k] for k in order]
    many = LabelledData([small_corpus.texts[i] for i in rows], [small_corpus.offices[i] for i in rows],
                        [small_corpus.functions[i] for i in rows], list(range(1, len(rows) + 1)), "many")
    assert len(many) == 200_000

    _CountingClassifier.fitted_rows = []
    monkeypatch.setattr(training, "build_classifier", lambda C, seed: _CountingClassifier(C=C, max_iter=5000, random_state=seed))
    plans = []
    real_plan = training._cv_plan
    monkeypatch.setattr(training, "_cv_plan", lambda *a, **k: plans.append(real_plan(*a, **k)) or plans[-1])
    result = train(many, seed=0, cv=2, ambiguous=[], not_tasks=[], jobs=1)
    assert max(_CountingClassifier.fitted_rows) == 40
    (plan,) = plans
    for arguments in plan.arguments:
        trained_on, scored = set(arguments[0]), set(arguments[3])
        assert trained_on and scored and not trained_on & scored
    data = result.model.metadata["training_data"]
    assert (data["rows"], data["distinct_rows"]) == (200_000, 40)
    from bpo_classify.reporting import format_training

    assert format_training(result, Path("m.bpoc")).startswith("trained on 200000 rows, 40 distinct, each fitted once (sha256")

    texts = [small_corpus.texts[i] for i in picked]
    offices = [small_corpus.offices[i] for i in picked]
    functions = [small_corpus.functions[i] for i in picked]
    weighted = training.fit_pipeline(texts, offices, functions, seed=0, params=training.DEFAULT_PARAMS, jobs=1,
                                     weights=counts.astype(float))
    assert np.array_equal(result.pipeline.office.coef_, weighted.office.coef_)
    assert np.array_equal(result.pipeline.function.coef_, weighted.function.coef_)
    assert result.pipeline.calibration == weighted.calibration
    assert not np.array_equal(weighted.office.coef_, training.fit_pipeline(
        texts, offices, functions, seed=0, params=training.DEFAULT_PARAMS, jobs=1).office.coef_)  # the counts matter
