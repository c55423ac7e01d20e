"""The command line's own plumbing (the only module besides ``cli.py`` that imports click):
the group that turns errors into exit codes, the options several commands share,
argument checks, and ``label``'s progress bar.

Example:
    >>> @click.command()
    ... @labelled_data_options
    ... def show(columns):
    ...     click.echo(columns)
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(show, ["--text-column", "duty"]).output
    "{'text_column': 'duty', 'office_column': 'office', 'function_column': 'function', 'encoding': 'utf-8'}\\n"
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import click

from .errors import BpoClassifyError, InputFileError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Cli(click.Group):
    """Turns library errors into one-line messages with exit code 1, and Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            # Flush here, so a write error on stdout (a full disk) is reported below
            # instead of as a traceback when the interpreter exits.
            sys.stdout.flush()
            return result
        except BpoClassifyError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            if _Stopping.signum is None:  # raised without our handler (a test, an embedding program)
                click.echo("Interrupted; no output was written.", err=True)
            else:
                _announce(_Stopping.signum)
            ctx.exit(130)
        except BrokenPipeError:
            # `bpo-classify ... | head -1`: the reader left; exit quietly without a traceback.
            _silence_stdout()
            ctx.exit(0)
        except OSError as exc:
            # The library turns its own I/O failures into BpoClassifyError; what is left
            # is writing to stdout, e.g. `bpo-classify label big.csv > /dev/full`.
            if exc.filename:
                raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from None
            _silence_stdout()
            raise click.ClickException(f"cannot write to standard output: {exc.strerror or exc}") from None


#: The signals that end a run as ``kill`` (SIGTERM) does: the terminal or ssh session closed
#: (SIGHUP) and Ctrl-\ (SIGQUIT) too.
STOP_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT")


class _Stopping:
    """The first stop signal received (``None``: none yet), and whether its message is out."""

    signum: int | None = None
    announced = False
    #: The line for SIGHUP/SIGQUIT (and SIGTERM), ``{name}`` the signal's: see :func:`word_stops_as`.
    template: str | None = None


def word_stops_as(template: str) -> None:
    """Word the stop line for a command that writes no output file (``serve``): ``template``
    with ``{name}`` for the signal, e.g. ``"server stopped ({name})"``. Ctrl-C keeps its own line."""
    _Stopping.template = template


def exit_on_signals() -> None:
    """Stop signals and Ctrl-C unwind the run, so atomic_output removes its temporary file.

    The first SIGTERM, SIGHUP or SIGQUIT prints one line and exits ``128 + signal``
    (SIGTERM: 143); Ctrl-C raises ``KeyboardInterrupt``, which a command may handle (``review``
    stops with exit 0) or the group reports (exit 130). A second signal while the first is
    unwinding ends the process at once, with the same clean state: the temporary output
    removed, worker processes killed, the message shown once, exit ``128 +`` the first
    signal. A signal that was ignored when the program started (``nohup``, a background
    job's SIGINT) stays ignored.
    """
    import signal

    def stop(signum: int, frame: object) -> None:
        if _Stopping.signum is not None:
            _announce(_Stopping.signum)
            _end_now(128 + _Stopping.signum)
        _Stopping.signum = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        _announce(signum)
        raise SystemExit(128 + signum)

    for name in ("SIGINT", *STOP_SIGNALS):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) not in (signal.SIG_IGN, None):
            signal.signal(number, stop)


def end_if_stopped(code: int | str | None) -> None:
    """After a signal has unwound the run: exit with ``code`` now, before the interpreter's own
    shutdown (which waits for worker threads and puts the default handlers back, so that a
    second signal then would kill the process with another exit code)."""
    if _Stopping.signum is not None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def _announce(signum: int) -> None:
    """The one line that says the run was stopped (printed once, however many signals came)."""
    import signal

    if _Stopping.announced:
        return
    if signum == signal.SIGINT:
        text = "Interrupted; no output was written."
    elif _Stopping.template is not None:
        text = _Stopping.template.format(name=signal.Signals(signum).name)
    elif signum == signal.SIGTERM:
        text = "Terminated; no output was written."
    else:
        text = f"Terminated ({signal.Signals(signum).name}); no output was written."
    _Stopping.announced = True
    with contextlib.suppress(OSError, ValueError):  # after SIGHUP the terminal may be gone
        click.echo(text, err=True)
        sys.stderr.flush()


def _end_now(code: int) -> None:
    """A second signal: remove the temporary outputs, kill the workers, exit without unwinding."""
    from .atomic import discard_temporary_files

    discard_temporary_files()
    multiprocessing = sys.modules.get("multiprocessing")  # not imported: no worker was started
    if multiprocessing is not None:
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                child.kill()
    os._exit(code)


def complete_writes() -> None:
    """Make every write to stdout and stderr complete, or an ``OSError`` (reported as exit 1).

    With ``PYTHONUNBUFFERED=1`` (or ``python -u``) the text streams sit on the raw file,
    and a text stream ignores how many bytes a raw write took: on a nearly full disk
    ``write(1, ..., 7947) = 3988`` silently drops the rest. Each such stream is swapped
    for :func:`completing_stream`'s. Streams that are already buffered (or not files at
    all, as under click's test runner) are left alone.
    """
    for name in ("stdout", "stderr"):
        replacement = completing_stream(getattr(sys, name))
        if replacement is not None:
            setattr(sys, name, replacement)


