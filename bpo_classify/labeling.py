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

import collections
import contextlib
import itertools
import multiprocessing
import operator
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

from .atomic import atomic_output
from .extras import PARQUET
from .errors import ColumnConflictError, InputFileError, MissingColumnError, OutputFileError, WorkerError
from .model import Model, load_model
from .policy import FRONT
from .tables import TableReader, render_rows, write_rows

ADDED_COLUMNS = ("office", "office_confidence", "function", "function_confidence", "needs_review")
#: Column names taken to hold the task text when ``text_column`` is not given.
TEXT_COLUMN_NAMES = {
    "text", "task", "tasks", "duty", "duties", "description", "task description", "job duty",
    "job duties", "duty description", "activity", "process", "process name", "statement",
    "task statement", "responsibility", "responsibilities", "scope",
}
DEFAULT_CHUNK = 5000
#: How many distinct texts' labels a labelling process remembers (see :class:`Labeller`).
CACHE_SIZE = 80_000
#: Row numbers of padded short rows kept for the summary (all are counted).
MAX_REPORTED_ROWS = 100
#: The five added cells of one row.
Cells = tuple[str, ...]
#: The cells of a row with no text.
EMPTY_LABELS = ("", "", "", "", "true")


@dataclass
class LabelSummary:
    """Counts from one labelling run (what the CLI prints to stderr)."""

    rows: int = 0
    front: int = 0
    back: int = 0
    needs_review: int = 0
    empty: int = 0
    padded_rows: list[int] = field(default_factory=list)  # rows with fewer fields than the header (the first 100)
    padded: int = 0  # how many such rows
    text_column: str = ""
    output: str = ""

    def add(self, chunk: "LabelledChunk") -> None:
        """Count a labelled chunk in."""
        self.rows += chunk.rows
        self.front += chunk.front
        self.back += chunk.back
        self.needs_review += chunk.needs_review
        self.empty += chunk.empty

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


def choose_text_column(header: Sequence[str], requested: str | None = None, source: str = "input") -> int:
    """Index of the text column: ``requested`` if given, else the only plausible one.

    Raises :class:`MissingColumnError` listing the columns when the choice is not clear.
    """
    if requested is not None:
        if list(header).count(requested) > 1:
            where = ", ".join(str(i + 1) for i, name in enumerate(header) if name == requested)
            raise MissingColumnError(
                f"column {requested!r} appears more than once in {source} (columns {where}); rename one of them"
            )
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
    """The five added cells for each text, formatted for CSV (confidences to 4 decimals).

    A text's cells do not depend on the batch it comes in.
    """
    cols = model.predict_columns(texts, threshold)
    out = []
    for i in range(len(texts)):
        if cols.office[i] is None:
            out.append(list(EMPTY_LABELS))
        else:
            out.append([
                cols.office[i],  # type: ignore[list-item]
                # Interned: a confidence is one of 10,001 strings, so remembered labels share them.
                sys.intern(f"{cols.office_confidence[i]:.4f}"),
                cols.function[i],  # type: ignore[list-item]
                sys.intern(f"{cols.function_confidence[i]:.4f}"),
                "true" if cols.needs_review[i] else "false",
            ])
    return out


