"""The bundled corpus: size, coverage, policy consistency and diversity promised in the datasheet."""

from __future__ import annotations

import pytest

from collections import Counter

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bpo_classify.corpus import check_labelled, normalise_text
from bpo_classify.policy import FRONT, FUNCTION_OFFICE, FUNCTIONS


def test_corpus_size_and_coverage(corpus):
    """At least 2,500 distinct texts, 100 per function, 35% front-office."""
    distinct = {normalise_text(t) for t in corpus.texts}
    assert len(distinct) == len(corpus.texts) >= 2500
    counts = Counter(corpus.functions)
    assert set(counts) == set(FUNCTIONS)
    assert min(counts.values()) >= 100, counts
    assert Counter(corpus.offices)[FRONT] / len(corpus) >= 0.35


def test_corpus_follows_the_policy_table(corpus):
    """Every row's office is the office the policy gives its function; no blank, duplicate or conflicting row."""
    assert all(FUNCTION_OFFICE[f] == o for f, o in zip(corpus.functions, corpus.offices))
    assert check_labelled(corpus) == []


@pytest.mark.slow
def test_corpus_is_diverse_not_templated(corpus):
    """Median nearest-neighbour cosine <= 0.35 and at most 2% of rows with a neighbour above 0.8."""
    X = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(corpus.texts)
    sims = (X @ X.T).toarray()
    np.fill_diagonal(sims, 0.0)
    nearest = sims.max(axis=1)
    assert np.median(nearest) <= 0.35
    assert np.mean(nearest > 0.8) <= 0.02


def test_corpus_covers_registers(corpus):
    """Short process names, long formal sentences and abbreviations all occur in quantity."""
    lengths = np.array([len(t.split()) for t in corpus.texts])
    assert np.mean(lengths <= 4) >= 0.08
    assert np.mean(lengths >= 15) >= 0.15
    lowered = [t.lower() for t in corpus.texts]
    for abbreviation in ("ap", "ar", "kyc", "crm", "wfm"):
        assert sum(abbreviation in normalise_text(t).split() for t in lowered) >= 3, abbreviation
    assert sum(" such as " in t for t in lowered) >= 50


def test_bundled_data_is_the_packaged_copy_when_installed(tmp_path, monkeypatch):
    """Installed from a wheel, the copy inside the package is read; in a checkout (no copy), datasets/ itself."""
    from conftest import ROOT

    from bpo_classify import corpus as module

    assert module.bundled_corpus_path() == ROOT / "datasets" / "bpo_tasks.csv"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bpo_tasks.csv").write_text("text,office,function\n", encoding="utf-8")
    monkeypatch.setattr(module.resources, "files", lambda package: tmp_path)
    assert module.bundled_corpus_path() == tmp_path / "data" / "bpo_tasks.csv"
    assert module.bundled_path("ambiguous_tasks.csv") == ROOT / "datasets" / "ambiguous_tasks.csv"  # no copy of it


def test_datasheet_counts_match_the_corpus(corpus):
    """The counts table in datasets/README.md is the corpus's real counts."""
    import re

    from conftest import ROOT

    sheet = (ROOT / "datasets" / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (\w+) \| (?:front|back)-office \| (\d+) \|$", sheet, flags=re.M))
    assert {k: int(v) for k, v in table.items()} == dict(Counter(corpus.functions))
    total = re.search(r"^\| \*\*total\*\* \| \| \*\*(\d+)\*\* \|$", sheet, flags=re.M)
    assert total and int(total.group(1)) == len(corpus)
