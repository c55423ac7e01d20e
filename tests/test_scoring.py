"""The fast scorer (``bpo_classify/scoring.py``) equals the reference arithmetic and scikit-learn.

Against the reference (``features.linear_scores``) to 1e-12 on texts chosen to hit each
correction it makes; against the scikit-learn pipeline the model was converted from to
1e-9 on the corpus, odd strings and the external file.
"""

from __future__ import annotations

import numpy as np
import pytest

from bpo_classify.corpus import load_labelled
from bpo_classify.features import familiar_share, linear_scores
from bpo_classify.scoring import LinearScorer
from conftest import DUTIES, EXTERNAL, ODD


def _texts(corpus):
    texts = corpus.texts + ODD
    if EXTERNAL.exists():
        texts += load_labelled(EXTERNAL, require_functions=False).texts
    return texts


@pytest.mark.slow
def test_probabilities_match_sklearn(small_training, corpus):
    """Office and function probabilities agree with scikit-learn to 1e-9 on the corpus, odd strings and the external file."""
    texts = _texts(corpus)
    model, reference = small_training.model, small_training.pipeline
    assert model.mixed_coef is not None  # the mixed-task detector is part of what must match
    np.testing.assert_allclose(model.front_office_proba(texts), reference.front_office_proba(texts), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.function_proba(texts), reference.function_proba(texts), rtol=0, atol=1e-9)


def _both(model, texts):
    coef = np.vstack([model.office_coef, model.function_coef])
    intercept = np.concatenate([model.office_intercept, model.function_intercept])
    return linear_scores(model.blocks, texts, coef, intercept), LinearScorer(model.blocks, coef, intercept), coef, intercept


def test_scorer_equals_plain_scores_on_tricky_texts(model):
    """Repeated words, shared n-grams, punctuation-only words, the scorer's own separator: same scores to 1e-12."""
    texts = [
        "the the the invoice invoices invoicing", "AP/AR AP/AR recon - - • •", "", " ", "a",
        "process \ue000 invoices", "\ue000", "x\ue000y process", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" * 3,
        "ÜBER große Straße İstanbul", "tab\tand\nnewline\r\nthere", "1099 forms 1099-misc", "emoji 😊 text",
    ] + DUTIES
    plain, scorer, _, _ = _both(model, texts)
    np.testing.assert_allclose(scorer.scores(texts), plain, rtol=0, atol=1e-12)


def test_familiar_share_from_the_word_tables_equals_the_reference(model, corpus):
    """The familiar share the scorer gives with the scores equals the readable reference to 1e-12, and so do the flags:
    multi-token words, digits, a final "s", unknown scripts, the separator, and across word-table restarts."""
    texts = [
        "process invoices", "procesar facturas", "12345", "invoices/xyzzy-abc 2024", "businesss processes",
        "ÜBER große Straße İstanbul", "a \ue000 b invoices", "\ue000", "", " ", "emoji 😊 text", "AP/AR-recon",
    ] + DUTIES + corpus.texts[:300]
    known = model._word_vocabulary()
    expected = familiar_share(texts, known)
    assert 0 < expected.mean() < 1 and (expected < 0.5).any()  # the texts do exercise both sides
    np.testing.assert_allclose(model.familiar_share(texts), expected, rtol=0, atol=1e-12)
    coef, intercept = np.vstack([model.office_coef]), model.office_intercept
    small = LinearScorer(model.blocks, coef, intercept, max_words=40, known=known)
    for i in range(0, len(texts), 13):
        scores, shares = small.scores_and_familiar(texts[i:i + 13])
        np.testing.assert_allclose(shares, expected[i:i + 13], rtol=0, atol=1e-12)
        np.testing.assert_allclose(scores, linear_scores(model.blocks, texts[i:i + 13], coef, intercept), rtol=0, atol=1e-12)
    assert ((model.familiar_share(texts) < 0.5) == (expected < 0.5)).all()


def test_word_tables_grow_batch_after_batch(model, corpus):
    """Thousands of new words arriving a few at a time (the tables grow by doubling, and the
    largest count inside a word grows late): every batch scores as the reference does."""
    texts = [f"{t} site{i} {'z' * (i % 7)}{'ab' * (i // 400)}" for i, t in enumerate(corpus.texts[:2400])]
    plain, scorer, _, _ = _both(model, texts)
    for i in range(0, len(texts), 150):
        np.testing.assert_allclose(scorer.scores(texts[i:i + 150]), plain[i:i + 150], rtol=0, atol=1e-12)
    char = next(b for b in scorer.blocks if b.block.analyzer == "char_wb")
    assert char.n_words > 2 * 1024 and char.count_bound >= 4  # the tables did grow, more than once


def test_scorer_word_table_starts_afresh(model):
    """With a tiny word table (rebuilt again and again), batch after batch, the scores stay the same."""
    texts = [f"{d} number {i}" for i, d in enumerate(DUTIES * 20)]
    plain, _, coef, intercept = _both(model, texts)
    scorer = LinearScorer(model.blocks, coef, intercept, max_words=30)
    for i in range(0, len(texts), 17):
        np.testing.assert_allclose(scorer.scores(texts[i:i + 17]), plain[i:i + 17], rtol=0, atol=1e-12)


