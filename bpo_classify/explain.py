"""Why the model said what it said: exact per-term contributions of a linear model.

For logistic regression the office log-odds is ``intercept + sum(weight_t * coef_t)``
over the text's TF-IDF terms, so each term's share is exact, not an approximation.
Character n-grams are summed into the word they come from, so the explanation
reads in words and phrases (a word among the first words of the main clause also
counts in the ``head`` block, shown as an "opening" word); the contributions plus
the intercept add up to the calibrated log-odds of front-office *if the task is clear*. A model with a
mixed-task detector is explained the same way for the detector (log-odds of
"mixed"), and the two combine exactly as the model does:
``P(front) = 0.5 * P(mixed) + (1 - P(mixed)) * P(front | clear)``.

Example:
    >>> from bpo_classify import load_model
    >>> e = explain(load_model(), "answer live chat inquiries")
    >>> e.office, e.terms[0].contribution > 0       # the strongest push is towards front-office
    ('front-office', True)
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .features import char_wb_terms
from .model import MAX_TEXT_CHARS, Model
from .policy import FRONT


@dataclass(frozen=True)
class Contribution:
    """A word or phrase and how far it moved its part's log-odds (positive: towards front-office, or towards mixed)."""

    term: str
    kind: str  # "word", "phrase" (word bigram), "characters" (char n-grams of one word) or "opening" (a first word of the main clause)
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """The prediction with the terms behind it and the runner-up function.

    The runner-up is ``predict``'s ``function_2``: the likeliest other function of the office
    shown, on the scale of ``function_confidence`` (P(office) x P(function | office)), so never
    above it; ``None`` when the office has no other function.

    ``intercept`` and ``terms`` add up to the calibrated log-odds of front-office for a
    clear task; ``mixed_intercept`` and ``mixed_terms`` to the log-odds that the task is
    mixed (``mixed_probability`` is None for a model without a detector).
    """

    text: str
    office: str | None
    office_confidence: float | None
    function: str | None
    function_confidence: float | None
    runner_up_function: str | None
    runner_up_confidence: float | None
    intercept: float
    terms: list[Contribution]
    clear_front_probability: float | None = None
    mixed_probability: float | None = None
    mixed_intercept: float | None = None
    mixed_terms: list[Contribution] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def front_probability(self) -> float | None:
        """P(front-office), whichever office is shown (``None`` without text)."""
        if self.office_confidence is None:
            return None
        return self.office_confidence if self.office == FRONT else 1.0 - self.office_confidence


def term_contributions(model: Model, text: str) -> tuple[list[Contribution], float]:
    """Calibrated office log-odds contributions of each word/phrase of ``text``, and the calibrated intercept."""
    a, b = model.calibration
    return _contributions(model, text, model.office_coef[0] * a), float(a * model.office_intercept[0] + b)


def mixed_contributions(model: Model, text: str) -> tuple[list[Contribution], float]:
    """The mixed-task detector's log-odds contributions of each word/phrase of ``text``, and its intercept."""
    if model.mixed_coef is None or model.mixed_intercept is None:
        raise ValueError("this model has no mixed-task detector")
    return _contributions(model, text, model.mixed_coef[0]), float(model.mixed_intercept[0])


def _contributions(model: Model, text: str, coef: np.ndarray) -> list[Contribution]:
    """Each word/phrase's share of ``X @ coef`` for ``text``, strongest first."""
    by_term: dict[tuple[str, str], float] = defaultdict(float)
    for block in model.blocks:
        if not coef[block.columns].any():  # a block this part of the model does not read
            continue
        row, col, weight = block.sparse_rows([text])
        if not len(col):
            continue
        local = {int(c) - block.offset: float(w * coef[c]) for c, w in zip(col, weight)}
        if block.analyzer in ("word", "head"):
            names = {i: t for t, i in block.vocabulary.items() if i in local}
            for i, value in local.items():
                name = names[i]
                kind = "opening" if block.analyzer == "head" else "phrase" if " " in name else "word"
                by_term[(name, kind)] += value
        else:
            # Share each character n-gram's contribution among the words it occurs in.
            per_word = [(w, char_wb_terms(w, block.ngram_range)) for w in text.lower().split()]
            totals: dict[str, int] = defaultdict(int)
            for _, grams in per_word:
                for g in grams:
                    totals[g] += 1
            for word, grams in per_word:
                for g in grams:
                    i = block.vocabulary.get(g)
                    if i is not None and i in local:
                        by_term[(word, "characters")] += local[i] / totals[g]
    items = [Contribution(t, k, v) for (t, k), v in by_term.items()]
    dense = getattr(model, "embedding_contribution", None)
    if dense is not None:
        # A semantic model: the sentence embedding's total share (its 384 dimensions have no names).
        items.append(Contribution("(sentence embedding)", "embedding", dense(text, coef)))
    items.sort(key=lambda c: -abs(c.contribution))
    return items


def explain(model: Model, text: str, threshold: float | None = None) -> Explanation:
    """Explain one prediction: office, function, runner-up function and the terms' contributions."""
    # The runner-up is predict's function_2: the same office, the same scale as function_confidence.
    prediction = model.predict([text], threshold, top_functions=2)[0]
    if prediction.office is None:
        return Explanation(text, None, None, None, None, None, None, 0.0, [])
    read = text[:MAX_TEXT_CHARS]  # what the prediction read (a longer text is flagged `truncated`)
    terms, intercept = term_contributions(model, read)
    runner_up, runner_up_p = prediction.runners_up[0] if prediction.runners_up else (None, None)
    mixed_terms, mixed_intercept, p_mixed = [], None, None
    if model.mixed_coef is not None:
        mixed_terms, mixed_intercept = mixed_contributions(model, read)
        p_mixed = _probability(mixed_terms, mixed_intercept)
    return Explanation(
        text, prediction.office, prediction.office_confidence, prediction.function,
        prediction.function_confidence, runner_up, runner_up_p,
        intercept, terms, _probability(terms, intercept), p_mixed, mixed_intercept, mixed_terms,
    )


def _probability(terms: list[Contribution], intercept: float) -> float:
    """The probability that contributions and intercept, as log-odds, stand for."""
    return 1.0 / (1.0 + math.exp(-(intercept + sum(c.contribution for c in terms))))


def top_terms(model: Model, n: int = 10) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """The ``n`` strongest word/phrase terms for each office and each function (by coefficient),
    and for the mixed-task detector (key ``mixed``) when the model has one."""
    names: dict[int, str] = {}
    for block in model.blocks:
        if block.analyzer == "word":
            names.update({i + block.offset: t for t, i in block.vocabulary.items()})
    cols = np.array(sorted(names))
    out: dict[str, dict[str, list[tuple[str, float]]]] = {"office": {}, "function": {}}
    office = model.office_coef[0, cols]
    for label, sign in ((FRONT, 1.0), ("back-office", -1.0)):
        best = np.argsort(-sign * office)[:n]
        out["office"][label] = [(names[int(cols[i])], float(office[i])) for i in best]
    if model.mixed_coef is not None:
        mixed = model.mixed_coef[0, cols]
        out["mixed"] = {"mixed": [(names[int(cols[i])], float(mixed[i])) for i in np.argsort(-mixed)[:n]]}
    for k, function in enumerate(model.function_classes):
        weights = model.function_coef[k, cols]
        best = np.argsort(-weights)[:n]
        out["function"][function] = [(names[int(cols[i])], float(weights[i])) for i in best]
    return out
