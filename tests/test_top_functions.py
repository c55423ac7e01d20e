"""Runner-up functions (`--top-functions K`, issue 17): one scale everywhere, within the office shown.

The function shown and every runner-up are P(office) x P(function | office) for the office
shown, so no runner-up is above the function shown, explain's runner-up is predict's
``function_2``, and label's, predict's and the API's columns are the same numbers. Checked on
every hand-written line under ``tests/data`` and the sample sheet: seed services, ordinary tasks,
posting lines that are not tasks and text in other languages (where the office is least sure).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bpo_classify.cli import cli
from bpo_classify.explain import explain
from bpo_classify.labeling import label_csv
from bpo_classify.outputs import ADDED_COLUMNS
from bpo_classify.policy import FRONT, FUNCTION_OFFICE, FUNCTIONS
from conftest import ROOT, write_csv

DATA = Path(__file__).parent / "data"
SAMPLE = ROOT / "datasets" / "sample_job_duties.csv"


def _texts() -> list[str]:
    """Every text of the hand-written test files and of the sample sheet (about 800 lines)."""
    texts = []
    for path in [*sorted(DATA.glob("*.csv")), *sorted(DATA.glob("*.tsv")), SAMPLE]:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ",")
            texts += [row.get("text") or row.get("duty") or "" for row in reader]
    return [t for t in texts if t.strip()]


TEXTS = _texts()


def test_the_files_hold_uncertain_lines_too(model):
    """The texts below include lines the model is unsure of, or the checks would prove little."""
    assert len(TEXTS) > 700
    assert sum(p.office_confidence < 0.7 for p in model.predict(TEXTS)) > 20


def test_every_runner_up_is_of_the_office_shown_and_below_the_function_shown(model):
    """With all fifteen asked for: the office's other functions, likeliest first, none above the one shown;
    with the one shown they add up to the office's probability (one scale: P(office) x P(function | office))."""
    for p in model.predict(TEXTS, top_functions=15):
        offices = {FUNCTION_OFFICE[f] for f, _ in p.runners_up} | {FUNCTION_OFFICE[p.function]}
        assert offices == {p.office}, p
        confidences = [c for _, c in p.runners_up]
        assert all(c <= p.function_confidence for c in confidences), p
        assert confidences == sorted(confidences, reverse=True), p
        in_office = sum(FUNCTION_OFFICE[f] == p.office for f in FUNCTIONS)
        assert len(p.runners_up) == in_office - 1
        assert p.function_confidence + sum(confidences) == pytest.approx(p.office_confidence, abs=1e-9)


def test_top_functions_only_adds_runners_up(model):
    """Asking for runners-up changes nothing else, and a shorter list is the start of a longer one."""
    plain = model.predict(TEXTS[:200])
    three = model.predict(TEXTS[:200], top_functions=3)
    every = model.predict(TEXTS[:200], top_functions=15)
    for a, b, c in zip(plain, three, every):
        assert a.runners_up == () and len(b.runners_up) == 2
        assert (a.office, a.office_confidence, a.function, a.function_confidence, a.review_reason) == (
            b.office, b.office_confidence, b.function, b.function_confidence, b.review_reason)
        assert b.runners_up == c.runners_up[:2]


def test_explain_runner_up_is_predicts_function_2(model):
    """explain names the same runner-up with the same probability as predict's function_2, never above the winner
    (it once showed customer_service 0.4983 as runner-up to legal_compliance 0.4705: two scales)."""
    answers = model.predict(TEXTS, top_functions=2)
    # The least certain lines (where the scales differed most) and a spread of the others.
    chosen = sorted(range(len(TEXTS)), key=lambda i: answers[i].office_confidence)[:40] + list(range(0, len(TEXTS), 40))
    for i in chosen:
        e, p = explain(model, TEXTS[i]), answers[i]
        assert (e.runner_up_function, e.runner_up_confidence) == p.runners_up[0], TEXTS[i]
        assert e.runner_up_confidence <= e.function_confidence


