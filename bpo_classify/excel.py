"""Excel workbooks in and out: a sheet read as typed rows (python-calamine), labelled rows written as ``.xlsx`` (XlsxWriter).

Both are the optional extra ``excel`` (``pip install 'bpo-classify[excel]'``), imported
only here, inside the functions that need them. What a round trip keeps:

- every row and column of the sheet's used range, in order (leading empty rows and
  columns, outside the range, are not kept);
- each cell's value and type: text stays text, numbers numbers, dates and times dates and
  times (written as ``yyyy-mm-dd``, ``yyyy-mm-dd hh:mm:ss``, ``hh:mm:ss``), true/false
  booleans, empty cells empty;
- of a formula, the value it last computed (the cached value Excel saved), not the
  formula: the output is a data sheet, and a formula could point at rows, columns or
  sheets that are not in it. An error value (``#DIV/0!``) comes back as an empty cell;
- not formatting: fonts, colours, widths, merged cells, number formats other than the
  date ones above.

Text is always written as text, never as a formula, so an ``.xlsx`` output is safe from
formula injection whatever the duty texts say.

Example:
    >>> import pathlib, tempfile
    >>> from bpo_classify.labeling import label_csv
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "duties.csv").write_text("role,duty\\nClerk,process invoices\\n", encoding="utf-8")
    >>> _ = label_csv(d / "duties.csv", d / "labelled.xlsx")
    >>> with ExcelReader(d / "labelled.xlsx") as sheet:
    ...     sheet.header[:3], next(iter(sheet))[:4]
    (['role', 'duty', 'office'], ['Clerk', 'process invoices', 'back-office', 0.9999])
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from .errors import InputFileError, OutputFileError
from .extras import EXCEL
from .outputs import COLUMNS, Cells, Column, Sink
from .tables import TableSource, name_list, office_file_problem, opening_error

#: Names read as workbooks (python-calamine reads all of them; only ``.xlsx`` is written).
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
#: Excel's limits: rows and columns of a sheet, characters of a cell.
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
MAX_CELL_CHARS = 32_767

#: The number format each kind of date or time is written with.
_DATE_FORMATS = (
    (datetime.datetime, "yyyy-mm-dd hh:mm:ss"),
    (datetime.date, "yyyy-mm-dd"),
    (datetime.time, "hh:mm:ss"),
    (datetime.timedelta, "[h]:mm:ss"),
)


def is_workbook_name(path: str | Path) -> bool:
    """Whether ``path``'s name says it is a workbook (``.xlsx``, ``.xls``, ...).

    Example:
        >>> is_workbook_name("Duties.XLSX"), is_workbook_name("duties.csv")
        (True, False)
    """
    return str(path).lower().endswith(EXCEL_SUFFIXES)


def cell_text(value: Any) -> str:
    """A typed cell as a CSV would hold it: whole numbers without ``.0``, dates in ISO form, booleans ``TRUE``/``FALSE``.

    Example:
        >>> cell_text(40.0), cell_text(37.5), cell_text(datetime.date(2024, 1, 5)), cell_text(True), cell_text("")
        ('40', '37.5', '2024-01-05', 'TRUE', '')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{seconds % 60:02.0f}"
    return "" if value is None else str(value)


