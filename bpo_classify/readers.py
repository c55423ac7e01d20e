"""One way to open any table a command reads: delimited text, an Excel workbook or Parquet, chosen by the name.

:func:`open_table` gives a reader with the same face whatever the format: ``header``
(text), ``name`` (for messages), ``delimiter`` (what standard output keeps), ``line``,
iteration over rows, ``text_at``, ``progress`` and ``close``. Text files go to
:class:`~bpo_classify.tables.TableReader` (which also refuses a workbook or Parquet file
under a text name, saying what to do), workbooks to :class:`~bpo_classify.excel.ExcelReader`,
``.parquet`` to :class:`ParquetReader`.

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "duties.tsv"
    >>> _ = p.write_text("role\\tduty\\nClerk\\tprocess invoices\\n", encoding="utf-8")
    >>> with open_table(p) as table:
    ...     table.header, list(table)
    (['role', 'duty'], [['Clerk', 'process invoices']])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from .errors import InputFileError
from .extras import PARQUET
from .tables import TableReader, TableSource, opening_error

#: Rows read from a Parquet file at a time.
PARQUET_BATCH = 5000


def is_parquet_name(path: str | Path) -> bool:
    """Whether ``path``'s name says Parquet.

    Example:
        >>> is_parquet_name("labelled.parquet"), is_parquet_name("labelled.csv")
        (True, False)
    """
    return str(path).lower().endswith(".parquet")


def open_table(
    path: str | Path, encoding: str = "utf-8", *, sheet: str | None = None, typed: bool = False, name: str | None = None
) -> Any:
    """A reader for ``path`` (``-``: standard input, as text): a workbook by its name (``.xlsx``, ``.xls``, ...),
    Parquet by ``.parquet``, else delimited text in ``encoding``.

    ``sheet`` picks a workbook's sheet (an error for other formats); ``typed`` keeps a
    workbook's numbers, dates and booleans as such (else every cell is text).
    """
    from .excel import ExcelReader, is_workbook_name

    if str(path) != "-" and is_workbook_name(path):
        return ExcelReader(path, sheet, typed=typed, name=name)
    if sheet is not None:
        raise InputFileError(f"--sheet is for Excel workbooks (.xlsx, .xls, ...), and {name or path} is not one")
    if str(path) != "-" and is_parquet_name(path):
        return ParquetReader(path, name=name)
    return TableReader(path, encoding, name=name)


def _text(value: Any) -> str:
    """A Parquet value as a CSV would hold it (booleans ``true``/``false`` as ``label`` writes them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)


class ParquetReader(TableSource):
    """Rows of a Parquet file as lists of text, :data:`PARQUET_BATCH` rows at a time (memory stays flat).

    Example:
        >>> import pathlib, tempfile
        >>> from bpo_classify.labeling import label_csv
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "duties.csv").write_text("role,duty\\nClerk,process invoices\\n", encoding="utf-8")
        >>> _ = label_csv(d / "duties.csv", d / "labelled.parquet")
        >>> next(iter(ParquetReader(d / "labelled.parquet")))
        ['Clerk', 'process invoices', 'back-office', '0.9999', 'finance_accounting', '0.9992', 'false', '']
    """

    delimiter = ","

    def __init__(self, path: str | Path, name: str | None = None):
        PARQUET.require("reading Parquet", " (or give a .csv)")
        import pyarrow
        import pyarrow.parquet as pq

        self.path = str(path)
        self.name = name or self.path
        if Path(path).is_dir():
            raise InputFileError(f"{self.name} is a directory; pass a Parquet file")
        try:
            self._file = pq.ParquetFile(path)
        except (FileNotFoundError, PermissionError) as exc:
            raise opening_error(self.name, exc) from None
        except (pyarrow.ArrowException, OSError) as exc:
            raise InputFileError(f"cannot read {self.name} as Parquet ({str(exc).splitlines()[0]}); is it damaged?") from None
        self.header: list[str] = list(self._file.schema_arrow.names)
        self.total = self._file.metadata.num_rows
        self.line = 0

    def progress(self) -> tuple[int, int | None]:
        """Rows read so far and the file's rows."""
        return self.line, self.total

    def __iter__(self) -> Iterator[list[str]]:
        import pyarrow

        try:
            for batch in self._file.iter_batches(PARQUET_BATCH):
                columns = [list(map(_text, column.to_pylist())) for column in batch.columns]
                for row in zip(*columns):
                    self.line += 1
                    yield list(row)
        except (pyarrow.ArrowException, OSError) as exc:
            raise InputFileError(f"cannot read {self.name} after row {self.line}: {str(exc).splitlines()[0]}") from None

    def close(self) -> None:
        self._file.close()
