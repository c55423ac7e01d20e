"""Text features without scikit-learn: the exact TF-IDF transform the model was trained with.

Training uses scikit-learn's ``TfidfVectorizer`` (see ``training.py``); prediction
replays the same arithmetic with NumPy only, because importing scikit-learn costs
over a second and ``bpo-classify predict`` must answer at once. The two analyzers
below copy scikit-learn's ``word`` and ``char_wb`` analyzers step for step
(``tests/test_light_path.py``), and :func:`linear_scores` is the readable reference
of the decision values; ``scoring.py`` computes the same values fast.

Example:
    >>> word_terms("Process AP invoices", (1, 2))
    ['process', 'ap', 'invoices', 'process ap', 'ap invoices']
    >>> char_wb_terms("AP", (2, 3))
    [' a', 'ap', 'p ', ' ap', 'ap ']
    >>> head_terms("Answer questions from vendors, such as ...", 4)
    ['answer', 'questions', 'from', 'vendors']
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Container, Sequence

import numpy as np

#: scikit-learn's default ``token_pattern``: words of two or more word characters.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
#: The tokens of a (lower-cased) text, as that pattern finds them.
tokens = re.compile(TOKEN_PATTERN).findall


def word_terms(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """Word n-grams of ``text`` as scikit-learn's ``analyzer="word"`` makes them."""
    found = tokens(text.lower())
    lo, hi = ngram_range
    terms = list(found) if lo == 1 else []
    for n in range(max(lo, 2), min(hi, len(found)) + 1):
        terms += [" ".join(found[i : i + n]) for i in range(len(found) - n + 1)]
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


#: Where a task's main clause ends: the policy labels a compound task by its first verb
#: and object (LABELING.md, rule 9), and what follows (a "such as" list, a means, a
#: purpose) often names other parties or systems. Matched on lower-cased text.
HEAD_BREAK = re.compile(
    r",|;|:|\(| - | such as | including | using | by | so that | in order to | to ensure "
    r"| to determine | to verify | according to | for example | e\.g\."
)


def head_terms(text: str, words: int) -> list[str]:
    """The first ``words`` tokens of the text's main clause (what the ``head`` block counts)."""
    return tokens(HEAD_BREAK.split(text.lower(), 1)[0])[:words]


def word_familiarity(word: str, known: Container[str]) -> tuple[float, float]:
    """``(known weight, total weight)`` of one (lower-cased) word's tokens for :func:`familiar_share`.

    Example:
        >>> word_familiarity("invoices/xyzzy", {"invoice"})
        (2.8284271247461903, 5.06449510224598)
    """
    known_weight = total = 0.0
    for token in tokens(word):
        if not token.isdigit():
            weight = math.sqrt(len(token))
            total += weight
            if token in known or token.rstrip("s") in known:
                known_weight += weight
    return known_weight, total


def familiar_share(texts: Sequence[str], known: Container[str]) -> np.ndarray:
    """Share of each text's words that are ``known`` (the reference; ``scoring`` computes it per distinct word).

    Words count by the square root of their length; words of digits only are left out; a
    word is known when ``known`` has it, or has it without a final "s". 0 for no word.

    Example:
        >>> familiar_share(["process invoices", "procesar facturas", "12345"], {"process", "invoice"}).tolist()
        [1.0, 0.0, 0.0]
    """
    out = np.zeros(len(texts))
    for i, text in enumerate(texts):
        words = [w for w in tokens(text.lower()) if not w.isdigit()]
        if words:
            weights = [math.sqrt(len(w)) for w in words]
            out[i] = sum(wt for w, wt in zip(words, weights) if w in known or w.rstrip("s") in known) / sum(weights)
    return out


ANALYZERS: dict[str, Callable[[str, tuple[int, int]], list[str]]] = {
    "word": word_terms,
    "char_wb": char_wb_terms,
}


@dataclass(frozen=True)
class TfidfBlock:
    """One fitted TF-IDF vectorizer (sublinear tf, smooth idf, L2 norm) as plain data.

    ``offset`` is where its columns start in the concatenated feature space. The
    ``head`` analyzer counts the first ``head_words`` words of the main clause
    (:func:`head_terms`); ``ngram_range`` is then (1, 1).
    """

    analyzer: str
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int
    head_words: int = 0

    @property
    def description(self) -> str:
        """The block for people: ``word 1-grams``, ``char_wb 2-5-grams``, ``first 4 words of the main clause``."""
        if self.analyzer == "head":
            return f"first {self.head_words} words of the main clause"
        low, high = self.ngram_range
        return f"{self.analyzer} {low}-grams" if low == high else f"{self.analyzer} {low}-{high}-grams"

    def analyze(self, text: str) -> list[str]:
        """The block's terms of ``text``, in order (vocabulary or not)."""
        if self.analyzer == "head":
            return head_terms(text, self.head_words)
        return ANALYZERS[self.analyzer](text, self.ngram_range)

    @property
    def columns(self) -> slice:
        """This block's columns in the concatenated feature space."""
        return slice(self.offset, self.offset + len(self.vocabulary))

    def sparse_rows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(row, column, weight)`` triples of the L2-normalised TF-IDF matrix.

        Rows are in ascending order, so callers can reduce them with ``np.add.reduceat``.
        """
        lookup = self.vocabulary.get
        rows: list[int] = []
        cols: list[int] = []
        for r, text in enumerate(texts):
            found = [c for c in map(lookup, self.analyze(text)) if c is not None]
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
