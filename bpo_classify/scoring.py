"""The fast scorer: ``X @ coef.T + intercept`` over the TF-IDF blocks, without building ``X``.

:func:`bpo_classify.features.linear_scores` is the readable reference; :class:`LinearScorer`
gives the same numbers (to rounding: ``tests/test_scoring.py`` holds it to 1e-12 and to
scikit-learn to 1e-9) many times faster on batches, by reordering the arithmetic.

Why it can: a text's TF-IDF vector is a sum over its white-space separated words. A
``char_wb`` n-gram never crosses a word, nor does a token of the word analyzer, and a word
bigram is either inside one word ("ap/ar") or joins the last token of a word to the first
token of the next. So each distinct word is analysed once, and what it adds is kept in a
word table: its entries (the columns it counts, with their counts inside the word), its
share of every output's score, ``sum((1 + log count) * idf * weight)``, and its share of
the squared L2 norm, ``sum(((1 + log count) * idf) ** 2)``. A text's score is the sum of
its words' shares, divided by the norm, after recounting the columns that two of its
words count (a repeated word; "invoice" and "invoices"; the n-gram "s " of many words):
sublinear tf is ``1 + log(total count)``, not the sum of each word's.

One class per kind of block: :class:`CharWordScorer` (``char_wb``), :class:`TokenWordScorer`
(word 1- and 2-grams, with the bigrams that join two words) and :class:`TermScorer` (longer
word n-grams and the ``head`` block, whose terms depend on where a word stands: scored
term by term).

Example:
    >>> from bpo_classify import load_model
    >>> from bpo_classify.features import linear_scores
    >>> m = load_model()
    >>> scorer = LinearScorer(m.blocks, m.office_coef, m.office_intercept)
    >>> texts = ["process invoices", "answer live chat inquiries"]
    >>> bool(np.allclose(scorer.scores(texts), linear_scores(m.blocks, texts, m.office_coef, m.office_intercept)))
    True
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Container, Sequence

import numpy as np

from .features import HEAD_BREAK, TfidfBlock, char_wb_terms, familiar_share, linear_scores, tokens, word_familiarity

#: Joins the texts of a batch: a private-use character, so neither a word character nor
#: white space, with spaces so that it is a word of its own.
SEPARATOR = "\ue000"
_JOINER = f" {SEPARATOR} "
#: The separator's id among the word ids of a batch (a real word's id is >= 0).
SEPARATOR_ID = -2
#: A batch with this many word-to-word joins builds the bigram table (see :meth:`TokenWordScorer.joining_bigrams`).
BIGRAM_TABLE_MIN = 2000
#: Texts scored at a time by :meth:`LinearScorer.scores`.
SCORE_BATCH = 1000


@dataclass(frozen=True)
class Batch:
    """A batch of texts as the block scorers read it: lower-cased, and cut into word-table ids."""

    lowered: list[str]
    #: Each word's id in the word tables, in text order (separators removed).
    word_ids: np.ndarray
    #: The text each word belongs to (ascending).
    word_rows: np.ndarray
    #: Where each text's words begin in ``word_ids`` (texts without a word skipped), for ``np.add.reduceat``.
    word_starts: np.ndarray
    #: The text of each of those runs: ``word_rows[word_starts]``.
    word_texts: np.ndarray

    @property
    def size(self) -> int:
        return len(self.lowered)


class LinearScorer:
    """Decision values ``X @ coef.T + intercept`` of several linear models over the same TF-IDF blocks.

    Equal, to rounding, to :func:`~bpo_classify.features.linear_scores`, but each text is
    analysed once for all the outputs, and each distinct word once for all the texts (up
    to ``max_words`` words, after which the word tables start afresh). With ``known``
    words, :meth:`scores_and_familiar` also gives each text's familiar share
    (:func:`~bpo_classify.features.familiar_share`) from the same pass. Thread-safe: one
    batch at a time.
    """

    def __init__(
        self, blocks: Sequence[TfidfBlock], coef: np.ndarray, intercept: np.ndarray, max_words: int = 50_000,
        known: Container[str] | None = None,
    ):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.blocks = [block_scorer(block, self.coef) for block in blocks]
        self.familiar = FamiliarWords(known) if known is not None else None
        self.word_blocks: list[WordScorer | FamiliarWords] = [b for b in self.blocks if isinstance(b, WordScorer)]
        if self.familiar is not None:
            self.word_blocks.append(self.familiar)
        self.max_words = max_words
        #: Every word seen so far and its id in the word tables (the separator has its own).
        self.word_ids: dict[str, int] = {SEPARATOR: SEPARATOR_ID}
        self._lock = threading.Lock()

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), n_outputs)`` decision values."""
        return self.scores_and_familiar(texts)[0]

    def scores_and_familiar(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The decision values and each text's familiar share (zeros without ``known`` words)."""
        with self._lock:
            if len(texts) <= SCORE_BATCH:
                return self._scores(texts)
            # In pieces: the working arrays stay small (in cache, never fresh pages from the OS).
            parts = [self._scores(texts[i : i + SCORE_BATCH]) for i in range(0, len(texts), SCORE_BATCH)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        n = len(texts)
        out = np.tile(self.intercept, (n, 1))
        familiar = np.zeros(n)
        if not n:
            return out, familiar
        # All texts are cut into words in one go, joined by a separator word that no
        # text holds, so nothing crosses from one text to the next.
        lowered = [t.lower() for t in texts]
        words = _JOINER.join(lowered).split() if n > 1 else lowered[0].split()
        if words.count(SEPARATOR) != n - 1:
            # Some text holds the separator as a word: score those texts the slow, exact way.
            odd = [i for i, t in enumerate(lowered) if SEPARATOR in t.split()]
            fine = [i for i, t in enumerate(lowered) if SEPARATOR not in t.split()]
            if fine:
                out[fine], familiar[fine] = self._scores([texts[i] for i in fine])
            odd_texts = [texts[i] for i in odd]
            out[odd] = linear_scores([b.block for b in self.blocks], odd_texts, self.coef, self.intercept)
            if self.familiar is not None:
                familiar[odd] = familiar_share(odd_texts, self.familiar.known)
            return out, familiar
        self._learn(words)
        ids = np.fromiter(map(self.word_ids.__getitem__, words), dtype=np.int64, count=len(words))
        if n == 1:  # one text (a server's request): no separators, every word in text 0, one run or none
            starts = _ONE_RUN if len(ids) else _NO_RUN
            batch = Batch(lowered, ids, np.zeros(len(ids), dtype=np.int64), starts, starts)
        else:
            rows = np.cumsum(ids == SEPARATOR_ID)
            keep = ids != SEPARATOR_ID
            word_rows = rows[keep]
            starts = _run_starts(word_rows)
            batch = Batch(lowered, ids[keep], word_rows, starts, word_rows[starts])
        for block in self.blocks:
            out += block.scores(batch)
        if self.familiar is not None:
            familiar = self.familiar.shares(batch)
        return out, familiar

    def _learn(self, words: list[str]) -> None:
        """Add the words not seen yet to the word tables (starting afresh when they would overflow)."""
        new = set(words).difference(self.word_ids)
        if not new:
            return
        if len(self.word_ids) + len(new) > self.max_words:
            self.word_ids = {SEPARATOR: SEPARATOR_ID}
            for block in self.word_blocks:
                block.reset()
            new = set(words).difference(self.word_ids)
        added = sorted(new)
        for word in added:
            self.word_ids[word] = len(self.word_ids) - 1  # the separator's entry is not a word
        for block in self.word_blocks:
            block.add_words(added)


class FamiliarWords:
    """Each distinct word's part of the familiar share: the weights of its known tokens and of all
    its tokens (see :func:`~bpo_classify.features.word_familiarity`), in word-table order.

    A token never crosses a white-space word, so a text's share is the sum of its words'
    known weights over the sum of their weights. The arrays grow by doubling.
    """

    def __init__(self, known: Container[str]):
        self.known = known
        self.reset()

    def reset(self) -> None:
        self.size = 0
        self.weights = np.zeros((2, 1024))  # row 0: known weight, row 1: total weight

    def add_words(self, words: Sequence[str]) -> None:
        known = self.known
        new = np.array([word_familiarity(w, known) for w in words], dtype=np.float64).reshape(-1, 2).T
        end = self.size + len(words)
        if end > self.weights.shape[1]:
            grown = np.zeros((2, max(end, 2 * self.weights.shape[1])))
            grown[:, : self.size] = self.weights[:, : self.size]
            self.weights = grown
        self.weights[:, self.size : end] = new
        self.size = end

    def shares(self, batch: Batch) -> np.ndarray:
        """The familiar share of each text of ``batch`` (0 for a text without a counted token)."""
        n = batch.size
        known = np.bincount(batch.word_rows, self.weights[0, batch.word_ids], minlength=n)
        total = np.bincount(batch.word_rows, self.weights[1, batch.word_ids], minlength=n)
        return np.divide(known, total, out=np.zeros(n), where=total > 0)


def block_scorer(block: TfidfBlock, coef: np.ndarray) -> "BlockScorer":
    """The scorer for one block: word by word where its terms allow it, else term by term."""
    if block.analyzer == "char_wb":
        return CharWordScorer(block, coef)
    if block.analyzer == "word" and block.ngram_range[1] <= 2:
        return TokenWordScorer(block, coef)
    return TermScorer(block, coef)


class BlockScorer:
    """One TF-IDF block's share of the scores, and the arithmetic every kind of block shares."""

    def __init__(self, block: TfidfBlock, coef: np.ndarray):
        self.block = block
        self.n_terms = len(block.idf)
        self.idf = np.asarray(block.idf, dtype=np.float64)
        self.n_outputs = coef.shape[0]
        #: ``(n_terms, n_outputs)``: the block's slice of the weights, one row per term, so that
        #: gathering a term's weights reads one contiguous row.
        self.weights = np.ascontiguousarray(coef[:, block.offset : block.offset + self.n_terms].T)

    def scores(self, batch: Batch) -> np.ndarray:
        """Scores ``(batch.size, n_outputs)``: the block's share of each text's decision values."""
        raise NotImplementedError

    def _add_terms_once(self, terms: np.ndarray, rows: np.ndarray, out: np.ndarray, squares: np.ndarray) -> None:
        """Count each of ``terms`` once (tf 1) in the text ``rows`` names (ascending)."""
        starts = _run_starts(rows)
        idf = self.idf[terms]
        out[rows[starts]] += np.add.reduceat(self.weights.take(terms, axis=0) * idf[:, None], starts, axis=0)
        squares += np.bincount(rows, idf * idf, minlength=len(squares))

    def _recount_shared(self, entries: np.ndarray, rows: np.ndarray, bound: int, out: np.ndarray, squares: np.ndarray) -> None:
        """Recount the columns that several entries of one text count.

        ``entries`` are ``column * bound + count``, one per word and column (``bound`` a
        power of two above every count). Each entry was added as ``1 + log(count)``;
        a column that several entries of a text share is worth ``1 + log(total)``.
        """
        if not len(entries):
            return
        shift = bound.bit_length() - 1
        keys = rows * (self.n_terms << shift) + entries
        # Stable (timsort): the keys come as one ascending run per word (entries are kept sorted
        # within a word), which it merges in a third of the time of a quicksort.
        keys.sort(kind="stable")
        text_column = keys >> shift  # row * n_terms + column
        repeats = (text_column[1:] == text_column[:-1]).nonzero()[0]  # entry i + 1 counts entry i's column again
        if not len(repeats):
            return
        shared = np.zeros(len(keys), dtype=bool)
        shared[repeats] = True
        shared[repeats + 1] = True
        member = shared.nonzero()[0]
        member_column = text_column[member]
        cut = _run_starts(member_column)
        count = keys[member] & (bound - 1)
        sublinear = np.log(count) + 1.0
        total = np.log(np.add.reduceat(count, cut)) + 1.0
        summed = np.add.reduceat(sublinear, cut)
        summed_sq = np.add.reduceat(sublinear * sublinear, cut)
        key = member_column[cut]
        row = key // self.n_terms
        col = key - row * self.n_terms
        idf = self.idf[col]
        squares += np.bincount(row, idf * idf * (total * total - summed_sq), minlength=len(squares))
        fix = self.weights.take(col, axis=0) * ((total - summed) * idf)[:, None]
        starts = _run_starts(row)
        out[row[starts]] += np.add.reduceat(fix, starts, axis=0)


class TermScorer(BlockScorer):
    """A block scored term by term: each text analysed as the reference does (the general case)."""

    def scores(self, batch: Batch) -> np.ndarray:
        out = np.zeros((batch.size, self.n_outputs))
        if self.block.analyzer == "head":
            # The head block's analyzer inlined (the texts are lower-cased already): one list per text.
            split, words = HEAD_BREAK.split, self.block.head_words
            found = [tokens(split(text, 1)[0])[:words] for text in batch.lowered]
        else:
            found = list(map(self.block.analyze, batch.lowered))
        flat = list(itertools.chain.from_iterable(found))
        ids = np.fromiter(map(self.block.vocabulary.get, flat, itertools.repeat(-1)), dtype=np.int64, count=len(flat))
        term_rows = np.repeat(np.arange(batch.size), np.fromiter(map(len, found), dtype=np.int64, count=batch.size))
        known = ids >= 0
        if not known.any():
            return out
        terms, term_rows = ids[known], term_rows[known]
        squares = np.zeros(batch.size)
        self._add_terms_once(terms, term_rows, out, squares)
        self._recount_shared(terms * 2 + 1, term_rows, 2, out, squares)
        return _normalised(out, squares)


class WordScorer(BlockScorer):
    """A block scored word by word, from a table of what each distinct word adds.

    Row ``w`` of the table: ``entries[entry_start[w]:entry_start[w + 1]]`` (what the word
    counts, see :meth:`_recount_shared`), ``word_score[w]`` (its share of each output's
    score) and ``word_square[w]`` (its share of the squared norm). Words are added in the
    order of :attr:`LinearScorer.word_ids`. The arrays have room for more words and
    entries than they hold (``n_words``, ``n_entries``) and grow by doubling, so adding a
    few words to a large table does not copy it.
    """

    def __init__(self, block: TfidfBlock, coef: np.ndarray):
        super().__init__(block, coef)
        self.reset()

    def reset(self) -> None:
        """Forget every word seen so far (keeps memory bounded on endless new words)."""
        self.n_words = self.n_entries = 0
        self.entry_start = np.zeros(1024 + 1, dtype=np.int64)
        self.entries = np.zeros(16 * 1024, dtype=np.int64)
        self.word_score = np.zeros((1024, self.n_outputs))
        self.word_square = np.zeros(1024)

    def add_words(self, words: Sequence[str]) -> None:
        """Analyse new words and append them to the table."""
        raise NotImplementedError

    def _append(self, lengths: list[int], entries: np.ndarray, col: np.ndarray, weight: np.ndarray) -> None:
        """Append words of ``lengths`` entries each, from the entries' columns and weights.

        A word's entries may repeat a column ("the the"): its shares are then only a
        starting point, which :meth:`_recount_shared` corrects as for two words.
        """
        size = np.asarray(lengths, dtype=np.int64)
        w0, w1 = self.n_words, self.n_words + len(lengths)
        e0, e1 = self.n_entries, self.n_entries + len(entries)
        if w1 + 1 > len(self.entry_start):
            self.entry_start = _grown(self.entry_start, w1 + 1)
        if w1 > len(self.word_score):
            self.word_score = _grown(self.word_score, w1)
            self.word_square = _grown(self.word_square, w1)
        if e1 > len(self.entries):
            self.entries = _grown(self.entries, e1)
        self.word_score[w0:w1] = 0.0
        self.word_square[w0:w1] = 0.0
        has = size > 0
        if col.size:
            starts = (np.cumsum(size) - size)[has]
            self.word_score[w0:w1][has] = np.add.reduceat(self.weights.take(col, axis=0) * weight[:, None], starts, axis=0)
            self.word_square[w0:w1][has] = np.add.reduceat(weight * weight, starts)
        self.entry_start[w0 + 1 : w1 + 1] = e0 + np.cumsum(size)
        self.entries[e0:e1] = entries
        self.n_words, self.n_entries = w1, e1

    def scores(self, batch: Batch) -> np.ndarray:
        words, rows, n = batch.word_ids, batch.word_rows, batch.size
        out = np.zeros((n, self.n_outputs))
        if not len(words):
            return out
        starts = batch.word_starts
        out[batch.word_texts] = np.add.reduceat(self.word_score.take(words, axis=0), starts, axis=0)
        squares = np.bincount(rows, self.word_square.take(words), minlength=n)
        first = self.entry_start.take(words)
        lengths = self.entry_start.take(words + 1) - first
        where = np.repeat(first - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
        entries, bound, entry_rows = self._text_entries(batch, self.entries.take(where), np.repeat(rows, lengths), out, squares)
        self._recount_shared(entries, entry_rows, bound, out, squares)
        return _normalised(out, squares)

    def _text_entries(
        self, batch: Batch, entries: np.ndarray, rows: np.ndarray, out: np.ndarray, squares: np.ndarray
    ) -> tuple[np.ndarray, int, np.ndarray]:
        """The texts' entries (from their words' table rows) as ``column * bound + count``, the bound, their rows."""
        raise NotImplementedError


class CharWordScorer(WordScorer):
    """A ``char_wb`` block: a word's entries are its n-grams' columns with their counts inside the word."""

    def reset(self) -> None:
        super().reset()
        #: A power of two above every count in :attr:`entries` (``column * count_bound + count``).
        self.count_bound = 2

    def add_words(self, words: Sequence[str]) -> None:
        lookup = self.block.vocabulary.get
        ids: list[int] = []
        lengths: list[int] = []
        counts: list[int] = []
        for word in words:
            found: dict[int, int] = {}
            for i in map(lookup, char_wb_terms(word, self.block.ngram_range)):
                if i is not None:
                    found[i] = found.get(i, 0) + 1
            columns = sorted(found)  # ascending within the word: see _recount_shared
            ids += columns
            counts += map(found.__getitem__, columns)
            lengths.append(len(found))
        col = np.asarray(ids, dtype=np.int64)
        tf = np.asarray(counts, dtype=np.int64)
        if len(tf) and tf.max() >= self.count_bound:
            old, self.count_bound = self.count_bound, 1 << int(tf.max()).bit_length()
            kept = self.entries[: self.n_entries]
            kept[:] = (kept // old) * self.count_bound + kept % old
        weight = (np.log(tf) + 1.0) * self.idf[col]
        self._append(lengths, col * self.count_bound + tf, col, weight)

    def _text_entries(
        self, batch: Batch, entries: np.ndarray, rows: np.ndarray, out: np.ndarray, squares: np.ndarray
    ) -> tuple[np.ndarray, int, np.ndarray]:
        return entries, self.count_bound, rows


class TokenWordScorer(WordScorer):
    """A word block of 1- and 2-grams: a word's entries are the term ids of its tokens and of
    the bigrams inside it, each counted once; the bigrams that join two words are found per text.

    Joining bigrams are looked up as strings when a batch has few joins; for many, the
    vocabulary's bigrams are first made into a sorted table of token-id pairs (once: it
    takes a moment) and searched all at once. Both find the same bigrams in the same order.
    """

    def __init__(self, block: TfidfBlock, coef: np.ndarray):
        #: The vocabulary's bigrams as sorted ``first_id << 32 | second_id`` keys (``None``: not built).
        self.bigram_keys: np.ndarray | None = None
        super().__init__(block, coef)

    def reset(self) -> None:
        super().reset()
        #: Each word's first and last token (``None``: the word has no token).
        self.first_tokens: list[str | None] = []
        self.last_tokens: list[str | None] = []
        self.has_token = np.zeros(1024, dtype=bool)
        #: The same tokens' ids in the bigram table (kept once the table is built).
        self.first_token_ids, self.last_token_ids = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    def add_words(self, words: Sequence[str]) -> None:
        lookup = self.block.vocabulary.get
        lo, hi = self.block.ngram_range
        ids: list[int] = []
        lengths: list[int] = []
        first: list[str | None] = []
        last: list[str | None] = []
        for word in words:
            found_tokens = tokens(word)
            found = [i for i in map(lookup, found_tokens) if i is not None] if lo == 1 else []
            if hi >= 2 and len(found_tokens) > 1:
                found += [i for i in map(lookup, map(" ".join, zip(found_tokens, found_tokens[1:]))) if i is not None]
            ids += found
            lengths.append(len(found))
            first.append(found_tokens[0] if found_tokens else None)
            last.append(found_tokens[-1] if found_tokens else None)
        col = np.asarray(ids, dtype=np.int64)
        self._append(lengths, col, col, self.idf[col])
        self.first_tokens += first
        self.last_tokens += last
        w0, w1 = self.n_words - len(words), self.n_words
        if w1 > len(self.has_token):
            self.has_token = _grown(self.has_token, w1)
        self.has_token[w0:w1] = [t is not None for t in first]
        if self.bigram_keys is not None:
            if w1 > len(self.first_token_ids):
                self.first_token_ids = _grown(self.first_token_ids, w1)
                self.last_token_ids = _grown(self.last_token_ids, w1)
            self.first_token_ids[w0:w1] = self._token_ids(first)
            self.last_token_ids[w0:w1] = self._token_ids(last)

    def _text_entries(
        self, batch: Batch, entries: np.ndarray, rows: np.ndarray, out: np.ndarray, squares: np.ndarray
    ) -> tuple[np.ndarray, int, np.ndarray]:
        entries = entries * 2 + 1
        if self.block.ngram_range[1] >= 2:
            joins, join_rows = self.joining_bigrams(batch.word_ids, batch.word_rows)
            if len(joins):
                self._add_terms_once(joins, join_rows, out, squares)
                entries = np.concatenate([entries, joins * 2 + 1])
                rows = np.concatenate([rows, join_rows])
        return entries, 2, rows

    def joining_bigrams(self, words: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary bigrams made of the last token of a word and the first token of the next, and their rows."""
        has = self.has_token[words]
        w, r = words[has], rows[has]
        same = r[:-1] == r[1:]
        a, b, join_rows = w[:-1][same], w[1:][same], r[:-1][same]
        if self.bigram_keys is None and len(a) < BIGRAM_TABLE_MIN:
            grams = map(" ".join, zip(map(self.last_tokens.__getitem__, a.tolist()), map(self.first_tokens.__getitem__, b.tolist())))
            ids = np.fromiter(map(self.block.vocabulary.get, grams, itertools.repeat(-1)), dtype=np.int64, count=len(a))
        else:
            if self.bigram_keys is None:
                self._build_bigram_table()
            assert self.bigram_keys is not None
            x, y = self.last_token_ids.take(a), self.first_token_ids.take(b)
            ids = np.full(len(a), -1, dtype=np.int64)
            usable = ((x >= 0) & (y >= 0)).nonzero()[0]  # both ends are tokens some bigram uses
            if len(self.bigram_keys) and len(usable):
                keys = (x[usable] << 32) | y[usable]
                # Searched in ascending order: neighbouring searches then walk the same part of
                # the table (in cache), twice as fast as searching in text order.
                order = np.argsort(keys)
                at = np.empty(len(keys), dtype=np.intp)
                at[order] = np.minimum(np.searchsorted(self.bigram_keys, keys[order]), len(self.bigram_keys) - 1)
                hit = self.bigram_keys.take(at) == keys
                ids[usable[hit]] = self.bigram_ids.take(at[hit])
        found = ids >= 0
        return ids[found], join_rows[found]

    def _build_bigram_table(self) -> None:
        """The vocabulary's bigrams as sorted pairs of token ids, and the token ids of the words' ends.

        A token's id is its vocabulary id when it is a vocabulary word, else one past the
        vocabulary (:attr:`other_tokens`).
        """
        vocab = self.block.vocabulary
        bigrams = [t for t in vocab if " " in t]
        parts = " ".join(bigrams).split(" ")  # a1 b1 a2 b2 ...: a bigram holds exactly one space
        token_ids = np.fromiter(map(vocab.get, parts, itertools.repeat(-1)), dtype=np.int64, count=len(parts))
        #: Tokens that bigrams use but that are not vocabulary words, with their ids.
        self.other_tokens: dict[str, int] = {}
        for k in np.flatnonzero(token_ids < 0).tolist():
            token_ids[k] = self.other_tokens.setdefault(parts[k], self.n_terms + len(self.other_tokens))
        keys = (token_ids[0::2] << 32) | token_ids[1::2]
        order = np.argsort(keys)
        self.bigram_ids = np.fromiter(map(vocab.__getitem__, bigrams), dtype=np.int64, count=len(bigrams))[order]
        self.bigram_keys = keys[order]
        self.first_token_ids = self._token_ids(self.first_tokens)
        self.last_token_ids = self._token_ids(self.last_tokens)

    def _token_ids(self, tokens: list[str | None]) -> np.ndarray:
        """Ids in the bigram table of ``tokens``: -2 for a token no bigram uses, -1 for none."""
        get, other = self.block.vocabulary.get, self.other_tokens.get
        return np.fromiter(
            (-1 if t is None else (i if (i := get(t)) is not None else other(t, -2)) for t in tokens),
            dtype=np.int64, count=len(tokens),
        )


#: ``_run_starts`` of one text's word rows (all 0): one run, or none without a word. Read-only: shared.
_ONE_RUN, _NO_RUN = np.zeros(1, dtype=np.intp), np.zeros(0, dtype=np.intp)
_ONE_RUN.flags.writeable = _NO_RUN.flags.writeable = False


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal values begins in ``values`` (grouped, e.g. sorted), for ``np.add.reduceat``."""
    # Into one preallocated mask: np.r_ costs more than the comparison on the small batches a server scores.
    change = np.empty(len(values), dtype=bool)
    change[:1] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    return change.nonzero()[0]


def _normalised(out: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """``out`` (one row per text) divided by each text's L2 norm; a text with none of the block's terms scores 0, as in scikit-learn."""
    norms = np.sqrt(squares)
    norms[norms == 0.0] = 1.0
    out /= norms[:, None]
    return out


def _grown(array: np.ndarray, needed: int) -> np.ndarray:
    """``array`` with room for at least ``needed`` rows: twice as many, its rows copied (the rest zero)."""
    grown = np.zeros((max(needed, 2 * len(array)),) + array.shape[1:], dtype=array.dtype)
    grown[: len(array)] = array
    return grown
