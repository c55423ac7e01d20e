"""The reliability matrix: every bad input we tried, one test each (the README's "Reliability" table).

Each test checks what the user sees (the exact one-line error, or the documented
behaviour), the exit code, that the input is byte-for-byte untouched, and that no
partial output is left: no file under the final name, no temporary file beside it.
`test_readme_table_matches_these_tests` keeps the README table and this file in step.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bpo_classify import tables
from bpo_classify.cli import cli
from bpo_classify.labeling import ADDED_COLUMNS
from conftest import ROOT, read_csv, run_cli, run_measured, start_cli, wait_for_temp_output, write_csv
from conftest import distinct_duties as duties

HEADER_OUT = ",".join(ADDED_COLUMNS)
MiB = 2**20


# -- helpers ------------------------------------------------------------------------
def invoke(*args: object, input: bytes | str | None = None) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    # A crash would surface here as an exception other than the SystemExit of a normal exit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def assert_error(result: Result, message: str, code: int = 1) -> None:
    """Exit ``code`` and exactly one line on stderr: ``Error: message``; nothing on stdout."""
    assert result.exit_code == code, result.output
    assert result.stderr == f"Error: {message}\n"
    assert result.stdout == ""


def snapshot(directory: Path) -> dict[str, str]:
    """Every entry under ``directory`` (hidden temporary files included) with a content hash."""
    state = {}
    for p in sorted(directory.rglob("*")):
        st = p.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_size <= 64 * MiB:
            state[str(p.relative_to(directory))] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif stat.S_ISREG(st.st_mode):  # the 10 GB sparse file: size and modification time
            state[str(p.relative_to(directory))] = f"{st.st_size}:{st.st_mtime_ns}"
        else:
            state[str(p.relative_to(directory))] = stat.filemode(st.st_mode)
    return state


@contextlib.contextmanager
def nothing_lost(directory: Path, *, new: tuple[str, ...] = ()):
    """Inputs keep their bytes and nothing appears in ``directory`` except the ``new`` outputs named."""
    before = snapshot(directory)
    yield
    after = snapshot(directory)
    assert sorted(set(after) - set(before)) == sorted(new), "unexpected files left behind"
    assert {k: v for k, v in after.items() if k not in new} == before, "an input was modified"


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- input files ---------------------------------------------------------------------
def test_missing_file(tmp_path):
    with nothing_lost(tmp_path):
        assert_error(invoke("label", tmp_path / "missing.csv", "-o", tmp_path / "out.csv"),
                     f"file not found: {tmp_path / 'missing.csv'}")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "sheets").mkdir()
    with nothing_lost(tmp_path):
        assert_error(invoke("label", tmp_path / "sheets", "-o", tmp_path / "out.csv"),
                     f"{tmp_path / 'sheets'} is a directory; pass a CSV file")


def test_unreadable_file(tmp_path, monkeypatch):
    """The permission error path, simulated: tests often run as root, whom chmod 000 does not stop."""
    source = write_bytes(tmp_path / "secret.csv", b"duty\nprocess invoices\n")

    def denied(file, *args, **kwargs):
        if Path(file) == source:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(tables, "open", denied, raising=False)  # shadows the builtin inside tables.py only
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"permission denied: {source}; check the file's read permissions")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod 000 does not stop root reading; test_unreadable_file simulates it")
def test_unreadable_file_real_permissions(tmp_path):
    source = write_bytes(tmp_path / "secret.csv", b"duty\nprocess invoices\n")
    source.chmod(0)
    try:
        with nothing_lost(tmp_path):
            assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                         f"permission denied: {source}; check the file's read permissions")
    finally:
        source.chmod(0o644)


def test_empty_file(tmp_path):
    source = write_bytes(tmp_path / "empty.csv", b"")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"{source} is empty: expected a header row with column names")


def test_blank_lines_only(tmp_path):
    source = write_bytes(tmp_path / "blank.csv", b"  \r\n\t\n\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"{source} is empty: expected a header row with column names")


def test_empty_stdin():
    assert_error(invoke("label", "-", input=b""), "standard input is empty: expected a header row with column names")


def test_header_only(tmp_path):
    """Documented: a header and no rows gives a header and no rows, exit 0."""
    source = write_bytes(tmp_path / "header.csv", b"id,duty\n")
    with nothing_lost(tmp_path, new=("out.csv",)):
        result = invoke("label", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == f"id,duty,{HEADER_OUT}\n"
    assert result.stderr.startswith("labelled 0 rows: 0 front-office, 0 back-office, 0 need review")


def test_no_header_several_columns(tmp_path):
    """The first line is always the header; data there names no text column, so the columns are listed."""
    source = write_bytes(tmp_path / "nohead.csv", b"1,process invoices\n2,answer live chat inquiries\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     "no column is obviously the text; columns: 1, process invoices; name one with --text-column")


def test_no_header_one_column(tmp_path):
    """Documented: in a one-column file the first line is the header; it is kept as the output's header, not labelled."""
    source = write_bytes(tmp_path / "nohead.csv", b"process invoices\nanswer live chat inquiries\n")
    with nothing_lost(tmp_path, new=("out.csv",)):
        result = invoke("label", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0
    rows = read_csv(tmp_path / "out.csv")
    assert rows[0] == ["process invoices", *ADDED_COLUMNS]
    assert len(rows) == 2 and rows[1][:2] == ["answer live chat inquiries", "front-office"]


def test_duplicate_text_column_name(tmp_path):
    """Two columns with the text column's name: an error naming both, with or without --text-column."""
    source = write_bytes(tmp_path / "dup.csv", b"duty,duty\nprocess invoices,answer calls\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv", "--text-column", "duty"),
                     f"column 'duty' appears more than once in {source} (columns 1, 2); rename one of them")
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     "several columns could hold the text; columns: duty, duty; name one with --text-column")


