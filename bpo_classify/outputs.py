"""The output policy of labelling, in one place: the added columns, their types, the counts, the sinks.

Both engines (``labeling.py`` locally, ``dask_engine.py`` on a cluster) use it, so a
column, a type or a format changes here and nowhere else:

- :data:`COLUMNS`: the added columns as data, one :class:`Column` each (name, type, how
  a batch of predictions fills it); :func:`cells` gives a batch's CSV cells.
- :class:`Counts` and :class:`LabelSummary`: the front/back/empty/review counts and the
  one-line summary.
- :func:`too_long_row`: the message for a row with more fields than the header.
- :data:`SINKS`: where labelled rows go, one small class per format (:class:`CsvSink`,
  :class:`JsonlSink`, :class:`ParquetSink`, and ``excel.XlsxSink`` loaded when asked for);
  :func:`format_for` reads the format from the output's name, :func:`open_sink` opens it.
- :func:`excel_safe`: the apostrophe that keeps a spreadsheet from running a cell as a formula.

Adding a column is one entry in :data:`COLUMNS`; adding a format is one :class:`Sink`
subclass and its entry in :data:`SINKS`.

Example:
    >>> from bpo_classify import load_model
    >>> predictions = load_model().predict_columns(["process invoices", ""])
    >>> cells(predictions)
    [('back-office', '0.9999', 'finance_accounting', '0.9992', 'false', ''), ('', '', '', '', 'true', 'empty')]
    >>> Counts.of_cells(cells(predictions))
    Counts(rows=2, front=0, back=1, needs_review=1, empty=1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Sequence

from .atomic import atomic_output
from .errors import ColumnConflictError, OutputFileError
from .extras import PARQUET
from .policy import FRONT
from .tables import render_rows, write_rows

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .model import Predictions

#: The added cells of one row, as CSV writes them.
Cells = tuple[str, ...]


@dataclass(frozen=True)
class CellType:
    """How an added column is stored: its Parquet (pyarrow) type, and how its CSV cell becomes a Parquet value."""

    parquet: str
    value: Callable[[str], Any]


#: A label: a string, null when the text is missing.
LABEL = CellType("string", lambda cell: cell or None)
#: A probability: a double, null when the text is missing.
PROBABILITY = CellType("float64", lambda cell: float(cell) if cell else None)
#: A yes/no: a boolean, written ``true``/``false`` in CSV.
FLAG = CellType("bool_", lambda cell: cell == "true")


@dataclass(frozen=True)
class Column:
    """One added column: its name (before ``--prefix``), its type, and its cells for a batch of predictions."""

    name: str
    type: CellType
    fill: Callable[["Predictions"], list[str]]


def _labels(values: Sequence[str | None]) -> list[str]:
    return [v or "" for v in values]


def _probabilities(values: np.ndarray) -> list[str]:
    # Four decimals; interned, since a probability is one of 10,001 strings and remembered labels share them.
    return ["" if v != v else sys.intern(f"{v:.4f}") for v in values.tolist()]


def _flags(values: np.ndarray) -> list[str]:
    return ["true" if v else "false" for v in values.tolist()]


#: The columns labelling adds, in order. A missing text gets empty cells, ``needs_review`` true
#: and ``review_reason`` ``empty``.
COLUMNS: tuple[Column, ...] = (
    Column("office", LABEL, lambda p: _labels(p.office)),
    Column("office_confidence", PROBABILITY, lambda p: _probabilities(p.office_confidence)),
    Column("function", LABEL, lambda p: _labels(p.function)),
    Column("function_confidence", PROBABILITY, lambda p: _probabilities(p.function_confidence)),
    Column("needs_review", FLAG, lambda p: _flags(p.needs_review)),
    Column("review_reason", LABEL, lambda p: _labels(p.review_reason)),
)
ADDED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS)
_OFFICE, _REVIEW = ADDED_COLUMNS.index("office"), ADDED_COLUMNS.index("needs_review")


def added_columns(top_functions: int = 1) -> tuple[Column, ...]:
    """:data:`COLUMNS`, then with ``top_functions`` K > 1 the runners-up: ``function_2``,
    ``function_2_confidence``, ... ``function_K_confidence`` (empty past the office's last function).

    Example:
        >>> [c.name for c in added_columns(2)][-3:]
        ['review_reason', 'function_2', 'function_2_confidence']
    """
    def runner_up(rank: int) -> tuple[Column, Column]:
        return (Column(f"function_{rank + 2}", LABEL, lambda p: _labels(p.runners_up[rank][0])),
                Column(f"function_{rank + 2}_confidence", PROBABILITY, lambda p: _probabilities(p.runners_up[rank][1])))

    return COLUMNS + tuple(c for rank in range(max(top_functions, 1) - 1) for c in runner_up(rank))


def cells(predictions: "Predictions") -> list[Cells]:
    """The added cells of each prediction of a batch, in :func:`added_columns` order (runners-up as predicted)."""
    return list(zip(*(column.fill(predictions) for column in added_columns(1 + len(predictions.runners_up)))))


def added_names(header: Sequence[str], prefix: str = "", top_functions: int = 1) -> list[str]:
    """The added column names after ``prefix``; an error naming ``--prefix`` if one is in ``header`` already.

    Example:
        >>> added_names(["duty"], "bpo_")[:2]
        ['bpo_office', 'bpo_office_confidence']
    """
    names = [prefix + c.name for c in added_columns(top_functions)]
    clash = [n for n in names if n in header]
    if clash:
        raise ColumnConflictError(
            f"input already has column(s) {', '.join(clash)}; choose another --prefix (e.g. --prefix bpo_)"
        )
    return names


# -- counts -----------------------------------------------------------------------------------
@dataclass
class Counts:
    """How many rows were labelled, front-office, back-office, flagged for review, and without text."""

    rows: int = 0
    front: int = 0
    back: int = 0
    needs_review: int = 0
    empty: int = 0

    @classmethod
    def of_cells(cls, labels: Sequence[Cells]) -> "Counts":
        """The counts of rows with these added cells."""
        offices = [c[_OFFICE] for c in labels]
        front, empty = offices.count(FRONT), offices.count("")
        review = [c[_REVIEW] for c in labels].count("true")
        return cls(len(offices), front, len(offices) - front - empty, review, empty)

    def add(self, other: "Counts") -> None:
        """Count ``other``'s rows in."""
        for name in (f.name for f in dataclasses.fields(Counts)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class LabelSummary(Counts):
    """Counts from one labelling run, and the rows padded on the way (what the CLI prints to stderr)."""

    padded_rows: list[int] = field(default_factory=list)  # rows with fewer fields than the header (the first 100)
    padded: int = 0  # how many such rows
    text_column: str = ""
    output: str = ""

    def line(self) -> str:
        """The one-line summary, e.g. ``labelled 50 rows: 21 front-office, 29 back-office, 4 need review``."""
        text = f"labelled {self.rows} rows: {self.front} front-office, {self.back} back-office, {self.needs_review} need review"
        if self.empty:
            text += f" ({self.empty} with no text)"
        padded = max(self.padded, len(self.padded_rows))
        if padded:
            shown = ", ".join(map(str, self.padded_rows[:5])) + (" ..." if padded > 5 else "")
            text += f"; {padded} short rows padded with empty fields (rows {shown})"
        return text


def too_long_row(fields: int, width: int, number: int | None = None) -> str:
    """The message for a row with more fields than the header (``number``: its data-row number, if known).

    Example:
        >>> too_long_row(3, 2, 7)
        'data row 7 has 3 fields but the header has 2; check the delimiter or quoting of that row'
    """
    row = "a data row" if number is None else f"data row {number}"
    return f"{row} has {fields} fields but the header has {width}; check the delimiter or quoting of that row"


# -- spreadsheet safety -----------------------------------------------------------------------
#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def excel_safe(cell: str) -> str:
    """``cell`` with an apostrophe in front if a spreadsheet would take it for a formula.

    Cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are prefixed
    (OWASP's advice against CSV injection); a plain number such as ``-12.5`` is left as it
    is, since a spreadsheet reads it as the number it is and nothing else.

    Example:
        >>> excel_safe("=HYPERLINK(\\"http://x\\")"), excel_safe("-12.5"), excel_safe("process invoices")
        ('\\'=HYPERLINK("http://x")', '-12.5', 'process invoices')
    """
    if cell[:1] in FORMULA_STARTS and cell and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def excel_safe_rows(rows: list[list[str]]) -> list[list[str]]:
    """``rows`` with every cell made :func:`excel_safe` (rows without such a cell are returned as they are)."""
    starts = FORMULA_STARTS
    return [[excel_safe(c) for c in row] if any(c[:1] in starts for c in row) else row for row in rows]


# -- output formats ---------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputFormat:
    """How labelled rows are written: ``kind`` (a key of :data:`SINKS` or ``xlsx``), the delimiter of
    delimited text, and whether the bytes are gzipped."""

    kind: str
    delimiter: str = ","
    gzip: bool = False


#: What an output's name ending asks for.
SUFFIXES: dict[str, OutputFormat] = {
    ".csv": OutputFormat("csv", ","),
    ".tsv": OutputFormat("csv", "\t"),
    ".tab": OutputFormat("csv", "\t"),
    ".jsonl": OutputFormat("jsonl"),
    ".ndjson": OutputFormat("jsonl"),
    ".parquet": OutputFormat("parquet"),
    ".xlsx": OutputFormat("xlsx"),
}
#: What ``--output-format`` may ask for (where the name does not say: standard output, ``out.txt``).
REQUESTABLE: dict[str, OutputFormat] = {"csv": SUFFIXES[".csv"], "tsv": SUFFIXES[".tsv"], "jsonl": SUFFIXES[".jsonl"]}


def format_for(output: str | Path | None, input_delimiter: str = ",", requested: str | None = None) -> OutputFormat:
    """The format of ``output`` (``None`` or ``-``: standard output) from its name; :class:`ValueError` if the
    name and ``requested`` (``csv``, ``tsv``, ``jsonl``) disagree or the name cannot be gzipped.

    A name that says nothing (standard output, ``labelled.txt``) gets ``requested``, or
    delimited text with the input's delimiter. ``.gz`` after ``.csv``, ``.tsv`` or ``.jsonl``
    gzips it.

    Example:
        >>> format_for("out.csv", "\\t"), format_for("-", "\\t").delimiter, format_for("out.jsonl.gz").gzip
        (OutputFormat(kind='csv', delimiter=',', gzip=False), '\\t', True)
    """
    name = "" if output is None or str(output) == "-" else str(output).rstrip("/").lower()
    zipped = name.endswith(".gz")
    base = name.removesuffix(".gz")
    by_name = next((form for suffix, form in SUFFIXES.items() if base.endswith(suffix)), None)
    if requested is not None and requested not in REQUESTABLE:
        raise ValueError(f"output format must be one of {', '.join(REQUESTABLE)}, not {requested!r}")
    wanted = REQUESTABLE[requested] if requested else None
    if by_name is not None and wanted is not None and by_name != wanted:
        raise ValueError(
            f"--output-format {requested} does not match the output's name {output}; "
            f"drop --output-format (the name decides) or rename the output"
        )
    form = by_name or wanted or OutputFormat("csv", input_delimiter)
    if zipped and form.kind in ("parquet", "xlsx"):
        raise ValueError(f"{output}: .{form.kind} files are compressed already; drop the .gz")
    return dataclasses.replace(form, gzip=zipped)


def sink_format(output: str) -> str:
    """The kind of output an output's name asks for: ``parquet``, ``xlsx``, ``jsonl`` or ``csv``.

    Example:
        >>> sink_format("labelled.parquet"), sink_format("labelled.tsv"), sink_format("labelled/")
        ('parquet', 'csv', 'csv')
    """
    return format_for(output).kind


# -- sinks ------------------------------------------------------------------------------------
class Sink:
    """Where labelled rows go: made with an open file and the header, written one chunk at a time, then closed.

    The header's last ``len(columns)`` names are the added columns (:data:`COLUMNS`, or
    :func:`added_columns` with runners-up). ``excel_safe`` asks a text format to defuse
    cells a spreadsheet would run as formulas (:func:`excel_safe`).
    """

    #: Whether the file is opened in binary mode.
    binary: ClassVar[bool] = False
    #: Whether the input's cells may be typed values (numbers, dates) rather than text (Excel keeps them).
    typed: ClassVar[bool] = False

    def __init__(
        self, out: IO[Any], header: Sequence[str], delimiter: str = ",", columns: Sequence[Column] = COLUMNS,
        excel_safe: bool = False,
    ):
        self.out = out
        self.header = list(header)
        self.delimiter = delimiter
        self.columns = tuple(columns)
        self.excel_safe = excel_safe

    @classmethod
    def check(cls) -> None:
        """Raise a one-line error if this format cannot be written here (an extra not installed)."""

    @classmethod
    def extension(cls, delimiter: str = ",") -> str:
        """The file name extension of this format (for part files)."""
        raise NotImplementedError

    @classmethod
    def open_arguments(cls) -> dict[str, Any]:
        """How to open a file for it (the arguments of ``open`` and ``fsspec``'s ``open``)."""
        return {"mode": "wb"} if cls.binary else {"mode": "w", "encoding": "utf-8", "newline": ""}

    def write(self, rows: list[list[str]], labels: Sequence[Cells]) -> None:
        """Write ``rows`` (the input's fields) each followed by its added cells."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (the file itself is closed by whoever opened it)."""


class CsvSink(Sink):
    """Delimited text (the delimiter asked for), ``\\n`` line ends, quoting only where needed."""

    def __init__(
        self, out: IO[str], header: Sequence[str], delimiter: str = ",", columns: Sequence[Column] = COLUMNS,
        excel_safe: bool = False,
    ):
        super().__init__(out, header, delimiter, columns, excel_safe)
        write_rows(out, excel_safe_rows([self.header]) if excel_safe else [self.header], delimiter)

    @classmethod
    def extension(cls, delimiter: str = ",") -> str:
        return "tsv" if delimiter == "\t" else "csv"

    def write(self, rows: list[list[str]], labels: Sequence[Cells]) -> None:
        """The fields of ``rows`` that need quoting are quoted in place (see
        :func:`~bpo_classify.tables.render_rows`): pass rows that are not used again."""
        if self.excel_safe:
            rows = excel_safe_rows(rows)  # the added cells never start with a formula character
        text = render_rows(rows, self.delimiter, labels)
        if text is None:  # the rare batch the csv module writes (see tables.write_rows)
            write_rows(self.out, [row + list(c) for row, c in zip(rows, labels)], self.delimiter)
        else:
            self.out.write(text)


class JsonlSink(Sink):
    """JSON Lines: one object per row, the input's columns as strings, each added column with its
    :class:`CellType` (a number, ``true``/``false``, ``null`` when empty), in header order."""

    def __init__(
        self, out: IO[str], header: Sequence[str], delimiter: str = ",", columns: Sequence[Column] = COLUMNS,
        excel_safe: bool = False,
    ):
        super().__init__(out, header, delimiter, columns, excel_safe)
        repeated = sorted({name for name in self.header if self.header.count(name) > 1})
        if repeated:
            raise OutputFileError(
                f"JSON Lines needs distinct column names, and {', '.join(map(repr, repeated))} repeat; "
                "rename them or write .csv"
            )
        self._inputs = len(self.header) - len(self.columns)
        self._encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode

    @classmethod
    def extension(cls, delimiter: str = ",") -> str:
        return "jsonl"

    def write(self, rows: list[list[str]], labels: Sequence[Cells]) -> None:
        header, encode, values = self.header, self._encode, [c.type.value for c in self.columns]
        lines = []
        for row, added in zip(rows, labels):
            cells = row + [value(cell) for value, cell in zip(values, added)]
            lines.append(encode(dict(zip(header, cells))))
        if lines:
            self.out.write("\n".join(lines) + "\n")


class ParquetSink(Sink):
    """Parquet: the input's columns as strings, each added column with its :class:`CellType`."""

    binary = True

    def __init__(
        self, out: IO[bytes], header: Sequence[str], delimiter: str = ",", columns: Sequence[Column] = COLUMNS,
        excel_safe: bool = False,
    ):
        super().__init__(out, header, delimiter, columns, excel_safe)
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        inputs = len(self.header) - len(self.columns)
        types = [pa.string()] * inputs + [getattr(pa, c.type.parquet)() for c in self.columns]
        self.schema = pa.schema(list(zip(self.header, types)))
        self.writer = pq.ParquetWriter(out, self.schema)

    @classmethod
    def check(cls) -> None:
        PARQUET.require("writing Parquet", " (or write a .csv)")

    @classmethod
    def extension(cls, delimiter: str = ",") -> str:
        return "parquet"

    def write(self, rows: list[list[str]], labels: Sequence[Cells]) -> None:
        if not rows:
            return
        inputs = [[v if isinstance(v, str) else str(v) for v in values] for values in zip(*rows)]
        added = [[column.type.value(v) for v in values] for column, values in zip(self.columns, zip(*labels))]
        pa = self._pa
        arrays = [pa.array(values, type=kind) for values, kind in zip(inputs + added, self.schema.types)]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


#: The output formats by kind that any engine writes (``xlsx`` is :func:`sink_class`'s, loaded when asked for).
SINKS: dict[str, type[Sink]] = {"csv": CsvSink, "jsonl": JsonlSink, "parquet": ParquetSink}


def sink_class(kind: str) -> type[Sink]:
    """The sink of ``kind``: one of :data:`SINKS`, or ``xlsx`` (``excel.XlsxSink``, imported only then)."""
    if kind == "xlsx":
        from .excel import XlsxSink

        return XlsxSink
    return SINKS[kind]


@contextlib.contextmanager
def open_sink(
    output: str | Path | None, header: Sequence[str], delimiter: str = ",", stdout: IO[str] | None = None,
    *, form: OutputFormat | None = None, excel_safe: bool = False, columns: Sequence[Column] = COLUMNS,
) -> Iterator[Sink]:
    """The sink for ``output``: standard output (``stdout``, default ``sys.stdout``) for ``None`` or ``-``,
    else a file written atomically (nothing under the name until the block succeeds).

    The format is ``form``, or what :func:`format_for` makes of the name and ``delimiter``
    (the input's). A gzipped format is compressed on the way (the gzip header names the file
    without ``.gz``, and holds no time, so the same rows give the same bytes). ``columns``
    are the added columns ending ``header`` (see :func:`added_columns`).
    """
    form = form or format_for(output, delimiter)
    kind = sink_class(form.kind)
    if output is None or str(output) == "-":
        if kind.binary:
            raise ValueError(f"{form.kind} cannot go to standard output; name an output file with -o")
        out = stdout or sys.stdout
        yield kind(out, header, form.delimiter, columns, excel_safe)
        out.flush()  # a full disk fails the run here, before any summary says it succeeded
        return
    path = Path(output)
    with atomic_output(path, binary=kind.binary or form.gzip) as handle:
        with contextlib.ExitStack() as stack:
            if form.gzip:
                packed = stack.enter_context(gzip.GzipFile(path.name.removesuffix(".gz"), "wb", 6, handle, mtime=0))
                handle = stack.enter_context(io.TextIOWrapper(packed, encoding="utf-8", newline=""))  # type: ignore[arg-type]
            sink = kind(handle, header, form.delimiter, columns, excel_safe)
            try:
                yield sink
            finally:
                sink.close()
