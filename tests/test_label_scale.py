"""Batch labelling at scale: chunking, parallel workers, input formats, interruption, odd rows, Parquet, progress.

Speed and memory are measured by `benchmarks/bench_label.py` (`make bench`), not here.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bpo_classify import labeling
from bpo_classify.cli import cli
from bpo_classify.labeling import ADDED_COLUMNS, Labeller, label_csv
from bpo_classify.tables import render_rows, write_rows, write_table
from conftest import DUTIES, read_csv, start_cli, wait_for_temp_output, write_csv

def export(path: Path, n: int, seed: int = 0, delimiter: str = ",") -> Path:
    """A job-duty export of ``n`` rows: repeated duties, variants, blanks, quotes, line breaks."""
    rng = random.Random(seed)
    rows = [["id", "role", "location", "duty"]]
    for i in range(n):
        duty = rng.choice(DUTIES)
        if duty.strip() and rng.random() < 0.5:
            duty = f"{duty} for account {rng.randrange(n)}"
        rows.append([str(i), rng.choice(["Clerk", "Agent", "Analyst"]), "Manila, PH", duty])
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        csv.writer(f, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def invoke(runner, *args: object):
    result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


# -- chunking and parallel workers -------------------------------------------------------------
def test_chunk_boundaries_do_not_change_the_output(model, tmp_path):
    """Chunk sizes 1, 7 and larger than the file give byte-identical output to one-shot labelling."""
    source = export(tmp_path / "in.csv", 60)
    outputs = {}
    for size in (1, 7, 60, 10_000):
        out = tmp_path / f"out_{size}.csv"
        summary = label_csv(source, out, model=model, text_column="duty", chunk_size=size)
        assert summary.rows == 60
        outputs[size] = out.read_bytes()
    assert outputs[1] == outputs[7] == outputs[60] == outputs[10_000]
    assert len(read_csv(tmp_path / "out_1.csv")) == 61


@pytest.mark.slow
def test_parallel_equals_serial(model, tmp_path, monkeypatch):
    """--jobs 2 gives the same bytes as --jobs 1, rows in input order, also when the label caches fill up."""
    source = export(tmp_path / "in.csv", 3000, seed=1)
    serial, parallel = tmp_path / "serial.csv", tmp_path / "parallel.csv"
    s1 = label_csv(source, serial, model=model, text_column="duty", jobs=1, chunk_size=250)
    monkeypatch.setattr(labeling, "CACHE_SIZE", 40)  # forces the caches to start afresh many times
    s2 = label_csv(source, parallel, model=model, text_column="duty", jobs=2, chunk_size=97)
    assert parallel.read_bytes() == serial.read_bytes()
    assert [r[0] for r in read_csv(parallel)[1:]] == [str(i) for i in range(3000)]
    assert (s1.rows, s1.front, s1.back, s1.empty, s1.needs_review) == (s2.rows, s2.front, s2.back, s2.empty, s2.needs_review)


@pytest.mark.slow
def test_cli_jobs_and_quiet(runner, tmp_path):
    """`--jobs 2 --quiet` labels the file and prints nothing; `--jobs 0` is a usage error."""
    source = export(tmp_path / "in.csv", 12_000, seed=2)
    result = invoke(runner, "label", source, "-o", tmp_path / "a.csv", "--text-column", "duty", "--jobs", "2", "--quiet")
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == ""
    result = invoke(runner, "label", source, "-o", tmp_path / "b.csv", "--text-column", "duty", "--jobs", "1")
    assert result.exit_code == 0
    assert result.stderr.startswith("labelled 12000 rows: ")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    result = invoke(runner, "label", source, "--jobs", "0")
    assert result.exit_code == 2 and "--jobs" in result.stderr


def test_label_rows_yields_the_written_rows(model, tmp_path):
    """The label_rows generator yields, as lists, the rows label_csv writes."""
    source = export(tmp_path / "in.csv", 40, seed=9)
    label_csv(source, tmp_path / "out.csv", model=model, text_column="duty")
    rows = read_csv(source)
    got = list(labeling.label_rows(model, rows[1:], 3, 4, chunk_size=7))
    assert got == read_csv(tmp_path / "out.csv")[1:] and all(type(r) is list for r in got)


def test_labeller_cache_gives_the_same_cells(model):
    """Cells from the cache equal freshly computed ones, whatever was labelled before."""
    texts = [d for d in DUTIES] * 3
    fresh = [Labeller(model, 0).labels([t])[0] for t in texts]
    small = Labeller(model, 0, cache_size=3)
    assert small.labels(texts) == fresh
    assert small.labels(list(reversed(texts))) == list(reversed(fresh))


# -- input formats ------------------------------------------------------------------------------
def test_gzip_input(model, tmp_path):
    """A .csv.gz input gives the same output as the plain .csv."""
    plain = export(tmp_path / "in.csv", 200, seed=3)
    packed = export(tmp_path / "in.csv.gz", 200, seed=3)
    label_csv(plain, tmp_path / "a.csv", model=model, text_column="duty")
    label_csv(packed, tmp_path / "b.csv", model=model, text_column="duty", jobs=2, chunk_size=50)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_tsv_input_stays_tsv(model, runner, tmp_path):
    """A .tsv input is read with tabs and written with tabs; the cells equal the CSV run's."""
    export(tmp_path / "in.tsv", 200, seed=4, delimiter="\t")
    export(tmp_path / "in.csv", 200, seed=4)
    assert invoke(runner, "label", tmp_path / "in.tsv", "-o", tmp_path / "out.tsv", "--jobs", "2").exit_code == 0
    assert invoke(runner, "label", tmp_path / "in.csv", "-o", tmp_path / "out.csv").exit_code == 0
    text = (tmp_path / "out.tsv").read_text(encoding="utf-8")
    assert text.startswith("id\trole\tlocation\tduty\t" + "\t".join(ADDED_COLUMNS) + "\n")
    with open(tmp_path / "out.tsv", encoding="utf-8", newline="") as f:
        assert list(csv.reader(f, delimiter="\t")) == read_csv(tmp_path / "out.csv")


