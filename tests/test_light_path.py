"""The NumPy prediction path: its analyzers are scikit-learn's, and it never imports scikit-learn.

That its probabilities equal the scikit-learn pipeline's is checked in ``test_scoring.py``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bpo_classify.features import char_wb_terms, word_terms
from conftest import ODD, ROOT


@pytest.mark.slow
def test_analyzers_match_sklearn(small_training, corpus):
    """Our word and char_wb analyzers produce exactly scikit-learn's terms, in order, for every block."""
    ours = {"word": word_terms, "char_wb": char_wb_terms}
    union = small_training.pipeline.features.transformer_list
    # The head block's analyzer is our own function, which scikit-learn calls as it is.
    assert [name for name, vec in union if not isinstance(vec.analyzer, str)] == ["head"]
    blocks = [(ours[vec.analyzer], tuple(vec.ngram_range), vec.build_analyzer()) for _, vec in union if isinstance(vec.analyzer, str)]
    assert sorted(r for _, r, _ in blocks) == [(1, 1), (2, 2), (2, 5)]
    for text in corpus.texts[:300] + ODD:
        for analyze, ngram_range, reference in blocks:
            assert analyze(text, ngram_range) == reference(text)


def test_predict_does_not_import_sklearn():
    """Loading the default model and predicting never imports scikit-learn (or SciPy, or pandas)."""
    code = (
        "import sys; from bpo_classify.cli import main; sys.argv=['bpo-classify','predict','process invoices'];\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad=[m for m in ('sklearn','scipy','pandas') if m in sys.modules]; print('LOADED', bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "back-office" in done.stdout
    assert "LOADED []" in done.stdout