def test_label_columns_are_the_apis(tmp_path, model, runner):
    """label --top-functions 3 adds function_2, function_2_confidence, function_3, function_3_confidence after the
    six columns, with the API's values (to four decimals); the same with worker processes and from predict --format csv."""
    rows = [["id", "duty"], *([str(i), t] for i, t in enumerate(TEXTS[:300])), ["300", ""]]
    source = write_csv(tmp_path / "duties.csv", rows)
    out = tmp_path / "labelled.csv"
    result = runner.invoke(cli, ["label", str(source), "-o", str(out), "--top-functions", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as handle:
        labelled = list(csv.reader(handle))
    runners = ["function_2", "function_2_confidence", "function_3", "function_3_confidence"]
    assert labelled[0] == ["id", "duty", *ADDED_COLUMNS, *runners]
    answers = model.predict([r[1] for r in rows[1:]], top_functions=3)
    for row, p in zip(labelled[1:], answers):
        expected = [x for f, c in p.runners_up for x in (f, f"{c:.4f}")]
        assert row[-4:] == (expected or [""] * 4), row
        assert float(row[5]) >= max(float(c) for c in row[-3::2] if c) if p.runners_up else row[5] == ""
    parallel = tmp_path / "parallel.csv"
    label_csv(source, parallel, model=model, top_functions=3, jobs=2, chunk_size=50)
    assert parallel.read_bytes() == out.read_bytes()
    stdin = "\n".join(r[1] for r in rows[1:-1]) + "\n"
    result = runner.invoke(cli, ["predict", "-", "--format", "csv", "--top-functions", "3"], input=stdin, catch_exceptions=False)
    predicted = list(csv.reader(result.output.splitlines()))
    assert predicted[0] == ["text", *ADDED_COLUMNS, *runners]
    assert [r[1:] for r in predicted[1:]] == [r[2:] for r in labelled[1:-1]]


def test_columns_past_the_offices_last_function_are_empty(model, runner):
    """A front-office answer has four other functions: function_6 and beyond are empty cells, the header fixed by K."""
    result = runner.invoke(cli, ["predict", "answer live chat inquiries", "process invoices", "--format", "csv", "--top-functions", "7"])
    assert result.exit_code == 0
    header, front, back = list(csv.reader(result.output.splitlines()))
    assert header[-2:] == ["function_7", "function_7_confidence"] and len(header) == len(front) == len(back)
    assert front[1] == FRONT and front[-4:] == ["", "", "", ""] and all(front[7:-4])
    assert all(back[7:])


def test_predict_table_and_json_show_the_runners_up(model, runner):
    """The table has a function and p column per runner-up; JSON lists them as runners_up objects."""
    result = runner.invoke(cli, ["predict", "process invoices", "--top-functions", "2"], catch_exceptions=False)
    head, line = result.output.splitlines()
    p = model.predict(["process invoices"], top_functions=2)[0]
    assert head.split() == ["office", "p", "function", "p", "function_2", "p", "review", "text"]
    assert line.split()[4:6] == [p.runners_up[0][0], f"{p.runners_up[0][1]:.4f}"]
    result = runner.invoke(cli, ["predict", "process invoices", "--top-functions", "2", "--format", "json"])
    assert json.loads(result.output)[0]["runners_up"] == [{"function": p.runners_up[0][0], "confidence": p.runners_up[0][1]}]


def test_top_functions_is_checked(runner):
    """K is 1 to 15: anything else is a usage error (exit 2) naming the option."""
    result = runner.invoke(cli, ["predict", "process invoices", "--top-functions", "0"])
    assert result.exit_code == 2 and "--top-functions" in result.output


def test_parquet_keeps_the_runner_up_types(tmp_path, model):
    """In Parquet the runners-up are strings and doubles like the function and its confidence (null past the last)."""
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) is not installed")
    source = write_csv(tmp_path / "d.csv", [["duty"], ["process invoices"], ["answer live chat inquiries"], [""]])
    label_csv(source, tmp_path / "l.parquet", model=model, top_functions=6)
    table = pq.read_table(tmp_path / "l.parquet")
    assert str(table.schema.field("function_2").type) == "string"
    assert str(table.schema.field("function_6_confidence").type) == "double"
    p = model.predict(["process invoices"], top_functions=6)[0]
    assert table.column("function_2").to_pylist()[0] == p.runners_up[0][0]
    assert table.column("function_6").to_pylist() == [p.runners_up[4][0], None, None]