def test_scorer_general_word_ngrams(model):
    """A word block of 1-3-grams (scored term by term) matches the plain computation too."""
    from bpo_classify.features import TfidfBlock

    block = model.blocks[0]
    vocab = dict(block.vocabulary)
    vocab["process vendor invoices"] = len(vocab)
    wide = TfidfBlock("word", (1, 3), vocab, np.append(block.idf, 2.5), 0)
    char = model.blocks[1]
    shifted = TfidfBlock(char.analyzer, char.ngram_range, char.vocabulary, char.idf, len(vocab))
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(3, len(vocab) + len(char.idf)))
    texts = DUTIES + ["process vendor invoices twice: process vendor invoices"]
    expected = linear_scores([wide, shifted], texts, coef, np.zeros(3))
    got = LinearScorer([wide, shifted], coef, np.zeros(3)).scores(texts)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_scores_do_not_depend_on_the_batch(model):
    """A text's probabilities are the same, to the last bit, alone, in a small batch or in a large one."""
    texts = [f"{d} {i}" for i, d in enumerate(DUTIES * 300)]
    large = model.function_proba(texts)
    small = np.vstack([model.function_proba(texts[i:i + 10]) for i in range(0, len(texts), 10)])
    alone = np.vstack([model.function_proba([t]) for t in texts[:50]])
    assert np.array_equal(large, small) and np.array_equal(large[:50], alone)


def test_bigram_table_and_string_lookup_agree(model, monkeypatch):
    """Word-to-word bigrams found through the pair table or as strings give identical scores."""
    from bpo_classify import scoring

    texts = [f"{d} for account {i} process invoices" for i, d in enumerate(DUTIES * 10)]
    _, by_string, coef, intercept = _both(model, texts)
    pairs = [i for i, b in enumerate(model.blocks) if b.analyzer == "word" and b.ngram_range[1] == 2]
    assert pairs, "the shipped model has a word-pair block"
    expected = by_string.scores(texts)
    assert all(by_string.blocks[i].bigram_keys is None for i in pairs)
    monkeypatch.setattr(scoring, "BIGRAM_TABLE_MIN", 0)
    by_table = LinearScorer(model.blocks, coef, intercept)
    assert np.array_equal(by_table.scores(texts), expected)
    assert all(by_table.blocks[i].bigram_keys is not None for i in pairs)


def test_threads_sharing_a_model(model):
    """Threads predicting with one model (as a multi-threaded Dask worker does) get the sequential answers."""
    from concurrent.futures import ThreadPoolExecutor

    from bpo_classify.model import load_model

    shared = load_model()
    batches = [[f"{d} {i} {j}" for i, d in enumerate(DUTIES)] for j in range(40)]
    expected = [model.function_proba(b) for b in batches]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(shared.function_proba, batches))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_word_tables_grow_in_place_batch_after_batch(model):
    """Batch after batch of new words (as a server sees): the same scores, and the tables are
    reallocated a logarithmic number of times, not copied whole on every batch."""
    from bpo_classify.scoring import WordScorer

    texts = [f"{d} site{i} ref{i * 7}x" for i, d in enumerate(DUTIES * 40)]
    texts[300] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"  # raises a count bound midway
    plain, scorer, _, _ = _both(model, texts)
    tables = [b for b in scorer.blocks if isinstance(b, WordScorer)]
    storages = {id(b.entries) for b in tables}
    reallocations = 0
    for i in range(len(texts)):
        np.testing.assert_allclose(scorer.scores(texts[i:i + 1]), plain[i:i + 1], rtol=0, atol=1e-12)
        now = {id(b.entries) for b in tables}
        reallocations += len(now - storages)
        storages = now
    assert len(scorer.word_ids) > 2 * len(texts)  # every batch added words
    assert reallocations <= 12 * len(tables), reallocations



def test_one_text_alone_scores_to_the_bit_as_in_a_batch(model, corpus):
    """The one-text path (what a server scores most) gives exactly a batch's answer, over many texts:
    the scores, the familiar shares and every field of every prediction (odd strings included)."""
    texts = corpus.texts[::10][:2400] + ODD + ["", "   ", "invoice \ue000 invoice", "the the the invoices invoice"]
    heads = model._heads()
    coef, intercept = np.vstack([c for _, c, _ in heads]), np.concatenate([i for _, _, i in heads])
    scorer = LinearScorer(model.blocks, coef, intercept, known=model._word_vocabulary())
    batch_scores, batch_familiar = scorer.scores_and_familiar(texts)
    alone = [scorer.scores_and_familiar([t]) for t in texts]
    assert np.array_equal(np.vstack([s for s, _ in alone]), batch_scores)
    assert np.array_equal(np.concatenate([f for _, f in alone]), batch_familiar)
    batch = model.predict(texts, top_functions=3)
    assert [model.predict([t], top_functions=3)[0] for t in texts] == batch
    assert model.predict_dicts(texts, top_functions=3) == [p.as_dict() for p in batch]  # the server's answers
    assert len({p.office for p in batch}) == 3  # front, back and None (blank): the comparison covers every kind
