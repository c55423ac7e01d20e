"""The shipped model on text the corpus never saw: the product's own examples, lines in scripts and
languages it cannot read, and posting lines that are not tasks (issue 14).

Each test reads a file under ``tests/data`` that was written by hand for the purpose (none of it is
in the corpus) and checks what a user relies on: the seed services come out right, unreadable text
is never given a confident label, and requirement/perk lines are set apart. The cross-validation
figures recorded in the shipped model's metadata bound what the same flags cost on the corpus's own
tasks, so a detector that flagged everything would fail here too.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bpo_classify import load_model

DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t" if name.endswith(".tsv") else ","))


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_every_seed_service_is_right_on_office_and_nearly_all_on_function(model):
    """The services the source articles list (seed_services.tsv): every office right, at least 42 of 45 functions."""
    seeds = _rows("seed_services.tsv")
    answers = model.predict([row["text"] for row in seeds])
    wrong_office = [(row["text"], a.office) for row, a in zip(seeds, answers) if a.office != row["office"]]
    assert wrong_office == []
    with_function = [(row, a) for row, a in zip(seeds, answers) if row["function"]]
    right = sum(a.function == row["function"] for row, a in with_function)
    assert len(with_function) == 45 and right >= 42, [
        (row["text"], row["function"], a.function) for row, a in with_function if a.function != row["function"]
    ]


def test_text_the_model_cannot_read_is_always_flagged_unfamiliar(model):
    """Other scripts, languages without corpus, gibberish, digits and symbols: every row flagged, with its reason."""
    rows = _rows("unfamiliar.csv")
    assert len(rows) >= 200 and {r["kind"] for r in rows} >= {"other_script", "other_language", "gibberish"}
    answers = model.predict([row["text"] for row in rows])
    missed = [(row["text"], a.office, a.office_confidence) for row, a in zip(rows, answers) if a.review_reason != "unfamiliar_text"]
    assert missed == []
    assert all(a.needs_review for a in answers)


def test_posting_lines_that_are_not_tasks_are_set_apart(model):
    """Requirements, perks, schedules and blurbs: at least 90% flagged not_a_task."""
    rows = _rows("not_tasks_test.csv")
    answers = model.predict([row["text"] for row in rows])
    flagged = sum(a.review_reason == "not_a_task" for a in answers)
    assert flagged / len(rows) >= 0.90, f"{flagged}/{len(rows)} flagged not_a_task"


def test_real_tasks_in_the_same_register_are_not_taken_for_non_tasks(model):
    """The control set of short service names and posting duties: at most 5% flagged not_a_task or
    unfamiliar, and the office right on at least 90%."""
    rows = _rows("tasks_control.csv")
    answers = model.predict([row["text"] for row in rows])
    set_apart = sum(a.review_reason in ("not_a_task", "unfamiliar_text") for a in answers)
    right = sum(a.office == row["office"] for row, a in zip(rows, answers))
    assert set_apart / len(rows) <= 0.05, [
        (row["text"], a.review_reason) for row, a in zip(rows, answers) if a.review_reason in ("not_a_task", "unfamiliar_text")
    ]
    assert right / len(rows) >= 0.90


def test_cross_validation_shows_the_new_flags_cost_little_on_the_corpus(model):
    """Recorded by `train` out of fold: unfamiliar_text flags at most 1% of the corpus's tasks, not_a_task
    at most 2% of them while catching at least 85% of the held-out not-a-task lines."""
    cv = model.metadata["metrics"]["cross_validation"]
    assert cv["review"]["by_reason"]["unfamiliar_text"] <= 0.01
    assert cv["not_a_task"]["tasks_flagged"] <= 0.02
    assert cv["not_a_task"]["lines_flagged"] >= 0.85