def test_duplicate_other_column_names(tmp_path):
    """Documented: repeated names of other columns are kept as they are, values included."""
    source = write_bytes(tmp_path / "dup.csv", b"note,duty,note\na,process invoices,b\n")
    with nothing_lost(tmp_path, new=("out.csv",)):
        result = invoke("label", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0
    rows = read_csv(tmp_path / "out.csv")
    assert rows[0] == ["note", "duty", "note", *ADDED_COLUMNS] and rows[1][:4] == ["a", "process invoices", "b", "back-office"]


def test_wrong_delimiter_csv_named_tsv(tmp_path):
    """Documented: a .tsv whose header has commas and no tab is read as comma-separated (the header decides);
    the output's name decides how it is written, and stdout keeps the input's commas."""
    source = write_bytes(tmp_path / "duties.tsv", b"id,duty\n1,process invoices\n")
    with nothing_lost(tmp_path, new=("out.tsv",)):
        result = invoke("label", source, "-o", tmp_path / "out.tsv")
    assert result.exit_code == 0
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()[1].startswith("1\tprocess invoices\tback-office\t")
    assert invoke("label", source).stdout.splitlines()[1].startswith("1,process invoices,back-office,")


def test_wrong_delimiter_rows_wider_than_header(tmp_path):
    """A row that splits into more fields than the header: an error naming the row and the likely cause."""
    source = write_bytes(tmp_path / "semi.csv", b"id;duty\n1;process invoices\n2;pay vendors; reconcile\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     "data row 2 has 3 fields but the header has 2; check the delimiter or quoting of that row")


def test_short_rows_padded(tmp_path):
    """Documented: rows with fewer fields than the header are padded, and their numbers reported."""
    source = write_bytes(tmp_path / "short.csv", b"id,duty,team\n1,process invoices,ap\n2,run payroll\n")
    with nothing_lost(tmp_path, new=("out.csv",)):
        result = invoke("label", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0
    assert "1 short rows padded with empty fields (rows 2)" in result.stderr
    assert read_csv(tmp_path / "out.csv")[2][:4] == ["2", "run payroll", "", "back-office"]


def test_non_utf8_bytes(tmp_path):
    """A Latin-1 byte deep in the file: an error naming the row and --encoding, no output; --encoding latin-1 works."""
    source = write_bytes(tmp_path / "latin.csv", b"duty\n" + b"process invoices\n" * 7000 + b"facturaci\xf3n\n")
    with nothing_lost(tmp_path):
        result = invoke("label", source, "-o", tmp_path / "out.csv")
    # Decoding runs a block ahead of parsing, so the row named is at most a block before the bad byte.
    assert result.exit_code == 1 and result.stdout == ""
    assert re.fullmatch(rf"Error: {re.escape(str(source))} is not valid utf-8 after data row (6[5-9]\d\d|7000) "
                        r"\(byte b'\\xf3'\); try --encoding latin-1 or cp1252\n", result.stderr), result.stderr
    with nothing_lost(tmp_path, new=("out.csv",)):
        assert invoke("label", source, "-o", tmp_path / "out.csv", "--encoding", "latin-1").exit_code == 0
    assert read_csv(tmp_path / "out.csv")[-1][0] == "facturación"


def test_utf16_file(tmp_path):
    """A UTF-16 export (Excel's "Unicode text"): the error says so; --encoding utf-16 reads it."""
    source = write_bytes(tmp_path / "excel.csv", "duty\r\nprocess invoices\r\n".encode("utf-16"))
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"{source} is not valid utf-8 (byte b'\\xff'); "
                     "it starts with a UTF-16 byte-order mark: try --encoding utf-16")
    with nothing_lost(tmp_path, new=("out.csv",)):
        assert invoke("label", source, "-o", tmp_path / "out.csv", "--encoding", "utf-16").exit_code == 0
    assert read_csv(tmp_path / "out.csv")[1][:2] == ["process invoices", "back-office"]


def test_utf8_byte_order_mark(tmp_path):
    """Documented: a UTF-8 byte-order mark is not part of the first column's name."""
    source = write_bytes(tmp_path / "bom.csv", b"\xef\xbb\xbfduty\nprocess invoices\n")
    with nothing_lost(tmp_path, new=("out.csv",)):
        assert invoke("label", source, "-o", tmp_path / "out.csv", "--text-column", "duty").exit_code == 0
    assert read_csv(tmp_path / "out.csv")[0][0] == "duty"


def test_unknown_encoding(tmp_path):
    source = write_bytes(tmp_path / "in.csv", b"duty\nprocess invoices\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv", "--encoding", "klingon"),
                     "unknown encoding 'klingon'; try --encoding utf-8 or latin-1")


def test_mixed_line_endings(tmp_path):
    """Documented: \\r\\n, \\n and \\r in one file all end rows; the output uses \\n."""
    source = write_bytes(tmp_path / "mixed.csv", b"id,duty\r\n1,process invoices\n2,run payroll\r3,answer calls\r\n")
    with nothing_lost(tmp_path, new=("out.csv",)):
        result = invoke("label", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0 and result.stderr.startswith("labelled 3 rows")
    text = (tmp_path / "out.csv").read_bytes()
    assert b"\r" not in text and [r[:2] for r in read_csv(tmp_path / "out.csv")[1:]] == [
        ["1", "process invoices"], ["2", "run payroll"], ["3", "answer calls"]]


def test_quote_left_open_at_end_of_file(tmp_path):
    """An unclosed quote would swallow every later row into one cell; it is an error naming the row instead."""
    source = write_bytes(tmp_path / "open.csv", b'id,duty\n1,process invoices\n2,"run payroll\n3,answer calls\n')
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"{source}: a quote opened in data row 2 is never closed (end of file reached); check its quoting")


def test_text_after_closing_quote(tmp_path):
    """`"a"b` is not CSV; rather than guess, the row is named."""
    source = write_bytes(tmp_path / "quote.csv", b'id,duty\n1,"process" invoices\n')
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"{source}: malformed CSV in data row 1: ',' expected after '\"'; check its quoting")