class Labeller:
    """Labels chunks of rows: each distinct text is scored once and its cells remembered.

    Job-duty exports repeat the same lines many times, so the cells of recently seen
    texts are kept: two generations of up to ``cache_size / 2`` texts each; when the
    newer is full it becomes the older, and a text met again in the older moves back to
    the newer, so the texts that keep coming back stay while memory stays bounded. The
    cells are those :func:`format_labels` gives, whatever was labelled before.

    Example:
        >>> from bpo_classify import load_model
        >>> labeller = Labeller(load_model(), text_index=1)
        >>> labeller.chunk([["Clerk", "process invoices"], ["Clerk", "process invoices"]]).back
        2
    """

    def __init__(
        self, model: Model, text_index: int, threshold: float | None = None, delimiter: str = ",",
        parquet: bool = False, cache_size: int | None = None,
    ):
        self.model = model
        self.text_index = text_index
        self.threshold = threshold
        self.delimiter = delimiter
        self.parquet = parquet
        self.cache_size = CACHE_SIZE if cache_size is None else cache_size
        self.fresh: dict[str, Cells] = {}
        self.older: dict[str, Cells] = {}

    def texts(self, rows: list[list[str]]) -> list[str]:
        """The text cell of each row."""
        return list(map(operator.itemgetter(self.text_index), rows))

    def recall(self, texts: Sequence[str]) -> tuple[dict[str, Cells], list[str]]:
        """The remembered cells of ``texts``, and the distinct texts not remembered."""
        unique = dict.fromkeys(texts)
        if len(self.fresh) + len(unique) > self.cache_size // 2:
            self.older, self.fresh = self.fresh, {}
        fresh, older = self.fresh, self.older
        known = {t: c for t in unique if (c := fresh.get(t) or older.get(t)) is not None}
        fresh.update(known)
        return known, [t for t in unique if t not in known]

    def remember(self, cells: dict[str, Cells]) -> None:
        self.fresh.update(cells)

    def score(self, texts: list[str]) -> dict[str, Cells]:
        """The cells of distinct ``texts``, computed here."""
        return score_texts(self.model, texts, self.threshold)

    def labels(self, texts: Sequence[str]) -> list[Cells]:
        """The five cells of each text."""
        known, missing = self.recall(texts)
        if missing:
            new = self.score(missing)
            self.remember(new)
            known.update(new)
        return list(map(known.__getitem__, texts))

    def chunk(self, rows: list[list[str]]) -> "LabelledChunk":
        """Label ``rows`` (each as wide as the header) and render them as CSV text or Parquet columns."""
        texts = self.texts(rows)
        return self.render(rows, self.labels(texts))

    def render(self, rows: list[list[str]], labels: list[Cells]) -> "LabelledChunk":
        """``rows`` with their cells, as CSV text (or Parquet columns), and the counts.

        For CSV, fields of ``rows`` that need quoting are quoted in place (see
        :func:`~bpo_classify.tables.render_rows`): pass rows that are not used again.
        """
        offices = list(map(operator.itemgetter(0), labels))
        front, empty = offices.count(FRONT), offices.count("")
        review = list(map(operator.itemgetter(4), labels)).count("true")
        if self.parquet:
            data: Any = _columns(rows, labels)
        else:
            data = render_rows(rows, self.delimiter, labels)
            if data is None:  # the rare batch the csv module writes (see tables.write_rows)
                out = _Pieces()
                write_rows(out, [row + list(cells) for row, cells in zip(rows, labels)], self.delimiter)
                data = "".join(out)
        return LabelledChunk(data, len(rows), front, len(rows) - front - empty, review, empty)


def score_texts(model: Model, texts: list[str], threshold: float | None) -> dict[str, Cells]:
    """``{text: cells}`` for distinct ``texts`` (confidence strings interned, cells as tuples)."""
    return dict(zip(texts, map(tuple, format_labels(model, texts, threshold)))) if texts else {}


@dataclass
class LabelledChunk:
    """One labelled chunk: CSV text (or Parquet columns) and its counts."""

    data: Any
    rows: int
    front: int
    back: int
    needs_review: int
    empty: int


class _Pieces(list):  # type: ignore[type-arg]
    """A file-like list of strings, for ``csv.writer``: join it once at the end."""

    write = list.append


def _columns(rows: list[list[str]], labels: list[Cells]) -> list[list[Any]]:
    """Parquet columns: the input's as text, the labels typed (empty cells as nulls)."""
    columns: list[list[Any]] = [list(c) for c in zip(*rows)] if rows else []
    office, oconf, function, fconf, review = (list(c) for c in zip(*labels)) if labels else ([], [], [], [], [])
    return columns + [
        [v or None for v in office],
        [float(v) if v else None for v in oconf],
        [v or None for v in function],
        [float(v) if v else None for v in fconf],
        [v == "true" for v in review],
    ]


