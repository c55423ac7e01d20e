"""Excel in and out: a 10,000-row typed workbook round trip, CSV to .xlsx, --sheet, limits, damaged and
password-protected workbooks, the missing extra, and workbooks given under a text name."""

from __future__ import annotations

import csv
import datetime
import io
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

python_calamine = pytest.importorskip("python_calamine", reason="the excel extra is not installed (make install-dev)")
xlsxwriter = pytest.importorskip("xlsxwriter", reason="the excel extra is not installed (make install-dev)")

from bpo_classify import excel  # noqa: E402
from bpo_classify.cli import cli  # noqa: E402
from bpo_classify.labeling import ADDED_COLUMNS  # noqa: E402

ROWS = 10_000
DUTIES = [
    "Process vendor invoices and match them to purchase orders",
    "Answer inbound customer calls about billing questions",
    "Reconcile bank statements, and post journal entries",
    "=HYPERLINK(\"http://example.invalid\",\"click\")",  # text that looks like a formula stays text
    "Run payroll for hourly employees\nand check overtime",
    "",
    "Call prospects to book product demos",
    "Große Straße: update supplier master data",
]


def invoke(*args: object):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def sheet_values(path: Path, sheet: str | None = None) -> list[list[object]]:
    """Every cell of a sheet as python-calamine reads it (independently of bpo_classify's reader)."""
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        return book.get_sheet_by_name(sheet or book.sheet_names[0]).to_python()
    finally:
        book.close()


def typed_workbook(path: Path, rows: int = ROWS) -> None:
    """A workbook as an HR export makes it: text, numbers, dates, times, booleans, empty cells, formulas with
    their cached results (as Excel saves them), a second sheet first so that --sheet matters."""
    book = xlsxwriter.Workbook(str(path))
    other = book.add_worksheet("Notes")
    other.write_string(0, 0, "not this sheet")
    sheet = book.add_worksheet("Duties")
    date, stamp, clock = (book.add_format({"num_format": f}) for f in ("dd/mm/yyyy", "yyyy-mm-dd hh:mm", "hh:mm"))
    for c, name in enumerate(["id", "role", "duty", "hours_per_week", "start_date", "updated", "shift", "remote", "double_hours", "note"]):
        sheet.write_string(0, c, name)
    for r in range(1, rows + 1):
        sheet.write_number(r, 0, r)
        sheet.write_string(r, 1, f"Role {r % 37}")
        if DUTIES[r % len(DUTIES)]:
            sheet.write_string(r, 2, DUTIES[r % len(DUTIES)])
        if r % 11:  # every eleventh hours cell is empty
            sheet.write_number(r, 3, (r % 40) + 0.5)
        sheet.write_datetime(r, 4, datetime.date(2020, 1, 1) + datetime.timedelta(days=r % 1500), date)
        sheet.write_datetime(r, 5, datetime.datetime(2024, 5, 1, 8, 0) + datetime.timedelta(minutes=r), stamp)
        sheet.write_datetime(r, 6, datetime.time(r % 24, 30), clock)
        sheet.write_boolean(r, 7, r % 3 == 0)
        hours = (r % 40) + 0.5 if r % 11 else 0
        sheet.write_formula(r, 8, f"=D{r + 1}*2", None, hours * 2)  # a formula, with the value Excel computed
        if r % 5 == 0:
            sheet.write_formula(r, 9, f'="n"&A{r + 1}', None, f"n{r}")
    book.close()


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("excel") / "duties.xlsx"
    typed_workbook(path)
    return path


@pytest.fixture(scope="module")
def labelled(workbook) -> Path:
    out = workbook.with_name("labelled.xlsx")
    result = invoke("label", workbook, "--sheet", "Duties", "--text-column", "duty", "-o", out)
    assert result.exit_code == 0, result.output
    return out