def test_quoted_line_breaks_and_carriage_returns_kept(tmp_path):
    """Documented: cells with line breaks, a lone \\r, quotes and delimiters come back unchanged and still parse."""
    rows = [["id", "duty"], ["1", "process\r\ninvoices"], ["2", "run\rpayroll"], ["3", 'answer "live", chat']]
    source = tmp_path / "cells.csv"
    with open(source, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    with nothing_lost(tmp_path, new=("out.csv",)):
        assert invoke("label", source, "-o", tmp_path / "out.csv").exit_code == 0
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as f:
        got = list(csv.reader(f, strict=True))
    assert [r[:2] for r in got] == rows


def test_nul_bytes_in_cells(tmp_path):
    """Documented: NUL characters inside cells are kept and the row is labelled."""
    source = write_bytes(tmp_path / "nul.csv", b"id,duty\n1,process\x00invoices\n")
    with nothing_lost(tmp_path, new=("out.csv",)):
        assert invoke("label", source, "-o", tmp_path / "out.csv").exit_code == 0
    assert read_csv(tmp_path / "out.csv")[1][:2] == ["1", "process\x00invoices"]


def test_binary_file(tmp_path):
    """An archive renamed .csv is named for what it is; other binary bytes (NULs in the header) get a clear error,
    not a garbage column. (A workbook renamed .csv: tests/test_excel.py.)"""
    source = write_bytes(tmp_path / "book.csv", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"{source} is a zip archive, not CSV text: unzip it and label the CSV inside")
    source = write_bytes(tmp_path / "blob.csv", b"\x7fELF\x02\x01\x01\x00\x00\x00\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"{source}: the header holds NUL bytes; is it a CSV text file?")


def test_gzip_corrupt(tmp_path):
    source = write_bytes(tmp_path / "duties.csv.gz", b"this is not gzip\n")
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"cannot read {source}: Not a gzipped file (b'th')")


def test_gzip_truncated(tmp_path):
    whole = gzip.compress(b"duty\n" + b"process invoices\n" * 50_000)
    source = write_bytes(tmp_path / "duties.csv.gz", whole[: len(whole) // 2])
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"cannot read {source}: Compressed file ended before the end-of-stream marker was reached")


@pytest.mark.slow
def test_ten_gigabyte_sparse_file(tmp_path):
    """A 10 GiB file with no line break after row 1: refused after reading 64 Mi characters, in bounded memory."""
    source = tmp_path / "huge.csv"
    with open(source, "wb") as f:
        f.write(b"duty\nprocess invoices\n")
        f.truncate(10 * 2**30)  # a hole: 10 GiB of zero bytes that take no disk space
    if source.stat().st_blocks * 512 > 64 * MiB:
        pytest.skip("this file system does not support sparse files")
    with nothing_lost(tmp_path):
        code, err, peak_mib = run_measured("label", "huge.csv", "-o", "out.csv", cwd=tmp_path)
    assert code == 1
    assert err == b"Error: huge.csv: data row 2 runs over 64 Mi characters without a line break; is it a CSV text file?\n"
    assert peak_mib < 1024, f"peak memory {peak_mib:.0f} MiB"


@pytest.mark.slow
def test_endless_stdin_is_streamed(tmp_path):
    """A 10 GB stand-in on stdin (rows generated as they are read): labelled rows come out long before the input ends."""
    row = b"1,process invoices and reconcile vendor statements\n"
    rows_in_10gb = 10 * 10**9 // len(row)
    proc = start_cli("label", "-", "--text-column", "duty", cwd=tmp_path,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = threading.Event()
    sent = {"rows": 0, "at_first_output": None}

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(b"id,duty\n")
            while sent["rows"] < rows_in_10gb and not seen.is_set():
                proc.stdin.write(row)
                sent["rows"] += 1
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()

    with proc:  # closes the pipes and waits
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        first = proc.stdout.readline()
        sent["at_first_output"] = sent["rows"]
        seen.set()
        rest = proc.stdout.read()
        feeder.join(timeout=60)
        err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert first == f"id,duty,{HEADER_OUT}\n".encode()
    assert sent["at_first_output"] < 200_000 < rows_in_10gb
    assert rest.count(b"\n") == sent["rows"] and err.startswith(f"labelled {sent['rows']} rows".encode())
    assert list(tmp_path.iterdir()) == []


# -- output ---------------------------------------------------------------------------
def test_full_disk_while_writing_file(tmp_path, monkeypatch):
    """The disk fills up mid-write (ENOSPC, simulated): one-line error, the temporary file removed, nothing under the final name."""
    source = duties(tmp_path / "in.csv", 2000)
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "out.csv"),
                     f"cannot write {tmp_path / 'out.csv'}: No space left on device")


def test_full_disk_on_stdout(tmp_path):
    """`bpo-classify label in.csv > /dev/full`: a one-line error, exit 1, no traceback."""
    source = duties(tmp_path / "in.csv", 10)
    with nothing_lost(tmp_path), open("/dev/full", "wb") as full:
        done = run_cli("label", source, cwd=tmp_path, stdout=full, stderr=subprocess.PIPE)
    assert done.returncode == 1
    assert done.stderr == b"Error: cannot write to standard output: No space left on device\n"


def test_output_directory_missing(tmp_path):
    source = duties(tmp_path / "in.csv", 3)
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "nope" / "out.csv"),
                     f"output directory does not exist: {tmp_path / 'nope'}; create it first")


