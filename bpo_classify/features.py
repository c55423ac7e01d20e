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
    >>> head_terms("Answer questions from vendors, such as ...", 4)
    ['answer', 'questions', 'from', 'vendors']
"""

from __future__ import annotations

import itertools
import re
import threading
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


#: Where a task's main clause ends: the policy labels a compound task by its first verb
#: and object (LABELING.md, rule 9), and what follows (a "such as" list, a means, a
#: purpose) often names other parties or systems. Matched on lower-cased text.
HEAD_BREAK = re.compile(
    r",|;|:|\(| - | such as | including | using | by | so that | in order to | to ensure "
    r"| to determine | to verify | according to | for example | e\.g\."
)


def head_terms(text: str, words: int) -> list[str]:
    """The first ``words`` tokens of the text's main clause (what the ``head`` block counts)."""
    return _tokens(HEAD_BREAK.split(text.lower(), 1)[0])[:words]


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


class _BlockScorer:
    """One TF-IDF block's share of :class:`LinearScorer`: per-term and per-word tables.

    A text's TF-IDF vector is a sum over its white-space separated words: a
    ``char_wb`` n-gram never crosses a word, nor does a word-analyzer token, and a
    word bigram is either inside one word ("ap/ar") or joins the last token of a
    word to the first of the next. So each distinct word is analysed once and its
    columns, with their counts inside the word, are kept; so is its share of every
    output's score, ``P = sum((1 + log count) * idf * W)``, and of the squared L2
    norm, ``Q = sum(((1 + log count) * idf) ** 2)``. A text's score is the sum of its
    words' shares, corrected where two words of the text count the same column
    (a repeated word; "invoice" and "invoices"; the n-gram "s " of many words).
    """

    def __init__(self, block: TfidfBlock, weights: np.ndarray):
        self.block = block
        self.n_terms = len(block.idf)
        self.idf = np.asarray(block.idf, dtype=np.float64)
        #: ``(n_outputs, n_terms)``: the block's slice of the weights, one row per output (a view).
        self.weights = weights[:, block.offset : block.offset + self.n_terms]
        self.char = block.analyzer == "char_wb"
        lo, hi = block.ngram_range
        #: Word blocks of unigrams and bigrams are scored word by word; longer n-grams and the
        #: head block (whose terms depend on where a word stands) term by term.
        self.per_word = self.char or (block.analyzer == "word" and hi <= 2)
        #: Bigrams as sorted pairs of token ids: built on the first large batch (see :meth:`_joins`).
        self.pair_keys: np.ndarray | None = None
        self.reset()

    def _pairs(self) -> None:
        """The vocabulary's bigrams as sorted pairs of token ids, and the token ids of the words' ends.

        A token's id is its own vocabulary id when it is a vocabulary word, else one
        past the vocabulary (:attr:`extra_tokens`).
        """
        vocab = self.block.vocabulary
        bigrams = [t for t in vocab if " " in t]
        parts = " ".join(bigrams).split(" ")  # a1 b1 a2 b2 ...: a bigram holds exactly one space
        tokens = np.fromiter(map(vocab.get, parts, itertools.repeat(-1)), dtype=np.int64, count=len(parts))
        self.extra_tokens: dict[str, int] = {}
        for k in np.flatnonzero(tokens < 0).tolist():
            tokens[k] = self.extra_tokens.setdefault(parts[k], self.n_terms + len(self.extra_tokens))
        keys = (tokens[0::2] << 32) | tokens[1::2]
        order = np.argsort(keys)
        self.pair_ids = np.fromiter(map(vocab.__getitem__, bigrams), dtype=np.int64, count=len(bigrams))[order]
        self.pair_keys = keys[order]
        self.first = self._token_ids(self.first_token)
        self.last = self._token_ids(self.last_token)

    def _token_ids(self, tokens: list[str | None]) -> np.ndarray:
        """Ids :meth:`_pairs` gives ``tokens``: -2 for a token no bigram uses, -1 for none."""
        get, extra = self.block.vocabulary.get, self.extra_tokens.get
        return np.fromiter(
            (-1 if t is None else (i if (i := get(t)) is not None else extra(t, -2)) for t in tokens),
            dtype=np.int64, count=len(tokens),
        )

    def reset(self) -> None:
        """Forget every word seen so far (keeps memory bounded on endless new words)."""
        self.ptr = np.zeros(1, dtype=np.int64)
        self.tf_bound = 2
        self.code = np.zeros(0, dtype=np.int64)  # char: column * tf_bound + count; word: term id
        self.P = np.zeros((self.weights.shape[0], 0))
        self.Q = np.zeros(0)
        # Word blocks: each word's first and last token (None: no token), and their ids once
        # the bigram pairs are built.
        self.first_token: list[str | None] = []
        self.last_token: list[str | None] = []
        self.has_tokens = np.zeros(0, dtype=bool)
        self.first = self.last = np.zeros(0, dtype=np.int64)

    def add_words(self, words: Sequence[str]) -> None:
        """Analyse new words (in the order of the word index) and append them to the tables."""
        if self.char:
            self._add_char_words(words)
        else:
            self._add_token_words(words)

    def _add_char_words(self, words: Sequence[str]) -> None:
        lookup = self.block.vocabulary.get
        ids: list[int] = []
        lengths: list[int] = []
        counts: list[int] = []
        for word in words:
            found: dict[int, int] = {}
            for i in map(lookup, char_wb_terms(word, self.block.ngram_range)):
                if i is not None:
                    found[i] = found.get(i, 0) + 1
            ids += found
            counts += found.values()
            lengths.append(len(found))
        col = np.asarray(ids, dtype=np.int64)
        tf = np.asarray(counts, dtype=np.int64)
        if len(tf) and tf.max() >= self.tf_bound:
            old, self.tf_bound = self.tf_bound, 1 << int(tf.max()).bit_length()
            self.code = (self.code // old) * self.tf_bound + self.code % old
        weight = (np.log(tf) + 1.0) * self.idf[col]
        self._append(lengths, col * self.tf_bound + tf, col, weight)

    def _add_token_words(self, words: Sequence[str]) -> None:
        lookup = self.block.vocabulary.get
        lo, hi = self.block.ngram_range
        ids: list[int] = []
        lengths: list[int] = []
        first: list[str | None] = []
        last: list[str | None] = []
        for word in words:
            tokens = _tokens(word)
            found = [i for i in map(lookup, tokens) if i is not None] if lo == 1 else []
            if hi >= 2 and len(tokens) > 1:
                found += [i for i in map(lookup, map(" ".join, zip(tokens, tokens[1:]))) if i is not None]
            ids += found
            lengths.append(len(found))
            first.append(tokens[0] if tokens else None)
            last.append(tokens[-1] if tokens else None)
        col = np.asarray(ids, dtype=np.int64)
        self._append(lengths, col, col, self.idf[col])
        self.first_token += first
        self.last_token += last
        self.has_tokens = np.concatenate([self.has_tokens, np.array([t is not None for t in first], dtype=bool)])
        if self.pair_keys is not None:
            self.first = np.concatenate([self.first, self._token_ids(first)])
            self.last = np.concatenate([self.last, self._token_ids(last)])

    def _append(self, lengths: list[int], code: np.ndarray, col: np.ndarray, weight: np.ndarray) -> None:
        """Append words with ``lengths`` entries each: their codes, and P and Q from the entries' weights.

        Word-analyzer entries may repeat a term within a word ("the the"): ``P`` and
        ``Q`` are then only a starting point, and :meth:`accumulate` corrects them as it
        does for a term two words share.
        """
        P = np.zeros((self.weights.shape[0], len(lengths)))
        Q = np.zeros(len(lengths))
        size = np.asarray(lengths, dtype=np.int64)
        has = size > 0
        if col.size:
            starts = (np.cumsum(size) - size)[has]
            P[:, has] = np.add.reduceat(self.weights[:, col] * weight, starts, axis=1)
            Q[has] = np.add.reduceat(weight * weight, starts)
        self.ptr = np.concatenate([self.ptr, self.ptr[-1] + np.cumsum(size)])
        self.code = np.concatenate([self.code, code])
        self.P = np.concatenate([self.P, P], axis=1)
        self.Q = np.concatenate([self.Q, Q])

    def scores(self, words: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
        """Scores ``(n_outputs, n)`` of ``n`` texts made of ``words`` (word-table ids; ``rows`` ascending)."""
        out = np.zeros((self.weights.shape[0], n))
        if not len(words):
            return out
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[:, rows[first]] = np.add.reduceat(np.take(self.P, words, axis=1), first, axis=1)
        squares = np.bincount(rows, self.Q[words], minlength=n)
        lengths = self.ptr[words + 1] - self.ptr[words]
        where = np.repeat(self.ptr[words] - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
        entry_rows = np.repeat(rows, lengths)
        if self.char:
            bound, entries = self.tf_bound, self.code[where]
        else:
            # Word blocks: entries are term ids counted once each; add the bigrams that join
            # the last token of one word to the first token of the next, as single terms.
            bound, entries = 2, self.code[where] * 2 + 1
            joins, join_rows = self._joins(words, rows)
            if len(joins):
                first = np.flatnonzero(np.r_[True, join_rows[1:] != join_rows[:-1]])
                idf = self.idf[joins]
                out[:, join_rows[first]] += np.add.reduceat(np.take(self.weights, joins, axis=1) * idf, first, axis=1)
                squares += np.bincount(join_rows, idf * idf, minlength=n)
                entries = np.concatenate([entries, joins * 2 + 1])
                entry_rows = np.concatenate([entry_rows, join_rows])
        self._correct(entries, entry_rows, bound, out, squares)
        norms = np.sqrt(squares)
        norms[norms == 0.0] = 1.0  # a text with none of the block's terms scores 0, as in scikit-learn
        out /= norms
        return out

    def term_scores(self, terms: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
        """Scores ``(n_outputs, n)`` of ``n`` texts given their vocabulary terms (``rows`` ascending)."""
        out = np.zeros((self.weights.shape[0], n))
        if not len(terms):
            return out
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        idf = self.idf[terms]
        out[:, rows[first]] = np.add.reduceat(np.take(self.weights, terms, axis=1) * idf, first, axis=1)
        squares = np.bincount(rows, idf * idf, minlength=n)
        self._correct(terms * 2 + 1, rows, 2, out, squares)
        norms = np.sqrt(squares)
        norms[norms == 0.0] = 1.0
        out /= norms
        return out

    def _joins(self, words: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary bigrams made of the last token of a word and the first token of the next.

        A few are looked up as strings; for many, the vocabulary's bigrams are first
        turned into a sorted table of token-id pairs (once: it takes a moment) and
        searched all at once. Both find the same bigrams in the same order.
        """
        has = self.has_tokens[words]
        w, r = words[has], rows[has]
        same = r[:-1] == r[1:]
        a, b, join_rows = w[:-1][same], w[1:][same], r[:-1][same]
        if self.pair_keys is None and len(a) < PAIR_TABLE_MIN:
            last, first = self.last_token, self.first_token
            grams = map(" ".join, zip(map(last.__getitem__, a.tolist()), map(first.__getitem__, b.tolist())))
            ids = np.fromiter(map(self.block.vocabulary.get, grams, itertools.repeat(-1)), dtype=np.int64, count=len(a))
        else:
            if self.pair_keys is None:
                self._pairs()
            assert self.pair_keys is not None
            x, y = self.last[a], self.first[b]
            keys = (x << 32) | y
            ids = np.full(len(keys), -1, dtype=np.int64)
            if len(self.pair_keys):
                at = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
                hit = (self.pair_keys[at] == keys) & (x >= 0) & (y >= 0)
                ids[hit] = self.pair_ids[at[hit]]
        found = ids >= 0
        return ids[found], join_rows[found]

    def _correct(self, entries: np.ndarray, rows: np.ndarray, bound: int, out: np.ndarray, squares: np.ndarray) -> None:
        """Recount the columns that several words of one text share (``entries``: column * bound + count)."""
        if not len(entries):
            return
        shift = bound.bit_length() - 1  # bound is a power of two
        keys = rows * (self.n_terms << shift) + entries
        keys.sort()
        group = keys >> shift
        repeats = np.flatnonzero(group[1:] == group[:-1])  # entry i + 1 counts entry i's column again
        if not len(repeats):
            return
        shared = np.zeros(len(keys), dtype=bool)
        shared[repeats] = True
        shared[repeats + 1] = True
        member = np.flatnonzero(shared)
        member_group = group[member]
        cut = np.flatnonzero(np.r_[True, member_group[1:] != member_group[:-1]])
        tf = keys[member] & (bound - 1)
        ftf = np.log(tf) + 1.0
        total = np.log(np.add.reduceat(tf, cut)) + 1.0
        summed = np.add.reduceat(ftf, cut)
        summed_sq = np.add.reduceat(ftf * ftf, cut)
        g = member_group[cut]
        row = g // self.n_terms
        col = g - row * self.n_terms
        idf = self.idf[col]
        squares += np.bincount(row, idf * idf * (total * total - summed_sq), minlength=len(squares))
        fix = np.take(self.weights, col, axis=1) * ((total - summed) * idf)
        first = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        out[:, row[first]] += np.add.reduceat(fix, first, axis=1)


class LinearScorer:
    """Decision values ``X @ coef.T + intercept`` of several linear models over the same TF-IDF blocks.

    Equal, to rounding, to :func:`linear_scores` for each model, but each text is
    analysed once for all the outputs, and much faster on batches: each distinct
    word is analysed once and its share of every score kept (see
    :class:`_BlockScorer`), for up to ``max_words`` words, after which the table
    starts afresh.

    Example:
        >>> from bpo_classify import load_model
        >>> m = load_model()
        >>> scorer = LinearScorer(m.blocks, m.office_coef, m.office_intercept)
        >>> texts = ["process invoices", "answer live chat inquiries"]
        >>> bool(np.allclose(scorer.scores(texts), linear_scores(m.blocks, texts, m.office_coef, m.office_intercept)))
        True
    """

    def __init__(self, blocks: Sequence[TfidfBlock], coef: np.ndarray, intercept: np.ndarray, max_words: int = 50_000):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.blocks = [_BlockScorer(block, self.coef) for block in blocks]
        self.max_words = max_words
        self.index: dict[str, int] = {_SEP: _SEP_ID}
        self._lock = threading.Lock()

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), n_outputs)`` decision values. Thread-safe (one batch at a time)."""
        with self._lock:
            if len(texts) <= SCORE_BATCH:
                return self._scores(texts)
            # In pieces: the working arrays stay small (in cache, never fresh pages from the OS).
            return np.concatenate([self._scores(texts[i : i + SCORE_BATCH]) for i in range(0, len(texts), SCORE_BATCH)])

    def _scores(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        out = np.tile(self.intercept, (n, 1))
        if not n:
            return out
        # All texts are cut into words in one go, joined by a separator word that no
        # text holds, so nothing crosses from one text to the next.
        lowered = [t.lower() for t in texts]
        words = _JOIN.join(lowered).split()
        if words.count(_SEP) != n - 1:
            # Some text holds the separator as a word: score those texts the slow, exact way.
            odd = [i for i, t in enumerate(lowered) if _SEP in t.split()]
            fine = [i for i, t in enumerate(lowered) if _SEP not in t.split()]
            if fine:
                out[fine] = self._scores([texts[i] for i in fine])
            out[odd] = linear_scores([b.block for b in self.blocks], [texts[i] for i in odd], self.coef, self.intercept)
            return out
        new = set(words).difference(self.index)
        if new:
            if len(self.index) + len(new) > self.max_words:
                self.index = {_SEP: _SEP_ID}
                for block in self.blocks:
                    block.reset()
                new = set(words).difference(self.index)
            added = sorted(new)
            for word in added:
                self.index[word] = len(self.index) - 1  # the separator's entry is not a word
            for block in self.blocks:
                if block.per_word:
                    block.add_words(added)
        ids = np.fromiter(map(self.index.__getitem__, words), dtype=np.int64, count=len(words))
        rows = np.cumsum(ids == _SEP_ID)
        keep = ids != _SEP_ID
        ids, rows = ids[keep], rows[keep]
        for block in self.blocks:
            if block.per_word:
                out += block.scores(ids, rows, n).T
            else:
                terms, term_rows = _terms(block, lowered)
                out += block.term_scores(terms, term_rows, n).T
        return out


#: Joins texts in :meth:`LinearScorer.scores`: a private-use character, so neither a word
#: character nor white space, with spaces so that it is a word of its own.
_SEP = "\ue000"
_JOIN = f" {_SEP} "
_SEP_ID = -2
#: A batch with this many word-to-word joins builds the bigram table (see ``_BlockScorer._joins``).
PAIR_TABLE_MIN = 2000
#: Texts scored at a time by :meth:`LinearScorer.scores`.
SCORE_BATCH = 1000


def _terms(block: _BlockScorer, lowered: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vocabulary ids of each text's terms, and the text each belongs to (the general case)."""
    lookup = block.block.vocabulary.get
    analyze = block.block.analyze
    ids: list[int] = []
    rows: list[int] = []
    for r, text in enumerate(lowered):
        found = [i for i in map(lookup, analyze(text)) if i is not None]
        ids += found
        rows += [r] * len(found)
    return np.asarray(ids, dtype=np.int64), np.asarray(rows, dtype=np.int64)