def test_round_trip_keeps_every_cell(workbook, labelled):
    """Every cell of the 10,000-row sheet comes back unchanged (type and value), beside the added columns."""
    before, after = sheet_values(workbook, "Duties"), sheet_values(labelled)
    assert len(after) == len(before) == ROWS + 1
    width = len(before[0])
    assert after[0] == before[0] + list(ADDED_COLUMNS)
    for row_before, row_after in zip(before, after):
        assert row_after[:width] == row_before
        assert [type(v) for v in row_after[:width]] == [type(v) for v in row_before]
    # What the workbook holds is what was written: numbers, dates, times, booleans, empty cells, cached formula values.
    row = after[22]  # r = 22: an empty hours cell (22 % 11 == 0)
    assert row[0] == 22.0 and row[3] == "" and row[8] == 0.0
    assert after[5][4] == datetime.date(2020, 1, 6) and after[5][5] == datetime.datetime(2024, 5, 1, 8, 5)
    assert after[5][6] == datetime.time(5, 30) and after[6][7] is True and after[5][7] is False
    assert after[5][8] == 11.0 and after[5][9] == "n5" and after[6][9] == ""
    assert after[3][2] == DUTIES[3] and isinstance(after[3][2], str)


def test_added_columns_are_typed_and_match_csv_labels(workbook, labelled, tmp_path):
    """The labels in the .xlsx are those `label` writes to CSV for the same sheet; confidences are numbers,
    needs_review a boolean, empty cells where a CSV has empty strings."""
    as_csv = tmp_path / "labelled.csv"
    assert invoke("label", workbook, "--sheet", "Duties", "--text-column", "duty", "-o", as_csv).exit_code == 0
    with open(as_csv, encoding="utf-8", newline="") as handle:
        csv_rows = list(csv.reader(handle))
    after = sheet_values(labelled)
    n = len(ADDED_COLUMNS)
    for xlsx_row, csv_row in zip(after[1:], csv_rows[1:]):
        office, p_office, function, p_function, review, reason = xlsx_row[-n:]
        assert [office, function, reason] == [csv_row[-6], csv_row[-4], csv_row[-1]]
        assert review is (csv_row[-2] == "true")
        assert (f"{p_office:.4f}" if p_office != "" else "") == csv_row[-5]
        assert (f"{p_function:.4f}" if p_function != "" else "") == csv_row[-3]
    # The CSV holds the sheet's cells as text: whole numbers without .0, ISO dates, TRUE/FALSE.
    assert csv_rows[0][:5] == ["id", "role", "duty", "hours_per_week", "start_date"]
    assert csv_rows[5][:8] == ["5", "Role 5", DUTIES[5], "5.5", "2020-01-06", "2024-05-01 08:05:00", "05:30:00", "FALSE"]
    empty = [r for r in csv_rows[1:] if r[2] == ""]
    assert empty and all(r[-2:] == ["true", "empty"] for r in empty)


def test_csv_to_xlsx_writes_text_as_text(tmp_path):
    """From CSV every input cell is written as text: "=1+1", "00123", "1e5", "TRUE" stay the strings they are."""
    source = tmp_path / "in.csv"
    cells = ["=1+1", "00123", "1e5", "TRUE", "2024-01-05", "+44 20 7946 0000"]
    with open(source, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "duty"])
        for cell in cells:
            writer.writerow([cell, "process invoices"])
        writer.writerow(["", ""])
    out = tmp_path / "out.xlsx"
    assert invoke("label", source, "--text-column", "duty", "-o", out).exit_code == 0
    values = sheet_values(out)
    assert values[0] == ["code", "duty", *ADDED_COLUMNS]
    assert [row[0] for row in values[1:]] == cells + [""]
    assert all(isinstance(row[0], str) for row in values[1:])
    assert values[1][2:] == ["back-office", 0.9999, "finance_accounting", 0.9992, False, ""]
    assert values[-1][1:] == ["", "", "", "", "", True, "empty"]
    with zipfile.ZipFile(out) as archive:  # no formula anywhere in the sheet's XML
        assert "<f>" not in archive.read("xl/worksheets/sheet1.xml").decode()


