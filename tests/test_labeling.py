"""Batch labelling: golden files, every row and column kept, clear errors, atomic output."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpo_classify.cli import cli
from bpo_classify.labeling import ADDED_COLUMNS, choose_text_column, label_csv
from bpo_classify.errors import MissingColumnError
from conftest import read_csv, write_csv

from golden.regenerate import cases, compare, expected_path, run_case

GOLDEN = Path(__file__).parent / "golden"
CASES = cases(GOLDEN)


def _read(path: Path) -> list[list[str]]:
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t" if path.suffix == ".tsv" else ","))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case, tmp_path):
    """Labelling each golden input gives exactly the expected file (rewrite them only with `make goldens`)."""
    out = tmp_path / f"out{expected_path(case).suffix}"
    code, output = run_case(case, out)
    assert code == 0, output
    assert compare(case, out) is None


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_comparison_fails_on_one_changed_byte(case, where, tmp_path):
    """A copy of a case whose expected file differs by one byte fails the same comparison test_golden makes."""
    import shutil

    copy = tmp_path / case.name
    shutil.copytree(case, copy)
    expected = expected_path(copy)
    data = bytearray(expected.read_bytes())
    at = {"first": 0, "middle": len(data) // 2, "last": len(data) - 2}[where]
    data[at] = ord("#") if data[at] != ord("#") else ord("%")
    expected.write_bytes(bytes(data))
    out = tmp_path / f"out{expected.suffix}"
    code, output = run_case(copy, out)
    assert code == 0, output
    assert compare(copy, out) is not None
    assert compare(case, out) is None  # the real case still matches: only the byte made the difference


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_keeps_every_row_and_column(case):
    """Independently of the labels: same rows, same order, input columns unchanged, five columns added."""
    source = next(case.glob("input.*"))
    rows_in, rows_out = _read(source), _read(case / f"expected{source.suffix}")
    assert len(rows_out) == len(rows_in)
    width = len(rows_in[0])
    assert [r[:width] for r in rows_out] == rows_in
    prefix = "bpo_" if "--prefix" in (case / "args.json").read_text() else ""
    assert rows_out[0][width:] == [prefix + c for c in ADDED_COLUMNS]


def test_thousand_rows_with_blanks(tmp_path):
    """1,000 rows in, 1,000 out; blank texts get empty labels and needs_review true."""
    source = GOLDEN / "thousand_rows" / "input.csv"
    out = tmp_path / "o.csv"
    summary = label_csv(source, out, text_column="duty")
    rows = read_csv(out)
    assert summary.rows == 1000 and len(rows) == 1001
    blanks = [r for r in rows[1:] if not r[2].strip()]
    assert blanks and all(r[4:] == ["", "", "", "", "true", "empty"] for r in blanks)
    offices = [r[4] for r in rows[1:]]
    reviews = [r[8] for r in rows[1:]]
    # The summary counts what was written.
    assert (summary.front, summary.back, summary.empty) == (
        offices.count("front-office"), offices.count("back-office"), len(blanks)
    )
    assert summary.needs_review == reviews.count("true") and summary.front and summary.back


def test_stdin_to_stdout(runner):
    """`-` reads CSV from stdin and writes to stdout; the summary goes to stderr."""
    result = runner.invoke(cli, ["label", "-"], input="duty\nprocess invoices\n", catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "duty," + ",".join(ADDED_COLUMNS)
    assert result.stdout.splitlines()[1].startswith("process invoices,back-office,")
    assert "labelled 1 rows: 0 front-office, 1 back-office" in result.stderr


def test_text_column_inference():
    """One plausible column is picked; ambiguity is an error that lists the columns."""
    assert choose_text_column(["id", "Job Duty", "dept"]) == 1
    assert choose_text_column(["only"]) == 0
    with pytest.raises(MissingColumnError, match="columns: id, duty, description; name one with --text-column"):
        choose_text_column(["id", "duty", "description"])
    with pytest.raises(MissingColumnError, match="no column is obviously the text"):
        choose_text_column(["a", "b"])


def test_existing_column_needs_prefix(runner, tmp_path):
    """An added column already in the input is an error naming --prefix, and no output is written."""
    source = write_csv(tmp_path / "in.csv", [["duty", "office"], ["process invoices", "x"]])
    out = tmp_path / "out.csv"
    result = runner.invoke(cli, ["label", str(source), "-o", str(out), "--text-column", "duty"])
    assert result.exit_code == 1
    assert "input already has column(s) office; choose another --prefix" in result.output
    assert not out.exists()


def test_missing_text_column_lists_columns(runner, tmp_path):
    """A --text-column that is not there names the available ones."""
    source = write_csv(tmp_path / "in.csv", [["a", "b"], ["1", "2"]])
    result = runner.invoke(cli, ["label", str(source), "--text-column", "duty"])
    assert result.exit_code == 1
    assert "column 'duty' not found" in result.output and "available: a, b" in result.output


def test_bad_input_leaves_no_output_and_input_untouched(runner, tmp_path):
    """A decode error mid-file: exit 1, no output file (not even a temp file), input bytes unchanged."""
    source = tmp_path / "in.csv"
    data = ("duty\n" + "process invoices\n" * 20000).encode("utf-8") + b"caf\xe9\n"
    source.write_bytes(data)
    out = tmp_path / "out.csv"
    result = runner.invoke(cli, ["label", str(source), "-o", str(out)])
    assert result.exit_code == 1 and "not valid utf-8" in result.output and "--encoding" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    assert source.read_bytes() == data
    ok = runner.invoke(cli, ["label", str(source), "-o", str(out), "--encoding", "latin-1"], catch_exceptions=False)
    assert ok.exit_code == 0 and len(read_csv(out)) == 20002


def test_refuses_to_overwrite_input(runner, tmp_path):
    """-o pointing at the input is refused; the input is unchanged."""
    source = write_csv(tmp_path / "in.csv", [["duty"], ["process invoices"]])
    before = source.read_bytes()
    result = runner.invoke(cli, ["label", str(source), "-o", str(tmp_path / "." / "in.csv")])
    assert result.exit_code == 1 and "refusing to overwrite the input" in result.output
    assert source.read_bytes() == before


def test_ragged_rows(runner, tmp_path):
    """Short rows are padded and reported with their row numbers; long rows are an error naming the row."""
    source = write_csv(tmp_path / "in.csv", [["id", "duty", "x"], ["1", "process invoices", "a"], ["2", "run payroll"]])
    out = tmp_path / "o.csv"
    result = runner.invoke(cli, ["label", str(source), "-o", str(out), "--text-column", "duty"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "1 short rows padded with empty fields (rows 2)" in result.output
    assert read_csv(out)[2][:3] == ["2", "run payroll", ""]
    bad = write_csv(tmp_path / "bad.csv", [["id", "duty"], ["1", "process invoices"], ["2", "x", "extra"]])
    result = runner.invoke(cli, ["label", str(bad), "-o", str(out), "--text-column", "duty"])
    assert result.exit_code == 1 and "data row 2 has 3 fields but the header has 2" in result.output


def test_empty_file_and_missing_output_dir(runner, tmp_path):
    """An empty input and an output directory that does not exist: one-line errors."""
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    result = runner.invoke(cli, ["label", str(empty)])
    assert result.exit_code == 1 and "is empty" in result.output
    source = write_csv(tmp_path / "in.csv", [["duty"], ["x"]])
    result = runner.invoke(cli, ["label", str(source), "-o", str(tmp_path / "nope" / "o.csv")])
    assert result.exit_code == 1 and "output directory does not exist" in result.output


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077], ids=["022", "027", "077"])
def test_output_file_gets_the_mode_of_a_new_file(tmp_path, umask, monkeypatch):
    """The labelled file is readable as any new file is (0o666 less the umask), and writing it never changes the umask."""
    import os
    import stat

    source = write_csv(tmp_path / "in.csv", [["duty"], ["process invoices"]])
    old = os.umask(umask)
    try:
        def no_umask(mask):
            raise AssertionError("os.umask changes the whole process's umask")

        monkeypatch.setattr(os, "umask", no_umask)
        label_csv(source, tmp_path / "out.csv")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o666 & ~umask