def test_output_is_a_directory(tmp_path):
    """A usage error (exit 2), reported by the option parser."""
    source = duties(tmp_path / "in.csv", 3)
    (tmp_path / "outdir").mkdir()
    with nothing_lost(tmp_path):
        result = invoke("label", source, "-o", tmp_path / "outdir")
    assert result.exit_code == 2 and result.stdout == ""
    assert re.search(r"Error: Invalid value for '-o' / '--output': File '.*outdir' is a directory\.", result.stderr)


def test_output_is_the_input(tmp_path):
    source = duties(tmp_path / "in.csv", 3)
    with nothing_lost(tmp_path):
        assert_error(invoke("label", source, "-o", tmp_path / "." / "in.csv"),
                     f"refusing to overwrite the input file {source}; choose another output path")


def test_existing_output_kept_on_failure(tmp_path):
    """A run that fails half-way leaves the previous output file exactly as it was."""
    source = write_bytes(tmp_path / "in.csv", b"duty\n" + b"process invoices\n" * 12_000 + b"caf\xe9\n")
    write_bytes(tmp_path / "out.csv", b"yesterday's labels\n")
    with nothing_lost(tmp_path):
        result = invoke("label", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 1 and "is not valid utf-8 after data row " in result.stderr
    assert (tmp_path / "out.csv").read_bytes() == b"yesterday's labels\n"


def test_output_to_a_named_pipe(tmp_path):
    """Documented: a pipe or device (a FIFO, /dev/stdout) is written to directly, never replaced by a file."""
    source = duties(tmp_path / "in.csv", 3)
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    with nothing_lost(tmp_path):
        result = invoke("label", source, "-o", fifo)
        reader.join(timeout=30)
    assert result.exit_code == 0 and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received[0].decode().splitlines()[0] == f"id,duty,{HEADER_OUT}" and len(received[0].splitlines()) == 4


def test_output_through_a_symlink(tmp_path):
    """Documented: a symbolic link as output is kept; the file it points to is replaced atomically."""
    source = duties(tmp_path / "in.csv", 3)
    (tmp_path / "link.csv").symlink_to("real.csv")
    with nothing_lost(tmp_path, new=("real.csv",)):
        assert invoke("label", source, "-o", tmp_path / "link.csv").exit_code == 0
    assert (tmp_path / "link.csv").is_symlink() and len(read_csv(tmp_path / "real.csv")) == 4


@pytest.mark.slow
def test_stdout_closed_early(tmp_path):
    """`bpo-classify label big.csv | head -1` in a real shell pipe: the first line, then a quiet exit 0."""
    duties(tmp_path / "big.csv", 30_000)
    script = 'set -o pipefail; "$0" -m bpo_classify label big.csv | head -1'
    with nothing_lost(tmp_path):
        done = subprocess.run(["bash", "-c", script, sys.executable], cwd=tmp_path, capture_output=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout == f"id,duty,{HEADER_OUT}\n".encode()
    assert done.stderr == b""


@pytest.mark.slow
def test_predict_stdout_closed_early(tmp_path):
    """`... | bpo-classify predict - | head -1`: quiet exit 0 as well."""
    (tmp_path / "texts.txt").write_text("process invoices\n" * 20_000, encoding="utf-8")
    script = 'set -o pipefail; "$0" -m bpo_classify predict - --format csv < texts.txt | head -1'
    with nothing_lost(tmp_path):
        done = subprocess.run(["bash", "-c", script, sys.executable], cwd=tmp_path, capture_output=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == b"text,office,office_confidence,function,function_confidence,needs_review,review_reason\n"


@pytest.mark.slow
def test_sigint_mid_run(tmp_path):
    """Ctrl-C while labelling into a file: exit 130, one line, the temporary file removed, no output."""
    source = duties(tmp_path / "in.csv", 300_000)
    with nothing_lost(tmp_path):
        proc = start_cli("label", source, "-o", "out.csv", cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_temp_output(tmp_path, "out.csv", proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, b"", b"Interrupted; no output was written.\n")


@pytest.mark.slow
def test_sigterm_mid_run(tmp_path):
    """`kill PID` while labelling: exit 143, one line, the temporary file removed, no output."""
    source = duties(tmp_path / "in.csv", 300_000)
    with nothing_lost(tmp_path):
        proc = start_cli("label", source, "-o", "out.csv", cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_temp_output(tmp_path, "out.csv", proc)
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (143, b"", b"Terminated; no output was written.\n")


# -- predict ---------------------------------------------------------------------------
def test_predict_stdin_not_utf8():
    assert_error(invoke("predict", "-", input=b"process invoices\nfacturaci\xf3n\n"),
                 "standard input is not valid UTF-8 (byte b'\\xf3' on line 2); convert it first, e.g. iconv -f latin1 -t utf-8")


def test_predict_argument_not_utf8(tmp_path):
    """Undecodable bytes in an argument (the shell passes bytes): a one-line error, not mojibake or a traceback."""
    done = subprocess.run([sys.executable.encode(), b"-m", b"bpo_classify", b"predict", b"facturaci\xf3n"],
                          cwd=tmp_path, capture_output=True, timeout=60)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr == b"Error: text 1 is not valid UTF-8 (undecodable bytes in the argument); pass UTF-8 text\n"


def test_predict_blank_and_whitespace_texts():
    """Documented: empty or whitespace-only texts get empty labels and needs_review, in their place."""
    result = invoke("predict", "--format", "csv", "--", "", " \t", "process invoices")
    assert result.exit_code == 0
    lines = result.stdout.split("\n")
    assert lines[1:3] == [",,,,,true,empty", " \t,,,,,true,empty"] and lines[3].startswith("process invoices,back-office,")


def test_predict_unicode_line_separators_stay_in_the_text():
    """Documented: `predict -` splits lines at \\n, \\r\\n and \\r only; form feeds, U+2028 and the like stay in the text."""
    result = invoke("predict", "-", "--format", "csv", input="process\x0cinvoices\r\nanswer\u2028calls\rrun payroll\n".encode())
    assert result.exit_code == 0
    assert [r[0] for r in csv.reader(result.stdout.split("\n")[1:-1])] == ["process\x0cinvoices", "answer\u2028calls", "run payroll"]


def test_predict_text_with_no_known_terms():
    """Documented: text sharing no word or character n-gram with the training data (emoji, NUL, an unseen script)
    gets the model's prior, the same answer for all of them."""
    result = invoke("predict", "--format", "csv", "--", "😀😀", "\x00", "請求書の処理")
    assert result.exit_code == 0
    answers = {tuple(r[1:]) for r in csv.reader(result.stdout.splitlines()[1:])}
    assert len(answers) == 1


def test_model_file_truncated(tmp_path):
    """A model file cut short (a failed copy): refused by its checksum, one line."""
    from bpo_classify.model import default_model_path

    broken = write_bytes(tmp_path / "m.bpoc", default_model_path().read_bytes()[:5000])
    with nothing_lost(tmp_path):
        result = invoke("predict", "process invoices", "--model", broken)
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: ") and str(broken) in result.stderr


# -- training data ------------------------------------------------------------------------
def labelled(path: Path, rows: list[list[str]]) -> Path:
    return write_csv(path, [["text", "office", "function"], *rows])


def check_and_train(tmp_path: Path, source: Path, *extra: str) -> tuple[Result, Result]:
    """check-data and train on ``source``: both must report, and train must stop before training."""
    with nothing_lost(tmp_path):
        checked = invoke("check-data", source, *extra)
        trained = invoke("train", "--data", source, "--out", tmp_path / "m.bpoc", *extra)
    assert checked.exit_code == 1 and trained.exit_code == 1
    assert "training on" not in trained.stderr  # stopped before training started
    return checked, trained


def test_train_conflicting_duplicate_texts(tmp_path):
    """The same text (up to case and punctuation) with different labels: reported with its rows by check-data and train."""
    source = labelled(tmp_path / "d.csv", [
        ["Process invoices", "back-office", "finance_accounting"],
        ["answer live chat inquiries", "front-office", "customer_service"],
        ["process invoices!", "front-office", "customer_service"],
    ])
    checked, trained = check_and_train(tmp_path, source, "--cv", "0")
    line = ("error: same text with conflicting labels (back-office/finance_accounting vs front-office/customer_service): "
            "'Process invoices' (rows 1, 3)")
    assert checked.stdout == line + "\n"
    assert trained.stderr == line + "\nError: the training data has 1 problem (listed above); nothing was trained\n"


def test_train_label_not_in_policy(tmp_path):
    """Office or function values outside the policy: each value reported with its rows."""
    source = labelled(tmp_path / "d.csv", [
        ["process invoices", "middle-office", "finance_accounting"],
        ["run payroll", "back-office", "payroll"],
        ["answer live chat inquiries", "front-office", "chat"],
        ["greet guests", "Front Office", "reception"],
    ])
    checked, trained = check_and_train(tmp_path, source, "--cv", "0")
    expected = [
        "error: office 'middle-office' is not one of back-office, front-office (rows 1)",
        "error: office 'Front Office' is not one of back-office, front-office (rows 4)",
        "error: function 'chat' is not one of the fifteen policy functions (rows 3)",
    ]
    assert checked.stdout.splitlines() == expected
    assert trained.stderr.splitlines() == expected + ["Error: the training data has 3 problems (listed above); nothing was trained"]


def test_train_empty_texts(tmp_path):
    source = labelled(tmp_path / "d.csv", [
        ["process invoices", "back-office", "finance_accounting"],
        ["  ", "front-office", "customer_service"],
        ["", "back-office", "payroll"],
    ])
    checked, trained = check_and_train(tmp_path, source, "--cv", "0")
    assert checked.stdout == "error: empty text (rows 2, 3)\n"
    assert trained.stderr.startswith("error: empty text (rows 2, 3)\nError: the training data has 1 problem")


@pytest.mark.slow
def test_train_classes_too_small_for_cross_validation(tmp_path, small_corpus):
    """A function with fewer rows than folds: reported with its rows; --cv 0 (no cross-validation) accepts it."""
    rows = [[t, o, f] for t, o, f in zip(small_corpus.texts, small_corpus.offices, small_corpus.functions) if f != "payroll"]
    rows += [["run the monthly payroll", "back-office", "payroll"], ["process payroll deductions", "back-office", "payroll"]]
    source = labelled(tmp_path / "d.csv", rows)
    checked, trained = check_and_train(tmp_path, source, "--cv", "5")
    line = f"error: function 'payroll' has 2 rows; cross-validation needs at least 5 (rows {len(rows) - 1}, {len(rows)})"
    assert checked.stdout == line + "\n"
    assert trained.stderr == line + "\nError: the training data has 1 problem (listed above); nothing was trained\n"
    assert invoke("check-data", source, "--cv", "0").exit_code == 0


@pytest.mark.slow
def test_train_exact_duplicates_warn(tmp_path, corpus):
    """Documented: the same text with the same labels is a warning with its rows; training goes ahead."""
    per_function: dict[str, int] = {}
    rows = []
    for text, office, function in zip(corpus.texts, corpus.offices, corpus.functions):
        if per_function.get(function, 0) < 2:  # 30 rows: trains in a couple of seconds
            per_function[function] = per_function.get(function, 0) + 1
            rows.append([text, office, function])
    rows.append(rows[0])
    source = labelled(tmp_path / "d.csv", rows)
    warning = f"warning: duplicate text: {rows[0][0]!r} (rows 1, {len(rows)})"
    with nothing_lost(tmp_path, new=("m.bpoc",)):
        checked = invoke("check-data", source, "--cv", "0")
        trained = invoke("train", "--data", source, "--cv", "0", "--out", tmp_path / "m.bpoc")
    assert checked.exit_code == 0 and checked.stdout == warning + "\n"
    assert trained.exit_code == 0, trained.output
    assert trained.stderr.startswith(warning + "\ntraining on ")


def test_train_output_directory_missing(tmp_path, small_csv):
    """Found before training starts, not after minutes of cross-validation."""
    with nothing_lost(tmp_path):
        result = invoke("train", "--data", small_csv, "--out", tmp_path / "nope" / "m.bpoc")
    assert_error(result, f"output directory does not exist: {tmp_path / 'nope'}; create it first")


# -- the table in the README -------------------------------------------------------------
def test_readme_table_matches_these_tests():
    """Every test here is a row of the README's Reliability table, every test it names exists, and there are at least 25."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_\w+)`", section))
    here = {name for name in globals() if name.startswith("test_") and name != "test_readme_table_matches_these_tests"}
    assert named == here, (sorted(named - here), sorted(here - named))
    rows = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 25