def chunked_rows(
    rows: Iterable[list[str]], width: int, chunk_size: int = DEFAULT_CHUNK, summary: LabelSummary | None = None,
    first_row: int = 1,
) -> Iterator[list[list[str]]]:
    """Group rows into chunks, padding short rows to ``width`` (reported in ``summary``).

    A row with more fields than the header is an :class:`InputFileError` naming its
    number: its fields cannot be matched to columns.
    """
    summary = summary if summary is not None else LabelSummary()
    source = iter(rows)
    number = first_row - 1  # of the last row of the previous chunk
    while chunk := list(itertools.islice(source, chunk_size)):
        if set(map(len, chunk)) != {width}:  # the rare chunk with short or long rows
            chunk = [_fit(row, width, number + i, summary) for i, row in enumerate(chunk, 1)]
        number += len(chunk)
        yield chunk


def _fit(row: list[str], width: int, number: int, summary: LabelSummary) -> list[str]:
    """``row`` padded to ``width`` fields (and reported), or an error if it has too many."""
    if len(row) > width:
        raise InputFileError(
            f"data row {number} has {len(row)} fields but the header has {width}; "
            "check the delimiter or quoting of that row"
        )
    if len(row) < width:
        summary.padded += 1
        if len(summary.padded_rows) < MAX_REPORTED_ROWS:
            summary.padded_rows.append(number)
        row = row + [""] * (width - len(row))
    return row


def label_rows(
    model: Model, rows: Iterable[list[str]], text_index: int, width: int, *, threshold: float | None = None,
    chunk_size: int = DEFAULT_CHUNK, summary: LabelSummary | None = None, first_row: int = 1,
) -> Iterator[list[str]]:
    """Yield each input row (padded to ``width`` fields) with its five labels appended, in order."""
    summary = summary if summary is not None else LabelSummary()
    labeller = Labeller(model, text_index, threshold)
    for chunk in chunked_rows(rows, width, chunk_size, summary, first_row):
        labels = labeller.labels([row[text_index] for row in chunk])
        for row, added in zip(chunk, labels):
            summary.rows += 1
            if not added[0]:
                summary.empty += 1
            elif added[0] == FRONT:
                summary.front += 1
            else:
                summary.back += 1
            summary.needs_review += added[4] == "true"
            yield row + list(added)


def available_cores() -> int:
    """How many CPU cores this process may use (the default for ``jobs``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    jobs: int | None = 1,
    progress: Callable[[int, int, int | None], None] | None = None,
) -> LabelSummary:
    """Label every row of ``input`` (``-`` for stdin) and write ``output`` (``None`` or ``-``: stdout).

    The output keeps the input's rows, order and columns and adds ``office``,
    ``office_confidence``, ``function``, ``function_confidence`` and ``needs_review``
    (each preceded by ``prefix``). It is CSV with the input's delimiter, or Parquet when
    ``output`` ends in ``.parquet`` (needs pyarrow: ``pip install 'bpo-classify[parquet]'``).
    Raises a :class:`~bpo_classify.errors.BpoClassifyError` subclass for bad input; in
    that case, as when interrupted, no output file is left behind.

    The input is read ``chunk_size`` rows at a time. ``jobs`` worker processes (``None``:
    one per available core) label the chunks; the output is the same whatever
    ``jobs`` and ``chunk_size``. ``progress``, if given, is called after each chunk with
    the rows written so far, the input bytes read and the input's size (``None`` if unknown).
    With ``jobs`` above 1, call this under ``if __name__ == "__main__":`` in a script, as
    any code that starts processes must (where processes are spawned, the script is
    imported again by each).
    """
    to_stdout = output is None or str(output) == "-"
    if not to_stdout and str(input) != "-" and _same_file(Path(input), Path(output)):  # type: ignore[arg-type]
        raise OutputFileError(f"refusing to overwrite the input file {input}; choose another output path")
    parquet = not to_stdout and str(output).lower().endswith(".parquet")
    if parquet:
        PARQUET.require("writing Parquet", " (or write a .csv)")
    jobs = available_cores() if jobs is None else max(1, jobs)
    model = model if model is not None else load_model()
    summary = LabelSummary(output="<stdout>" if to_stdout else str(output))
    with TableReader(input, encoding) as table:
        text_index = choose_text_column(table.header, text_column, str(input))
        summary.text_column = table.header[text_index]
        header = table.header + added_names(table.header, prefix)
        chunks = chunked_rows(table, len(table.header), chunk_size, summary)
        labeller = Labeller(model, text_index, threshold, table.delimiter, parquet)
        with _sink(output, to_stdout, stdout, header, table.delimiter, parquet) as write:
            for done in _label_chunks(chunks, labeller, jobs):
                write(done.data)
                summary.add(done)
                if progress is not None:
                    progress(summary.rows, *table.progress())
    return summary


@contextlib.contextmanager
def _sink(
    output: str | Path | None, to_stdout: bool, stdout: IO[str] | None, header: list[str], delimiter: str, parquet: bool
) -> Iterator[Callable[[Any], None]]:
    """A function that writes one chunk's data, to stdout or atomically to ``output``."""
    if to_stdout:
        out = stdout or sys.stdout
        write_rows(out, [header], delimiter)
        yield out.write
    elif parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema(
            [(name, pa.string()) for name in header[:-5]]
            + list(zip(header[-5:], [pa.string(), pa.float64(), pa.string(), pa.float64(), pa.bool_()]))
        )
        with atomic_output(Path(output), binary=True) as f:  # type: ignore[arg-type]
            with pq.ParquetWriter(f, schema) as writer:
                yield lambda columns: writer.write_table(pa.Table.from_arrays(
                    [pa.array(c, type=t) for c, t in zip(columns, schema.types)], schema=schema
                ))
    else:
        with atomic_output(Path(output)) as out:  # type: ignore[arg-type]
            # Keep the input's delimiter so a TSV stays a TSV; lineterminator "\n" as most tools expect.
            write_rows(out, [header], delimiter)
            yield out.write