def _open_book(path: Path, name: str) -> Any:
    """The calamine workbook at ``path``; a one-line :class:`InputFileError` for what it cannot open."""
    import python_calamine

    if path.is_dir():
        raise InputFileError(f"{name} is a directory; pass a workbook file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise opening_error(name, exc) from None
    if not head:
        raise InputFileError(f"{name} is empty: expected an Excel workbook")
    problem = office_file_problem(head, name)
    if problem is not None and "password" in problem:
        raise InputFileError(problem)
    try:
        return python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError:
        raise InputFileError(f"{name} is password-protected; save a copy without a password and label that") from None
    except (python_calamine.CalamineError, OSError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"cannot read {name} as an Excel workbook ({detail}); is it damaged, or not a workbook?") from None


class ExcelReader(TableSource):
    """Rows of one sheet of a workbook as lists of typed cells (``str``, ``float``, ``bool``, dates),
    with the header (its cells as text) and row numbers, like :class:`~bpo_classify.tables.TableReader`.

    The header is the first row with a non-empty cell. ``typed=False`` gives every cell
    as text (:func:`cell_text`), for outputs that hold text only. The sheet is held in
    memory by python-calamine while it is read (about 0.1 KB a cell); rows become Python
    lists one at a time.
    """

    delimiter = ","  # what standard output is written with

    def __init__(self, path: str | Path, sheet: str | None = None, *, typed: bool = True, name: str | None = None):
        EXCEL.require("reading Excel workbooks", " (or save the sheet as .csv)")
        import python_calamine

        self.path = str(path)
        self.name = name or self.path
        self.typed = typed
        self._text: set[int] = set()
        book = _open_book(Path(path), self.name)
        try:
            sheets = book.sheet_names
            chosen = sheets[0] if sheet is None and sheets else sheet
            if chosen not in sheets:
                asked = f"no sheet {sheet!r}" if sheet is not None else "no sheets"
                raise InputFileError(f"{self.name} has {asked}; sheets: {name_list(sheets) or 'none'}; use --sheet NAME")
            self.sheet = str(chosen)
            data = book.get_sheet_by_name(self.sheet)
            self.total = data.total_height
            self._rows = iter(data.iter_rows())
            first = self._next()
            while first is not None and not any(cell != "" for cell in first):
                first = self._next()
        except python_calamine.CalamineError as exc:
            raise InputFileError(f"cannot read sheet {chosen!r} of {self.name}: {str(exc).splitlines()[0]}; is the workbook damaged?") from None
        finally:
            book.close()
        if first is None:
            raise InputFileError(f"{self.name}: sheet {self.sheet!r} is empty: expected a header row with column names")
        self.header: list[str] = [cell_text(cell) for cell in first]
        self.line = 0

    def _next(self) -> list[Any] | None:
        return next(self._rows, None)

    def text_at(self, index: int) -> None:
        """Give the cells of column ``index`` as text (the text column: a duty typed as a number is still text)."""
        self._text.add(index)

    def progress(self) -> tuple[int, int | None]:
        """Rows read so far and the sheet's rows (for a progress bar)."""
        return self.line, self.total

    def __iter__(self) -> Iterator[list[Any]]:
        text, typed = sorted(self._text), self.typed
        for row in self._rows:
            self.line += 1
            if not typed:
                yield [cell if isinstance(cell, str) else cell_text(cell) for cell in row]
                continue
            for j in text:
                if not isinstance(row[j], str):
                    row[j] = cell_text(row[j])
            yield row

    def close(self) -> None:
        self._rows = iter(())


class XlsxSink(Sink):
    """An ``.xlsx`` workbook of one sheet, ``labelled``: the header, then each row's cells with their
    types (text always as text, never a formula), the added columns typed as their
    :class:`~bpo_classify.outputs.CellType` says (probabilities numbers, ``needs_review`` a boolean).

    Rows are streamed to disk as they come (XlsxWriter's ``constant_memory`` mode), so memory
    stays flat; more than Excel's 1,048,576 rows (header included) is an :class:`OutputFileError`.
    """

    binary = True
    typed = True

    def __init__(
        self, out: IO[bytes], header: Sequence[str], delimiter: str = ",", columns: Sequence[Column] = COLUMNS,
        excel_safe: bool = False,
    ):
        super().__init__(out, header, delimiter, columns, excel_safe)
        if len(self.header) > MAX_COLUMNS:
            raise OutputFileError(
                f"the output would have {len(self.header):,} columns; Excel sheets hold at most {MAX_COLUMNS:,}: write .csv or .parquet"
            )
        import xlsxwriter

        # No guessing from text: a duty "=SUM(A1)" or "1e5" stays the text it is.
        options = {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
        self.book = xlsxwriter.Workbook(out, options)
        self.sheet = self.book.add_worksheet("labelled")
        self.formats = {kind: self.book.add_format({"num_format": spec}) for kind, spec in _DATE_FORMATS}
        self.added = [column.type.value for column in self.columns]
        self.row = 0
        self._write([*self.header])

    @classmethod
    def check(cls) -> None:
        EXCEL.require("writing .xlsx", " (or write a .csv)")

    @classmethod
    def extension(cls, delimiter: str = ",") -> str:
        return "xlsx"

    def write(self, rows: list[list[Any]], labels: Sequence[Cells]) -> None:
        if self.row + len(rows) > MAX_ROWS:
            raise OutputFileError(
                f"the output has more than {MAX_ROWS:,} rows (header included), the most an Excel sheet holds; write .csv or .parquet"
            )
        added = self.added
        for row, cells in zip(rows, labels):
            self._write(row + [value(cell) for value, cell in zip(added, cells)])

    def _write(self, cells: list[Any]) -> None:
        sheet, r = self.sheet, self.row
        for c, value in enumerate(cells):
            if value is None or value == "":
                continue
            kind = type(value)
            if kind is str:
                if len(value) > MAX_CELL_CHARS:
                    raise OutputFileError(
                        f"data row {r} column {c + 1} holds {len(value):,} characters; Excel cells hold at most {MAX_CELL_CHARS:,}: write .csv"
                    )
                sheet.write_string(r, c, value)
            elif kind is bool:
                sheet.write_boolean(r, c, value)
            elif kind is float or kind is int:
                if math.isfinite(value):
                    sheet.write_number(r, c, value)
                else:
                    sheet.write_string(r, c, str(value))
            else:
                form = next((f for t, f in self.formats.items() if isinstance(value, t)), None)
                if form is not None:
                    sheet.write_datetime(r, c, value, form)
                else:
                    sheet.write_string(r, c, str(value))
        self.row += 1

    def close(self) -> None:
        self.book.close()