def completing_stream(stream: Any) -> io.TextIOWrapper | None:
    """A line-buffered text stream on ``stream``'s file that retries short writes, or None if it needs none.

    A buffered writer retries a short write until every byte is out or the system says
    why not (``ENOSPC``, ``EFBIG``). It writes to the same descriptor through a raw file
    of its own that never closes it: wrapping the old raw object instead would close it
    (and the descriptor, and whoever else writes there) when the new stream is dropped.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryFile() as f:
        ...     unbuffered = io.TextIOWrapper(io.FileIO(f.fileno(), "w", closefd=False), write_through=True)
        ...     completing_stream(io.StringIO()) is None, completing_stream(unbuffered).line_buffering
        (True, True)
    """
    raw = getattr(stream, "buffer", None)
    if not (isinstance(stream, io.TextIOWrapper) and isinstance(raw, io.RawIOBase)):
        return None
    try:
        stream.flush()
        own_raw = io.FileIO(raw.fileno(), "w", closefd=False)
    except (OSError, ValueError):  # closed, or a raw stream with no descriptor: nothing to make complete
        return None
    return io.TextIOWrapper(
        io.BufferedWriter(own_raw), encoding=stream.encoding, errors=stream.errors, line_buffering=True,
    )


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (e.g. click's test runner): nothing buffered to drop


model_option = click.option(
    "--model", "model_path", type=click.Path(path_type=Path), default=None,
    help="Model file to use (default: the model shipped with the package).",
)
class Probability(click.FloatRange):
    """A float in [0, 1]; NaN is refused (every comparison with it is false, so a range lets it through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number between 0 and 1.", param, ctx)
        return number


threshold_option = click.option(
    "--threshold", type=Probability(0.0, 1.0), default=None,
    help="Flag needs_review when the office probability is below this (default: the model's own, shown by `bpo-classify info`).",
)


top_functions_option = click.option(
    "--top-functions", type=click.IntRange(1, 15), default=1, show_default=True, metavar="K",
    help="Also show the next K-1 functions of the office shown (function_2, function_2_confidence, ...), on the scale of function_confidence.",
)


def format_option(*choices: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--format`` (passed as ``fmt``) with these choices, the first the default."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=choices[0], show_default=True, help="Output format.")


#: The columns and encoding of a labelled file (``train``, ``check-data``), as ``corpus.load_labelled`` names them.
_LABELLED_DATA = (
    click.option("--text-column", default="text", show_default=True, help="Column holding the task text."),
    click.option("--office-column", default="office", show_default=True, help="Column holding front-office/back-office."),
    click.option("--function-column", default="function", show_default=True, help="Column holding the business function."),
    click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the data file."),
)


def labelled_data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The labelled file's column and encoding options, given to ``command`` as one ``columns`` dict."""

    @functools.wraps(command)
    def collected(*args: Any, text_column: str, office_column: str, function_column: str, encoding: str, **kwargs: Any) -> Any:
        columns = {"text_column": text_column, "office_column": office_column, "function_column": function_column, "encoding": encoding}
        return command(*args, columns=columns, **kwargs)

    for option in reversed(_LABELLED_DATA):
        collected = option(collected)
    return collected


def utf8_arguments(texts: Sequence[str]) -> list[str]:
    """``predict``'s texts: each argument, or for ``-`` each line of standard input; all valid UTF-8."""
    from .tables import read_lines, stdin_bytes

    items: list[str] = []
    for n, text in enumerate(texts, 1):
        if text == "-":
            items += read_lines(stdin_bytes().read())
            continue
        try:
            text.encode("utf-8")  # bytes in argv that are not UTF-8 arrive as lone surrogates (PEP 383)
        except UnicodeEncodeError:
            raise InputFileError(f"text {n} is not valid UTF-8 (undecodable bytes in the argument); pass UTF-8 text") from None
        items.append(text)
    return items


@contextlib.contextmanager
def progress_bar(shown: bool) -> Iterator[Callable[[int, int, int | None], None] | None]:
    """``label``'s progress callback: a ``click.progressbar`` on stderr, or ``None`` when not ``shown``.

    The bar measures the input's bytes when its size is known (percentage and time
    left), and shows the rows done and rows per second; it is made at the first call,
    when the size is known.
    """
    if not shown:
        yield None
        return
    started = time.monotonic()
    bars: list[Any] = []

    def rows(done: int | None) -> str | None:
        return None if done is None else f"{done:,} rows {done / max(time.monotonic() - started, 1e-9):,.0f} rows/s"

    def update(done_rows: int, done: int, total: int | None) -> None:
        if not bars:
            bar = click.progressbar(
                iterable=None if total else (n for n in ()), length=total or None, file=sys.stderr, width=20,
                bar_template="[%(bar)s]  %(info)s", empty_char=" ", item_show_func=rows,
            )
            bars.append(bar.__enter__())
        bar = bars[0]
        bar.update(max(done - bar.pos, 0) if bar.length else 1, done_rows)

    try:
        yield update
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


#: At most this many worker processes per core: more only adds memory and start-up time.
JOBS_PER_CORE = 4


def capped_jobs(jobs: int | None) -> int | None:
    """``--jobs``, at most :data:`JOBS_PER_CORE` per core (with a one-line warning when cut)."""
    limit = JOBS_PER_CORE * (os.cpu_count() or 1)
    if jobs is not None and jobs > limit:
        click.echo(f"warning: --jobs {jobs} is more than {JOBS_PER_CORE} per core; using {limit}", err=True)
        return limit
    return jobs