# -- parallel labelling -----------------------------------------------------------------------
_WORKER: tuple[Model, float | None] | None = None


def _start_worker(model: Model, threshold: float | None) -> None:
    # Ctrl-C is for the main process, which stops the pool; a worker just finishes its batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _WORKER
    _WORKER = (model, threshold)


def _score(texts: list[str]) -> dict[str, Cells]:
    assert _WORKER is not None
    return score_texts(_WORKER[0], texts, _WORKER[1])


def _label_chunks(chunks: Iterator[list[list[str]]], labeller: Labeller, jobs: int) -> Iterator[LabelledChunk]:
    """Labelled chunks, in input order, scored in this process or by ``jobs`` worker processes.

    This process reads, remembers labels and writes; workers score the texts it has not
    seen yet (each worker receives the model once, when it starts). So a text is scored
    once, not once per worker, and rows never travel between processes: with exports
    that repeat lines, sending rows costs more than labelling them. At most two chunks
    per worker are read ahead, so memory does not grow with the input. A file of one
    chunk is labelled without starting any process.
    """
    first = next(chunks, None)
    second = next(chunks, None) if first is not None else None
    if jobs == 1 or second is None:
        for chunk in itertools.chain([c for c in (first, second) if c is not None], chunks):
            yield labeller.chunk(chunk)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        jobs, mp_context=_start_method(), initializer=_start_worker, initargs=(labeller.model, labeller.threshold)
    )
    try:
        pending: collections.deque[Any] = collections.deque()

        def finish() -> LabelledChunk:
            rows, texts, known, future = pending.popleft()
            if future is not None:
                new = future.result()
                labeller.remember(new)
                known.update(new)
            return labeller.render(rows, list(map(known.__getitem__, texts)))

        for chunk in itertools.chain([first, second], chunks):
            texts = labeller.texts(chunk)
            known, missing = labeller.recall(texts)
            pending.append((chunk, texts, known, pool.submit(_score, missing) if missing else None))
            if len(pending) >= 2 * jobs:
                yield finish()
        while pending:
            yield finish()
    except BrokenProcessPool:
        raise WorkerError("a labelling worker process stopped unexpectedly (out of memory?); try --jobs 1") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_method() -> Any:
    """``fork`` where it is safe (POSIX, no other thread running): workers start at once and
    inherit the loaded model; otherwise ``spawn``."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1 and sys.platform != "darwin":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False
