"""Text features without scikit-learn: the exact TF-IDF transform the model was trained with.

Training uses scikit-learn's ``TfidfVectorizer`` (see ``training.py``); prediction
replays the same arithmetic here with NumPy only, because importing scikit-learn
costs over a second and ``bpo-classify predict`` must answer at once. The two
analyzers below copy scikit-learn's ``word`` and ``char_wb`` analyzers step for
step; ``tests/test_light_path.py`` checks that the probabilities agree to 1e-9.

Example:
    >>> word_terms("Process AP invoices", (1, 2))
    ['process', 'ap', 'invoices', 'process ap', 'ap invoices']
    >>> char_wb_terms("AP", (2, 3))
    [' a', 'ap', 'p ', ' ap', 'ap ']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

#: scikit-learn's default ``token_pattern``: words of two or more word characters.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_tokens = re.compile(TOKEN_PATTERN).findall


def word_terms(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams of ``text`` as scikit-learn's ``analyzer="word"`` makes them."""
    tokens = _tokens(text.lower())
    lo, hi = ngram_range
    terms = list(tokens) if lo == 1 else []
    for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
        terms += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return terms


def char_wb_terms(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Character n-grams inside word boundaries, as ``analyzer="char_wb"`` makes them."""
    lo, hi = ngram_range
    terms: list[str] = []
    add = terms.append
    for word in text.lower().split():
        w = " " + word + " "
        size = len(w)
        for n in range(lo, hi + 1):
            if n >= size:
                # scikit-learn counts a word shorter than n once, then stops.
                add(w)
                break
            terms += [w[i : i + n] for i in range(size - n + 1)]
    return terms


ANALYZERS: dict[str, Callable[[str, tuple[int, int]], list[str]]] = {
    "word": word_terms,
    "char_wb": char_wb_terms,
}


@dataclass(frozen=True)
class TfidfBlock:
    """One fitted TF-IDF vectorizer (sublinear tf, smooth idf, L2 norm) as plain data.

    ``offset`` is where its columns start in the concatenated feature space.
    """

    analyzer: str
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int

    def sparse_rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(row, column, weight)`` triples of the L2-normalised TF-IDF matrix.

        Rows are in ascending order, so callers can reduce them with ``np.add.reduceat``.
        """
        analyze = ANALYZERS[self.analyzer]
        lookup = self.vocabulary.get
        rows: list[int] = []
        cols: list[int] = []
        for r, text in enumerate(texts):
            found = [c for c in map(lookup, analyze(text, self.ngram_range)) if c is not None]
            rows += [r] * len(found)
            cols += found
        if not cols:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        n_terms = len(self.idf)
        keys, counts = np.unique(
            np.asarray(rows, dtype=np.int64) * n_terms + np.asarray(cols, dtype=np.int64),
            return_counts=True,
        )
        row, col = np.divmod(keys, n_terms)
        weight = (np.log(counts) + 1.0) * self.idf[col]
        norms = np.sqrt(np.bincount(row, weights=weight * weight, minlength=len(texts)))
        weight /= norms[row]
        return row, col + self.offset, weight


def linear_scores(
    blocks: Sequence[TfidfBlock], texts: Sequence[str], coef: np.ndarray, intercept: np.ndarray
) -> np.ndarray:
    """Decision values ``X @ coef.T + intercept`` for the concatenated blocks' features.

    ``coef`` has shape ``(n_outputs, n_features)``; the result ``(len(texts), n_outputs)``.
    """
    coef = np.asarray(coef, dtype=np.float64)
    scores = np.tile(np.asarray(intercept, dtype=np.float64), (len(texts), 1))
    for block in blocks:
        row, col, weight = block.sparse_rows(texts)
        if len(row):
            # One weighted bincount per output keeps memory at O(non-zeros), not
            # O(non-zeros x outputs) as a dense gather would.
            for k in range(coef.shape[0]):
                scores[:, k] += np.bincount(row, weights=weight * coef[k, col], minlength=len(texts))
    return scores
