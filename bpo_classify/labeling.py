"""Batch labelling of CSV, TSV, Excel or Parquet files: every input row and column kept, six columns added.

The input is streamed in chunks, so memory stays flat however long the file is;
the output is written atomically (nothing appears under the final name until the
whole file is labelled).

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "duties.csv").write_text("role,duty\\nClerk,process invoices\\n", encoding="utf-8")
    >>> summary = label_csv(d / "duties.csv", d / "labelled.csv")
    >>> summary.rows, (d / "labelled.csv").read_text().splitlines()[0]
    (1, 'role,duty,office,office_confidence,function,function_confidence,needs_review,review_reason')
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
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

from .errors import InputFileError, MissingColumnError, OutputFileError, WorkerError
from .model import Model, load_model
from .outputs import (
    ADDED_COLUMNS, Cells, Counts, LabelSummary, added_columns, added_names, cells, format_for, open_sink, sink_class,
    too_long_row,
)
from .readers import open_table
from .tables import TableReader, name_list

__all__ = [
    "ADDED_COLUMNS", "LabelOptions", "LabelSummary", "Labeller", "added_names", "choose_text_column",
    "format_labels", "label_csv", "label_file", "label_rows", "labelled_stream",
]

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


@dataclass(frozen=True)
class LabelOptions:
    """What a labelling run is asked, whichever engine runs it.

    ``model`` is a loaded :class:`~bpo_classify.model.Model`, a model file, or ``None``
    for the shipped model; ``text_column`` ``None`` picks the only plausible column;
    ``prefix`` goes before each added column's name; ``threshold`` ``None`` is the
    model's own; ``top_functions`` K > 1 adds the runner-up functions ``function_2`` ...
    ``function_K`` with their confidences (see :func:`~bpo_classify.outputs.added_columns`).
    """

    model: Model | str | Path | None = None
    text_column: str | None = None
    prefix: str = ""
    threshold: float | None = None
    encoding: str = "utf-8"
    top_functions: int = 1

    def loaded_model(self) -> Model:
        """The model, loaded if it is a file."""
        return self.model if isinstance(self.model, Model) else load_model(self.model)


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
            f"column {requested!r} not found in {source}; available: {name_list(header)}; use --text-column"
        )
    if len(header) == 1:
        return 0
    key = lambda name: re.sub(r"[\s_\-]+", " ", name.strip().lower())  # noqa: E731
    matches = [i for i, name in enumerate(header) if key(name) in TEXT_COLUMN_NAMES]
    if len(matches) == 1:
        return matches[0]
    why = "several columns could hold the text" if matches else "no column is obviously the text"
    raise MissingColumnError(f"{why}; columns: {name_list(header)}; name one with --text-column")


def format_labels(model: Model, texts: Sequence[str | None], threshold: float | None, top_functions: int = 1) -> list[Cells]:
    """The added cells of each text, as CSV writes them (see :func:`~bpo_classify.outputs.added_columns`).

    A text's cells do not depend on the batch it comes in.
    """
    return cells(model.predict_columns(texts, threshold, top_functions))


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
        >>> labeller.chunk([["Clerk", "process invoices"], ["Clerk", "process invoices"]]).counts.back
        2
    """

    def __init__(
        self, model: Model, text_index: int, threshold: float | None = None, cache_size: int | None = None, top_functions: int = 1
    ):
        self.model = model
        self.text_index = text_index
        self.threshold = threshold
        self.top_functions = top_functions
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
        return score_texts(self.model, texts, self.threshold, self.top_functions)

    def labels(self, texts: Sequence[str]) -> list[Cells]:
        """The added cells of each text."""
        known, missing = self.recall(texts)
        if missing:
            new = self.score(missing)
            self.remember(new)
            known.update(new)
        return list(map(known.__getitem__, texts))

    def chunk(self, rows: list[list[str]]) -> "LabelledChunk":
        """Label ``rows`` (each as wide as the header)."""
        return self.render(rows, self.labels(self.texts(rows)))

    def render(self, rows: list[list[str]], labels: list[Cells]) -> "LabelledChunk":
        """``rows`` with their cells, and the counts."""
        return LabelledChunk(rows, labels, Counts.of_cells(labels))


