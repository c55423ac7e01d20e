"""`label`'s output format follows the output's name; `--output-format` for stdout; `--excel-safe`; the Dask engine's checks."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bpo_classify.cli import cli
from bpo_classify.labeling import ADDED_COLUMNS, label_csv
from bpo_classify.outputs import excel_safe, format_for

TSV = "role\tduty\nClerk\tprocess invoices\nAgent\tanswer inbound customer calls, and log the outcome\n"


def invoke(*args: object):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def tsv(tmp_path: Path) -> Path:
    path = tmp_path / "in.tsv"
    path.write_text(TSV, encoding="utf-8")
    return path


def rows_of(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


@pytest.mark.parametrize("name, delimiter", [("out.csv", ","), ("out.tsv", "\t"), ("out.tab", "\t"), ("OUT.CSV", ",")])
def test_the_name_decides_the_delimiter(tsv, tmp_path, name, delimiter):
    """`label in.tsv -o out.csv` writes commas (it used to write tabs); `.tsv` tabs; the cells are the same."""
    assert invoke("label", tsv, "-o", tmp_path / name).exit_code == 0
    text = (tmp_path / name).read_text(encoding="utf-8")
    rows = rows_of(text, delimiter)
    assert rows[0] == ["role", "duty", *ADDED_COLUMNS]
    assert rows[2][:3] == ["Agent", "answer inbound customer calls, and log the outcome", "front-office"]
    other = "\t" if delimiter == "," else ","
    assert other not in text.splitlines()[0]
    # The same cells whatever the delimiter: compare with the tab-separated stdout.
    assert rows == rows_of(invoke("label", tsv).stdout, "\t")


@pytest.mark.parametrize("name, delimiter", [("out.csv.gz", ","), ("out.tsv.gz", "\t")])
def test_gz_outputs_are_gzipped(tsv, tmp_path, name, delimiter):
    """`.csv.gz` is gzip (it used to be plain text under a .gz name), reproducible: no time in the header."""
    assert invoke("label", tsv, "-o", tmp_path / name).exit_code == 0
    data = (tmp_path / name).read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0"  # gzip magic, mtime 0
    plain = tmp_path / name.removesuffix(".gz")
    invoke("label", tsv, "-o", plain)
    assert gzip.decompress(data) == plain.read_bytes()
    assert rows_of(gzip.decompress(data).decode(), delimiter)[1][0] == "Clerk"
    # The library reads it back (.gz input) as the same rows.
    again = tmp_path / "again.csv"
    assert invoke("label", tmp_path / name, "-o", again, "--prefix", "x_").exit_code == 0
    assert rows_of(again.read_text(encoding="utf-8"), ",")[1][:8] == rows_of(plain.read_text(encoding="utf-8"), delimiter)[1]


def test_stdout_keeps_the_input_delimiter_unless_asked(tsv, tmp_path):
    assert "\t" in invoke("label", tsv).stdout.splitlines()[0]
    assert invoke("label", tsv, "--output-format", "csv").stdout.splitlines()[0] == ",".join(["role", "duty", *ADDED_COLUMNS])
    comma = tmp_path / "in.csv"
    comma.write_text(TSV.replace("\t", ",", 2).replace("Agent\t", "Agent,\"").replace("outcome\n", "outcome\"\n"), encoding="utf-8")
    assert invoke("label", comma, "--output-format", "tsv").stdout.splitlines()[0] == "\t".join(["role", "duty", *ADDED_COLUMNS])


def test_jsonl_output_types_the_added_columns(tsv, tmp_path):
    """JSON Lines: one object a row, input cells as strings, confidences numbers, needs_review a boolean, empties null."""
    for target in ("out.jsonl", "out.ndjson"):
        assert invoke("label", tsv, "-o", tmp_path / target).exit_code == 0
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "out.ndjson").read_text(encoding="utf-8").splitlines() == lines
    first = json.loads(lines[0])
    assert list(first) == ["role", "duty", *ADDED_COLUMNS]
    assert first["role"] == "Clerk" and first["office"] == "back-office"
    assert isinstance(first["office_confidence"], float) and first["needs_review"] is False and first["review_reason"] is None
    csv_rows = rows_of(invoke("label", tsv).stdout, "\t")
    for line, row in zip(lines, csv_rows[1:]):
        record = json.loads(line)
        assert f"{record['office_confidence']:.4f}" == row[3] and record["function"] == row[4]
    assert invoke("label", tsv, "--output-format", "jsonl").stdout.splitlines() == lines
    assert invoke("label", tsv, "-o", tmp_path / "out.jsonl.gz").exit_code == 0
    assert gzip.decompress((tmp_path / "out.jsonl.gz").read_bytes()).decode().splitlines() == lines


def test_jsonl_refuses_repeated_column_names(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("note,duty,note\na,process invoices,b\n", encoding="utf-8")
    result = invoke("label", source, "-o", tmp_path / "out.jsonl", "--text-column", "duty")
    assert result.exit_code == 1
    assert result.stderr == "Error: JSON Lines needs distinct column names, and 'note' repeat; rename them or write .csv\n"
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "out.csv", "--output-format", "tsv"], "--output-format tsv does not match the output's name out.csv"),
        (["-o", "out.parquet.gz"], "out.parquet.gz: .parquet files are compressed already; drop the .gz"),
        (["-o", "out.xlsx.gz"], "out.xlsx.gz: .xlsx files are compressed already; drop the .gz"),
        (["--sheet", "Duties"], "--sheet is for Excel workbook inputs (.xlsx, .xls, ...), and "),
        (["--engine", "dask", "-o", "parts/", "--output-format", "csv"], "--output-format applies to the local engine"),
        (["--engine", "dask", "-o", "parts/", "--excel-safe"], "--excel-safe applies to the local engine"),
        (["--engine", "dask", "-o", "out.xlsx"], "--engine dask writes a directory of csv or parquet parts, not out.xlsx"),
    ],
)
def test_format_usage_errors(tsv, tmp_path, monkeypatch, args, message):
    """A name and a format that disagree, or an option the engine cannot honour: usage error (2), nothing written."""
    monkeypatch.chdir(tmp_path)
    result = invoke("label", tsv, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("Error:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tsv"]


def test_format_for_unknown_names_follow_the_input_or_the_request():
    assert format_for("labelled.txt", "\t").delimiter == "\t"
    assert format_for("labelled.txt", "\t", "csv").delimiter == ","
    assert format_for("labelled.txt.gz", ";").gzip and format_for("labelled.txt.gz", ";").delimiter == ";"
    assert format_for("labelled.tsv", ",", "tsv").delimiter == "\t"
    with pytest.raises(ValueError):
        format_for("x.csv", ",", "xml")


# -- --excel-safe -----------------------------------------------------------------------------
DANGEROUS = ["=HYPERLINK(\"http://x\",\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\tTab first", "\rCR first"]
HARMLESS = ["process invoices", "-12.5", "+44", "1e5", "", "a=b", "x-y@z"]


@pytest.mark.parametrize("cell", DANGEROUS)
def test_excel_safe_prefixes_formula_starts(cell):
    assert excel_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", HARMLESS)
def test_excel_safe_leaves_plain_cells_and_numbers(cell):
    assert excel_safe(cell) == cell


@pytest.mark.parametrize("suffix, delimiter", [(".csv", ","), (".tsv", "\t"), ("-", ",")])
def test_excel_safe_in_csv_and_tsv_output(tmp_path, suffix, delimiter):
    """Every input cell (the duty and the others, the header too) that would run as a formula gets its apostrophe;
    without the flag the cells are written as they are; the added columns are never touched."""
    source = tmp_path / "in.csv"
    with open(source, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["role", "duty", "=note"])
        for n, cell in enumerate(DANGEROUS + HARMLESS):
            writer.writerow([cell, f"process invoices {n}" if n % 2 else cell, "-3"])

    def run(name: str, *flags: str) -> str:
        if suffix == "-":
            return invoke("label", source, "--text-column", "duty", "--output-format", "csv", *flags).stdout
        assert invoke("label", source, "--text-column", "duty", "-o", tmp_path / (name + suffix), *flags).exit_code == 0
        with open(tmp_path / (name + suffix), encoding="utf-8", newline="") as handle:  # a lone \r stays a \r
            return handle.read()

    safe_rows, plain_rows = rows_of(run("safe", "--excel-safe"), delimiter), rows_of(run("plain"), delimiter)
    assert plain_rows[0][:3] == ["role", "duty", "=note"] and safe_rows[0][:3] == ["role", "duty", "'=note"]
    assert len(safe_rows) == len(plain_rows) == 1 + len(DANGEROUS + HARMLESS)
    for safe_row, plain_row in zip(safe_rows[1:], plain_rows[1:]):
        assert safe_row[:3] == [excel_safe(c) for c in plain_row[:3]]
        assert safe_row[3:] == plain_row[3:]  # the labels are of the text itself, not of the prefixed cell
    assert [r[0] for r in plain_rows[1:]] == DANGEROUS + HARMLESS
    assert [r[0] for r in safe_rows[1 : 1 + len(DANGEROUS)]] == ["'" + c for c in DANGEROUS]
    assert [r[0] for r in safe_rows[1 + len(DANGEROUS) :]] == HARMLESS


def test_excel_safe_is_the_same_bytes_when_nothing_is_dangerous(tsv, tmp_path):
    invoke("label", tsv, "-o", tmp_path / "a.csv")
    invoke("label", tsv, "-o", tmp_path / "b.csv", "--excel-safe")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_library_takes_the_same_options(tsv, tmp_path):
    label_csv(tsv, tmp_path / "lib.csv", excel_safe=True)
    invoke("label", tsv, "-o", tmp_path / "cli.csv", "--excel-safe")
    assert (tmp_path / "lib.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    out = io.StringIO()
    label_csv(tsv, None, stdout=out, output_format="jsonl")
    assert json.loads(out.getvalue().splitlines()[0])["duty"] == "process invoices"


# -- --top-functions in every format ----------------------------------------------------------
RUNNERS = ["function_2", "function_2_confidence"]
TOP_DUTIES = ["process invoices", "answer live chat inquiries", "", "reconcile bank statements and post journal entries"]


def _records(path: Path) -> list[dict]:
    """The rows of a labelled .jsonl, .jsonl.gz, .parquet or .xlsx as dicts, read independently of bpo_classify."""
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if name.endswith(".xlsx"):
        import python_calamine

        book = python_calamine.CalamineWorkbook.from_path(str(path))
        try:
            header, *rows = book.get_sheet_by_name(book.sheet_names[0]).to_python()
        finally:
            book.close()
        return [dict(zip(header, (None if v == "" else v for v in row))) for row in rows]
    data = gzip.decompress(path.read_bytes()).decode() if name.endswith(".gz") else path.read_text(encoding="utf-8")
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.parquet", "out.xlsx"])
def test_top_functions_columns_in_every_typed_format(tmp_path, model, name):
    """label --top-functions 2 to .jsonl (also gzipped), .parquet and .xlsx: function_2 and
    function_2_confidence follow review_reason, typed (a string and a number, null for an empty text), with
    the API's values; the sink's columns come from the run, not from the six fixed ones."""
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow", reason="pyarrow (the parquet extra) is not installed")
    if name.endswith(".xlsx"):
        pytest.importorskip("python_calamine", reason="the excel extra is not installed")
        pytest.importorskip("xlsxwriter", reason="the excel extra is not installed")
    source = tmp_path / "in.csv"
    source.write_text("id,duty\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TOP_DUTIES)), encoding="utf-8")
    out = tmp_path / name
    result = invoke("label", source, "-o", out, "--top-functions", "2", "--text-column", "duty")
    assert result.exit_code == 0, result.output
    records = _records(out)
    assert len(records) == len(TOP_DUTIES)
    assert list(records[0]) == ["id", "duty", *ADDED_COLUMNS, *RUNNERS]
    for record, text, p in zip(records, TOP_DUTIES, model.predict(TOP_DUTIES, top_functions=2)):
        if not text:
            assert record["function_2"] is None and record["function_2_confidence"] is None
            continue
        function, confidence = p.runners_up[0]
        assert record["function_2"] == function
        assert isinstance(record["function_2_confidence"], float)
        assert record["function_2_confidence"] == pytest.approx(confidence, abs=5e-5)  # written to four decimals
        assert record["function_2_confidence"] <= record["function_confidence"]


def test_label_to_xlsx_with_top_functions_then_summarize_it(tmp_path):
    """`label x.csv -o y.xlsx --top-functions 2` then `summarize y.xlsx` (and its --html report, which reads the
    rows to review from the workbook): the summary is the labelled CSV's, the runner-up columns ignored."""
    pytest.importorskip("python_calamine", reason="the excel extra is not installed")
    pytest.importorskip("xlsxwriter", reason="the excel extra is not installed")
    sample = Path(__file__).resolve().parent.parent / "datasets" / "sample_job_duties.csv"
    book, plain = tmp_path / "y.xlsx", tmp_path / "plain.csv"
    assert invoke("label", sample, "-o", book, "--top-functions", "2", "--text-column", "duty").exit_code == 0
    assert invoke("label", sample, "-o", plain, "--text-column", "duty").exit_code == 0
    assert list(_records(book)[0])[-2:] == RUNNERS

    def summary(path: Path) -> dict:
        result = invoke("summarize", path, "--by", "role", "--format", "json")
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        body.pop("source")
        return body

    expected = summary(plain)
    assert expected["total"]["needs_review"] > 0
    assert summary(book) == expected
    report = tmp_path / "report.html"
    result = invoke("summarize", book, "--by", "role", "--html", report, "--text-column", "duty")
    assert result.exit_code == 0, result.output
    flagged = [r for r in _records(book) if r["needs_review"] is True]
    assert len(flagged) == expected["total"]["needs_review"]
    page = report.read_text(encoding="utf-8")
    from html import escape

    assert all(escape(r["duty"]) in page for r in flagged)
