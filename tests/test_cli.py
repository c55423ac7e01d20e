"""The command line as a user meets it: answers, formats, exit codes and one-line errors."""

from __future__ import annotations

import json
import re

import pytest

import bpo_classify
from bpo_classify import __version__
from bpo_classify.cli import cli
from conftest import ROOT, write_csv


def test_predict_acceptance_examples(runner):
    """The README's two promises: invoices are back-office finance, live chat is front-office service."""
    result = runner.invoke(cli, ["predict", "process invoices", "answer live chat inquiries", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0
    answers = json.loads(result.output)
    assert [(a["office"], a["function"]) for a in answers] == [
        ("back-office", "finance_accounting"),
        ("front-office", "customer_service"),
    ]
    for a in answers:
        assert 0.5 <= a["office_confidence"] <= 1 and 0 < a["function_confidence"] <= a["office_confidence"]


def test_predict_table_and_csv_formats(runner):
    """Table has a header and one line per text; CSV has the documented columns."""
    table = runner.invoke(cli, ["predict", "process invoices", "greet hotel guests"], catch_exceptions=False)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["office", "p", "function"] and len(lines) == 3
    assert lines[1].startswith("back-office") and lines[1].endswith("process invoices")
    out = runner.invoke(cli, ["predict", "greet hotel guests", "--format", "csv"], catch_exceptions=False)
    header, row = out.output.splitlines()
    assert header == "text,office,office_confidence,function,function_confidence,needs_review,review_reason"
    assert row.startswith("greet hotel guests,front-office,")


def test_predict_reads_stdin_one_text_per_line(runner):
    """`-` reads one text per line; an empty line gets empty labels and review."""
    result = runner.invoke(cli, ["predict", "-", "--format", "json"], input="process invoices\n\nreconcile bank statements\n", catch_exceptions=False)
    answers = json.loads(result.output)
    assert [a["office"] for a in answers] == ["back-office", None, "back-office"]
    assert answers[1]["needs_review"] is True and answers[1]["function"] is None


def test_predict_threshold_flags_review(runner):
    """A threshold of 1.0 flags every row; 0.0 flags none."""
    for threshold, flagged in (("1.0", True), ("0.0", False)):
        result = runner.invoke(cli, ["predict", "process invoices", "--format", "json", "--threshold", threshold])
        assert json.loads(result.output)[0]["needs_review"] is flagged


def test_office_and_function_never_contradict(model, corpus):
    """Whatever the text, the function shown belongs to the office shown (policy table)."""
    from bpo_classify.policy import FUNCTION_OFFICE

    texts = corpus.texts[:400] + ["handle customer refunds", "call vendors about payroll invoices", "x"]
    for p in model.predict(texts):
        assert FUNCTION_OFFICE[p.function] == p.office


def test_version_and_help_everywhere(runner):
    """--version prints the package version; -h works for every command and shows an example."""
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for name in cli.commands:
        result = runner.invoke(cli, [name, "-h"])
        assert result.exit_code == 0, name
        assert "Example:" in result.output, name


def test_every_command_is_in_the_readme():
    """Each command appears in the README's usage section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"bpo-classify {name}" in readme, name


def test_info_shows_metadata(runner):
    """info prints the versions, training-data hash and labels the model was saved with."""
    result = runner.invoke(cli, ["info", "--format", "json"], catch_exceptions=False)
    meta = json.loads(result.output)
    assert result.exit_code == 0
    for key in ("package_version", "sklearn_version", "created_at", "training_data", "offices", "functions", "metrics"):
        assert key in meta
    assert re.fullmatch(r"[0-9a-f]{64}", meta["training_data"]["sha256"])
    assert len(meta["functions"]) == 15
    text = runner.invoke(cli, ["info"]).output
    assert "training data" in text and "review threshold" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["label", "missing.csv"], "file not found: missing.csv"),
        (["predict", "x", "--model", "nowhere.bpoc"], "model file not found"),
        (["train", "--data", "missing.csv", "--cv", "0"], "file not found"),
        (["info", "--model", "pyproject.toml"], "not a bpo-classify model file"),
    ],
)
def test_runtime_errors_are_one_line_exit_1(runner, args, message):
    """Missing files and non-model files: one line on stderr naming the problem, exit 1, no traceback."""
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(runner):
    """Unknown options and bad values are usage errors."""
    assert runner.invoke(cli, ["predict"]).exit_code == 2
    assert runner.invoke(cli, ["predict", "x", "--threshold", "2"]).exit_code == 2
    assert runner.invoke(cli, ["label", "a.csv", "--bogus"]).exit_code == 2
    assert runner.invoke(cli, ["predict", "x", "--format", "xml"]).exit_code == 2


def test_train_errors_name_the_problem(runner, tmp_path):
    """Empty corpus, one class, unknown labels, a missing column, non-UTF-8: one line each, exit 1, no model file."""
    out = tmp_path / "m.bpoc"
    cases = {
        "empty.csv": ([["text", "office", "function"]], "no labelled rows"),
        "one_class.csv": ([["text", "office", "function"], ["process invoices", "back-office", "finance_accounting"], ["run payroll", "back-office", "payroll"]], "only one office"),
        "unknown.csv": ([["text", "office", "function"], ["process invoices", "middle-office", "finance_accounting"]], "office 'middle-office' is not one of"),
        "badfn.csv": ([["text", "office", "function"], ["process invoices", "back-office", "accounting"]], "function 'accounting' is not one of the fifteen"),
        "nocol.csv": ([["duty", "office", "function"], ["process invoices", "back-office", "finance_accounting"]], "column 'text' not found"),
    }
    for name, (rows, message) in cases.items():
        path = write_csv(tmp_path / name, rows)
        result = runner.invoke(cli, ["train", "--data", str(path), "--out", str(out), "--cv", "0"])
        assert result.exit_code == 1, name
        assert message in result.output, (name, result.output)
        assert "Traceback" not in result.output
        assert not out.exists()
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,office,function\nfacturaci\xf3n,back-office,finance_accounting\n".encode("latin-1"))
    result = runner.invoke(cli, ["train", "--data", str(latin), "--out", str(out), "--cv", "0"])
    assert result.exit_code == 1 and "not valid utf-8" in result.output and "--encoding" in result.output
    assert not out.exists()


@pytest.mark.slow
def test_train_on_user_csv_and_predict_with_it(runner, small_csv, tmp_path):
    """train --data with custom column names writes a model that predict --model uses."""
    out = tmp_path / "mine.bpoc"
    result = runner.invoke(
        cli, ["train", "--data", str(small_csv), "--text-column", "duty", "--office-column", "side",
              "--function-column", "tower", "--out", str(out), "--cv", "3", "--seed", "1"], catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == f"training on {small_csv} with 3-fold cross-validation ...\n"
    assert re.fullmatch(
        r"trained on 375 rows \(sha256 [0-9a-f]{12}\)\n3-fold cross-validation \(seed 1\):\n"
        r"  office    accuracy 0\.\d{3}  macro-F1 0\.\d{3}\n  function  accuracy 0\.\d{3}  macro-F1 0\.\d{3}\n"
        rf"model written to {re.escape(str(out))}\n", result.stdout,
    ), result.stdout
    pred = runner.invoke(cli, ["predict", "reconcile the general ledger", "--model", str(out), "--format", "json"])
    assert json.loads(pred.output)[0]["office"] == "back-office"
    info = json.loads(runner.invoke(cli, ["info", "--model", str(out), "--format", "json"]).output)
    assert info["seed"] == 1 and info["training_data"]["rows"] == 375


def test_check_data_reports_rows(runner, tmp_path):
    """check-data lists each problem with its rows and exits 1 on errors."""
    path = write_csv(tmp_path / "d.csv", [
        ["text", "office", "function"],
        ["process invoices", "back-office", "finance_accounting"],
        ["Process invoices!", "front-office", "customer_service"],
        ["", "back-office", "payroll"],
        ["greet guests", "front-office", "payroll"],
    ])
    result = runner.invoke(cli, ["check-data", str(path), "--cv", "0"])
    assert result.exit_code == 1
    assert "error: same text with conflicting labels" in result.output and "(rows 1, 2)" in result.output
    assert "error: empty text (rows 3)" in result.output
    assert "error: office contradicts the policy's office for the function (rows 4)" in result.output


def test_python_m_entry_point():
    """`python -m bpo_classify --version` works."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bpo_classify", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and __version__ in done.stdout


def test_predict_table_marks_missing_labels_with_dashes(runner):
    """A blank text's row in the table shows dashes and its review reason, aligned with the others."""
    result = runner.invoke(cli, ["predict", "--", "", "process invoices"], catch_exceptions=False)
    assert result.exit_code == 0
    # The layout is the contract here; the probabilities come from the model, so read them from the API.
    (answer,) = bpo_classify.load_model().predict(["process invoices"])
    assert result.output == (
        "office       p       function            p       review  text\n"
        "-            -       -                   -       empty   \n"
        f"back-office  {answer.office_confidence:.4f}  finance_accounting  {answer.function_confidence:.4f}          process invoices\n"
    )


def test_explain_and_info_text_edges(runner):
    """explain of a blank text says there is nothing to explain; info --top-terms lists terms with signed weights."""
    result = runner.invoke(cli, ["explain", " "], catch_exceptions=False)
    assert (result.exit_code, result.output) == (0, "no text to explain (empty input): needs review\n")
    lines = runner.invoke(cli, ["info", "--top-terms", "2"], catch_exceptions=False).output.splitlines()
    at = lines.index("strongest terms by mixed-task detector (coefficient):")
    assert lines[at - 1] == "" and re.fullmatch(r"  mixed {16}\w+ \(\+\d+\.\d\d\), \w+ \(\+\d+\.\d\d\)", lines[at + 1])
    assert lines[at - 3].startswith("  front-office         ") and lines[-1].startswith("  technical_support    ")