def test_the_first_sheet_by_default_and_an_unknown_sheet(workbook, tmp_path):
    result = invoke("label", workbook, "-o", tmp_path / "first.csv")
    assert result.exit_code == 0  # the first sheet (Notes): its only cell is its header, so no rows
    assert (tmp_path / "first.csv").read_text(encoding="utf-8") == ",".join(["not this sheet", *ADDED_COLUMNS]) + "\n"
    result = invoke("label", workbook, "--sheet", "Dutis", "-o", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {workbook} has no sheet 'Dutis'; sheets: Notes, Duties; use --sheet NAME\n"
    assert not (tmp_path / "out.csv").exists()


def test_xlsx_to_stdout_and_summarize_reads_it(workbook, labelled):
    """Stdout gets CSV of the sheet; summarize reads the labelled workbook as it reads the CSV."""
    result = invoke("label", workbook, "--sheet", "Duties", "--text-column", "duty", "-q")
    assert result.exit_code == 0 and result.stdout.splitlines()[0].startswith("id,role,duty,hours_per_week,")
    from_xlsx = invoke("summarize", labelled, "--by", "role", "--weight", "hours_per_week", "--format", "csv")
    Path(labelled.with_name("labelled-stdout.csv")).write_text(result.stdout, encoding="utf-8")
    from_csv = invoke("summarize", labelled.with_name("labelled-stdout.csv"), "--by", "role", "--weight", "hours_per_week", "--format", "csv")
    assert from_xlsx.exit_code == 0, from_xlsx.output
    assert from_xlsx.stdout == from_csv.stdout and len(from_xlsx.stdout.splitlines()) == 1 + 37 + 1


def test_row_limit_is_a_clear_error(tmp_path, monkeypatch):
    """More rows than a sheet holds: one line naming the limit, exit 1, no output left behind."""
    monkeypatch.setattr(excel, "MAX_ROWS", 3)
    source = tmp_path / "in.csv"
    source.write_text("duty\n" + "process invoices\n" * 3, encoding="utf-8")
    result = invoke("label", source, "-o", tmp_path / "out.xlsx")
    assert result.exit_code == 1
    assert result.stderr == "Error: the output has more than 3 rows (header included), the most an Excel sheet holds; write .csv or .parquet\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    source.write_text("duty\n" + "process invoices\n" * 2, encoding="utf-8")
    assert invoke("label", source, "-o", tmp_path / "out.xlsx").exit_code == 0
    assert len(sheet_values(tmp_path / "out.xlsx")) == 3


def test_a_cell_too_long_for_excel(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("duty\nprocess invoices\n" + "x" * (excel.MAX_CELL_CHARS + 1) + "\n", encoding="utf-8")
    result = invoke("label", source, "-o", tmp_path / "out.xlsx")
    assert result.exit_code == 1
    assert result.stderr == "Error: data row 2 column 1 holds 32,768 characters; Excel cells hold at most 32,767: write .csv\n"
    assert not (tmp_path / "out.xlsx").exists()


def test_damaged_workbooks(workbook, tmp_path):
    """A truncated workbook, a text file named .xlsx, an empty one: one line each, exit 1, nothing written."""
    cases = {
        "truncated.xlsx": workbook.read_bytes()[: 3000],
        "text.xlsx": b"role,duty\nClerk,process invoices\n",
        "empty.xlsx": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = invoke("label", tmp_path / name, "-o", tmp_path / "out.csv")
        assert result.exit_code == 1, (name, result.output)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
        assert str(tmp_path / name) in result.stderr
        assert not (tmp_path / "out.csv").exists()
    assert "is empty" in invoke("label", tmp_path / "empty.xlsx").stderr
    assert "as an Excel workbook" in invoke("label", tmp_path / "truncated.xlsx").stderr


def test_password_protected_workbook(tmp_path):
    """A real encrypted workbook (Excel's "Encrypt with password", made with msoffcrypto-tool): one line, exit 1."""
    msoffcrypto = pytest.importorskip("msoffcrypto", reason="msoffcrypto-tool (dev extra) makes the encrypted workbook")
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = tmp_path / "plain.xlsx"
    typed_workbook(plain, rows=5)
    locked = tmp_path / "locked.xlsx"
    with open(plain, "rb") as source, open(locked, "wb") as target:
        OOXMLFile(source).encrypt("secret", target)
    with open(locked, "rb") as handle:
        assert msoffcrypto.OfficeFile(handle).is_encrypted()
    expected = f"Error: {locked} is a password-protected Office file; save a copy without a password (as .xlsx) and label that\n"
    for target in (locked, tmp_path / "locked.csv"):  # by its name or under a text name
        if target != locked:
            target.write_bytes(locked.read_bytes())
        result = invoke("label", target, "-o", tmp_path / "out.csv")
        assert (result.exit_code, result.stderr) == (1, expected.replace(str(locked), str(target)))
    assert not (tmp_path / "out.csv").exists()


def test_workbooks_under_a_text_name_say_what_to_do(workbook, tmp_path):
    """A real .xlsx (zip magic) or .xls-style file (OLE magic) given to the CSV reader under any name is recognised,
    instead of the old advice to try --encoding latin-1; so is Parquet."""
    renamed = tmp_path / "export.csv"
    renamed.write_bytes(workbook.read_bytes())
    result = invoke("label", renamed, "-o", tmp_path / "out.csv")
    assert (result.exit_code, result.stderr) == (1, (
        f"Error: {renamed} is an Excel workbook (.xlsx), not CSV text: save or rename it as export.xlsx "
        "to read it as a workbook (pip install 'bpo-classify[excel]')\n"
    ))
    assert "latin-1" not in result.stderr
    stdin = CliRunner().invoke(cli, ["label", "-"], input=workbook.read_bytes())
    assert stdin.exit_code == 1 and "standard input is an Excel workbook (.xlsx)" in stdin.stderr
    old = tmp_path / "old.txt"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1000)
    result = invoke("label", old)
    assert result.stderr == (
        f"Error: {old} is an Excel 97-2003 workbook (or another Office file), not CSV text: save or rename it as old.xls "
        "to read it as a workbook (pip install 'bpo-classify[excel]')\n"
    )
    pytest.importorskip("pyarrow")
    invoke("label", tmp_path / "export.csv")  # (still refused)
    source = tmp_path / "in.csv"
    source.write_text("duty\nprocess invoices\n", encoding="utf-8")
    invoke("label", source, "-o", tmp_path / "l.parquet")
    (tmp_path / "l.csv").write_bytes((tmp_path / "l.parquet").read_bytes())
    result = invoke("summarize", tmp_path / "l.csv")
    assert result.stderr == f"Error: {tmp_path / 'l.csv'} is a Parquet file, not CSV text: name it l.parquet (Parquet is read by name)\n"


def test_missing_extra_is_one_line(tmp_path, monkeypatch):
    """Without the excel extra: a one-line error naming it, for reading and for writing."""
    for module in ("python_calamine", "xlsxwriter"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    source = tmp_path / "in.csv"
    source.write_text("duty\nprocess invoices\n", encoding="utf-8")
    result = invoke("label", source, "-o", tmp_path / "out.xlsx")
    assert result.stderr == (
        "Error: writing .xlsx needs python-calamine and XlsxWriter, which is not installed: "
        "pip install 'bpo-classify[excel]' (or write a .csv)\n"
    )
    (tmp_path / "in.xlsx").write_bytes(b"PK\x03\x04")
    result = invoke("label", tmp_path / "in.xlsx", "-o", tmp_path / "out.csv")
    assert result.exit_code == 1 and result.stderr == (
        "Error: reading Excel workbooks needs python-calamine and XlsxWriter, which is not installed: "
        "pip install 'bpo-classify[excel]' (or save the sheet as .csv)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "in.xlsx"]


def test_cell_text():
    assert excel.cell_text(datetime.timedelta(hours=30, minutes=5)) == "30:05:00"
    assert excel.cell_text(datetime.datetime(2024, 1, 5, 9, 30)) == "2024-01-05 09:30:00"
    assert excel.cell_text(-3.0) == "-3" and excel.cell_text(0.1) == "0.1" and excel.cell_text(False) == "FALSE"


def test_input_is_never_modified(workbook, labelled):
    data = io.BytesIO(workbook.read_bytes())
    assert invoke("label", workbook, "--sheet", "Duties", "--text-column", "duty", "-o", labelled.with_name("again.xlsx")).exit_code == 0
    assert workbook.read_bytes() == data.getvalue()
    assert sheet_values(labelled.with_name("again.xlsx")) == sheet_values(labelled)