def test_field_over_the_csv_default_limit(model, tmp_path):
    """A 200 KB duty (the csv module's default limit is 128 KiB) is labelled and kept whole."""
    long = ("Reconcile vendor statements and process invoices. " * 4000)[:200_000]
    source = write_csv(tmp_path / "in.csv", [["id", "duty"], ["1", long], ["2", "answer customer calls"]])
    summary = label_csv(source, tmp_path / "out.csv", model=model)
    rows = read_csv(tmp_path / "out.csv")
    assert summary.rows == 2 and rows[1][1] == long and rows[1][2] == "back-office"


def test_byte_order_mark(model, runner, tmp_path):
    """A UTF-8 byte-order mark is not part of the first column's name; output has none."""
    source = tmp_path / "in.csv"
    source.write_bytes("\ufeffduty,id\nprocess invoices,1\n".encode("utf-8"))
    result = invoke(runner, "label", source, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert read_csv(tmp_path / "out.csv")[0] == ["duty", "id", *ADDED_COLUMNS]
    assert not (tmp_path / "out.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_embedded_newlines_and_crlf(model, tmp_path):
    """Quoted line breaks stay inside their field; a CRLF file gives the same cells as an LF file."""
    rows = [["id", "duty"], ["1", "process invoices\nand\r\nreconcile"], ["2", "answer calls"]]
    lf = write_csv(tmp_path / "lf.csv", rows)
    crlf = tmp_path / "crlf.csv"
    with open(crlf, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    label_csv(lf, tmp_path / "a.csv", model=model)
    label_csv(crlf, tmp_path / "b.csv", model=model, chunk_size=1, jobs=2)  # workers re-parse the raw text
    a, b = read_csv(tmp_path / "a.csv"), read_csv(tmp_path / "b.csv")
    assert a == b and len(a) == 3 and a[1][1] == rows[1][1]


def test_ragged_rows_padded_and_reported(model, runner, tmp_path):
    """A short row is padded and reported by number; a long row stops the run, naming its row."""
    source = write_csv(tmp_path / "in.csv", [["id", "role", "duty"], ["1", "Clerk", "process invoices"], ["2", "Clerk"], ["3"]])
    result = invoke(runner, "label", source, "-o", tmp_path / "out.csv", "--text-column", "duty")
    assert result.exit_code == 0
    assert "2 short rows padded with empty fields (rows 2, 3)" in result.stderr
    assert read_csv(tmp_path / "out.csv")[3] == ["3", "", "", "", "", "", "", "true", "empty"]
    long = write_csv(tmp_path / "long.csv", [["id", "duty"], ["1", "a"], ["2", "b", "extra"]])
    result = invoke(runner, "label", long, "-o", tmp_path / "out2.csv")
    assert result.exit_code == 1
    assert result.stderr == ("Error: data row 2 has 3 fields but the header has 2; "
                             "check the delimiter or quoting of that row\n")
    assert not (tmp_path / "out2.csv").exists()


def test_refuses_to_write_over_its_input(runner, tmp_path):
    """-o naming the input (by any path) is refused before anything is written; the input is unchanged."""
    source = export(tmp_path / "in.csv", 20)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    for target in (source, tmp_path / "sub" / ".." / "in.csv"):
        result = invoke(runner, "label", source, "-o", target)
        assert result.exit_code == 1
        assert result.stderr == f"Error: refusing to overwrite the input file {source}; choose another output path\n"
    os.link(source, tmp_path / "hard.csv")
    assert invoke(runner, "label", source, "-o", tmp_path / "hard.csv").exit_code == 1
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.csv", "in.csv", "sub"]


# -- interruption ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_leaves_no_output(tmp_path, jobs):
    """Ctrl-C from a terminal (SIGINT to the whole process group, workers included) mid-run:
    exit 130, one line on stderr, no output file and no temporary file.

    The input arrives on a pipe that stays open, so the run is certainly mid-way (labelled
    rows already in the temporary file, more input awaited) however fast the machine."""
    data = export(tmp_path / "in.csv", 30_000, seed=5).read_bytes()
    proc = start_cli("label", "-", "-o", "out.csv", "--text-column", "duty", "--jobs", jobs, cwd=tmp_path,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    proc.stdin.write(data)
    proc.stdin.flush()
    wait_for_temp_output(tmp_path, "out.csv", proc, written=True)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, b"", b"Interrupted; no output was written.\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# -- Parquet ---------------------------------------------------------------------------------------
def test_parquet_output(model, runner, tmp_path):
    """-o x.parquet writes typed Parquet with the same rows and cells as the CSV (empty text: nulls)."""
    pq = pytest.importorskip("pyarrow.parquet")
    source = export(tmp_path / "in.csv", 300, seed=6)
    assert invoke(runner, "label", source, "-o", tmp_path / "out.parquet", "--text-column", "duty", "--jobs", "2").exit_code == 0
    assert invoke(runner, "label", source, "-o", tmp_path / "out.csv", "--text-column", "duty").exit_code == 0
    table = pq.read_table(tmp_path / "out.parquet")
    rows = read_csv(tmp_path / "out.csv")
    assert table.column_names == rows[0]
    assert [str(t) for t in table.schema.types][-6:] == ["string", "double", "string", "double", "bool", "string"]
    data = table.to_pylist()
    assert len(data) == len(rows) - 1
    for got, want in zip(data, rows[1:]):
        cells = [got[c] for c in rows[0]]
        assert cells[:4] == want[:4]
        office, oconf, function, fconf, review, reason = cells[4:]
        assert (office or "", "" if oconf is None else f"{oconf:.4f}", function or "",
                "" if fconf is None else f"{fconf:.4f}", str(review).lower(), reason or "") == tuple(want[4:])


def test_parquet_without_pyarrow(runner, tmp_path, monkeypatch):
    """Without pyarrow, asking for Parquet is a one-line error saying what to install; nothing is written."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    source = export(tmp_path / "in.csv", 5)
    result = invoke(runner, "label", source, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 1
    assert result.stderr == ("Error: writing Parquet needs pyarrow, which is not installed: "
                             "pip install 'bpo-classify[parquet]' (or write a .csv)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# -- progress ----------------------------------------------------------------------------------------
def test_progress_bar_shows_rows_rate_and_share_of_the_input(monkeypatch):
    """On a terminal, label's bar (click.progressbar) shows the share of the input read, rows and rows per second; else none."""
    from bpo_classify.cli_support import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    with progress_bar(shown=False) as update:
        assert update is None
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with progress_bar(shown=True) as update:
        update(5000, 250, 1000)
        update(10_000, 500, 1000)
    drawn = screen.getvalue().split("\r")[-1].replace("\x1b[?25l", "")  # click hides the cursor while drawing
    assert drawn.startswith("[##########          ]   50%  ") and re.search(r"  10,000 rows [\d,]+ rows/s", drawn)
    unknown = Terminal()
    monkeypatch.setattr(sys, "stderr", unknown)
    with progress_bar(shown=True) as update:
        update(5000, 0, None)  # standard input: no size, no percentage
    assert "5,000 rows" in unknown.getvalue() and "%" not in unknown.getvalue()


def test_progress_callback_reaches_the_end(model, tmp_path):
    """label_csv reports after each chunk: rows written, bytes read, the file's size; the last call is complete."""
    source = export(tmp_path / "in.csv", 100, seed=7)
    calls = []
    label_csv(source, tmp_path / "out.csv", model=model, chunk_size=30, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == [30, 60, 90, 100]
    assert calls[-1][1:] == (source.stat().st_size, source.stat().st_size)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_only_on_a_terminal(tmp_path):
    """On a terminal the bar is drawn on stderr; piped or with --quiet, stderr has no bar."""
    import pty

    export(tmp_path / "in.csv", 20_000, seed=8)
    command = [sys.executable, "-m", "bpo_classify", "label", "in.csv", "-o", "out.csv", "--text-column", "duty", "--jobs", "1"]
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=slave, stdout=subprocess.DEVNULL)
    os.close(slave)
    seen = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    assert b"rows/s" in seen and b"%" in seen and b"labelled 20000 rows" in seen
    piped = subprocess.run(command, cwd=tmp_path, capture_output=True)
    assert b"\r" not in piped.stderr and piped.stderr.startswith(b"labelled 20000 rows")
    quiet = subprocess.run([*command, "--quiet"], cwd=tmp_path, capture_output=True)
    assert (quiet.returncode, quiet.stderr) == (0, b"")


# -- writing ----------------------------------------------------------------------------------------
def test_write_table_matches_the_csv_module():
    """The fast writer gives the csv module's bytes on random fields (delimiters, quotes, line breaks, \\r, ragged rows)."""
    rng = random.Random(0)
    alphabet = ["a", "é", " ", ",", "\t", ";", "|", '"', "\n", "\r", "\x00", "", "\u2028"]

    def reference(header, rows, delimiter):
        out = io.StringIO()
        plain = csv.writer(out, delimiter=delimiter, lineterminator="\n")
        quoted = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
        for row in itertools.chain([header], rows):
            (quoted if "\r" in "".join(row) else plain).writerow(row)
        return out.getvalue()

    for _ in range(3000):
        delimiter = rng.choice(",\t;|")
        width = rng.randint(0, 4)
        rows = [["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3)))
                 for _ in range(max(0, width + (rng.randint(-1, 1) if rng.random() < 0.1 else 0)))]
                for _ in range(rng.randint(0, 4))]
        out = io.StringIO()
        write_table(out, ["h"] * width, rows, delimiter)
        expected = reference(["h"] * width, rows, delimiter)
        assert out.getvalue() == expected, (rows, delimiter)
        tails = [("x", "0.5")] * len(rows)
        fast = render_rows([list(r) for r in rows], delimiter, tails)  # used by label: rows plus their cells
        if fast is not None:
            assert fast == reference([], [r + list(t) for r, t in zip(rows, tails)], delimiter)[1:], (rows, delimiter)
    out = io.StringIO()
    write_rows(out, [["1", "a, b"], ["2", 'say "hi"']])
    assert out.getvalue() == '1,"a, b"\n2,"say ""hi"""\n'
