"""Batch labelling of CSV files: every input row and column kept, five columns added.

The input is streamed in chunks, so memory stays flat however long the file is;
the output is written atomically (nothing appears under the final name until the
whole file is labelled).

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "duties.csv").write_text("role,duty\\nClerk,process invoices\\n", encoding="utf-8")
    >>> summary = label_csv(d / "duties.csv", d / "labelled.csv")
    >>> summary.rows, (d / "labelled.csv").read_text().splitlines()[0]
    (1, 'role,duty,office,office_confidence,function,function_confidence,needs_review')
"""

from __future__ import annotations

import csv
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from .atomic import atomic_output
from .errors import ColumnConflictError, InputFileError, MissingColumnError, OutputFileError
from .model import Model, load_model
from .policy import FRONT
from .tables import TableReader

ADDED_COLUMNS = ("office", "office_confidence", "function", "function_confidence", "needs_review")
#: Column names taken to hold the task text when ``text_column`` is not given.
TEXT_COLUMN_NAMES = {
    "text", "task", "tasks", "duty", "duties", "description", "task description", "job duty",
    "job duties", "duty description", "activity", "process", "process name", "statement",
    "task statement", "responsibility", "responsibilities", "scope",
}
DEFAULT_CHUNK = 5000


@dataclass
class LabelSummary:
    """Counts from one labelling run (what the CLI prints to stderr)."""

    rows: int = 0
    front: int = 0
    back: int = 0
    needs_review: int = 0
    empty: int = 0
    padded_rows: list[int] = field(default_factory=list)  # rows with fewer fields than the header
    text_column: str = ""
    output: str = ""

    def line(self) -> str:
        """The one-line summary, e.g. ``labelled 50 rows: 21 front-office, 29 back-office, 4 need review``."""
        text = f"labelled {self.rows} rows: {self.front} front-office, {self.back} back-office, {self.needs_review} need review"
        if self.empty:
            text += f" ({self.empty} with no text)"
        if self.padded_rows:
            shown = ", ".join(map(str, self.padded_rows[:5])) + (" ..." if len(self.padded_rows) > 5 else "")
            text += f"; {len(self.padded_rows)} short rows padded with empty fields (rows {shown})"
        return text


def choose_text_column(header: Sequence[str], requested: str | None = None, source: str = "input") -> int:
    """Index of the text column: ``requested`` if given, else the only plausible one.

    Raises :class:`MissingColumnError` listing the columns when the choice is not clear.
    """
    if requested is not None:
        if requested in header:
            return list(header).index(requested)
        raise MissingColumnError(
            f"column {requested!r} not found in {source}; available: {', '.join(header)}; use --text-column"
        )
    if len(header) == 1:
        return 0
    key = lambda name: re.sub(r"[\s_\-]+", " ", name.strip().lower())  # noqa: E731
    matches = [i for i, name in enumerate(header) if key(name) in TEXT_COLUMN_NAMES]
    if len(matches) == 1:
        return matches[0]
    why = "several columns could hold the text" if matches else "no column is obviously the text"
    raise MissingColumnError(f"{why}; columns: {', '.join(header)}; name one with --text-column")


def added_names(header: Sequence[str], prefix: str = "") -> list[str]:
    """The five added column names; an error naming ``--prefix`` if one already exists."""
    names = [prefix + n for n in ADDED_COLUMNS]
    clash = [n for n in names if n in header]
    if clash:
        raise ColumnConflictError(
            f"input already has column(s) {', '.join(clash)}; choose another --prefix (e.g. --prefix bpo_)"
        )
    return names


def format_labels(model: Model, texts: Sequence[str | None], threshold: float | None) -> list[list[str]]:
    """The five added cells for each text, formatted for CSV (confidences to 4 decimals)."""
    cols = model.predict_columns(texts, threshold)
    out = []
    for i in range(len(texts)):
        if cols.office[i] is None:
            out.append(["", "", "", "", "true"])
        else:
            out.append([
                cols.office[i],  # type: ignore[list-item]
                f"{cols.office_confidence[i]:.4f}",
                cols.function[i],  # type: ignore[list-item]
                f"{cols.function_confidence[i]:.4f}",
                "true" if cols.needs_review[i] else "false",
            ])
    return out


def label_rows(
    model: Model, rows: Iterable[list[str]], text_index: int, width: int, *, threshold: float | None = None,
    chunk_size: int = DEFAULT_CHUNK, summary: LabelSummary | None = None, first_row: int = 1,
) -> Iterator[list[str]]:
    """Yield each input row (padded to ``width`` fields) with its five labels appended, in order."""
    summary = summary if summary is not None else LabelSummary()
    chunk: list[list[str]] = []
    number = first_row - 1
    for row in rows:
        number += 1
        if len(row) > width:
            raise InputFileError(
                f"data row {number} has {len(row)} fields but the header has {width}; "
                "check the delimiter or quoting of that row"
            )
        if len(row) < width:
            summary.padded_rows.append(number)
            row = row + [""] * (width - len(row))
        chunk.append(row)
        if len(chunk) >= chunk_size:
            yield from _label_chunk(model, chunk, text_index, threshold, summary)
            chunk = []
    if chunk:
        yield from _label_chunk(model, chunk, text_index, threshold, summary)


def _label_chunk(
    model: Model, chunk: list[list[str]], text_index: int, threshold: float | None, summary: LabelSummary
) -> Iterator[list[str]]:
    labels = format_labels(model, [row[text_index] for row in chunk], threshold)
    for row, added in zip(chunk, labels):
        summary.rows += 1
        if not added[0]:
            summary.empty += 1
        elif added[0] == FRONT:
            summary.front += 1
        else:
            summary.back += 1
        summary.needs_review += added[4] == "true"
        yield row + added


def label_csv(
    input: str | Path,
    output: str | Path | None = None,
    *,
    model: Model | None = None,
    text_column: str | None = None,
    prefix: str = "",
    threshold: float | None = None,
    encoding: str = "utf-8",
    chunk_size: int = DEFAULT_CHUNK,
    stdout: IO[str] | None = None,
) -> LabelSummary:
    """Label every row of ``input`` (``-`` for stdin) and write ``output`` (``None`` or ``-``: stdout).

    The output keeps the input's rows, order and columns and adds ``office``,
    ``office_confidence``, ``function``, ``function_confidence`` and ``needs_review``
    (each preceded by ``prefix``). Raises a :class:`~bpo_classify.errors.BpoClassifyError`
    subclass for bad input; in that case no output file is left behind.
    """
    to_stdout = output is None or str(output) == "-"
    if not to_stdout and str(input) != "-" and _same_file(Path(input), Path(output)):  # type: ignore[arg-type]
        raise OutputFileError(f"refusing to overwrite the input file {input}; choose another output path")
    model = model if model is not None else load_model()
    summary = LabelSummary(output="<stdout>" if to_stdout else str(output))
    with TableReader(input, encoding) as table:
        text_index = choose_text_column(table.header, text_column, str(input))
        summary.text_column = table.header[text_index]
        header = table.header + added_names(table.header, prefix)
        rows = label_rows(
            model, table, text_index, len(table.header), threshold=threshold, chunk_size=chunk_size, summary=summary
        )
        if to_stdout:
            _write(stdout or sys.stdout, header, rows, table.delimiter)
        else:
            with atomic_output(Path(output)) as out:  # type: ignore[arg-type]
                _write(out, header, rows, table.delimiter)
    return summary


def _write(out: IO[str], header: list[str], rows: Iterable[list[str]], delimiter: str) -> None:
    # Keep the input's delimiter so a TSV stays a TSV; lineterminator "\n" as most tools expect.
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False