def score_texts(model: Model, texts: list[str], threshold: float | None, top_functions: int = 1) -> dict[str, Cells]:
    """``{text: cells}`` for distinct ``texts`` (confidence strings interned, cells as tuples)."""
    return dict(zip(texts, format_labels(model, texts, threshold, top_functions))) if texts else {}


@dataclass
class LabelledChunk:
    """One labelled chunk: the rows, their added cells, and the counts."""

    rows: list[list[str]]
    labels: list[Cells]
    counts: Counts


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
        raise InputFileError(too_long_row(len(row), width, number))
    if len(row) < width:
        summary.padded += 1
        if len(summary.padded_rows) < MAX_REPORTED_ROWS:
            summary.padded_rows.append(number)
        row = row + [""] * (width - len(row))
    return row


def label_rows(
    model: Model, rows: Iterable[list[str]], text_index: int, width: int, *, threshold: float | None = None,
    chunk_size: int = DEFAULT_CHUNK, summary: LabelSummary | None = None, first_row: int = 1, top_functions: int = 1,
) -> Iterator[list[str]]:
    """Yield each input row (padded to ``width`` fields) with its added cells appended, in order."""
    summary = summary if summary is not None else LabelSummary()
    labeller = Labeller(model, text_index, threshold, top_functions=top_functions)
    for chunk in chunked_rows(rows, width, chunk_size, summary, first_row):
        labels = labeller.labels([row[text_index] for row in chunk])
        summary.add(Counts.of_cells(labels))
        for row, added in zip(chunk, labels):
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
    sheet: str | None = None,
    output_format: str | None = None,
    excel_safe: bool = False,
    top_functions: int = 1,
) -> LabelSummary:
    """Label every row of ``input`` (``-`` for stdin) and write ``output`` (``None`` or ``-``: stdout).

    The output keeps the input's rows, order and columns and adds ``office``,
    ``office_confidence``, ``function``, ``function_confidence``, ``needs_review`` and
    ``review_reason``, and with ``top_functions`` K > 1 ``function_2``,
    ``function_2_confidence``, ... ``function_K_confidence`` (each preceded by ``prefix``).
    The input is CSV or TSV (``.gz`` too), an Excel workbook (``.xlsx``, ``.xls``, ...;
    ``sheet`` picks the sheet, default the first) or Parquet, by its name. The output's
    format follows its name: ``.csv`` commas, ``.tsv`` tabs, ``.jsonl`` JSON Lines (those
    three also ``.gz``), ``.parquet`` (needs ``pip install 'bpo-classify[parquet]'``),
    ``.xlsx`` (needs ``bpo-classify[excel]``); standard output or a name that says nothing
    gets ``output_format`` (``csv``, ``tsv``, ``jsonl``) or the input's delimiter.
    ``excel_safe`` puts an apostrophe before CSV/TSV cells a spreadsheet would run as
    formulas (see :func:`~bpo_classify.outputs.excel_safe`).
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
    options = LabelOptions(model, text_column, prefix, threshold, encoding, top_functions)
    return label_file(
        input, output, options, chunk_size=chunk_size, stdout=stdout, jobs=jobs, progress=progress, sheet=sheet,
        output_format=output_format, excel_safe=excel_safe,
    )


def label_file(
    input: str | Path,
    output: str | Path | None,
    options: LabelOptions,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    stdout: IO[str] | None = None,
    jobs: int | None = 1,
    progress: Callable[[int, int, int | None], None] | None = None,
    sheet: str | None = None,
    output_format: str | None = None,
    excel_safe: bool = False,
) -> LabelSummary:
    """:func:`label_csv` with its labelling options in one object (what the command line calls)."""
    model = options.loaded_model()
    to_stdout = output is None or str(output) == "-"
    if not to_stdout and _same_file(input, Path(output)):  # type: ignore[arg-type]
        what = f"standard input's file {output}" if str(input) == "-" else f"the input file {input}"
        raise OutputFileError(f"refusing to overwrite {what}; choose another output path")
    kind = sink_class(format_for(output, ",", output_format).kind)  # a name and a format that disagree: before reading
    kind.check()
    jobs = available_cores() if jobs is None else max(1, jobs)
    summary = LabelSummary(output="<stdout>" if to_stdout else str(output))
    with open_table(input, options.encoding, sheet=sheet, typed=kind.typed) as table:
        text_index = choose_text_column(table.header, options.text_column, str(input))
        table.text_at(text_index)
        summary.text_column = table.header[text_index]
        header = table.header + added_names(table.header, options.prefix, options.top_functions)
        chunks = chunked_rows(table, len(table.header), chunk_size, summary)
        labeller = Labeller(model, text_index, options.threshold, top_functions=options.top_functions)
        form = format_for(output, table.delimiter, output_format)
        columns = added_columns(options.top_functions)
        with open_sink(output, header, table.delimiter, stdout, form=form, excel_safe=excel_safe, columns=columns) as sink:
            for done in _label_chunks(chunks, labeller, jobs):
                sink.write(done.rows, done.labels)
                summary.add(done.counts)
                if progress is not None:
                    progress(summary.rows, *table.progress())
    return summary


@dataclass
class LabelStream:
    """A checked file's labelled text, to be sent as it is made (see :func:`labelled_stream`).

    ``summary`` has the rows and the text column (the counts fill in as ``chunks`` is read);
    ``delimiter`` is the input's, which the output keeps.
    """

    summary: LabelSummary
    delimiter: str
    chunks: Iterator[str]


def labelled_stream(
    input: str | Path, options: LabelOptions, name: str | None = None, chunk_size: int = DEFAULT_CHUNK
) -> LabelStream:
    """The labelled file as text chunks (header first), for a server to stream; ``name`` names the input in errors.

    The whole input is read once first, so every problem :func:`label_file` would report
    (encoding, quoting, a row with too many fields, a missing column) is raised here, before
    anything is sent; then ``chunks`` reads it again and labels ``chunk_size`` rows at a time.
    The bytes are those :func:`label_file` writes to a CSV.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "duties.csv"
        >>> _ = p.write_text("role,duty\\nClerk,process invoices\\n", encoding="utf-8")
        >>> stream = labelled_stream(p, LabelOptions())
        >>> stream.summary.rows, "".join(stream.chunks).splitlines()[1].split(",")[:3]
        (1, ['Clerk', 'process invoices', 'back-office'])
    """
    import io

    model = options.loaded_model()
    source = name or str(input)
    checked = LabelSummary(output="<stream>")
    with TableReader(input, options.encoding, name=source) as table:
        text_index = choose_text_column(table.header, options.text_column, source)
        header = table.header + added_names(table.header, options.prefix, options.top_functions)
        for chunk in chunked_rows(table, len(table.header), chunk_size, checked):
            checked.rows += len(chunk)
        delimiter = table.delimiter
    summary = LabelSummary(output="<stream>", text_column=header[text_index], padded=checked.padded, padded_rows=checked.padded_rows)
    summary.rows = checked.rows

    def chunks() -> Iterator[str]:
        out = io.StringIO()
        columns = added_columns(options.top_functions)
        with TableReader(input, options.encoding, name=source) as table, open_sink(None, header, delimiter, out, columns=columns) as sink:
            labeller = Labeller(model, text_index, options.threshold, top_functions=options.top_functions)
            yield out.getvalue()
            counts = Counts()
            for chunk in chunked_rows(table, len(table.header), chunk_size, LabelSummary()):
                done = labeller.chunk(chunk)
                out.seek(0)
                out.truncate()
                sink.write(done.rows, done.labels)
                counts.add(done.counts)
                yield out.getvalue()
            for field_name in ("front", "back", "needs_review", "empty"):
                setattr(summary, field_name, getattr(counts, field_name))

    return LabelStream(summary, delimiter, chunks())


# -- parallel labelling -----------------------------------------------------------------------
_WORKER: tuple[Model, float | None, int] | None = None


def _start_worker(model: Model, threshold: float | None, top_functions: int = 1, parent: int | None = None) -> None:
    # Ctrl-C and Ctrl-\ reach the whole process group: they are for the main process, which
    # stops the pool. SIGTERM and SIGHUP end a worker (the handlers inherited by fork, which
    # print the main process's message, are put back to the default).
    for name, action in (("SIGINT", signal.SIG_IGN), ("SIGQUIT", signal.SIG_IGN), ("SIGTERM", signal.SIG_DFL), ("SIGHUP", signal.SIG_DFL)):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), action)
    die_with_parent(os.getppid() if parent is None else parent)
    global _WORKER
    _WORKER = (model, threshold, top_functions)


def die_with_parent(parent: int) -> None:
    """End this process when the process ``parent`` ends, even by SIGKILL (the out-of-memory killer).

    On Linux the kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon
    thread notices that ``getppid()`` changed. A parent already gone ends it at once.
    """
    if not _parent_death_signal():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)


def _parent_death_signal() -> bool:
    """Ask Linux for SIGKILL when the parent dies; whether that worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _score(texts: list[str]) -> list[Cells]:
    # Only the cells travel back: the main process still has the texts it sent.
    assert _WORKER is not None
    model, threshold, top_functions = _WORKER
    return format_labels(model, texts, threshold, top_functions)


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
        jobs, mp_context=_start_method(), initializer=_start_worker,
        initargs=(labeller.model, labeller.threshold, labeller.top_functions, os.getpid()),
    )
    finished = False
    try:
        pending: collections.deque[Any] = collections.deque()

        def finish() -> LabelledChunk:
            rows, texts, known, missing, future = pending.popleft()
            if future is not None:
                new = dict(zip(missing, future.result()))
                labeller.remember(new)
                known.update(new)
            return labeller.render(rows, list(map(known.__getitem__, texts)))

        for chunk in itertools.chain([first, second], chunks):
            texts = labeller.texts(chunk)
            known, missing = labeller.recall(texts)
            pending.append((chunk, texts, known, missing, pool.submit(_score, missing) if missing else None))
            if len(pending) >= 2 * jobs:
                yield finish()
        while pending:
            yield finish()
        finished = True
    except BrokenProcessPool:
        raise WorkerError("a labelling worker process stopped unexpectedly (out of memory?); try --jobs 1") from None
    finally:
        if not finished:
            # Interrupted or failed: the results are not wanted, so the workers are killed
            # rather than waited for (a signal then ends the run at once).
            _kill_workers(pool)
        pool.shutdown(wait=finished, cancel_futures=True)


def _kill_workers(pool: Any) -> None:
    """SIGKILL the pool's worker processes (``_processes``: the executor keeps no public list)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()


def _start_method() -> Any:
    """``fork`` where it is safe (POSIX, no other thread running): workers start at once and
    inherit the loaded model; otherwise ``spawn``."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1 and sys.platform != "darwin":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _same_file(a: str | Path, b: Path) -> bool:
    """Whether writing ``b`` would replace the input ``a`` (``-``: whatever file stdin is
    redirected from), by path or by device and inode (symlinks, hard links)."""
    try:
        if str(a) == "-":
            if sys.stdin is None or not b.exists():
                return False
            here, there = os.fstat(sys.stdin.fileno()), os.stat(b)
            return stat.S_ISREG(here.st_mode) and (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
        a = Path(a)
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except (OSError, ValueError):
        return False
